import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { ManualClock } from '../src/domain/clock.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

const form = (server: TestServer, path: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as any, headers: res.headers }));

describe('revocation (RFC 7009) and introspection (RFC 7662)', () => {
  let server: TestServer;
  const clock = new ManualClock();
  before(async () => {
    server = await startTestServer({}, { clock });
  });
  after(() => server.stop());

  test('a client revokes its own token: that token fails everywhere, its other tokens keep working', async () => {
    const { clientId, clientSecret } = await server.newCredential();
    const revoked = await server.accessToken(clientId, clientSecret);
    const kept = await server.accessToken(clientId, clientSecret);
    assert.equal((await server.me(revoked)).status, 200); // cached as verified first
    const res = await form(server, '/oauth2/revoke', { token: revoked, client_id: clientId, client_secret: clientSecret });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal((await server.me(revoked)).status, 401);
    assert.equal((await server.me(kept)).status, 200);
    const introspected = await form(server, '/oauth2/introspect', { token: revoked, client_id: clientId, client_secret: clientSecret });
    assert.deepEqual(introspected.body, { active: false });
  });

  test("a client cannot revoke or introspect another client's token, and learns nothing about it", async () => {
    const owner = await server.newCredential();
    const other = await server.newCredential();
    const token = await server.accessToken(owner.clientId, owner.clientSecret);
    const basic = `Basic ${Buffer.from(`${other.clientId}:${other.clientSecret}`).toString('base64')}`;
    const revoke = await form(server, '/oauth2/revoke', { token }, { authorization: basic });
    assert.equal(revoke.status, 200, 'the same answer as for its own token');
    assert.equal((await server.me(token)).status, 200, 'but the token still works');
    const introspect = await form(server, '/oauth2/introspect', { token }, { authorization: basic });
    assert.deepEqual(introspect.body, { active: false });
  });

  test("introspection describes the client's own active token", async () => {
    const cred = await server.newCredential({ scopes: ['read', 'write'] });
    const token = await server.accessToken(cred.clientId, cred.clientSecret);
    const res = await form(server, '/oauth2/introspect', { token, client_id: cred.clientId, client_secret: cred.clientSecret });
    assert.equal(res.status, 200);
    assert.equal(res.body.active, true);
    assert.equal(res.body.client_id, cred.clientId);
    assert.equal(res.body.scope, 'read write');
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.application_id, cred.appId);
    assert.equal(res.body.exp, res.body.iat + 900);
    const garbage = await form(server, '/oauth2/introspect', { token: 'not-a-token', client_id: cred.clientId, client_secret: cred.clientSecret });
    assert.deepEqual(garbage.body, { active: false });
  });

  test('both endpoints need client authentication, a token parameter and a form body', async () => {
    const cred = await server.newCredential();
    const token = await server.accessToken(cred.clientId, cred.clientSecret);
    for (const path of ['/oauth2/revoke', '/oauth2/introspect']) {
      const wrong = await form(server, path, { token, client_id: cred.clientId, client_secret: `${cred.clientSecret}x` });
      assert.equal(wrong.status, 401, path);
      assert.equal(wrong.body.error, 'invalid_client');
      const missing = await form(server, path, { client_id: cred.clientId, client_secret: cred.clientSecret });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error, 'invalid_request');
      const json = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      assert.equal(json.status, 400);
      assert.equal(((await json.json()) as any).error, 'invalid_request');
    }
    assert.equal((await server.me(token)).status, 200, 'refused revocations revoke nothing');
  });

  test('a revoked token is forgotten once it would have expired anyway', async () => {
    const cred = await server.newCredential();
    const token = await server.accessToken(cred.clientId, cred.clientSecret);
    await form(server, '/oauth2/revoke', { token, client_id: cred.clientId, client_secret: cred.clientSecret });
    const count = async () => (await server.services.store.db.selectFrom('revoked_tokens').select('jti').execute()).length;
    const before = await count();
    assert.ok(before >= 1);
    clock.advance(900);
    await server.services.denylist.prune();
    assert.equal(await count(), 0);
  });

  test('the metadata names both endpoints', async () => {
    const meta = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as any;
    assert.equal(meta.revocation_endpoint, 'http://portcullis.test/oauth2/revoke');
    assert.equal(meta.introspection_endpoint, 'http://portcullis.test/oauth2/introspect');
  });
});

test('a revoked token stays revoked across a restart', async () => {
  const dataDir = tempDir();
  try {
    const first = await startTestServer({}, { dataDir });
    const cred = await first.newCredential();
    const token = await first.accessToken(cred.clientId, cred.clientSecret);
    await form(first, '/oauth2/revoke', { token, client_id: cred.clientId, client_secret: cred.clientSecret });
    await first.stop();
    const second = await startTestServer({}, { dataDir });
    try {
      assert.equal((await second.me(token)).status, 401);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
