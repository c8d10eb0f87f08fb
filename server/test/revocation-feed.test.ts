import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { matchesEtag } from '../src/access/revocation-feed.js';
import { RevocationList } from '../src/access/revocation-list.js';
import { ManualClock } from '../src/domain/clock.js';
import { ISSUER_FOR_TESTS, startTestServer, type TestServer } from './helpers/server.js';

type Feed = { issuer: string; tokens: Array<{ jti: string; exp: number }>; credentials: Array<{ client_id: string; revoked_at: number; exp: number }> };

describe('GET /oauth2/revocations', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const feed = async (etag?: string) => {
    const res = await fetch(`${server.url}/oauth2/revocations`, etag ? { headers: { 'if-none-match': etag } } : {});
    const text = await res.text();
    return {
      status: res.status,
      etag: res.headers.get('etag') ?? '',
      cache: res.headers.get('cache-control'),
      body: text ? (JSON.parse(text) as Feed) : undefined,
    };
  };

  test('is public, names the issuer, and answers 304 to the ETag it gave while nothing changes', async () => {
    const first = await feed();
    assert.equal(first.status, 200);
    assert.equal(first.body?.issuer, ISSUER_FOR_TESTS);
    assert.equal(first.cache, 'no-cache');
    assert.match(first.etag, /^"[A-Za-z0-9_-]+"$/);
    const again = await feed(first.etag);
    assert.equal(again.status, 304);
    assert.equal(again.body, undefined);
    assert.equal(again.etag, first.etag);
    assert.equal((await feed('"something-else"')).status, 200);
  });

  test('a token revoked with RFC 7009 appears by jti with its expiry, and changes the ETag', async () => {
    const before = await feed();
    const cred = await server.newCredential();
    const token = await server.accessToken(cred.clientId, cred.clientSecret);
    const revoked = await fetch(`${server.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: cred.clientId, client_secret: cred.clientSecret }),
    });
    assert.equal(revoked.status, 200);
    const after = await feed(before.etag);
    assert.equal(after.status, 200, 'the old ETag no longer matches');
    const { jti, exp } = decodeJwt(token);
    assert.deepEqual(
      after.body?.tokens.find((t) => t.jti === jti),
      { jti, exp },
    );
  });

  test('a credential revoked now appears by client_id with when it was revoked; a plain delete does not', async () => {
    const urgent = await server.newCredential();
    const graceful = await server.newCredential();
    const t0 = Math.floor(Date.now() / 1000);
    assert.equal((await server.admin('DELETE', `/applications/${urgent.appId}/credentials/${urgent.clientId}?immediately=true`)).status, 200);
    assert.equal((await server.admin('DELETE', `/applications/${graceful.appId}/credentials/${graceful.clientId}`)).status, 200);
    const { body } = await feed();
    const entry = body?.credentials.find((c) => c.client_id === urgent.clientId);
    assert.ok(entry, 'the revoked credential is listed');
    assert.ok(entry.revoked_at >= t0 && entry.revoked_at <= t0 + 5);
    assert.ok(entry.exp >= entry.revoked_at + 900, 'listed at least as long as a token issued before can live');
    assert.equal(
      body?.credentials.find((c) => c.client_id === graceful.clientId),
      undefined,
    );
  });

  test('a restarted server lists the same revocations, with the same ETag', async () => {
    const cred = await server.newCredential();
    assert.equal((await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`)).status, 200);
    const before = await feed();
    const dataDir = server.dataDir;
    const second = await startTestServer({}, { dataDir });
    try {
      const res = await fetch(`${second.url}/oauth2/revocations`, { headers: { 'if-none-match': before.etag } });
      assert.equal(res.status, 304, 'same list, same ETag, on another process over the same store');
    } finally {
      await second.stop();
    }
  });

  test('the metadata names the feed', async () => {
    const res = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    assert.equal(((await res.json()) as { revocations_uri: string }).revocations_uri, `${ISSUER_FOR_TESTS}/oauth2/revocations`);
  });
});

test('If-None-Match matches a listed ETag, weak or strong, or *', () => {
  assert.ok(matchesEtag('"a", W/"b"', '"b"'));
  assert.ok(matchesEtag('*', '"b"'));
  assert.ok(!matchesEtag('"a"', '"b"'));
  assert.ok(!matchesEtag(undefined, '"b"'));
});

test('credentials revoked now leave the list once their tokens have expired, whether or not anyone reads the feed', async () => {
  const clock = new ManualClock(Date.UTC(2027, 0, 1));
  const server = await startTestServer({}, { clock, dialect: 'sqlite' });
  try {
    const { store, bus, denylist } = server.services;
    const list = new RevocationList(denylist, store.credentials, bus, clock, { issuer: ISSUER_FOR_TESTS, horizonMs: 60_000 });
    await list.start(3_600_000, (err) => assert.fail(String(err)));
    try {
      for (let i = 0; i < 3; i++) {
        const cred = await server.newCredential();
        const revoked = await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`);
        assert.equal(revoked.status, 200);
      }
      await list.load();
      assert.equal(list.size, 3);
      clock.advance(61);
      await list.load(); // the periodic refresh, with no request for the feed in between
      assert.equal(list.size, 0, 'expired entries are dropped by the refresh itself');
      assert.deepEqual(JSON.parse(list.snapshot().body).credentials, []);
    } finally {
      list.stop();
    }
  } finally {
    await server.stop();
  }
});
