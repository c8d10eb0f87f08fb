// Cost as the work grows: each figure is a ratio of a large store against a small one, measured in
// the same run on the same machine, with the server's memory. The stores are seeded directly with
// the server's own modules (server/dist) before the server starts on them; tokens are EdDSA, for
// both stores alike, so the bench can sign many of them quickly with the server's own key.
//   node bench/scale.js          (or as part of bench/run.js)
// Knobs: BENCH_SCALE_CREDENTIALS (100000), BENCH_SCALE_PARTNERS (10000), BENCH_SCALE_PLACEMENTS
// (1000), BENCH_SCALE_TOKENS (200000), BENCH_SCALE_ORGS (10000), BENCH_SCALE_SECONDS (5).
import { randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { portcullisNodeArgs } from './lib/portcullis.js';
import { positiveIntEnv, ROOT, runLoad, startServer } from './lib/proc.js';

const CREDENTIALS = positiveIntEnv('BENCH_SCALE_CREDENTIALS', 100_000);
const PARTNERS = positiveIntEnv('BENCH_SCALE_PARTNERS', 10_000);
const PLACEMENTS = positiveIntEnv('BENCH_SCALE_PLACEMENTS', 1_000);
// 1,000,000 tokens hold about 0.5 GB of strings in the bench and take minutes to present here: 200,000 by default.
const TOKENS = positiveIntEnv('BENCH_SCALE_TOKENS', 200_000);
const ORGS = positiveIntEnv('BENCH_SCALE_ORGS', 10_000);
const SECONDS = positiveIntEnv('BENCH_SCALE_SECONDS', 5);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 32);
// The servers' V8 old space is capped, so memory that grew with the number of tokens or requests would end the run.
const HEAP_MB = positiveIntEnv('BENCH_SCALE_HEAP_MB', 384);

const dist = (path) => import(pathToFileURL(join(ROOT, 'server/dist/src', path)).href);
const rssMb = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
};

const ENV = (dataDir, masterKey, adminToken) => ({
  HOST: '127.0.0.1',
  PORTCULLIS_DATA_DIR: dataDir,
  PORTCULLIS_MASTER_KEY: masterKey,
  PORTCULLIS_ADMIN_TOKEN: adminToken,
  PORTCULLIS_SIGNING_ALG: 'EdDSA',
  // Fixed, so tokens the bench signs before the server starts carry the issuer it expects.
  PORTCULLIS_ISSUER: 'http://portcullis.bench',
  PORTCULLIS_KEY_PREPUBLISH: '0',
  PORTCULLIS_RATE_LIMIT: '1000000',
  PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
  PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
  LOG_LEVEL: 'warn',
});

async function insertAll(db, table, rows) {
  for (let i = 0; i < rows.length; i += 500)
    await db
      .insertInto(table)
      .values(rows.slice(i, i + 500))
      .execute();
}

/** A store with `size` of everything, seeded in one process; returns what the load needs (secrets, tokens). */
async function seed(dataDir, masterKey, adminToken, size, log) {
  const { loadConfig } = await dist('config.js');
  const { createServices, stopServices } = await dist('app.js');
  const { generateClientId, generateSecret, hashSecret, SECRET_PREFIX } = await dist('domain/secrets.js');
  const { deriveKeys } = await dist('keys/master.js');
  const services = await createServices(loadConfig({ ...ENV(dataDir, masterKey, adminToken), PORT: '0' }));
  try {
    const { db } = services.store;
    const pepper = deriveKeys(Buffer.from(masterKey, 'hex')).pepper;
    const now = Date.now();
    await db.transaction().execute(async (trx) => {
      await insertAll(
        trx,
        'organizations',
        Array.from({ length: size.orgs }, (_, i) => ({ name: `Org ${i + 1}`, created_at: now })),
      );
      const apps = Math.max(1, Math.ceil(size.credentials / 5));
      await insertAll(
        trx,
        'applications',
        Array.from({ length: apps }, (_, i) => ({
          organization_id: (i % size.orgs) + 1,
          name: `App ${i + 1}`,
          description: '',
          scopes: '["retail-media"]',
          created_at: now,
        })),
      );
      size.credentialList = Array.from({ length: size.credentials }, (_, i) => ({
        clientId: generateClientId(),
        secret: generateSecret(SECRET_PREFIX.clientSecret),
        applicationId: Math.floor(i / 5) + 1,
        organizationId: (Math.floor(i / 5) % size.orgs) + 1,
      }));
      await insertAll(
        trx,
        'credentials',
        size.credentialList.map((c) => ({
          client_id: c.clientId,
          application_id: c.applicationId,
          name: 'bench',
          secret_hash: hashSecret(pepper, c.secret),
          created_at: now,
        })),
      );
      await insertAll(
        trx,
        'partners',
        Array.from({ length: size.partners }, (_, i) => ({ id: i + 1, name: `Partner ${i + 1}`, require_token: 0, created_at: now, updated_at: now })),
      );
      const products = JSON.stringify([1, 2].map((i) => ({ ProductId: `sku-${i}`, ParentSKU: `sku-${i}`, ProductName: `Product ${i}`, Price: '9.99' })));
      const placement = (partnerId, eventType, slot) => ({
        partner_id: partnerId,
        event_type: eventType,
        slot,
        format: 'sponsored_products',
        products,
        rendering: '{}',
        updated_at: now,
      });
      // Every partner has its viewHome placement; the busiest has the rest of its catalogue on other pages.
      const rows = Array.from({ length: size.partners }, (_, i) => placement(i + 1, 'viewHome', 'Top'));
      for (let i = 1; i < size.placements; i++) rows.push(placement(1, 'viewSearchResult', `S${i}`));
      await insertAll(trx, 'placements', rows);
    });
    // Tokens signed with the server's own (EdDSA) key, as the token endpoint would sign them.
    const key = services.keys.signingKey();
    const iat = Math.floor(Date.now() / 1000);
    const config = services.config;
    const segment = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
    size.tokenList = [];
    for (let i = 0; i < size.tokens; i++) {
      const c = size.credentialList[i % size.credentialList.length];
      const input = `${key.encodedHeader}.${segment({
        iss: config.issuer,
        sub: c.clientId,
        aud: config.audience,
        client_id: c.clientId,
        iat,
        nbf: iat,
        exp: iat + 900,
        jti: randomBytes(12).toString('base64url'),
        application_id: c.applicationId,
        organization_id: c.organizationId,
        scope: 'retail-media',
      })}`;
      size.tokenList.push(`${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`);
      if (i > 0 && i % 200_000 === 0) log(`scale: signed ${i} tokens`);
    }
  } finally {
    await stopServices(services);
  }
}

/** Seeds a store and starts a server on it; `close()` stops it and removes the data. */
async function prepare(size, log) {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-scale-'));
  const masterKey = randomBytes(32).toString('hex');
  const adminToken = randomBytes(24).toString('base64url');
  const close = () => rmSync(dataDir, { recursive: true, force: true });
  try {
    const started = Date.now();
    await seed(dataDir, masterKey, adminToken, size, log);
    log(`scale: seeded ${size.label} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const server = await startServer({
      name: `portcullis-${size.label}`,
      script: join(ROOT, 'server/bin/portcullis.cjs'),
      nodeArgs: portcullisNodeArgs(join(ROOT, 'server/bin/portcullis.cjs')),
      args: ['serve'],
      env: { ...ENV(dataDir, masterKey, adminToken), NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}` },
      readyPath: '/healthz',
      ipc: false,
    });
    return {
      size,
      server,
      adminToken,
      dataDir,
      close: async () => {
        await server.stop();
        close();
      },
    };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * One load run: requests per second from requests/duration; `cycle` lines go through a temp file.
 * A run of `amount` requests shorter than the usual run length (the small store's "each once")
 * runs for the usual time instead, so its figure is not mostly start-up.
 */
async function run(opts, dataDir, lines, cycle) {
  if (opts.amount !== undefined && opts.amount < 20_000) {
    const { amount: _, ...timed } = opts;
    opts = { ...timed, duration: SECONDS };
  }
  const extra = {};
  if (lines) {
    extra.cycleFile = join(dataDir, `cycle-${randomBytes(4).toString('hex')}`);
    writeFileSync(extra.cycleFile, lines.join('\n'), { mode: 0o600 });
    extra.cycle = cycle;
  }
  const r = await runLoad({ connections: CONNECTIONS, duration: SECONDS, ...opts, ...extra });
  if (extra.cycleFile) rmSync(extra.cycleFile, { force: true });
  return { rps: r.requests / r.duration, requests: r.requests, non2xx: r.non2xx + r.errors, p99: r.latencyP99 };
}

async function metric(server, name, label) {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : undefined;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const tokenBody = (c) => `grant_type=client_credentials&client_id=${c.clientId}&client_secret=${c.secret}`;
const delivery = (base, partner) => `${base}/delivery/retailmedia?criteo-partner-id=${partner}&retailer-visitor-id=1&event-type=viewHome&page-id=home`;

/** The measurements, each taken on the small store and then the large one before the next (interleaved). */
const STEPS = [
  // Warm the code, not the caches: the token endpoint with one credential, delivery of a partner without placements.
  [
    'warmup',
    async ({ server, size, dataDir }) => {
      const last = size.credentialList[size.credentialList.length - 1];
      await run({ url: `${server.base}/oauth2/token`, method: 'POST', headers: FORM, body: tokenBody(last), duration: 2 }, dataDir);
      return run({ url: `${server.base}/me`, headers: bearer(size.tokenList[size.tokenList.length - 1]), duration: 2 }, dataDir);
    },
  ],
  ['rssStartMb', async ({ server }) => rssMb(server.pid)],
  // Token endpoint: every credential once (cold caches), then the same spread again (warm).
  [
    'tokenCold',
    async ({ server, size, dataDir }) =>
      run(
        { url: `${server.base}/oauth2/token`, method: 'POST', headers: FORM, amount: Math.max(size.credentials, 2000), duration: 600 },
        dataDir,
        size.credentialList.map(tokenBody),
        'body',
      ),
  ],
  ['rssAfterColdMb', async ({ server }) => rssMb(server.pid)],
  ['credentialsCached', async ({ server }) => metric(server, 'portcullis_cache_entries', 'cache="credentials"')],
  [
    'tokenWarm',
    async ({ server, size, dataDir }) =>
      run({ url: `${server.base}/oauth2/token`, method: 'POST', headers: FORM }, dataDir, size.credentialList.map(tokenBody), 'body'),
  ],
  // Delivery: the busiest partner's page, then every partner once (cold) and again (warm).
  ['deliveryBusiest', async ({ server, dataDir }) => run({ url: delivery(server.base, 1) }, dataDir)],
  [
    'deliverySpreadCold',
    async ({ server, size, dataDir }) =>
      run({ url: delivery(server.base, 1), amount: Math.max(size.partners, 2000), duration: 600 }, dataDir, partnerPaths(size), 'path'),
  ],
  ['deliverySpreadWarm', async ({ server, size, dataDir }) => run({ url: delivery(server.base, 1) }, dataDir, partnerPaths(size), 'path')],
  // Verification: every token once.
  [
    'verify',
    async ({ server, size, dataDir }) => {
      const probe = await fetch(`${server.base}/me`, { headers: { authorization: `Bearer ${size.tokenList[0]}` } });
      if (probe.status !== 200) throw new Error(`GET /me with a bench-signed token: ${probe.status} ${await probe.text()}`);
      // In two halves: a bounded cache grows (if at all) in the first half, not the second.
      const half = Math.ceil(size.tokenList.length / 2);
      const rss0 = rssMb(server.pid);
      const heap0 = await metric(server, 'nodejs_heap_size_used_bytes', '');
      const first = await run({ url: `${server.base}/me`, amount: Math.max(half, 1000), duration: 900 }, dataDir, size.tokenList.slice(0, half), 'bearer');
      const rss1 = rssMb(server.pid);
      const heap1 = await metric(server, 'nodejs_heap_size_used_bytes', '');
      // The one-token store presents its token in both halves.
      const rest = size.tokenList.length > half ? size.tokenList.slice(half) : size.tokenList;
      const second = await run({ url: `${server.base}/me`, amount: Math.max(rest.length, 1000), duration: 900 }, dataDir, rest, 'bearer');
      const rss2 = rssMb(server.pid);
      const heap2 = await metric(server, 'nodejs_heap_size_used_bytes', '');
      const requests = first.requests + second.requests;
      return {
        rps: requests / (first.requests / first.rps + second.requests / second.rps),
        requests,
        non2xx: first.non2xx + second.non2xx,
        rssMb: [rss0, rss1, rss2],
        heapMb: [heap0, heap1, heap2].map((b) => (b === undefined ? undefined : b / 2 ** 20)),
      };
    },
  ],
  ['credentialHitRatio', async ({ server }) => metric(server, 'portcullis_cache_hit_ratio', 'cache="credentials"')],
  // Operator lists: the first page and one near the end.
  [
    'orgsFirst',
    async ({ server, adminToken, dataDir }) => run({ url: `${server.base}/admin/v1/organizations?limit=100`, headers: bearer(adminToken) }, dataDir),
  ],
  [
    'orgsLate',
    async ({ server, size, adminToken, dataDir }) =>
      run({ url: `${server.base}/admin/v1/organizations?limit=100&cursor=${Math.max(1, size.orgs - 100)}`, headers: bearer(adminToken) }, dataDir),
  ],
  [
    'partnersFirst',
    async ({ server, adminToken, dataDir }) => run({ url: `${server.base}/admin/v1/partners?limit=100`, headers: bearer(adminToken) }, dataDir),
  ],
  [
    'partnersLate',
    async ({ server, size, adminToken, dataDir }) =>
      run({ url: `${server.base}/admin/v1/partners?limit=100&cursor=${Math.max(1, size.partners - 100)}`, headers: bearer(adminToken) }, dataDir),
  ],
  ['rssEndMb', async ({ server }) => rssMb(server.pid)],
];

const bearer = (token) => ({ authorization: `Bearer ${token}` });
const partnerPaths = (size) =>
  Array.from({ length: size.partners }, (_, i) => {
    const url = new URL(delivery('http://x', i + 1));
    return url.pathname + url.search;
  });

export async function benchScale({ log = (m) => process.stderr.write(`[scale] ${m}\n`) } = {}) {
  const stores = [];
  try {
    stores.push(await prepare({ label: 'small', credentials: 1, partners: 1, placements: 1, tokens: 1, orgs: 1 }, log));
    stores.push(await prepare({ label: 'large', credentials: CREDENTIALS, partners: PARTNERS, placements: PLACEMENTS, tokens: TOKENS, orgs: ORGS }, log));
    const results = { small: {}, large: {} };
    for (const [name, step] of STEPS) {
      for (const store of stores) {
        if (!name.startsWith('rss') && !name.startsWith('cred')) log(`scale ${store.size.label}: ${name}`);
        results[store.size.label][name] = await step(store);
      }
    }
    return { sizes: { CREDENTIALS, PARTNERS, PLACEMENTS, TOKENS, ORGS, SECONDS, CONNECTIONS, HEAP_MB }, ...results };
  } finally {
    for (const store of stores) await store.close();
  }
}

export function scaleLines(scale) {
  if (!scale) return [];
  if (scale.error) return [`Scale: FAILED: ${scale.error}`];
  const { small: s, large: l, sizes } = scale;
  const f = (n, d = 2) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const row = (label, a, b) =>
    `  ${label.padEnd(62)} ${f(b.rps, 0).padStart(7)} vs ${f(a.rps, 0).padStart(7)} req/s  ${f(b.rps / a.rps)}x${b.non2xx + a.non2xx ? `  (${b.non2xx + a.non2xx} non-2xx)` : ''}`;
  const perCred = ((l.rssAfterColdMb - l.rssStartMb) * 100_000) / Math.max(1, l.credentialsCached ?? sizes.CREDENTIALS);
  return [
    'Scale: large store against small, same run (ratio = large / small throughput)',
    row(`token, ${sizes.CREDENTIALS} credentials, each once (cold) vs 1`, s.tokenCold, l.tokenCold),
    row(`token, ${sizes.CREDENTIALS} credentials spread (warm) vs 1`, s.tokenWarm, l.tokenWarm),
    row(`delivery, busiest of ${sizes.PARTNERS} partners (${sizes.PLACEMENTS} placements) vs 1`, s.deliveryBusiest, l.deliveryBusiest),
    row(`delivery, ${sizes.PARTNERS} partners each once (cold) vs 1`, s.deliverySpreadCold, l.deliverySpreadCold),
    row(`delivery, ${sizes.PARTNERS} partners spread (warm) vs 1`, s.deliverySpreadWarm, l.deliverySpreadWarm),
    row(`GET /me, ${sizes.TOKENS} distinct tokens once each vs 1 token`, s.verify, l.verify),
    row(`operator organizations, first page, ${sizes.ORGS} orgs vs 1`, s.orgsFirst, l.orgsFirst),
    row(`operator organizations, a page near the end vs the first, ${sizes.ORGS} orgs`, l.orgsFirst, l.orgsLate),
    row(`operator partners, first page, ${sizes.PARTNERS} partners vs 1`, s.partnersFirst, l.partnersFirst),
    row(`operator partners, a page near the end vs the first, ${sizes.PARTNERS} partners`, l.partnersFirst, l.partnersLate),
    `  servers run with V8 old space capped at ${sizes.HEAP_MB} MB; memory (RSS MB): small start ${f(s.rssStartMb, 0)}, end ${f(s.rssEndMb, 0)}; large start ${f(l.rssStartMb, 0)}, after cold token pass ${f(l.rssAfterColdMb, 0)}, end ${f(l.rssEndMb, 0)}`,
    `  credentials cached after the cold pass: ${l.credentialsCached}; about ${f(perCred, 1)} MB RSS per 100,000 cached credentials (RSS growth over the cold pass, scaled)`,
    `  verification over ${sizes.TOKENS} distinct tokens in two halves: RSS ${l.verify.rssMb.map((m) => f(m, 0)).join(' -> ')} MB, V8 heap used ${l.verify.heapMb.map((m) => f(m, 0)).join(' -> ')} MB`,
    `    (verified-token cache bound 10,000, first in first out; its hit ratio is 0 by construction; credentials cache hit ratio ${f(l.credentialHitRatio, 3)})`,
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const scale = await benchScale();
  console.log(scaleLines(scale).join('\n'));
}
