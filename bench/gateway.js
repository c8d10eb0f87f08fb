// Gateway peers: the built-in gateway against a bare node:http keep-alive proxy, and nginx with
// the Portcullis decision (generated configuration) against plain nginx, all in front of the same
// upstream, measured interleaved (round-robin, several short rounds) so a loaded machine affects
// every target alike. Run alone with `node bench/gateway.js`; `npm run bench` runs it last.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createClient, startPortcullis } from './lib/portcullis.js';
import { killAll, positiveIntEnv, processCpuSeconds, ROOT, runLoad, startServer } from './lib/proc.js';

const NGINX = '/usr/sbin/nginx';
const GOALS = { gatewayVsBareProxy: 0.8, nginxDecisionVsNginx: 0.7 };
const log = (msg) => process.stderr.write(`[bench gateway] ${msg}\n`);

async function freePort() {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function json(res, status, what) {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : undefined;
}

/** nginx in the foreground with its own prefix dir; resolves once it answers on `probe`. */
async function startNginx(name, conf, base, probe, cleanup) {
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755); // workers run as nobody when the master is root
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX, ['-e', 'stderr', '-p', dir, '-c', 'nginx.conf', '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  cleanup.push(() => child.exitCode === null && child.kill('SIGTERM'));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`${name} not ready: ${stderr}`);
    try {
      const res = await fetch(base + probe.path, { headers: probe.headers, signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return { name, pid: child.pid, base };
    } catch {}
    await sleep(100);
  }
}

const plainNginx = (listen, upstream) => `worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    keepalive_requests 10000;
    upstream bench_upstream { server ${upstream.host}; keepalive 64; }
    server {
        listen ${listen};
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`;

export async function runGatewayPeers() {
  const seconds = positiveIntEnv('BENCH_GATEWAY_SECONDS', 4);
  const rounds = positiveIntEnv('BENCH_GATEWAY_ROUNDS', 2);
  const connections = positiveIntEnv('BENCH_CONNECTIONS', 32);
  const cleanup = [];
  try {
    const upstream = await startServer({ name: 'upstream', script: 'bench/upstream-server.js', readyPath: '/items' });
    cleanup.push(upstream.stop);
    const bare = await startServer({ name: 'bare proxy', script: 'bench/bare-proxy.js', env: { BENCH_UPSTREAM: upstream.base }, readyPath: '/items' });
    cleanup.push(bare.stop);
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-gw-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const routes = join(dataDir, 'routes.json');
    writeFileSync(routes, JSON.stringify([{ prefix: '/bench', upstream: upstream.base, scopes: ['bench:read'] }]));
    const started = await startPortcullis({
      dataDir,
      env: {
        PORTCULLIS_ROUTES: routes,
        PORTCULLIS_RATE_LIMIT: '1000000',
        // Production-like logging: info, with one successful request in a hundred logged (refusals always are).
        LOG_LEVEL: 'info',
        PORTCULLIS_LOG_SAMPLE: '0.01',
        // No drain at the end: the process exits within stopChild's grace, so a CPU profile gets written.
        PORTCULLIS_DRAIN_SECONDS: '0',
      },
      // BENCH_GATEWAY_PROFILE=DIR writes a CPU profile of the Portcullis process there when it stops.
      nodeArgs: process.env.BENCH_GATEWAY_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_GATEWAY_PROFILE}`] : [],
    });
    const { server: portcullis, adminToken } = started;
    cleanup.push(portcullis.stop);
    const cred = await createClient(started.admin, ['bench:read']);
    const issued = await json(
      await fetch(`${portcullis.base}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }),
      }),
      200,
      'token',
    );
    const auth = { authorization: `Bearer ${issued.access_token}` };

    const targets = [
      { key: 'direct', label: 'upstream called directly', url: `${upstream.base}/items`, headers: {}, pid: upstream.pid },
      { key: 'bare', label: 'bare node:http keep-alive proxy, no auth', url: `${bare.base}/items`, headers: {}, pid: bare.pid },
      { key: 'gateway', label: 'built-in gateway (JWT, scopes, rate limit)', url: `${portcullis.base}/bench/items`, headers: auth, pid: portcullis.pid },
    ];
    if (existsSync(NGINX)) {
      const plainPort = await freePort();
      const plain = await startNginx(
        'nginx',
        plainNginx(`127.0.0.1:${plainPort}`, new URL(upstream.base)),
        `http://127.0.0.1:${plainPort}`,
        { path: '/items' },
        cleanup,
      );
      const decidedPort = await freePort();
      const generated = await new Promise((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [join(ROOT, 'server/bin/portcullis.cjs'), 'nginx-config', '--listen', `127.0.0.1:${decidedPort}`, '--url', portcullis.base],
          {
            env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: adminToken },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (c) => {
          out += c;
        });
        child.stderr.on('data', (c) => {
          err += c;
        });
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`nginx-config failed: ${err}`))));
      });
      const decided = await startNginx(
        'nginx+decision',
        generated.replace('worker_processes auto;', 'worker_processes 1;'),
        `http://127.0.0.1:${decidedPort}`,
        { path: '/bench/items', headers: auth },
        cleanup,
      );
      targets.push(
        { key: 'nginx', label: 'plain nginx proxy, no auth (1 worker)', url: `${plain.base}/items`, headers: {}, pid: plain.pid },
        {
          key: 'nginxDecision',
          label: 'nginx + Portcullis decision (1 worker, 3 s decision cache)',
          url: `${decided.base}/bench/items`,
          headers: auth,
          pid: decided.pid,
          // The decisions' CPU counts too.
          alsoPid: portcullis.pid,
        },
      );
    } else {
      log(`${NGINX} not found: the nginx rows are skipped (apt-get install nginx-light)`);
    }

    const totals = Object.fromEntries(targets.map((t) => [t.key, { requests: 0, seconds: 0, bad: 0, cpu: 0 }]));
    for (const t of targets) await runLoad({ url: t.url, headers: t.headers, connections, duration: 1 }); // warm-up
    for (let round = 1; round <= rounds; round++) {
      for (const t of targets) {
        const cpuOf = () => processCpuSeconds(t.pid) + (t.alsoPid ? processCpuSeconds(t.alsoPid) : 0);
        const cpu0 = cpuOf();
        const r = await runLoad({ url: t.url, headers: t.headers, connections, duration: seconds });
        const total = totals[t.key];
        total.requests += r.requests;
        total.seconds += r.duration;
        total.bad += r.non2xx + r.errors;
        total.cpu += cpuOf() - cpu0;
        log(`round ${round}/${rounds} ${t.label}: ${Math.round(r.rps)} req/s`);
      }
    }
    const rps = (key) => (totals[key] ? totals[key].requests / totals[key].seconds : undefined);
    const ratio = (a, b) => (rps(a) !== undefined && rps(b) ? rps(a) / rps(b) : undefined);
    // Requests per CPU-second of the proxying processes: on a machine shared with other work, throughput
    // follows the CPU a process happens to get; this follows the work each request costs.
    const perCpu = (key) => (totals[key]?.cpu > 0 ? totals[key].requests / totals[key].cpu : undefined);
    const cpuRatio = (a, b) => (perCpu(a) !== undefined && perCpu(b) ? perCpu(a) / perCpu(b) : undefined);
    const rows = targets.map((t) => [
      t.label,
      Math.round(rps(t.key)).toLocaleString('en-US'),
      (rps(t.key) / rps('direct')).toFixed(2),
      (totals[t.key].cpu / totals[t.key].seconds).toFixed(2),
      perCpu(t.key) === undefined ? 'n/a' : Math.round(perCpu(t.key)).toLocaleString('en-US'),
      String(totals[t.key].bad),
    ]);
    const head = ['target', 'req/s', 'vs direct', 'cores used', 'req per CPU-s', 'non-2xx+errors'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    const checks = [
      ['built-in gateway / bare Node proxy, req/s', ratio('gateway', 'bare'), GOALS.gatewayVsBareProxy],
      ['built-in gateway / bare Node proxy, req per CPU-s', cpuRatio('gateway', 'bare'), GOALS.gatewayVsBareProxy],
      ['nginx + decision / plain nginx, req/s', ratio('nginxDecision', 'nginx'), GOALS.nginxDecisionVsNginx],
      ['nginx + decision / plain nginx, req per CPU-s', cpuRatio('nginxDecision', 'nginx'), GOALS.nginxDecisionVsNginx],
      ['built-in gateway / plain nginx, req/s', ratio('gateway', 'nginx'), undefined],
    ];
    const load = (await import('node:os')).loadavg()[0].toFixed(1);
    console.log(
      `\nGateway peers (machine load average ${load}): ${rounds} interleaved rounds of ${seconds} s per target, ${connections} connections, loopback\n`,
    );
    console.log([line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
    console.log('');
    for (const [what, value, goal] of checks) {
      if (value === undefined) continue;
      console.log(`${what}: ${value.toFixed(2)}x${goal ? ` (goal >= ${goal}x: ${value >= goal ? 'met' : 'NOT met'})` : ''}`);
    }
    return { totals, checks };
  } finally {
    for (const undo of cleanup.reverse()) await Promise.resolve(undo()).catch(() => {});
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('exit', () => killAll());
  await runGatewayPeers();
  process.exit(0);
}
