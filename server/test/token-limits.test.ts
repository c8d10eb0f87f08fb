import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/domain/clock.js';
import { MemoryRateLimitStore } from '../src/ratelimit/store.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const tokenRequest = (server: TestServer, clientId: string, clientSecret: string, headers: Record<string, string> = {}) =>
  server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }, headers);

function assertTooMany(res: { status: number; body: any; headers: Headers }, what: RegExp) {
  assert.equal(res.status, 429);
  assert.equal(res.body.error, 'temporarily_unavailable');
  assert.match(res.body.error_description, what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After within the minute window: ${retryAfter}`);
  assert.equal(res.headers.get('x-ratelimit-remaining'), '0');
}

describe('token endpoint limits', () => {
  let server: TestServer;
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12, 0, 5));
  before(async () => {
    server = await startTestServer(
      {
        PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT: '5',
        PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '12',
        PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '4',
        PORTCULLIS_TOKEN_LIMIT_PER_IP: '40',
        PORTCULLIS_TRUST_PROXY: 'true',
      },
      { clock },
    );
  });
  after(() => server.stop());
  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  test('a brute-force run on one client_id is slowed to a few tries a minute, then the window reopens', async () => {
    const victim = await server.newCredential();
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      // Each attempt from a different address, so only the per-client limit applies.
      statuses.push((await tokenRequest(server, victim.clientId, `pcs_guess${i}`, from(`10.0.0.${i}`))).status);
    }
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(
      statuses.slice(5).every((s) => s === 429),
      'after five failures every try is refused before the secret is checked',
    );
    process.stdout.write(
      `# brute force on one client_id: ${statuses.length} attempts, ${statuses.filter((s) => s === 401).length} checked (401), ${statuses.filter((s) => s === 429).length} refused (429)\n`,
    );
    assertTooMany(await tokenRequest(server, victim.clientId, victim.clientSecret, from('10.1.0.1')), /too many failed client authentications/);
    clock.advance(60);
    assert.equal((await tokenRequest(server, victim.clientId, victim.clientSecret, from('10.1.0.1'))).status, 200);
  });

  test('failures are limited per address too, across client_ids, and unknown ids count only there', async () => {
    clock.advance(60);
    const other = await server.newCredential();
    for (let i = 0; i < 12; i++) {
      const unknown = `${i.toString(16).padStart(2, '0')}${'0'.repeat(30)}`;
      assert.equal((await tokenRequest(server, unknown, 'pcs_x', from('192.0.2.7'))).status, 401);
    }
    assertTooMany(await tokenRequest(server, other.clientId, other.clientSecret, from('192.0.2.7')), /too many failed client authentications/);
    assert.equal((await tokenRequest(server, other.clientId, other.clientSecret, from('192.0.2.8'))).status, 200, 'another address is not affected');
  });

  test('successful token requests are limited per client and per address', async () => {
    clock.advance(60);
    const a = await server.newCredential();
    const b = await server.newCredential();
    for (let i = 0; i < 4; i++) assert.equal((await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.1'))).status, 200);
    assertTooMany(await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.1')), /too many token requests for this client/);
    assert.equal((await tokenRequest(server, b.clientId, b.clientSecret, from('198.51.100.1'))).status, 200, 'another client is not affected');

    clock.advance(60);
    const clients = await Promise.all(Array.from({ length: 10 }, () => server.newCredential()));
    let ok = 0;
    for (const c of clients)
      for (let i = 0; i < 4; i++) if ((await tokenRequest(server, c.clientId, c.clientSecret, from('198.51.100.9'))).status === 200) ok++;
    assert.equal(ok, 40);
    assertTooMany(await tokenRequest(server, a.clientId, a.clientSecret, from('198.51.100.9')), /too many token requests from this address/);
  });
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

test('the in-memory limit store forgets ended windows within a window, while live counts survive', async () => {
  const clock = new ManualClock(Date.UTC(2027, 0, 1, 12, 0, 5));
  const store = new MemoryRateLimitStore(clock);
  // One key per churned credential, as when credentials are created, used once and revoked.
  for (let i = 0; i < 1000; i++) await store.hit(`token:client:churned-${i}`, 60_000, 10);
  assert.equal(store.size, 1000);
  clock.advance(30);
  assert.equal((await store.hit('token:client:steady', 60_000, 10)).count, 1);
  assert.equal(store.size, 1001, 'windows still open are kept');
  clock.advance(61);
  assert.equal((await store.hit('token:client:steady', 60_000, 10)).count, 1, 'a new window starts at zero');
  assert.equal(store.size, 1, 'every ended window is gone, long before the 100,000-key bound');
  assert.equal((await store.hit('token:client:steady', 60_000, 10)).count, 2, 'the live count was kept');
  assert.equal(await store.peek('token:client:churned-1', 60_000), 0);
});
