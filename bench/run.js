// Benchmark orchestrator: Portcullis vs a bare node:http ceiling vs
// oidc-provider, same load, one run. See bench/README.md.
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { floodLines, signupFloodRun } from './signup-flood.js';
import { interleavedLines, interleavedTokenRun } from './interleaved.js';
import { benchResourceServer } from './resource-server.js';
import { benchHotPaths, hotPathLines } from './hot-paths.js';
import { benchScale, scaleLines } from './scale.js';
import { createBenchDatabase, createClient, startPortcullis as launchPortcullis } from './lib/portcullis.js';
import { killAll, machineCpuSeconds, positiveIntEnv, peakRss, processCpuSeconds, ROOT, runLoad, SIGNING_THREADS, startServer } from './lib/proc.js';

const DURATION = positiveIntEnv('BENCH_DURATION', 10);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 32);
const WARMUP = positiveIntEnv('BENCH_WARMUP', 3);
const ALL = ['portcullis', 'portcullis-pg', 'portcullis-pg-2w', 'bare', 'oidc-provider'];
// Sections with their own servers and report lines (interleaved.js, signup-flood.js).
const SECTIONS = ['interleaved', 'signup-flood'];
const SELECTED = (process.env.BENCH_TARGETS ?? [...ALL, ...SECTIONS].join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const t of SELECTED) {
  if (!ALL.includes(t) && !SECTIONS.includes(t)) throw new Error(`unknown target in BENCH_TARGETS: ${t}`);
}

const GOALS = {
  vsBare: 0.9,
  vsOidc: 2,
  p99Ms: 15,
  rssMb: 120,
  meRps: 15_000,
};

// Other processes using more than this many cores during a run make it suspect.
const NOISY_CORES = 0.2;

const tempDirs = [];
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

function cleanup() {
  killAll();
  for (const dir of tempDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      log(`could not remove ${dir}: ${err.message}`);
    }
  }
}
process.on('exit', cleanup);
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(sig, () => {
    log(`${sig}: stopping children`);
    process.exit(code);
  });
}
// Hard ceiling on the whole run: startup + warm-up + load per target, plus slack.
// Portcullis adds five runs: delivery API (static token, dynamic token, no token), gateway, direct upstream.
const budgetS =
  (SELECTED.length + 1) * (WARMUP + 2 * DURATION + 45) +
  90 +
  (SELECTED.includes('portcullis') ? 5 * (WARMUP + 2 * DURATION) + 20 + 200 + (process.env.BENCH_SCALE === '0' ? 0 : 1200) : 0);
setTimeout(() => {
  log(`overall time limit (${budgetS} s) exceeded; aborting`);
  process.exit(3);
}, budgetS * 1000).unref();

// ---------------------------------------------------------------- targets

const FORM = 'application/x-www-form-urlencoded';

async function startOwn(name, script, readyPath) {
  const clientId = `bench-${randomBytes(6).toString('hex')}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const server = await startServer({
    name,
    script,
    env: { BENCH_CLIENT_ID: clientId, BENCH_CLIENT_SECRET: clientSecret, UV_THREADPOOL_SIZE: String(SIGNING_THREADS) },
    readyPath,
  });
  return { server, clientId, clientSecret };
}

async function expectJson(res, status, what) {
  const text = await res.text();
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${text.slice(0, 300)}`);
  }
  return JSON.parse(text);
}

// Fleet mode: a fresh PostgreSQL database on the machine's server and the machine's Redis.
const BENCH_PG = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BENCH_REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function startFleetPortcullis(workers) {
  const db = await createBenchDatabase(BENCH_PG);
  const drop = () => db.drop().catch((err) => log(`could not drop ${db.name}: ${err.message}`));
  try {
    const handle = await startPortcullis({ DATABASE_URL: db.url, REDIS_URL: BENCH_REDIS, PORTCULLIS_WORKERS: String(workers) });
    const stop = handle.server.stop.bind(handle.server);
    handle.server.stop = async () => {
      await stop();
      await drop();
    };
    return handle;
  } catch (err) {
    await drop();
    throw err;
  }
}

async function startPortcullis(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  tempDirs.push(dataDir);
  const started = await launchPortcullis({
    dataDir,
    env: {
      // The delivery and gateway runs measure authentication, not the 250/min default limit.
      PORTCULLIS_RATE_LIMIT: '1000000',
      // One client sends thousands of token requests a second here: limits high enough never to
      // refuse, but still counted, so their cost is in the figures.
      PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
      PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
      LOG_LEVEL: 'warn',
      ...extraEnv,
    },
  });
  const { server } = started;
  const admin = (path, body, method = 'POST', status = 201) => started.admin(method, path, body, status);
  try {
    const cred = await createClient(started.admin, ['retail-media']);
    // Retail media: partner 1 requires tokens (a static token, and the app linked for dynamic
    // tokens), partner 2 does not; both serve the same placement.
    const placement = {
      format: 'sponsored_products',
      products: [1, 2, 3].map((i) => ({ ProductId: `sku-${i}`, ProductName: `Product ${i}`, Price: '9.99' })),
      rendering: { title: 'Sponsored' },
    };
    for (const [id, requireToken] of [
      [1, true],
      [2, false],
    ]) {
      await admin(`/admin/v1/partners/${id}`, { name: `partner ${id}`, require_token: requireToken }, 'PUT');
      await admin(`/admin/v1/partners/${id}/placements/viewHome/Top`, placement, 'PUT');
    }
    await admin('/admin/v1/partners/1/applications', { application_id: cred.appId });
    const staticToken = await admin('/admin/v1/partners/1/static-tokens', { name: 'bench' });
    return {
      server,
      clientId: cred.clientId,
      clientSecret: cred.clientSecret,
      staticToken: staticToken.token,
      appId: cred.appId,
      admin,
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

const TARGETS = {
  portcullis: { label: 'Portcullis', start: () => startPortcullis() },
  'portcullis-pg': { label: 'Portcullis PostgreSQL+Redis, 1 worker', start: () => startFleetPortcullis(1) },
  'portcullis-pg-2w': { label: 'Portcullis PostgreSQL+Redis, 2 workers', start: () => startFleetPortcullis(2) },
  bare: {
    label: 'bare node:http',
    start: () => startOwn('bare', 'bench/bare-server.js', '/healthz'),
  },
  'oidc-provider': {
    label: 'oidc-provider',
    start: () => startOwn('oidc-provider', 'bench/oidc-server.js', '/.well-known/openid-configuration'),
  },
};

// ---------------------------------------------------------- verification

const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

const getJson = async (url) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (res.ok) return res.json();
  await res.arrayBuffer();
  return null;
};

// Verify a JWT's RS256 signature with the JWKS named in the server's metadata
// (RFC 8414 or OpenID discovery). Returns false when no metadata is published.
async function checkSignature(base, parts, kid) {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const meta = await getJson(base + path).catch(() => null);
    if (!meta?.jwks_uri) continue;
    // Only ever talk to the loopback server: reuse the path, not the host.
    const { keys } = await getJson(base + new URL(meta.jwks_uri, base).pathname);
    const jwk = keys.find((k) => k.kid === kid);
    if (!jwk) throw new Error(`JWT kid ${kid} is not in the server's JWKS`);
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    if (!verify('sha256', data, key, Buffer.from(parts[2], 'base64url'))) {
      throw new Error("JWT signature does not verify against the server's JWKS");
    }
    return true;
  }
  return false;
}

// Fetch one token and check it is a correctly signed RS256 JWT.
async function fetchToken(base, body) {
  const res = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body,
    signal: AbortSignal.timeout(5000),
  });
  const json = await expectJson(res, 200, 'POST /oauth2/token');
  const parts = String(json.access_token ?? '').split('.');
  if (parts.length !== 3) throw new Error('access_token is not a three-part JWT');
  const header = b64json(parts[0]);
  if (header.alg !== 'RS256') throw new Error(`JWT alg is ${header.alg}, expected RS256`);
  const verified = await checkSignature(base, parts, header.kid);
  return {
    token: json.access_token,
    header,
    claims: b64json(parts[1]),
    signature: verified ? 'verified via JWKS' : 'not checked (no metadata)',
  };
}

async function checkMe(base, token) {
  const ok = await fetch(`${base}/me`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  });
  await expectJson(ok, 200, 'GET /me');
  const [h, p, s] = token.split('.');
  const tampered = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
  const bad = await fetch(`${base}/me`, {
    headers: { authorization: `Bearer ${tampered}` },
    signal: AbortSignal.timeout(5000),
  });
  await bad.arrayBuffer();
  if (bad.ok) throw new Error('GET /me accepted a token with a tampered signature');
}

// ------------------------------------------------------------------ runs

const load = (opts, duration) => runLoad({ connections: CONNECTIONS, duration, ...opts });

// Warm up, then measure. Also splits the machine's CPU time during the
// measured run into server, load generator and everything else (in cores);
// if other processes were busy, the measured run is repeated once.
async function measure(opts, pid) {
  const warm = await load(opts, WARMUP);
  let run;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const machine0 = machineCpuSeconds();
    const server0 = processCpuSeconds(pid);
    run = await load(opts, DURATION);
    const machine = machineCpuSeconds() - machine0;
    const server = processCpuSeconds(pid) - server0;
    const cores = (s) => Math.max(0, s) / run.duration;
    run.cpu = { server: cores(server), load: cores(run.cpuSeconds), other: cores(machine - server - run.cpuSeconds) };
    run.attempts = attempt;
    if (run.cpu.other <= NOISY_CORES || run.non2xx + run.errors > 0) break;
    log(`other processes used ${fmt(run.cpu.other, 2)} cores during the run; repeating it once`);
  }
  return { ...run, warmupFailures: warm.non2xx + warm.errors };
}

async function benchTarget(id) {
  const { label, start } = TARGETS[id];
  const result = { id, label };
  let handle;
  try {
    log(`${label}: starting`);
    handle = await start();
    const { server } = handle;
    result.pid = server.pid;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: handle.clientId,
      client_secret: handle.clientSecret,
    }).toString();
    const { token: _, ...sample } = await fetchToken(server.base, body);
    result.sample = sample;
    log(`${label}: RS256 JWT ok (signature ${sample.signature}); load ${WARMUP}+${DURATION} s`);
    result.token = await measure(
      {
        url: `${server.base}/oauth2/token`,
        method: 'POST',
        headers: { 'content-type': FORM },
        body,
      },
      server.pid,
    );
    const rss = peakRss(server.pid);
    result.token.peakRssMb = rss.mb;
    result.processes = rss.processes;
    if (id === 'portcullis') {
      const { token } = await fetchToken(server.base, body);
      await checkMe(server.base, token);
      log(`${label}: GET /me ok; load ${WARMUP}+${DURATION} s`);
      result.me = await measure(
        {
          url: `${server.base}/me`,
          headers: { authorization: `Bearer ${token}` },
        },
        server.pid,
      );
      result.me.peakRssMb = peakRss(server.pid).mb;
      await benchResourceSide(handle, token, result);
    }
  } catch (err) {
    result.error = err.message;
    log(`${label}: FAILED: ${err.message}`);
  } finally {
    await handle?.server.stop();
  }
  return result;
}

// Delivery API with token checks on (static, dynamic) and off (a partner that has not opted in),
// and a gateway route against calling its upstream directly: the cost of authentication.
const DELIVERY_QUERY = new URLSearchParams({
  'retailer-visitor-id': '123',
  'customer-id': '456',
  'event-type': 'viewHome',
  'page-id': 'viewHome_API_desktop',
}).toString();

async function expectOk(url, headers, what) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  await expectJson(res, 200, what);
}

async function benchResourceSide(handle, token, result) {
  const { server } = handle;
  const delivery = (partner) => `${server.base}/delivery/retailmedia?criteo-partner-id=${partner}&${DELIVERY_QUERY}`;
  const runs = [
    ['deliveryStatic', 'GET /delivery/retailmedia, static token', delivery(1), { authorization: `Bearer ${handle.staticToken}` }],
    ['deliveryDynamic', 'GET /delivery/retailmedia, dynamic token', delivery(1), { authorization: `Bearer ${token}` }],
    ['deliveryOpen', 'GET /delivery/retailmedia, no token (partner not opted in)', delivery(2), {}],
  ];
  const unauthorized = await fetch(delivery(1), { signal: AbortSignal.timeout(5000) });
  await unauthorized.arrayBuffer();
  if (unauthorized.status !== 401) throw new Error(`delivery API without a token answered ${unauthorized.status}, expected 401`);
  const upstream = await startServer({ name: 'upstream', script: 'bench/upstream-server.js', readyPath: '/healthz' });
  try {
    await handle.admin('/admin/v1/gateway/routes', { prefix: '/bench-upstream', upstream: upstream.base });
    runs.push(
      ['gateway', 'gateway route, dynamic token', `${server.base}/bench-upstream/items`, { authorization: `Bearer ${token}` }],
      ['upstream', 'the same upstream, called directly', `${upstream.base}/items`, {}],
    );
    for (const [key, label, url, headers] of runs) {
      await expectOk(url, headers, label);
      log(`${label}: ok; load ${WARMUP}+${DURATION} s`);
      result[key] = await measure({ url, headers }, key === 'upstream' ? upstream.pid : server.pid);
      result[key].label = label;
      result[key].peakRssMb = peakRss(key === 'upstream' ? upstream.pid : server.pid).mb;
    }
  } finally {
    await upstream.stop();
  }
}

const RESOURCE_RUNS = ['deliveryStatic', 'deliveryDynamic', 'deliveryOpen', 'gateway', 'upstream'];

// ---------------------------------------------------------------- report

const fmt = (n, digits = 0, unit = '') =>
  n === undefined || n === null || Number.isNaN(n)
    ? 'n/a'
    : n.toLocaleString('en-US', {
        maximumFractionDigits: digits,
        minimumFractionDigits: digits,
      }) + unit;

function rows(results) {
  const out = [];
  for (const r of results) {
    const add = (name, run) =>
      out.push([
        name,
        fmt(run.rps),
        fmt(run.latencyP50, 1),
        fmt(run.latencyP99, 1),
        String(run.non2xx),
        String(run.errors),
        fmt(run.peakRssMb, 1),
        fmt(run.cpu.server, 2),
        fmt(run.cpu.other, 2),
      ]);
    if (r.error && !r.token) {
      out.push([`${r.label} POST /oauth2/token`, 'FAILED', '', '', '', '', '', '', '']);
      continue;
    }
    if (r.token) add(`${r.label} POST /oauth2/token`, r.token);
    if (r.me) add(`${r.label} GET /me`, r.me);
    for (const key of RESOURCE_RUNS) if (r[key]) add(key === 'upstream' ? `upstream ${r[key].label}` : `${r.label} ${r[key].label}`, r[key]);
    if (r.error) out.push([`${r.label} (later step)`, 'FAILED', '', '', '', '', '', '', '']);
  }
  return out;
}
const HEAD = ['target', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'peak RSS MB', 'server CPU', 'other CPU'];

function noiseOf(results) {
  const notes = [];
  for (const r of results) {
    for (const [what, run] of [['token', r.token], ['/me', r.me], ...RESOURCE_RUNS.map((key) => [key, r[key]])]) {
      if (run && run.cpu.other > NOISY_CORES) {
        notes.push(
          `${r.label} ${what}: other processes used ${fmt(run.cpu.other, 2)} cores during the run ` +
            `(attempt ${run.attempts}); the machine was not idle, so treat these numbers with care`,
        );
      }
    }
  }
  return notes;
}

function checks(byId) {
  const p = byId.portcullis;
  const bare = byId.bare?.token;
  const oidc = byId['oidc-provider']?.token;
  const ratio = (a, b) => (a && b ? a / b : undefined);
  const goal = (name, value, digits, unit, op, limit) => [
    name,
    fmt(value, digits, unit),
    `${op} ${limit.toLocaleString('en-US')}${unit}`,
    value === undefined ? 'n/a' : (op === '>=' ? value >= limit : value <= limit) ? 'PASS' : 'MISS',
  ];
  const info = (name, value) => [name, fmt(value, 2, 'x'), '', ''];
  const t = p?.token;
  return [
    goal('throughput Portcullis / bare', ratio(t?.rps, bare?.rps), 3, 'x', '>=', GOALS.vsBare),
    goal('throughput Portcullis / oidc-provider', ratio(t?.rps, oidc?.rps), 3, 'x', '>=', GOALS.vsOidc),
    goal(`token p99 at ${CONNECTIONS} connections`, t?.latencyP99, 1, ' ms', '<=', GOALS.p99Ms),
    goal('peak RSS (token load)', t?.peakRssMb, 1, ' MB', '<=', GOALS.rssMb),
    goal('GET /me throughput', p?.me?.rps, 0, ' req/s', '>=', GOALS.meRps),
    info('p99 Portcullis / bare', ratio(t?.latencyP99, bare?.latencyP99)),
    info('p99 Portcullis / oidc-provider', ratio(t?.latencyP99, oidc?.latencyP99)),
    info('RSS Portcullis / bare', ratio(t?.peakRssMb, bare?.peakRssMb)),
    info('RSS Portcullis / oidc-provider', ratio(t?.peakRssMb, oidc?.peakRssMb)),
    info('PostgreSQL+Redis 1 worker / SQLite', ratio(byId['portcullis-pg']?.token?.rps, t?.rps)),
    info('PostgreSQL+Redis 2 workers / SQLite', ratio(byId['portcullis-pg-2w']?.token?.rps, t?.rps)),
    info('delivery: static token / no token', ratio(p?.deliveryStatic?.rps, p?.deliveryOpen?.rps)),
    info('delivery: dynamic token / no token', ratio(p?.deliveryDynamic?.rps, p?.deliveryOpen?.rps)),
    info('gateway / direct upstream', ratio(p?.gateway?.rps, p?.upstream?.rps)),
  ];
}

function textTable(head, body) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(head, body) {
  const line = (r) => `| ${r.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n');
}

function problemsOf(results) {
  const problems = [];
  for (const r of results) {
    if (r.error) problems.push(`${r.label}: ${r.error.split('\n')[0]}`);
    for (const [what, run] of [['token', r.token], ['/me', r.me], ...RESOURCE_RUNS.map((key) => [key, r[key]])]) {
      if (!run) continue;
      const bad = run.non2xx + run.errors + run.warmupFailures;
      if (bad > 0) {
        problems.push(
          `${r.label} ${what}: ${run.non2xx} non-2xx (status ${JSON.stringify(run.statusCodes)}), ` +
            `${run.errors} errors (${run.timeouts} timeouts), ${run.warmupFailures} failures during warm-up`,
        );
      }
    }
  }
  return problems;
}

// ------------------------------------------------------------------ main

const meta = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  connections: CONNECTIONS,
  durationS: DURATION,
  warmupS: WARMUP,
  targets: SELECTED,
};

const results = [];
for (const id of ALL.filter((t) => SELECTED.includes(t))) results.push(await benchTarget(id));
// Degraded mode (bench/degraded.js): the same node with Redis up, then killed, as ratios.
if (SELECTED.includes('portcullis-pg') && process.env.BENCH_DEGRADED !== '0') {
  const { benchDegraded } = await import('./degraded.js');
  console.table(await benchDegraded(log));
}
const sections = {};
const sectionLines = [];
for (const [id, run, lines] of [
  ['interleaved', () => interleavedTokenRun({ connections: CONNECTIONS, warmupS: WARMUP, log }), interleavedLines],
  ['signup-flood', () => signupFloodRun({ durationS: Math.min(DURATION, 10), warmupS: WARMUP, log }), floodLines],
]) {
  if (!SELECTED.includes(id)) continue;
  try {
    sections[id] = await run();
    sectionLines.push(...lines(sections[id]), '');
  } catch (err) {
    sectionLines.push(`${id}: FAILED: ${err.message.split('\n')[0]}`, '');
  }
}
// The resource-server section (bench/resource-server.js): SDK verifier CPU and the revocation feed's cost per poll.
const resourceServer = SELECTED.includes('portcullis')
  ? await benchResourceServer(log).catch((err) => ({ rows: [], problems: [`resource server: ${err.message}`] }))
  : undefined;
// Hot paths at the default log level (info), on a server of their own.
if (SELECTED.includes('portcullis')) {
  const hot = results.find((r) => r.id === 'portcullis');
  const measureFor = async (opts, _pid, seconds) => (await load(opts, 1)) && load(opts, seconds);
  hot.hotPaths = await benchHotPaths({ start: () => startPortcullis({ LOG_LEVEL: 'info' }), measure: measureFor, log }).catch((err) => {
    log(`hot paths: FAILED: ${err.message}`);
    return { error: err.message };
  });
  // Cost as the work grows (bench/scale.js); BENCH_SCALE=0 skips it.
  if (process.env.BENCH_SCALE !== '0') {
    hot.scale = await benchScale({ log }).catch((err) => {
      log(`scale: FAILED: ${err.message}`);
      return { error: err.message };
    });
  }
}
const byId = Object.fromEntries(results.map((r) => [r.id, r]));
const table = rows(results);
const goals = checks(byId);
const problems = [...problemsOf(results), ...(resourceServer?.problems ?? [])];
const notes = noiseOf(results);
const goalHead = ['check', 'value', 'target', 'result'];

const header =
  `Portcullis benchmark, ${meta.date}\n` +
  `node ${meta.node}, ${meta.cpus} CPUs (${meta.cpuModel}), ` +
  `${CONNECTIONS} connections, ${DURATION} s per run after ${WARMUP} s warm-up, loopback`;
console.log(`\n${header}\n\n${textTable(HEAD, table)}\n\n${textTable(goalHead, goals)}`);
if (sectionLines.length) console.log(`\n${sectionLines.join('\n')}`);
if (resourceServer?.rows.length) console.log(`\n${textTable(['resource server', 'value', 'ratio'], resourceServer.rows)}`);
console.log(`\n${hotPathLines(byId.portcullis?.hotPaths).join('\n')}`);
console.log(`\n${scaleLines(byId.portcullis?.scale).join('\n')}`);
if (notes.length) console.log(`\nNOISE:\n${notes.map((n) => `  - ${n}`).join('\n')}`);
console.log(problems.length ? `\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join('\n')}` : '\nAll runs: 0 non-2xx, 0 errors.');

const md = [
  '# Portcullis benchmark',
  '',
  `- date: ${meta.date}`,
  `- node: ${meta.node}`,
  `- CPUs: ${meta.cpus} (${meta.cpuModel})`,
  `- load: autocannon, ${CONNECTIONS} connections, ${DURATION} s after ${WARMUP} s warm-up, 127.0.0.1`,
  '',
  mdTable(HEAD, table),
  '',
  mdTable(goalHead, goals),
  '',
  sectionLines.length ? `\`\`\`\n${sectionLines.join('\n')}\`\`\`\n` : '',
  resourceServer?.rows.length ? `## Resource server\n\n${mdTable(['measure', 'value', 'ratio'], resourceServer.rows)}\n` : '',
  ...hotPathLines(byId.portcullis?.hotPaths).map((l) => `    ${l}`),
  '',
  ...scaleLines(byId.portcullis?.scale).map((l) => `    ${l}`),
  '',
  notes.length ? `## Noise\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : '',
  problems.length ? `## Problems\n\n${problems.map((p) => `- ${p}`).join('\n')}` : 'All runs: 0 non-2xx, 0 errors.',
  '',
].join('\n');

const outDir = join(ROOT, 'bench/results');
mkdirSync(outDir, { recursive: true });
const stamp = meta.date.replace(/[:.]/g, '-');
const json = `${JSON.stringify({ meta, results, sections, resourceServer, goals, problems, notes }, null, 2)}\n`;
for (const name of [`bench-${stamp}`, 'latest']) {
  writeFileSync(join(outDir, `${name}.json`), json);
  writeFileSync(join(outDir, `${name}.md`), md);
}
log(`wrote bench/results/bench-${stamp}.{json,md} (and latest.*)`);

// Gateway peers (bench/gateway.js): built-in gateway vs a bare Node proxy, nginx + decision vs plain nginx.
if (process.env.BENCH_GATEWAY_PEERS !== '0') await import('./gateway.js').then((m) => m.runGatewayPeers());

process.exit(problems.length ? 1 : 0);
