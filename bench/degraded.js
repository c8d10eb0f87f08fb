// What the degraded rule costs: one PostgreSQL + Redis node under the same token and /me load
// with Redis up, then with Redis killed (every cached value older than 1 s is re-read from
// PostgreSQL before use). Reports the ratios of the two runs. Run alone with
// `node bench/degraded.js`, or from run.js when the portcullis-pg target is selected.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { positiveIntEnv, ROOT, runLoad, startServer } from './lib/proc.js';

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
  const { default: pg } = await import('pg');
  const name = `portcullis_bench_${randomBytes(4).toString('hex')}`;
  const adminDb = async (statement) => {
    const client = new pg.Client({ connectionString: PG, connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await adminDb(`create database ${name}`);
  const url = new URL(PG);
  url.pathname = `/${name}`;
  const redis = await privateRedis();
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const adminToken = randomBytes(24).toString('base64url');
  let server;
  try {
    server = await startServer({
      name: 'portcullis-degraded',
      script: join(ROOT, 'server/bin/portcullis.cjs'),
      args: ['serve'],
      env: {
        HOST: '127.0.0.1',
        PORTCULLIS_DATA_DIR: dataDir,
        PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'),
        PORTCULLIS_ADMIN_TOKEN: adminToken,
        DATABASE_URL: url.toString(),
        REDIS_URL: redis.url,
        PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
        PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
        PORTCULLIS_DRAIN_SECONDS: '0',
        LOG_LEVEL: 'error',
      },
      readyPath: '/healthz',
      ipc: false,
    });
    const admin = async (path, body) => {
      const res = await fetch(server.base + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return res.json();
    };
    const org = await admin('/admin/v1/organizations', { name: 'Bench' });
    const app = await admin(`/admin/v1/organizations/${org.id}/applications`, { name: 'bench-app' });
    const cred = await admin(`/admin/v1/applications/${app.id}/credentials`, { name: 'bench' });
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.client_id, client_secret: cred.client_secret }).toString();
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
    rmSync(dataDir, { recursive: true, force: true });
    await adminDb(`drop database if exists ${name} with (force)`).catch(() => {});
  }
}

if (process.argv[1]?.endsWith('degraded.js')) {
  const rows = await benchDegraded();
  console.table(rows);
  process.exit(rows.some((r) => r.non2xx > 0) ? 1 : 0);
}
