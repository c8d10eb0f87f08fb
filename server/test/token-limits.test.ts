import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { ManualClock } from '../src/domain/clock.js';
import { MemoryRateLimitStore } from '../src/ratelimit/store.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from './helpers/server.js';

const tokenRequest = (server: TestServer, clientId: string, clientSecret: string, headers: Record<string, string> = {}) =>
  server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }, headers);

function assertTooMany(res: { status: number; body: any; headers: Headers }, what: RegExp) {
  assert.equal(res.status, 429);
  assert.equal(res.body.error, 'temporarily_unavailable');
  assert.match(res.body.error_description, what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 120, `Retry-After within two minute windows: ${retryAfter}`);
  assert.equal(res.headers.get('x-ratelimit-remaining'), '0');
}

describe('token endpoint limits', () => {
  let server: TestServer;
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12, 0, 5));
  before(async () => {
    server = await startTestServer(
      {
        PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT: '20',
        PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT_IP: '5',
        PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '12',
        PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '4',
        PORTCULLIS_TOKEN_LIMIT_PER_IP: '48',
        PORTCULLIS_TRUST_PROXY: '1',
      },
      { clock },
    );
  });
  after(() => server.stop());
  // With one trusted hop the client address is the entry the proxy appended: the rightmost.
  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  test("wrong secrets for someone else's client_id never refuse its owner's correct secret from another address", async () => {
    clock.advance(120);
    const victim = await server.newCredential();
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await tokenRequest(server, victim.clientId, `pcs_guess${i}`, from('203.0.113.66'))).status);
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(
      statuses.slice(5).every((s) => s === 429),
      'after five failures for this client from this address, that pair is refused before any secret is checked',
    );
    process.stdout.write(
      `# brute force on one client_id from one address: ${statuses.length} attempts, ${statuses.filter((s) => s === 401).length} checked (401), ${statuses.filter((s) => s === 429).length} refused (429)\n`,
    );
    assert.equal((await tokenRequest(server, victim.clientId, victim.clientSecret, from('198.51.100.20'))).status, 200, 'its owner, elsewhere, gets a token');
    assertTooMany(await tokenRequest(server, victim.clientId, victim.clientSecret, from('203.0.113.66')), /too many failed client authentications/);
  });

  test('failures spread over many addresses never lock a client out: they raise one alert (metric and audit event) a minute', async () => {
    clock.advance(120);
    const victim = await server.newCredential();
    const statuses: number[] = [];
    // Each attempt from its own address, so no address or pair limit is reached.
    for (let i = 0; i < 50; i++) statuses.push((await tokenRequest(server, victim.clientId, `pcs_guess${i}`, from(`10.9.${i}.1`))).status);
    assert.ok(
      statuses.every((s) => s === 401),
      'each is checked and refused as a wrong secret, never 429',
    );
    assert.equal((await tokenRequest(server, victim.clientId, victim.clientSecret, from('10.9.200.1'))).status, 200, 'the owner still gets tokens');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^portcullis_client_authentication_failure_spikes_total 1$/m, 'one alert for the minute, not one per failure');
    const deadline = Date.now() + 5_000;
    let spikes: any[] = [];
    while (Date.now() < deadline) {
      const events = await server.admin('GET', `/audit-events?organization_id=${victim.orgId}&limit=50`);
      spikes = events.body.filter((e: any) => e.action === 'credential.authentication_failure_spike');
      if (spikes.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(spikes.length, 1);
    assert.equal(spikes[0].target_id, victim.clientId);
    assert.ok(spikes[0].details.failures_last_minute >= 20);
  });

  test('failures are limited per address too, across client_ids, and unknown ids count only there', async () => {
    clock.advance(120);
    const other = await server.newCredential();
    for (let i = 0; i < 12; i++) {
      const unknown = `${i.toString(16).padStart(2, '0')}${'0'.repeat(30)}`;
      assert.equal((await tokenRequest(server, unknown, 'pcs_x', from('192.0.2.7'))).status, 401);
    }
    assertTooMany(await tokenRequest(server, other.clientId, other.clientSecret, from('192.0.2.7')), /too many failed client authentications/);
    assert.equal((await tokenRequest(server, other.clientId, other.clientSecret, from('192.0.2.8'))).status, 200, 'another address is not affected');
  });

  test('the failure window slides: an address is let in again bit by bit, not all at once at an aligned minute', async () => {
    clock.advance(120);
    const cred = await server.newCredential();
    for (let i = 0; i < 12; i++) await tokenRequest(server, `${'e'.repeat(30)}${i.toString(16).padStart(2, '0')}`, 'pcs_wrong', from('192.0.2.99'));
    const refused = await tokenRequest(server, cred.clientId, cred.clientSecret, from('192.0.2.99'));
    assertTooMany(refused, /too many failed client authentications/);
    const wait = Number(refused.headers.get('retry-after'));
    clock.advance(wait);
    const res = await tokenRequest(server, `${'f'.repeat(32)}`, 'pcs_x', from('192.0.2.99'));
    assert.equal(res.status, 401, `after Retry-After (${wait} s) one more attempt is checked`);
    assertTooMany(await tokenRequest(server, cred.clientId, cred.clientSecret, from('192.0.2.99')), /too many failed/);
  });

  test('successful token requests are limited per client and per address', async () => {
    clock.advance(60);
    const a = await server.newCredential();
    const b = await server.newCredential();
    for (let i = 0; i < 4; i++) assert.equal((await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.1'))).status, 200);
    assertTooMany(await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.1')), /too many token requests for this client/);
    assert.equal((await tokenRequest(server, b.clientId, b.clientSecret, from('198.51.100.1'))).status, 200, 'another client is not affected');

    clock.advance(60);
    const clients = await Promise.all(Array.from({ length: 12 }, () => server.newCredential()));
    let ok = 0;
    for (const c of clients)
      for (let i = 0; i < 4; i++) if ((await tokenRequest(server, c.clientId, c.clientSecret, from('198.51.100.9'))).status === 200) ok++;
    assert.equal(ok, 48);
    assertTooMany(await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.9')), /too many token requests from this address/);
  });

  test('introspection and revocation share the client authentication step and its limits', async () => {
    clock.advance(120);
    const cred = await server.newCredential();
    const form = (params: Record<string, string>) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...from('192.0.2.50') },
      body: new URLSearchParams(params).toString(),
    });
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/oauth2/introspect`, form({ client_id: cred.clientId, client_secret: 'pcs_wrong', token: 'x' }));
      assert.equal(res.status, 401);
    }
    const refused = await fetch(`${server.url}/oauth2/revoke`, form({ client_id: cred.clientId, client_secret: cred.clientSecret, token: 'x' }));
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  });
});

test('with one trusted hop, rotating the leftmost X-Forwarded-For entry does not evade the per-address limit', async () => {
  const server = await startTestServer({ PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '3', PORTCULLIS_TRUST_PROXY: '1' });
  try {
    const cred = await server.newCredential();
    // The proxy appends the address it saw (203.0.113.5); the client writes anything to its left.
    for (let i = 0; i < 3; i++) await tokenRequest(server, cred.clientId, 'pcs_wrong', { 'x-forwarded-for': `10.66.0.${i}, 203.0.113.5` });
    assertTooMany(
      await tokenRequest(server, cred.clientId, cred.clientSecret, { 'x-forwarded-for': '10.66.0.200, 203.0.113.5' }),
      /failed client authentications/,
    );
    assert.equal((await tokenRequest(server, cred.clientId, cred.clientSecret, { 'x-forwarded-for': '203.0.113.5, 203.0.113.6' })).status, 200);
    // The audit log records the address the proxy saw, not what the client wrote.
    const org = await fetch(`${server.url}/admin/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-forwarded-for': '1.2.3.4, 198.51.100.77' },
      body: JSON.stringify({ name: 'Audited' }),
    });
    assert.equal(org.status, 201);
    const id = ((await org.json()) as { id: number }).id;
    const events = await server.admin('GET', `/audit-events?organization_id=${id}`);
    assert.equal(events.body[0].ip, '198.51.100.77');
  } finally {
    await server.stop();
  }
});

test('a list of trusted proxy addresses: the client address is the rightmost entry not written by one of them', async () => {
  const server = await startTestServer({ PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '2', PORTCULLIS_TRUST_PROXY: '127.0.0.0/8, 10.0.0.0/8' });
  try {
    const cred = await server.newCredential();
    for (let i = 0; i < 2; i++) await tokenRequest(server, cred.clientId, 'pcs_wrong', { 'x-forwarded-for': `192.0.2.${i}, 198.51.100.3, 10.0.0.9` });
    assertTooMany(await tokenRequest(server, cred.clientId, cred.clientSecret, { 'x-forwarded-for': '192.0.2.77, 198.51.100.3, 10.1.1.1' }), /failed/);
    assert.equal((await tokenRequest(server, cred.clientId, cred.clientSecret, { 'x-forwarded-for': '198.51.100.3, 198.51.100.4' })).status, 200);
  } finally {
    await server.stop();
  }
});

test('without PORTCULLIS_TRUST_PROXY, X-Forwarded-For does not pick the address that is limited', async () => {
  const server = await startTestServer({ PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '3' });
  try {
    const cred = await server.newCredential();
    for (let i = 0; i < 3; i++) await tokenRequest(server, cred.clientId, 'pcs_wrong', { 'x-forwarded-for': `203.0.113.${i}` });
    assertTooMany(await tokenRequest(server, cred.clientId, cred.clientSecret, { 'x-forwarded-for': '203.0.113.200' }), /failed client authentications/);
  } finally {
    await server.stop();
  }
});

test('the in-memory limit store forgets keys idle for two windows, long before its bound, while live counts survive', async () => {
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12, 0, 5));
  const store = new MemoryRateLimitStore(clock);
  // One key per churned credential, as when credentials are created, used once and revoked.
  for (let i = 0; i < 1000; i++) store.hit(`token:client:churned-${i}`, 60_000, 10);
  assert.equal(store.size, 1000);
  clock.advance(30);
  assert.equal(store.hit('token:client:steady', 60_000, 10).count, 1);
  assert.equal(store.size, 1001, 'windows still open are kept');
  clock.advance(61);
  const next = store.hit('token:client:steady', 60_000, 10);
  assert.deepEqual([next.count, next.previous], [1, 1], 'a new window starts at zero and remembers the last one');
  assert.equal(store.size, 1001, "a window that just ended is the sliding count's previous one, so it is kept");
  clock.advance(60);
  assert.equal(store.hit('token:client:steady', 60_000, 10).count, 1);
  assert.equal(store.size, 1, 'keys idle for two windows are gone, long before the 100,000-key bound');
  assert.equal(store.hit('token:client:steady', 60_000, 10).count, 2, 'the live count was kept');
  assert.equal(store.peek('token:client:churned-1', 60_000).count, 0);
});

test('a key with a long window does not postpone the sweep of one-minute keys', () => {
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12, 0, 5));
  const store = new MemoryRateLimitStore(clock);
  // A portal sign-up is counted per address per hour; it used to set the next sweep an hour away.
  store.hit('portal-signup:ip:192.0.2.1', 60 * 60_000, 0);
  for (let minute = 0; minute < 10; minute++) {
    for (let i = 0; i < 100; i++) store.hit(`token:client:churned-${minute}-${i}`, 60_000, 10);
    clock.advance(60);
  }
  // Keys of minutes 0–8 have been idle for two windows: gone. Minute 9's, the hour key and this one stay.
  store.hit('token:client:steady', 60_000, 10);
  assert.equal(store.size, 100 + 2);
  assert.equal(store.peek('portal-signup:ip:192.0.2.1', 60 * 60_000).count, 1, 'the hour-long count survives');
});
