// Where the built-in gateway's time goes next to the bare node:http proxy's: both run with
// --cpu-prof in front of the same upstream, under the same load (interleaved rounds), and the two
// profiles are compared per request. Each process's busy samples (idle left out) taken during the
// measured rounds are scaled to its measured CPU time per request (/proc), so a row reads "µs of CPU
// per request" for each proxy, grouped by where the code lives, then the functions that differ most.
//   node bench/profile-gateway.js   (PROFILE_ROUNDS 2, PROFILE_SECONDS 5, PROFILE_TOP 30; run under the bench lock)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createClient, startPortcullis } from './lib/portcullis.js';
import { killAll, positiveIntEnv, processCpuSeconds, ROOT, runLoad, startServer } from './lib/proc.js';

const ROUNDS = positiveIntEnv('PROFILE_ROUNDS', 2);
const SECONDS = positiveIntEnv('PROFILE_SECONDS', 5);
const TOP = positiveIntEnv('PROFILE_TOP', 30);
const connections = positiveIntEnv('BENCH_CONNECTIONS', 32);
const log = (msg) => process.stderr.write(`[profile gateway] ${msg}\n`);
/** CPU seconds of a process's main thread and of its other threads (V8's GC and compiler helpers, libuv's pool), by thread name. */
function threadCpu(pid) {
  const byName = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : `other: ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {}
  }
  return byName;
}

/** The profiler's clock (monotonic, µs), to keep only the samples taken during the measured rounds. */
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

const work = mkdtempSync(join(tmpdir(), 'portcullis-profile-gw-'));
const cleanup = [];
process.on('exit', () => killAll());
const targets = [];
try {
  const upstream = await startServer({ name: 'upstream', script: 'bench/upstream-server.js', readyPath: '/items' });
  cleanup.push(upstream.stop);
  const bareDir = join(work, 'bare');
  const bare = await startServer({
    name: 'bare proxy',
    script: 'bench/bare-proxy.js',
    env: { BENCH_UPSTREAM: upstream.base },
    readyPath: '/items',
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${bareDir}`],
  });
  cleanup.push(bare.stop);
  const gatewayDir = join(work, 'gateway');
  const routes = join(work, 'routes.json');
  writeFileSync(routes, JSON.stringify([{ prefix: '/bench', upstream: upstream.base, scopes: ['bench:read'] }]));
  const started = await startPortcullis({
    dataDir: mkdtempSync(join(work, 'data-')),
    // The settings of bench/gateway.js.
    env: { PORTCULLIS_ROUTES: routes, PORTCULLIS_RATE_LIMIT: '1000000', LOG_LEVEL: 'info', PORTCULLIS_LOG_SAMPLE: '0.01', PORTCULLIS_DRAIN_SECONDS: '0' },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${gatewayDir}`],
  });
  cleanup.push(started.server.stop);
  const cred = await createClient(started.admin, ['bench:read']);
  const res = await fetch(`${started.server.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  const token = (await res.json()).access_token;
  targets.push(
    { key: 'bare', url: `${bare.base}/items`, headers: {}, pid: bare.pid, dir: bareDir, stop: bare.stop },
    {
      key: 'gateway',
      url: `${started.server.base}/bench/items`,
      headers: { authorization: `Bearer ${token}` },
      pid: started.server.pid,
      dir: gatewayDir,
      stop: started.server.stop,
    },
  );
  for (const t of targets) Object.assign(t, { requests: 0, cpu: 0, windows: [], threads: new Map() });
  for (const t of targets) await runLoad({ url: t.url, headers: t.headers, connections, duration: 1 }); // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const cpu0 = processCpuSeconds(t.pid);
      const threads0 = threadCpu(t.pid);
      const from = nowMicros();
      const r = await runLoad({ url: t.url, headers: t.headers, connections, duration: SECONDS });
      t.windows.push([from, nowMicros()]);
      t.cpu += processCpuSeconds(t.pid) - cpu0;
      for (const [name, seconds] of threadCpu(t.pid)) t.threads.set(name, (t.threads.get(name) ?? 0) + seconds - (threads0.get(name) ?? 0));
      t.requests += r.requests;
      if (r.non2xx + r.errors > 0) throw new Error(`${t.key}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      log(`round ${round}/${ROUNDS} ${t.key}: ${Math.round(r.rps)} req/s`);
    }
  }
  // Stopping writes the profiles.
  for (const t of targets) await t.stop();
} finally {
  for (const undo of cleanup.reverse()) await Promise.resolve(undo()).catch(() => {});
}

/** Where a frame's code lives: Portcullis's own, a package, a node: module, or V8/native. */
function placeOf(f) {
  const url = f.url.replace(/^file:\/\//, '');
  if (url === '') return f.functionName.startsWith('(') ? f.functionName : `native ${f.functionName}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:');
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1)
    return `nm:${url
      .slice(nm + 14)
      .split('/', url[nm + 14] === '@' ? 2 : 1)
      .join('/')}`;
  return relative(ROOT, url).replace(/^server\/dist\//, '');
}

/** Self and inclusive µs of CPU per request, by function and by place, over the measured windows. */
function analyse(t) {
  const file = readdirSync(t.dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${t.key}: no .cpuprofile written`);
  const profile = JSON.parse(readFileSync(join(t.dir, file), 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inWindow = (at) => t.windows.some(([a, b]) => at >= a && at <= b);
  const hits = new Map();
  let at = profile.startTime;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    const id = profile.samples[i];
    if (!inWindow(at) || byId.get(id).callFrame.functionName === '(idle)') continue;
    hits.set(id, (hits.get(id) ?? 0) + 1);
    busy++;
  }
  if (busy === 0) throw new Error(`${t.key}: no busy samples within the measured rounds (do the profiler's and process.hrtime's clocks differ?)`);
  const perRequest = (count) => ((count / busy) * t.cpu * 1e6) / t.requests;
  const fnKey = (f) => `${f.functionName || '(anonymous)'} ${placeOf(f)}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ''}`;
  const self = new Map();
  const inclusive = new Map();
  const places = new Map();
  for (const [id, count] of hits) {
    const f = byId.get(id).callFrame;
    const key = fnKey(f);
    self.set(key, (self.get(key) ?? 0) + count);
    const place = placeOf(f);
    places.set(place, (places.get(place) ?? 0) + count);
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const k = fnKey(byId.get(n).callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + count);
    }
  }
  const scale = (m) => new Map([...m].map(([k, v]) => [k, perRequest(v)]));
  return { self: scale(self), inclusive: scale(inclusive), places: scale(places), cpuPerRequest: (t.cpu * 1e6) / t.requests, busy };
}

const [bare, gateway] = targets.map(analyse);
const fmt = (v) => (v ?? 0).toFixed(2).padStart(7);
function table(title, a, b, top, sortByDiff = true) {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows = [...keys].map((k) => [k, a.get(k) ?? 0, b.get(k) ?? 0]);
  rows.sort(sortByDiff ? (x, y) => y[2] - y[1] - (x[2] - x[1]) : (x, y) => y[2] - x[2]);
  console.log(`\n${title}\n    bare  gateway     diff`);
  for (const [k, x, y] of rows.slice(0, top)) console.log(`${fmt(x)}  ${fmt(y)}  ${fmt(y - x)}  ${k}`);
}
const [b, g] = targets;
console.log(
  `CPU per request (measured, /proc): bare ${bare.cpuPerRequest.toFixed(1)} µs (${b.requests} requests), gateway ${gateway.cpuPerRequest.toFixed(1)} µs (${g.requests} requests); busy samples ${bare.busy} / ${gateway.busy}`,
);
const byThread = (t) => new Map([...t.threads].map(([name, seconds]) => [`thread ${name}`, (seconds * 1e6) / t.requests]));
table('µs of CPU per request by thread (/proc; the profile samples the main thread only)', byThread(b), byThread(g), TOP);
table('µs of CPU per request by place (self time), largest difference first', bare.places, gateway.places, TOP);
table('µs per request by function, self time, largest difference first', bare.self, gateway.self, TOP);
table('µs per request by function, inclusive, largest difference first', bare.inclusive, gateway.inclusive, TOP);
rmSync(work, { recursive: true, force: true });
process.exit(0);
