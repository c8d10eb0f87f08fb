// Resource-server bench: what @portcullis/client costs an API owner, and what the revocation feed
// costs the issuer. Run alone (`node bench/resource-server.js`) or from run.js. Ratios from one run.
//  1. CPU per verification in one process: bare jose.jwtVerify vs the SDK verifier (repeat token,
//     cached) vs the SDK verifier with its cache off.
//  2. An Express service with no auth vs behind expressBearerAuth (same requests, repeat token):
//     requests per second and the service's CPU per request.
//  3. GET /oauth2/revocations with 200 revoked tokens and 5 revoked credentials: the issuer's CPU
//     per poll when unchanged (If-None-Match → 304) and when the body is sent (200).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createClient, startPortcullis } from './lib/portcullis.js';
import { positiveIntEnv, processCpuSeconds, ROOT, runLoad, startServer } from './lib/proc.js';

const DURATION = positiveIntEnv('BENCH_RS_DURATION', 5);
const WARMUP = positiveIntEnv('BENCH_RS_WARMUP', 2);
const CONNECTIONS = positiveIntEnv('BENCH_CONNECTIONS', 32);
const REVOKED_TOKENS = 200;
const REVOKED_CREDENTIALS = 5;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** CPU microseconds per call of `fn`, over `n` calls after a warm-up. */
async function cpuPerCall(fn, n) {
  for (let i = 0; i < Math.min(200, n); i++) await fn();
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

async function loadRun(opts, pid) {
  await runLoad({ connections: CONNECTIONS, duration: WARMUP, ...opts });
  const cpu0 = processCpuSeconds(pid);
  const run = await runLoad({ connections: CONNECTIONS, duration: DURATION, ...opts });
  const cpu = processCpuSeconds(pid) - cpu0;
  return {
    rps: run.rps,
    requests: run.requests,
    cpuUsPerRequest: (cpu * 1e6) / Math.max(1, run.requests),
    non2xx: run.non2xx,
    errors: run.errors,
    statusCodes: run.statusCodes,
  };
}

async function startIssuer(dataDir) {
  const started = await startPortcullis({
    dataDir,
    env: {
      PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '0',
      PORTCULLIS_TOKEN_LIMIT_PER_IP: '0',
      PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT: '0',
      PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '0',
      LOG_LEVEL: 'warn',
    },
  });
  const { server } = started;
  const admin = (method, path, body) => started.admin(method, `/admin/v1${path}`, body);
  const credential = () => createClient(started.admin, ['reports']);
  const token = async (cred) => {
    const res = await fetch(`${server.base}/oauth2/token`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }),
    });
    if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
    return (await res.json()).access_token;
  };
  return { server, admin, credential, token };
}

/** Runs the three measurements; resolves rows for the report. `log` gets progress lines. */
export async function benchResourceServer(log = (msg) => process.stderr.write(`[bench] ${msg}\n`)) {
  if (!existsSync(join(ROOT, 'client/dist/src/index.js'))) throw new Error('client/dist not built (run npm run build)');
  const { createVerifier } = await import('@portcullis/client');
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-rs-'));
  const started = [];
  try {
    log('resource server: starting Portcullis');
    const issuer = await startIssuer(dataDir);
    started.push(issuer.server);
    const base = issuer.server.base;
    const metadata = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
    const cred = await issuer.credential();
    const token = await issuer.token(cred);

    // Revocations the feed carries: tokens revoked one by one, and credentials revoked now.
    for (let i = 0; i < REVOKED_TOKENS; i++) {
      const revoked = await issuer.token(cred);
      const res = await fetch(`${base}/oauth2/revoke`, {
        method: 'POST',
        headers: FORM,
        body: new URLSearchParams({ token: revoked, client_id: cred.clientId, client_secret: cred.clientSecret }),
      });
      if (!res.ok) throw new Error(`revoke: HTTP ${res.status}`);
    }
    for (let i = 0; i < REVOKED_CREDENTIALS; i++) {
      const c = await issuer.credential();
      await issuer.admin('DELETE', `/applications/${c.appId}/credentials/${c.clientId}?immediately=true`);
    }

    // 1. In one process.
    log('resource server: CPU per verification (in process)');
    const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
    const localKeys = createLocalJWKSet(jwks);
    const joseOptions = { issuer: metadata.issuer, audience: metadata.issuer, algorithms: ['RS256'], typ: 'at+jwt' };
    const sdkOptions = {
      issuer: metadata.issuer,
      audience: metadata.issuer,
      jwksUri: `${base}/.well-known/jwks.json`,
      revocations: { uri: `${base}/oauth2/revocations` },
    };
    const cached = createVerifier(sdkOptions);
    // The middleware as Express calls it, without HTTP: what auth adds to one request's CPU.
    const { expressBearerAuth } = await import('@portcullis/client/express');
    const middleware = expressBearerAuth(cached);
    const request = { headers: { authorization: `Bearer ${token}` } };
    const middlewareUs = await cpuPerCall(() => new Promise((resolve) => middleware(request, {}, resolve)), 50_000);
    const uncached = createVerifier({ ...sdkOptions, cacheSize: 0 });
    const bareUs = await cpuPerCall(() => jwtVerify(token, localKeys, joseOptions), 1500);
    const cachedUs = await cpuPerCall(() => cached.verify(token), 50_000);
    const uncachedUs = await cpuPerCall(() => uncached.verify(token), 1500);
    cached.close();
    uncached.close();

    // 2. Express services.
    const services = {};
    for (const auth of ['none', 'sdk']) {
      services[auth] = await startServer({
        name: `express-${auth}`,
        script: fileURLToPath(new URL('./resource-service.js', import.meta.url)),
        env: { BENCH_AUTH: auth, BENCH_ISSUER: metadata.issuer, BENCH_JWKS: `${base}/.well-known/jwks.json`, BENCH_FEED: `${base}/oauth2/revocations` },
        readyPath: '/healthz',
      });
      started.push(services[auth]);
    }
    const headers = { authorization: `Bearer ${token}` };
    // No auth, SDK, no auth again: the baseline is the mean of the two, so drift in the machine's load shows less in the ratio.
    log('resource server: Express with no auth');
    const none1 = await loadRun({ url: `${services.none.base}/api/me`, headers }, services.none.pid);
    log('resource server: Express behind expressBearerAuth');
    const sdk = await loadRun({ url: `${services.sdk.base}/api/me`, headers }, services.sdk.pid);
    log('resource server: Express with no auth, again');
    const none2 = await loadRun({ url: `${services.none.base}/api/me`, headers }, services.none.pid);
    const none = {
      rps: (none1.rps + none2.rps) / 2,
      cpuUsPerRequest: (none1.cpuUsPerRequest + none2.cpuUsPerRequest) / 2,
      runs: [none1, none2],
      statusCodes: { ...none1.statusCodes, ...none2.statusCodes },
      errors: none1.errors + none2.errors,
    };

    // 3. The feed.
    const feed = await fetch(`${base}/oauth2/revocations`);
    const feedBody = await feed.text();
    const etag = feed.headers.get('etag');
    log('resource server: issuer baseline, GET /healthz');
    const healthz = await loadRun({ url: `${base}/healthz` }, issuer.server.pid);
    log('resource server: revocation feed, full body (200)');
    const poll200 = await loadRun({ url: `${base}/oauth2/revocations` }, issuer.server.pid);
    log('resource server: revocation feed, unchanged (304)');
    const poll304 = await loadRun({ url: `${base}/oauth2/revocations`, headers: { 'if-none-match': etag } }, issuer.server.pid);

    const problems = [];
    for (const [what, run, expected] of [
      ['Express no auth', none, '200'],
      ['Express SDK', sdk, '200'],
      ['feed 304', poll304, '304'],
      ['healthz', healthz, '200'],
      ['feed 200', poll200, '200'],
    ]) {
      const other = Object.keys(run.statusCodes).filter((s) => s !== expected);
      if (other.length || run.errors) problems.push(`${what}: statuses ${JSON.stringify(run.statusCodes)}, ${run.errors} errors`);
    }
    const pollsPerCoreSecond = 1e6 / poll304.cpuUsPerRequest;
    return {
      connections: CONNECTIONS,
      durationS: DURATION,
      verification: { bareJoseUs: bareUs, sdkCachedUs: cachedUs, sdkUncachedUs: uncachedUs, expressMiddlewareUs: middlewareUs },
      express: { none, sdk },
      feed: {
        revokedTokens: REVOKED_TOKENS,
        revokedCredentials: REVOKED_CREDENTIALS,
        bodyBytes: Buffer.byteLength(feedBody),
        healthz,
        unchanged: poll304,
        full: poll200,
        // Verifiers one core serves when each polls every 5 s (the SDK default).
        verifiersPerCore: pollsPerCoreSecond * 5,
      },
      rows: [
        ['SDK verify, repeat token (cached): CPU per call', `${fmt(cachedUs, 2)} µs`, `${fmt(cachedUs / bareUs, 3)}× bare jose.jwtVerify`],
        ['expressBearerAuth, repeat token, no HTTP: CPU per call', `${fmt(middlewareUs, 2)} µs`, `${fmt(middlewareUs / bareUs, 3)}× bare jose.jwtVerify`],
        ['SDK verify, cache off: CPU per call', `${fmt(uncachedUs)} µs`, `${fmt(uncachedUs / bareUs, 2)}× bare jose.jwtVerify`],
        ['bare jose.jwtVerify (RS256): CPU per call', `${fmt(bareUs)} µs`, '1×'],
        ['Express + expressBearerAuth: requests/s', fmt(sdk.rps, 0), `${fmt(sdk.rps / none.rps, 2)}× Express with no auth`],
        [
          'Express + expressBearerAuth: service CPU per request',
          `${fmt(sdk.cpuUsPerRequest)} µs`,
          `${fmt(sdk.cpuUsPerRequest / none.cpuUsPerRequest, 2)}× Express with no auth (+${fmt(sdk.cpuUsPerRequest - none.cpuUsPerRequest)} µs)`,
        ],
        [
          'Express with no auth (mean of a run before and after): requests/s, CPU per request',
          `${fmt(none.rps, 0)}, ${fmt(none.cpuUsPerRequest)} µs`,
          `1× (runs: ${fmt(none1.rps, 0)} and ${fmt(none2.rps, 0)} requests/s)`,
        ],
        [
          'revocation feed, unchanged (304): issuer CPU per poll',
          `${fmt(poll304.cpuUsPerRequest)} µs`,
          `${fmt(poll304.cpuUsPerRequest / healthz.cpuUsPerRequest, 2)}× GET /healthz; ~${fmt(pollsPerCoreSecond * 5, 0)} verifiers per core at 5 s`,
        ],
        [
          `revocation feed, ${Buffer.byteLength(feedBody)} B body (200): issuer CPU per poll`,
          `${fmt(poll200.cpuUsPerRequest)} µs`,
          `${fmt(poll200.cpuUsPerRequest / healthz.cpuUsPerRequest, 2)}× GET /healthz`,
        ],
        ['issuer GET /healthz: CPU per request', `${fmt(healthz.cpuUsPerRequest)} µs`, '1× (baseline)'],
      ],
      problems,
    };
  } finally {
    for (const s of started.reverse()) await s.stop();
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await benchResourceServer();
  const width = Math.max(...result.rows.map((r) => r[0].length));
  console.log(`\nResource server (${result.connections} connections, ${result.durationS} s per run)\n`);
  for (const [what, value, ratio] of result.rows) console.log(`${what.padEnd(width)}  ${value.padStart(16)}  ${ratio}`);
  if (result.problems.length) console.log(`\nPROBLEMS:\n${result.problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(result.problems.length ? 1 : 0);
}
