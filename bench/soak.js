// Soak: a mixed load on one Portcullis process for a while, watching errors, throughput and
// memory. `npm run soak` (SOAK_DURATION seconds, default 120). Exits 1 when a request fails
// or memory keeps growing after warm-up. See bench/README.md.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portcullisNodeArgs } from './lib/portcullis.js';
import { killAll, positiveIntEnv, ROOT, startServer } from './lib/proc.js';

const DURATION = positiveIntEnv('SOAK_DURATION', 120);
const CONCURRENCY = positiveIntEnv('SOAK_CONCURRENCY', 16);
const SAMPLE_EVERY = positiveIntEnv('SOAK_SAMPLE_SECONDS', 5);
// Memory is judged after warm-up: the first quarter of the run, at least 10 s.
const WARMUP = Math.max(10, Math.floor(DURATION / 4));
// Growth allowed between the first and the last samples after warm-up (GC makes both noisy).
const MAX_GROWTH = 0.15;

const log = (msg) => process.stderr.write(`[soak] ${msg}\n`);
const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-soak-'));
process.on('exit', () => {
  killAll();
  rmSync(dataDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
setTimeout(
  () => {
    log('overall time limit exceeded');
    process.exit(3);
  },
  (DURATION + 120) * 1000,
).unref();

const adminToken = randomBytes(24).toString('base64url');
const server = await startServer({
  name: 'portcullis',
  script: join(ROOT, 'server/bin/portcullis.cjs'),
  nodeArgs: portcullisNodeArgs(join(ROOT, 'server/bin/portcullis.cjs')),
  args: ['serve'],
  env: {
    HOST: '127.0.0.1',
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'),
    PORTCULLIS_ADMIN_TOKEN: adminToken,
    PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
    PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
    LOG_LEVEL: 'warn',
  },
  readyPath: '/healthz',
  ipc: false,
});
const base = server.base;

async function call(method, path, { body, headers = {}, form } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(10_000) };
  if (form) {
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(form).toString();
  } else if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text, headers: res.headers };
}
const admin = (method, path, body) => call(method, `/admin/v1${path}`, { body, headers: { authorization: `Bearer ${adminToken}` } });

// ---- set-up: credentials to use, an app to churn, and a portal user with an organization
const org = (await admin('POST', '/organizations', { name: 'Soak' })).json;
const app = (await admin('POST', `/organizations/${org.id}/applications`, { name: 'soak-app' })).json;
const credentials = [];
for (let i = 0; i < 5; i++) credentials.push((await admin('POST', `/applications/${app.id}/credentials`, { name: `soak ${i}` })).json);
const churnApp = (await admin('POST', `/organizations/${org.id}/applications`, { name: 'churn' })).json;

const cookies = new Map();
let csrf = '';
async function portal(method, path, body) {
  const headers = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  if (csrf) headers['x-csrf-token'] = csrf;
  const res = await call(method, `/portal/api${path}`, { body, headers });
  for (const line of res.headers.getSetCookie()) {
    const [pair = ''] = line.split(';');
    const eq = pair.indexOf('=');
    cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  if (typeof res.json?.csrf_token === 'string') csrf = res.json.csrf_token;
  return res;
}
await portal('GET', '/session');
const signedUp = await portal('POST', '/signup', { email: 'load-tester@example.test', password: 'a sturdy passphrase 42' });
if (signedUp.status !== 201) throw new Error(`portal sign-up failed: ${signedUp.status} ${JSON.stringify(signedUp.json)}`);
const portalOrg = (await portal('POST', '/orgs', { name: 'Soak portal' })).json;
const portalApp = (await portal('POST', `/orgs/${portalOrg.id}/apps`, { name: 'Portal app' })).json;
await portal('POST', `/orgs/${portalOrg.id}/apps/${portalApp.id}/credentials`, { name: 'Portal key' });

// ---- the mix
const tokens = [];
const counts = { token: 0, verify: 0, portal: 0, churn: 0 };
const errors = [];
const fail = (what, detail) => {
  if (errors.length < 20) errors.push(`${what}: ${detail}`);
  else errors.length++;
};

async function tokenRequest() {
  const c = credentials[Math.floor(Math.random() * credentials.length)];
  const res = await call('POST', '/oauth2/token', { form: { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret } });
  if (res.status !== 200) return fail('token', res.status);
  tokens[Math.floor(Math.random() * 50)] = res.json.access_token;
  counts.token++;
}
async function verification() {
  const token = tokens[Math.floor(Math.random() * tokens.length)];
  if (!token) return tokenRequest();
  const res = await call('GET', '/me', { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) return fail('verify', res.status);
  counts.verify++;
}
async function portalRead() {
  const paths = ['/orgs', `/orgs/${portalOrg.id}/apps`, `/orgs/${portalOrg.id}/apps/${portalApp.id}/credentials`, `/orgs/${portalOrg.id}/audit`];
  const res = await portal('GET', paths[Math.floor(Math.random() * paths.length)]);
  if (res.status !== 200) return fail('portal', res.status);
  counts.portal++;
}
async function churn() {
  // Create a credential, use it once, revoke it: the caches and audit log see constant change.
  const created = await admin('POST', `/applications/${churnApp.id}/credentials`, { name: 'churn' });
  if (created.status !== 201) return fail('churn create', `${created.status} ${created.json?.errors?.[0]?.detail ?? ''}`);
  const { client_id, client_secret } = created.json;
  const issued = await call('POST', '/oauth2/token', { form: { grant_type: 'client_credentials', client_id, client_secret } });
  if (issued.status !== 200) fail('churn token', issued.status);
  const deleted = await admin('DELETE', `/applications/${churnApp.id}/credentials/${client_id}?immediately=true`);
  if (deleted.status !== 200) return fail('churn delete', deleted.status);
  counts.churn++;
}
// Token requests and verifications dominate, as in production; one worker does all the churn,
// so an app never holds more than one churn credential at a time.
const MIX = [
  [0.5, tokenRequest],
  [0.9, verification],
  [1, portalRead],
];
const pick = () => MIX.find(([p]) => Math.random() < p)[1];

// ---- memory, sampled from the outside: what the kernel says the process holds (anonymous
// against file-backed), glibc's per-thread arenas, what V8 and Node report, and the SQLite files.
const metricValue = (text, name) => {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) / 2 ** 20 : Number.NaN;
};
const spaceValue = (text, which, space) => {
  const match = new RegExp(`^nodejs_heap_space_size_${which}_bytes\\{space="${space}"\\} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) / 2 ** 20 : Number.NaN;
};
async function nodeMemory() {
  const text = (await call('GET', '/metrics')).json;
  return {
    heapMb: metricValue(text, 'nodejs_heap_size_used_bytes'),
    heapTotalMb: metricValue(text, 'nodejs_heap_size_total_bytes'),
    // V8 resizes its young generation (2 semi-spaces, up to 16 MiB each) with the allocation
    // rate: committed memory jumps by up to 28 MiB either way without anything being kept.
    youngMb: spaceValue(text, 'total', 'new'),
    oldMb: spaceValue(text, 'total', 'old'),
    oldUsedMb: spaceValue(text, 'used', 'old'),
    externalMb: metricValue(text, 'nodejs_external_memory_bytes'),
    arrayBuffersMb: metricValue(text, 'portcullis_process_array_buffers_bytes'),
  };
}
const kb = (text, field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) / 1024;
function kernelMemory() {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  return { rssMb: kb(status, 'VmRSS'), anonMb: kb(status, 'RssAnon'), fileMb: kb(status, 'RssFile') + kb(status, 'RssShmem') };
}
// glibc gives each thread that allocates its own arena: a 64 MiB-aligned heap reserved whole and
// touched as needed. Their resident size is the part of anonymous memory the thread pool holds.
function arenaMemory() {
  let mb = 0;
  let count = 0;
  let brkMb = 0;
  let region = null;
  for (const line of readFileSync(`/proc/${server.pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const start = BigInt(`0x${head[1]}`);
      const anonymous = head[4] === '0' && head[5] === '';
      region = anonymous && head[3] === 'rw-p' && start % (64n << 20n) === 0n ? 'arena' : head[5] === '[heap]' ? 'brk' : null;
      if (region === 'arena') count++;
      continue;
    }
    if (region && line.startsWith('Rss:')) {
      const rss = Number(/(\d+)/.exec(line)[1]) / 1024;
      if (region === 'arena') mb += rss;
      else brkMb += rss;
    }
  }
  // brkMb is the main thread's malloc heap (the main arena): SQLite's page cache, V8's own malloc.
  return { arenas: count, arenaMb: mb, brkMb };
}
function databaseFiles() {
  const size = (suffix) => {
    try {
      return statSync(join(dataDir, `portcullis.sqlite${suffix}`)).size / 2 ** 20;
    } catch {
      return 0;
    }
  };
  return { dbMb: size(''), walMb: size('-wal') };
}

const started = Date.now();
const until = started + DURATION * 1000;
const samples = [];
const sampler = setInterval(async () => {
  const t = Math.round((Date.now() - started) / 1000);
  const node = await nodeMemory().catch(() => ({}));
  const kernel = kernelMemory();
  const sample = {
    t,
    ...kernel,
    ...arenaMemory(),
    heapMb: Number.NaN,
    heapTotalMb: Number.NaN,
    youngMb: Number.NaN,
    oldMb: Number.NaN,
    oldUsedMb: Number.NaN,
    externalMb: Number.NaN,
    arrayBuffersMb: Number.NaN,
    ...node,
    ...databaseFiles(),
    requests: counts.token + counts.verify + counts.portal,
  };
  sample.anonOutsideYoungMb = sample.anonMb - sample.youngMb;
  samples.push(sample);
  log(
    `t=${t}s rss=${sample.rssMb.toFixed(1)} anon=${sample.anonMb.toFixed(1)} file=${sample.fileMb.toFixed(1)} arenas=${sample.arenas}/${sample.arenaMb.toFixed(1)} brk=${sample.brkMb.toFixed(1)} heap=${sample.heapMb.toFixed(1)}/${sample.heapTotalMb.toFixed(1)} young=${sample.youngMb.toFixed(0)} old=${sample.oldUsedMb.toFixed(1)}/${sample.oldMb.toFixed(1)} external=${sample.externalMb.toFixed(1)} db=${sample.dbMb.toFixed(1)}+${sample.walMb.toFixed(1)} MB requests=${sample.requests} errors=${errors.length}`,
  );
}, SAMPLE_EVERY * 1000);

const loop = async (work) => {
  while (Date.now() < until) {
    try {
      await work();
    } catch (err) {
      fail('network', err.cause?.code ?? err.message);
    }
  }
};
log(`mixed load for ${DURATION} s with ${CONCURRENCY} concurrent clients against ${base}`);
await Promise.all([loop(churn), ...Array.from({ length: CONCURRENCY - 1 }, () => loop(() => pick()()))]);
clearInterval(sampler);
await server.stop();

// ---- report
// Memory saws up and down with garbage collection and allocator trimming; the lowest sample of
// each window approximates what is held. The slope is a least-squares line through those
// troughs after warm-up, in MB per hour, for each kind of memory separately.
const after = samples.filter((s) => s.t >= WARMUP);
const WINDOW_SECONDS = Math.max(30, Math.floor((DURATION - WARMUP) / 30));
function troughs(key) {
  const windows = new Map();
  for (const s of after) {
    const w = Math.floor((s.t - WARMUP) / WINDOW_SECONDS);
    const best = windows.get(w);
    if (Number.isFinite(s[key]) && (!best || s[key] < best[key])) windows.set(w, s);
  }
  return [...windows.values()].map((s) => [s.t, s[key]]);
}
function slopeMbPerHour(key) {
  const points = troughs(key);
  if (points.length < 3) return Number.NaN;
  const n = points.length;
  const mt = points.reduce((sum, [t]) => sum + t, 0) / n;
  const mv = points.reduce((sum, [, v]) => sum + v, 0) / n;
  const cov = points.reduce((sum, [t, v]) => sum + (t - mt) * (v - mv), 0);
  const varT = points.reduce((sum, [t]) => sum + (t - mt) ** 2, 0);
  return (cov / varT) * 3600;
}
const KINDS = [
  'anonMb',
  'anonOutsideYoungMb',
  'fileMb',
  'rssMb',
  'arenaMb',
  'brkMb',
  'heapMb',
  'heapTotalMb',
  'youngMb',
  'oldUsedMb',
  'oldMb',
  'externalMb',
  'arrayBuffersMb',
  'dbMb',
  'walMb',
];
const slopes = Object.fromEntries(KINDS.map((k) => [k, slopeMbPerHour(k)]));
// The judgement: on a run of 30 minutes or more, anonymous memory may grow by at most 5 MB an hour
// after warm-up. The slope outside V8's young generation (bounded, resizing both ways with the
// allocation rate) is reported beside it to explain a failure, never to pass one. A shorter run is
// too short to tell a slope from warm-up, so it only checks that RSS troughs stayed within 15 %
// (a smoke test, not the verdict).
const LONG_RUN = DURATION >= 1800;
const MAX_ANON_SLOPE = 5;
const trough = (xs, key) => Math.min(...xs.map((s) => s[key]));
const third = Math.max(2, Math.floor(after.length / 3));
const rssGrowth = after.length >= 6 ? trough(after.slice(-third), 'rssMb') / trough(after.slice(0, third), 'rssMb') - 1 : Number.NaN;
const flat = LONG_RUN ? slopes.anonMb <= MAX_ANON_SLOPE : !(rssGrowth > MAX_GROWTH) && after.length >= 6;
const seconds = (Date.now() - started) / 1000;
const total = counts.token + counts.verify + counts.portal + counts.churn;
const report = {
  date: new Date().toISOString(),
  node: process.version,
  durationSeconds: DURATION,
  concurrency: CONCURRENCY,
  counts,
  requestsPerSecond: Math.round(total / seconds),
  errors: errors.length,
  errorSamples: errors.slice(0, 20),
  memory: {
    warmupSeconds: WARMUP,
    troughWindowSeconds: WINDOW_SECONDS,
    slopesMbPerHour: slopes,
    judgement: LONG_RUN ? `anonymous slope <= ${MAX_ANON_SLOPE} MB/h` : `short run: RSS trough growth <= ${MAX_GROWTH * 100} %`,
    rssGrowthAfterWarmup: rssGrowth,
    flat,
    samples,
  },
};
const pct = (x) => (Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const mbh = (x) => (Number.isNaN(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`);
const lines = [
  `Portcullis soak, ${report.date}, ${process.version}, ${DURATION} s, ${CONCURRENCY} clients`,
  `requests: ${total} (${report.requestsPerSecond}/s): tokens ${counts.token}, verifications ${counts.verify}, portal reads ${counts.portal}, credential churn cycles ${counts.churn}`,
  `errors: ${errors.length}${errors.length ? `\n  ${errors.slice(0, 20).join('\n  ')}` : ''}`,
  `memory slopes after ${WARMUP} s of warm-up, MB/hour (least squares over ${WINDOW_SECONDS} s troughs): anonymous ${mbh(slopes.anonMb)} (outside V8's young generation ${mbh(slopes.anonOutsideYoungMb)}), file-backed ${mbh(slopes.fileMb)}, RSS ${mbh(slopes.rssMb)}; of which thread malloc arenas ${mbh(slopes.arenaMb)}, main malloc heap ${mbh(slopes.brkMb)}, V8 heap used ${mbh(slopes.heapMb)} / committed ${mbh(slopes.heapTotalMb)} (young generation committed ${mbh(slopes.youngMb)}, old space used ${mbh(slopes.oldUsedMb)} / committed ${mbh(slopes.oldMb)}), external ${mbh(slopes.externalMb)}; SQLite file ${mbh(slopes.dbMb)}, WAL ${mbh(slopes.walMb)}`,
  `verdict (${report.memory.judgement}): ${flat ? 'flat' : 'NOT FLAT'}${LONG_RUN ? '' : `; RSS troughs grew ${pct(rssGrowth)}`}`,
  `curve (t s: anon/file/heap MB): ${samples
    .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 40)) === 0)
    .map((s) => `${s.t}: ${s.anonMb.toFixed(0)}/${s.fileMb.toFixed(0)}/${s.heapMb.toFixed(0)}`)
    .join(', ')}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/soak-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
process.exit(errors.length === 0 && flat ? 0 : 1);
