// GET /metrics: what operators scrape. Token outcomes by reason, verification outcomes, request
// latency by route pattern, cache hit ratios, rate-limit rejections and the signing key's age,
// each with labels from a fixed set (never a client_id or a raw URL), a registry per server, and
// who may read it: direct loopback callers, or holders of PORTCULLIS_METRICS_TOKEN when set.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { currentDialect, describe } from './helpers/dialects.js';
import { ManualClock } from '../src/domain/clock.js';
import { SQLITE_FILE } from '../src/store/db.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { clearOfWindowEdge } from './helpers/windows.js';
import { Histogram, Registry } from 'prom-client';
import { RequestHistogram } from '../src/ops/histogram.js';

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
async function scrape(server: TestServer, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${server.url}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

const value = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

test("the request histogram's exposition is prom-client's own, bucket for bucket, and a reset zeroes it", async () => {
  const bounds = [0.001, 0.01, 0.1, 1];
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({
    name: 'h_seconds',
    help: 'latency',
    labelNames: ['method', 'route', 'status_class'],
    buckets: bounds,
    registers: [theirs],
  });
  const histogram = new RequestHistogram('h_seconds', 'latency', ['method', 'route', 'status_class'], bounds, [ours]);
  // Values on a bound belong to that bucket (le: less or equal); past the last bound, only +Inf.
  const observations: [string, string, string, number][] = [
    ['POST', '/oauth2/token', '2xx', 0.0005],
    ['POST', '/oauth2/token', '2xx', 0.001],
    ['POST', '/oauth2/token', '2xx', 0.05],
    ['POST', '/oauth2/token', '4xx', 2.5],
    ['GET', '/me', '2xx', 0.1],
    ['GET', '/me', '2xx', 1],
    ['GET', '/me', '2xx', 0],
  ];
  for (const [method, route, statusClass, seconds] of observations) {
    reference.observe({ method, route, status_class: statusClass }, seconds);
    histogram.seriesOf([method, route, statusClass]).observe(seconds);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /^h_seconds_bucket\{le="0.1",method="GET",route="\/me",status_class="2xx"\} 2$/m);
  const series = histogram.seriesOf(['GET', '/me', '2xx']);
  ours.resetMetrics();
  assert.match(await ours.metrics(), /^h_seconds_count\{method="GET",route="\/me",status_class="2xx"\} 0$/m);
  series.observe(0.002);
  assert.match(await ours.metrics(), /^h_seconds_bucket\{le="0.01",method="GET",route="\/me",status_class="2xx"\} 1$/m);
});

describe('GET /metrics', () => {
  let server: TestServer;
  const clock = new ManualClock(Date.parse('2026-03-01T00:00:00Z'));
  before(async () => {
    server = await startTestServer({ PORTCULLIS_TOKEN_LIMIT_PER_IP: '100', PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100' }, { clock });
  });
  after(() => server.stop());

  test('counts tokens issued, and refused by RFC 6749 error code, and failed client authentications by reason', async () => {
    const before = await scrape(server);
    const { clientId, clientSecret } = await server.newCredential({ scopes: ['retail-media'] });
    await server.accessToken(clientId, clientSecret);
    await server.accessToken(clientId, clientSecret);
    const wrongSecret = `pcs_${'A'.repeat(43)}`;
    assert.equal((await server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: wrongSecret })).status, 401);
    assert.equal((await server.token({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: clientSecret })).status, 401);
    assert.equal((await server.token({ grant_type: 'password', client_id: clientId, client_secret: clientSecret })).status, 400);
    assert.equal((await server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'admin' })).status, 400);
    const json = await fetch(`${server.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 400);

    const now = await scrape(server);
    const delta = (key: string) => value(now, key) - value(before, key);
    assert.equal(delta('portcullis_token_requests_total{outcome="issued"}'), 2);
    assert.equal(delta('portcullis_token_requests_total{outcome="invalid_client"}'), 2);
    assert.equal(delta('portcullis_token_requests_total{outcome="unsupported_grant_type"}'), 1);
    assert.equal(delta('portcullis_token_requests_total{outcome="invalid_scope"}'), 1);
    assert.equal(delta('portcullis_token_requests_total{outcome="invalid_request"}'), 1);
    assert.equal(delta('portcullis_client_authentication_failures_total{reason="bad_secret"}'), 1);
    assert.equal(delta('portcullis_client_authentication_failures_total{reason="unknown_client"}'), 1);
    for (const key of now.keys()) assert.ok(!key.includes(clientId), `no client_id in labels: ${key}`);
  });

  test('counts verification outcomes: valid, or the reason a token was refused', async () => {
    const before = await scrape(server);
    const { clientId, clientSecret } = await server.newCredential();
    const token = await server.accessToken(clientId, clientSecret);
    assert.equal((await server.me(token)).status, 200);
    assert.equal((await server.me(token)).status, 200);
    assert.equal((await server.me('not-a-jwt')).status, 401);
    const [header, payload] = token.split('.');
    assert.equal((await server.me(`${header}.${payload}.${'A'.repeat(342)}`)).status, 401);

    const now = await scrape(server);
    const delta = (key: string) => value(now, key) - value(before, key);
    assert.equal(delta('portcullis_token_verifications_total{outcome="valid"}'), 2);
    assert.equal(delta('portcullis_token_verifications_total{outcome="malformed"}'), 1);
    assert.equal(delta('portcullis_token_verifications_total{outcome="bad_signature"}'), 1);
  });

  test('in-memory tables that grow with traffic report their entries: rate-limit keys and verified tokens', async () => {
    const before = await scrape(server);
    const { clientId, clientSecret } = await server.newCredential();
    const token = await server.accessToken(clientId, clientSecret);
    assert.equal((await server.me(token)).status, 200);
    const once = await scrape(server);
    assert.equal(
      value(once, 'portcullis_in_memory_entries{table="verified_tokens"}'),
      value(before, 'portcullis_in_memory_entries{table="verified_tokens"}'),
      'a token verified once is not cached (the doorkeeper only notes it)',
    );
    assert.equal((await server.me(token)).status, 200);
    const now = await scrape(server);
    // A new client_id adds its per-client quota key; a token is remembered from its second verification.
    assert.equal(
      value(now, 'portcullis_in_memory_entries{table="rate_limit_keys"}') - value(before, 'portcullis_in_memory_entries{table="rate_limit_keys"}'),
      1,
    );
    assert.equal(
      value(now, 'portcullis_in_memory_entries{table="verified_tokens"}') - value(before, 'portcullis_in_memory_entries{table="verified_tokens"}'),
      1,
    );
    assert.ok(now.has('portcullis_in_memory_entries{table="beacon_sightings"}'), 'the embedded beacon ledger is measured');
  });

  test('the latency histogram is labelled by route pattern and status class, never by the URL', async () => {
    await server.admin('GET', '/organizations/987654');
    await fetch(`${server.url}/no/such/path-123456`);
    const { clientId, clientSecret } = await server.newCredential();
    await server.me(await server.accessToken(clientId, clientSecret), '/2026-01/retail-media/me');

    const now = await scrape(server);
    const count = (route: string, method: string, statusClass: string) =>
      value(now, `portcullis_http_request_duration_seconds_count{method="${method}",route="${route}",status_class="${statusClass}"}`);
    assert.ok(count('/admin/v1/organizations/:orgId', 'GET', '4xx') >= 1);
    assert.ok(count('unmatched', 'GET', '4xx') >= 1);
    assert.ok(count('/:version/:service/me', 'GET', '2xx') >= 1);
    assert.ok(count('/oauth2/token', 'POST', '2xx') >= 1);
    assert.ok(value(now, 'portcullis_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/oauth2/token",status_class="2xx"}') >= 1);
    for (const key of now.keys()) assert.ok(!/987654|123456|2026-01/.test(key), `no raw URL in labels: ${key}`);
  });

  test('cache hits, misses and hit ratios are read from the caches when scraped', async () => {
    const { clientId, clientSecret } = await server.newCredential();
    await server.accessToken(clientId, clientSecret);
    await server.accessToken(clientId, clientSecret);
    const now = await scrape(server);
    const hits = value(now, 'portcullis_cache_hits_total{cache="credentials"}');
    const misses = value(now, 'portcullis_cache_misses_total{cache="credentials"}');
    const cache = server.services.directory.credentials;
    assert.ok(hits >= 1 && misses >= 1);
    assert.ok(hits <= cache.hits && misses <= cache.misses);
    const ratio = value(now, 'portcullis_cache_hit_ratio{cache="credentials"}');
    assert.ok(ratio > 0 && ratio < 1, `ratio ${ratio}`);
    for (const name of ['applications', 'static_tokens', 'partners', 'placements', 'application_rate_limits']) {
      assert.ok(now.has(`portcullis_cache_hit_ratio{cache="${name}"}`), name);
    }
  });

  test('the signing key age follows the clock, and rotation starts it again', async () => {
    const first = value(await scrape(server), 'portcullis_signing_key_age_seconds');
    clock.advance(3600);
    const later = await scrape(server);
    assert.equal(value(later, 'portcullis_signing_key_age_seconds') - first, 3600);
    assert.equal(value(later, 'portcullis_signing_keys{status="active"}'), 1);
    assert.equal((await server.admin('POST', '/keys/rotate', { activate_after_seconds: 0 })).status, 200);
    clock.advance(1);
    const rotated = await scrape(server);
    assert.equal(value(rotated, 'portcullis_signing_key_age_seconds'), 1);
    assert.equal(value(rotated, 'portcullis_signing_keys{status="retiring"}'), 1);
  });

  test('every registered cache is measured, and each dependency, draining and failed background writes have a series', async () => {
    const now = await scrape(server);
    for (const name of ['credentials', 'signing_keys', 'gateway_routes', 'revoked_tokens']) {
      assert.ok(now.has(`portcullis_cache_entries{cache="${name}"}`), name);
    }
    assert.ok(value(now, 'portcullis_cache_entries{cache="signing_keys"}') >= 1);
    assert.equal(value(now, 'portcullis_dependency_up{dependency="database"}'), 1);
    assert.equal(now.has('portcullis_dependency_up{dependency="redis"}'), false, 'no Redis configured, none reported');
    assert.equal(now.get('portcullis_draining'), 0);
    for (const batch of ['credential_usage', 'static_token_usage', 'beacon_counts', 'token_counts']) {
      assert.equal(now.get(`portcullis_background_write_failures_total{batch="${batch}"}`), 0, batch);
    }
  });

  test('process metrics come with the registry', async () => {
    const now = await scrape(server);
    assert.ok([...now.keys()].some((k) => k.startsWith('process_resident_memory_bytes')));
    assert.ok([...now.keys()].some((k) => k.startsWith('nodejs_eventloop_lag')));
  });

  test('memory is reported by kind, with the SQLite files as they are on disk (none on PostgreSQL)', async () => {
    const sqlite = currentDialect() === 'sqlite' ? path.join(server.dataDir, SQLITE_FILE) : undefined;
    const sizeBefore = sqlite ? statSync(sqlite).size : 0;
    const now = await scrape(server);
    const sizeAfter = sqlite ? statSync(sqlite).size : 0;
    const anonymous = value(now, 'portcullis_process_memory_bytes{kind="anonymous"}');
    const file = value(now, 'portcullis_process_memory_bytes{kind="file"}');
    assert.ok(anonymous > 1024 * 1024 && file > 0, `anonymous ${anonymous}, file-backed ${file}`);
    assert.ok(anonymous + file <= value(now, 'process_resident_memory_bytes') * 1.5);
    assert.ok(now.has('portcullis_process_array_buffers_bytes'));
    if (!sqlite) {
      assert.ok(![...now.keys()].some((k) => k.startsWith('portcullis_database_file_bytes')), 'no SQLite file to report');
      return;
    }
    const reported = value(now, 'portcullis_database_file_bytes{file="database"}');
    assert.ok(reported >= sizeBefore && reported <= sizeAfter, `reported ${reported}, on disk ${sizeBefore}..${sizeAfter}`);
    assert.ok(value(now, 'portcullis_database_file_bytes{file="wal"}') > 0, 'the server writes through the write-ahead log');
  });
});

describe('rate-limit rejections', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ PORTCULLIS_TOKEN_LIMIT_PER_IP: '2' });
  });
  after(() => server.stop());

  test('every 429 is counted under its route, and as a rate_limited token outcome', async () => {
    const { clientId, clientSecret } = await server.newCredential();
    const statuses = [];
    await clearOfWindowEdge(60_000, 5_000); // the four requests in one minute-long window
    for (let i = 0; i < 4; i++)
      statuses.push((await server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret })).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    const now = await scrape(server);
    assert.equal(value(now, 'portcullis_rate_limit_rejections_total{route="/oauth2/token"}'), 2);
    assert.equal(value(now, 'portcullis_token_requests_total{outcome="rate_limited"}'), 2);
    assert.equal(value(now, 'portcullis_token_requests_total{outcome="issued"}'), 2);
  });
});

describe('who may read /metrics', () => {
  test('without PORTCULLIS_METRICS_TOKEN: direct loopback callers only, not requests forwarded by a proxy', async () => {
    const server = await startTestServer();
    try {
      assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
      const forwarded = await fetch(`${server.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(forwarded.status, 403);
      assert.doesNotMatch(await forwarded.text(), /portcullis_/);
      assert.equal((await fetch(`${server.url}/metrics`, { headers: { forwarded: 'for=203.0.113.9' } })).status, 403);
    } finally {
      await server.stop();
    }
  });

  test('with PORTCULLIS_METRICS_TOKEN: only with that bearer token, from anywhere', async () => {
    const secret = 'metrics-token-0123456789abcdef';
    const server = await startTestServer({ PORTCULLIS_METRICS_TOKEN: secret });
    try {
      const none = await fetch(`${server.url}/metrics`);
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789abcdeX' } })).status, 401);
      assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: `Basic ${btoa(`x:${secret}`)}` } })).status, 401);
      await scrape(server, { authorization: `Bearer ${secret}`, 'x-forwarded-for': '203.0.113.9' });
    } finally {
      await server.stop();
    }
  });

  test('a short metrics token is refused at start, naming the variable', async () => {
    await assert.rejects(startTestServer({ PORTCULLIS_METRICS_TOKEN: 'short' }), /PORTCULLIS_METRICS_TOKEN/);
  });
});

test('two servers in one process keep separate registries', async () => {
  const [a, b] = await Promise.all([startTestServer(), startTestServer()]);
  try {
    const { clientId, clientSecret } = await a.newCredential();
    await a.accessToken(clientId, clientSecret);
    assert.equal(value(await scrape(a), 'portcullis_token_requests_total{outcome="issued"}'), 1);
    assert.equal(value(await scrape(b), 'portcullis_token_requests_total{outcome="issued"}'), 0);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
