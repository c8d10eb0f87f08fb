// What the degraded rule costs: one PostgreSQL + Redis node under the same token and /me load
// with Redis up, then with Redis killed (every cached value older than 1 s is re-read from
// PostgreSQL before use). Reports the ratios of the two runs. Run alone with
// `node bench/degraded.js`, or from run.js when the portcullis-pg target is selected.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createBenchDatabase, createClient, startPortcullis } from './lib/portcullis.js';
import { positiveIntEnv, runLoad } from './lib/proc.js';

const DURATION = positiveIntEnv('BENCH_DURATION', 8);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 32);
const PG = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function privateRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return { url: `redis://127.0.0.1:${port}`, kill: () => child.kill('SIGKILL') };
}

export async function benchDegraded(log = (m) => process.stderr.write(`[degraded] ${m}\n`)) {
  const db = await createBenchDatabase(PG);
  const redis = await privateRedis();
  let server;
  try {
    let admin;
    ({ server, admin } = await startPortcullis({
      name: 'portcullis-degraded',
      env: {
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
        PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
        PORTCULLIS_DRAIN_SECONDS: '0',
        LOG_LEVEL: 'error',
      },
    }));
    const cred = await createClient(admin);
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }).toString();
    const issued = await (
      await fetch(`${server.base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
    ).json();
    const token = (label) =>
      runLoad({
        url: `${server.base}/oauth2/token`,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        connections: CONNECTIONS,
        duration: DURATION,
        title: label,
      });
    const me = (label) =>
      runLoad({
        url: `${server.base}/me`,
        headers: { authorization: `Bearer ${issued.access_token}` },
        connections: CONNECTIONS,
        duration: DURATION,
        title: label,
      });

    log('Redis up');
    const up = { token: await token('token, Redis up'), me: await me('/me, Redis up') };
    redis.kill();
    for (let i = 0; i < 100; i++) {
      const ready = await (await fetch(`${server.base}/readyz`)).json();
      if (ready.redis?.state === 'down') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    log('Redis killed');
    const down = { token: await token('token, Redis down'), me: await me('/me, Redis down') };
    const row = (what, a, b) => ({
      what,
      rpsUp: Math.round(a.rps),
      rpsDown: Math.round(b.rps),
      ratio: Number((b.rps / a.rps).toFixed(2)),
      p99Up: a.latencyP99,
      p99Down: b.latencyP99,
      non2xx: a.non2xx + b.non2xx + a.errors + b.errors,
    });
    return [row('POST /oauth2/token', up.token, down.token), row('GET /me', up.me, down.me)];
  } finally {
    await server?.stop();
    redis.kill();
    await db.drop().catch(() => {});
  }
}

if (process.argv[1]?.endsWith('degraded.js')) {
  const rows = await benchDegraded();
  console.table(rows);
  process.exit(rows.some((r) => r.non2xx > 0) ? 1 : 0);
}
