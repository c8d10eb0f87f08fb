import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { ManualClock } from '../src/domain/clock.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from './helpers/server.js';

const isErrorShape = (body: any, code?: string) => {
  assert.ok(Array.isArray(body.errors) && body.errors.length === 1, `errors shape: ${JSON.stringify(body)}`);
  const [e] = body.errors;
  for (const field of ['traceId', 'type', 'code', 'title', 'detail']) assert.equal(typeof e[field], 'string', `${field} in ${JSON.stringify(e)}`);
  assert.ok(['validation', 'authentication', 'authorization', 'availability', 'quota', 'access-control', 'unknown'].includes(e.type));
  if (code) assert.equal(e.code, code);
  return e;
};

describe('operator API', () => {
  let server: TestServer;
  const clock = new ManualClock();
  before(async () => {
    server = await startTestServer({ PORTCULLIS_DEACTIVATION_GRACE: '900' }, { clock });
  });
  after(() => server.stop());

  test('creates organizations and applications with positive integer ids', async () => {
    const org = await server.admin('POST', '/organizations', { name: 'Acme' });
    assert.equal(org.status, 201);
    assert.ok(Number.isInteger(org.body.id) && org.body.id > 0);
    assert.equal(org.body.name, 'Acme');
    const app = await server.admin('POST', `/organizations/${org.body.id}/applications`, { name: 'Shop', scopes: ['read', 'write'] });
    assert.equal(app.status, 201);
    assert.ok(Number.isInteger(app.body.id) && app.body.id > 0);
    assert.equal(app.body.organization_id, org.body.id);
    assert.deepEqual(app.body.scopes, ['read', 'write']);
    const listed = await server.admin('GET', `/organizations/${org.body.id}/applications`);
    assert.deepEqual(
      listed.body.map((a: any) => a.id),
      [app.body.id],
    );
  });

  test('a credential is created with its secret once; the list never shows a secret', async () => {
    const { appId } = await server.newCredential();
    const created = await server.admin('POST', `/applications/${appId}/credentials`, { name: 'Production Credentials' });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.body).sort(), ['application_id', 'client_id', 'client_secret', 'created_at', 'name', 'status']);
    assert.match(created.body.client_secret, /^pcs_[A-Za-z0-9_-]{49}$/);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const list = await server.admin('GET', `/applications/${appId}/credentials`);
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 2);
    const text = JSON.stringify(list.body);
    assert.ok(!text.includes(created.body.client_secret), 'the secret must not appear in the list');
    assert.ok(!/secret/i.test(text), 'no secret field in the list');
    const item = list.body.find((c: any) => c.client_id === created.body.client_id);
    assert.equal(item.status, 'active');
    assert.equal(item.name, 'Production Credentials');
    assert.equal(item.last_used_at, null);
    assert.ok(!Number.isNaN(Date.parse(item.created_at)));
  });

  test('last_used_at follows token requests without a write per request', async () => {
    const { appId, clientId, clientSecret } = await server.newCredential();
    await server.accessToken(clientId, clientSecret);
    const list = await server.admin('GET', `/applications/${appId}/credentials`);
    assert.equal(list.body[0].last_used_at, new Date(clock.now()).toISOString());
  });

  test('a sixth active credential is refused with 409 and a clear message', async () => {
    const { appId } = await server.newCredential();
    for (let i = 2; i <= 5; i++) assert.equal((await server.admin('POST', `/applications/${appId}/credentials`, { name: `key ${i}` })).status, 201);
    const sixth = await server.admin('POST', `/applications/${appId}/credentials`, { name: 'key 6' });
    assert.equal(sixth.status, 409);
    const e = isErrorShape(sixth.body, 'credential-limit-reached');
    assert.match(e.detail, /5 active credentials/);
  });

  test('concurrent creations never exceed five active credentials', async () => {
    const org = await server.admin('POST', '/organizations', { name: 'Race' });
    const app = await server.admin('POST', `/organizations/${org.body.id}/applications`, { name: 'Race app' });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => server.admin('POST', `/applications/${app.body.id}/credentials`, { name: `k${i}` })),
    );
    assert.equal(results.filter((r) => r.status === 201).length, 5);
    assert.equal(results.filter((r) => r.status === 409).length, 7);
  });

  test('a deleted credential frees its place among the five and shows as deactivating', async () => {
    const { appId, clientId } = await server.newCredential();
    for (let i = 2; i <= 5; i++) await server.admin('POST', `/applications/${appId}/credentials`, { name: `key ${i}` });
    const deleted = await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.deactivates_at, new Date(clock.now() + 900_000).toISOString());
    assert.equal((await server.admin('POST', `/applications/${appId}/credentials`, { name: 'replacement' })).status, 201);
    const list = await server.admin('GET', `/applications/${appId}/credentials`);
    const item = list.body.find((c: any) => c.client_id === clientId);
    assert.equal(item.status, 'deactivating');
    assert.equal(item.deactivates_at, deleted.body.deactivates_at);
  });

  test('renaming changes the name and nothing else', async () => {
    const { appId, clientId, clientSecret } = await server.newCredential();
    const renamed = await server.admin('PATCH', `/applications/${appId}/credentials/${clientId}`, { name: 'Troubleshooting Credentials' });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.name, 'Troubleshooting Credentials');
    assert.equal(renamed.body.client_id, clientId);
    await server.accessToken(clientId, clientSecret);
  });

  test('deletion keeps the credential working for the grace period, then it gets invalid_client', async () => {
    const { appId, clientId, clientSecret } = await server.newCredential();
    const before = await server.accessToken(clientId, clientSecret);
    await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`);
    clock.advance(899);
    const during = await server.accessToken(clientId, clientSecret);
    assert.equal((await server.me(during)).status, 200);
    clock.advance(1);
    const res = await server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
    // Tokens issued during the grace period live out their own lifetime.
    assert.equal((await server.me(during)).status, 200);
    const list = await server.admin('GET', `/applications/${appId}/credentials`);
    assert.equal(
      list.body.some((c: any) => c.client_id === clientId),
      false,
      'a deactivated credential leaves the list',
    );
    clock.advance(900);
    assert.equal((await server.me(before)).status, 401);
  });

  test('revoking still works after the grace period, and stops the tokens issued during it', async () => {
    const { appId, clientId, clientSecret } = await server.newCredential();
    await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`);
    clock.advance(600);
    const late = await server.accessToken(clientId, clientSecret);
    clock.advance(301);
    assert.equal((await server.me(late)).status, 200, 'a token from the grace period outlives it');
    assert.equal((await server.admin('PATCH', `/applications/${appId}/credentials/${clientId}`, { name: 'x' })).status, 404);
    assert.equal((await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`)).status, 404);
    const revoked = await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}?immediately=true`);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.status, 'revoked');
    assert.equal((await server.me(late)).status, 401);
  });

  test('every change is audited with actor, time, target and IP', async () => {
    const { orgId, appId, clientId } = await server.newCredential();
    await server.admin('PATCH', `/applications/${appId}/credentials/${clientId}`, { name: 'renamed' });
    await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`);
    const second = await server.admin('POST', `/applications/${appId}/credentials`, { name: 'second' });
    await server.admin('DELETE', `/applications/${appId}/credentials/${second.body.client_id}?immediately=true`);
    await server.admin('POST', '/keys/rotate', {});
    const events = await server.admin('GET', `/audit-events?organization_id=${orgId}`);
    const actions = events.body.map((e: any) => `${e.action} ${e.target_id}`);
    assert.deepEqual(actions.slice(0, 4), [
      `credential.revoked ${second.body.client_id}`,
      `credential.created ${second.body.client_id}`,
      `credential.deleted ${clientId}`,
      `credential.renamed ${clientId}`,
    ]);
    for (const e of events.body) {
      assert.equal(e.actor, 'operator');
      assert.equal(e.ip, '127.0.0.1');
      assert.equal(e.organization_id, orgId);
      assert.ok(!Number.isNaN(Date.parse(e.occurred_at)));
    }
    const all = await server.admin('GET', '/audit-events?limit=1');
    assert.equal(all.body[0].action, 'key.rotated');
    assert.equal(all.body[0].target_type, 'signing_key');
    assert.ok(!JSON.stringify((await server.admin('GET', '/audit-events?limit=1000')).body).includes('pcs_'), 'no secret in the audit log');
  });

  test('anything but the operator token is 401 in the errors shape', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token-wrong-token',
      `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}`,
      ADMIN_TOKEN,
      `Bearer ${ADMIN_TOKEN}x`,
    ]) {
      const res = await fetch(`${server.url}/admin/v1/organizations`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, String(authorization));
      isErrorShape(await res.json(), 'unauthorized');
    }
    const unknownPath = await fetch(`${server.url}/admin/v1/nothing-here`);
    assert.equal(unknownPath.status, 401, 'unknown admin paths do not reveal themselves before authentication');
  });

  test('bad input gets a 4xx with a clear message, never a 500', async () => {
    const { appId, clientId } = await server.newCredential();
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', '/organizations', { name: '' }, 400, /must not be empty/],
      ['POST', '/organizations', { name: '   ' }, 400, /must not be empty/],
      ['POST', '/organizations', { name: 'x'.repeat(101) }, 400, /at most 100/],
      ['POST', '/organizations', { name: 'bad\u0007name' }, 400, /control characters/],
      ['POST', '/organizations', { name: 'line\nbreak' }, 400, /control characters/],
      ['POST', '/organizations', { name: 42 }, 400, /must be a string/],
      ['POST', '/organizations', {}, 400, /name is required/],
      ['POST', '/organizations', { name: 'ok', extra: 1 }, 400, /unknown field "extra"/],
      ['POST', '/organizations', [1, 2], 400, /JSON object/],
      ['POST', '/organizations/0/applications', { name: 'x' }, 400, /orgId must be a positive integer/],
      ['POST', '/organizations/abc/applications', { name: 'x' }, 400, /orgId must be a positive integer/],
      ['POST', '/organizations/99999/applications', { name: 'x' }, 404, /organization 99999 was not found/],
      ['POST', '/organizations/1/applications', { name: 'x', scopes: 'read' }, 400, /scopes must be an array/],
      ['POST', '/organizations/1/applications', { name: 'x', scopes: ['a b'] }, 400, /not valid/],
      ['POST', '/applications/99999/credentials', { name: 'x' }, 404, /application 99999 was not found/],
      ['PATCH', `/applications/${appId}/credentials/${clientId}`, { name: '' }, 400, /must not be empty/],
      ['PATCH', `/applications/${appId}/credentials/nope`, { name: 'x' }, 404, /was not found/],
      ['PATCH', `/applications/${appId + 1000}/credentials/${clientId}`, { name: 'x' }, 404, /was not found/],
      ['DELETE', `/applications/${appId}/credentials/${clientId}?immediately=maybe`, undefined, 400, /true or false/],
      ['POST', '/keys/rotate', { activate_after_seconds: -1 }, 400, /activate_after_seconds/],
      ['GET', '/no/such/path', undefined, 404, /was not found/],
    ];
    for (const [method, target, body, status, detail] of cases) {
      const res = await server.admin(method, target, body);
      assert.equal(res.status, status, `${method} ${target} ${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
      const e = isErrorShape(res.body);
      assert.match(e.detail, detail, `${method} ${target}`);
    }
  });

  test('malformed JSON, a wrong content type and an oversized body are 4xx in the errors shape', async () => {
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const post = (contentType: string, body: string) =>
      fetch(`${server.url}/admin/v1/organizations`, { method: 'POST', headers: { ...headers, 'content-type': contentType }, body });
    const bad = await post('application/json', '{"name": ');
    assert.equal(bad.status, 400);
    assert.match(isErrorShape(await bad.json(), 'invalid-json').detail, /not valid JSON/);
    const form = await post('application/x-www-form-urlencoded', 'name=x');
    assert.equal(form.status, 415);
    isErrorShape(await form.json());
    const huge = await post('application/json', JSON.stringify({ name: 'x'.repeat(100_000) }));
    assert.equal(huge.status, 413);
    isErrorShape(await huge.json(), 'body-too-large');
  });

  test('a revoked or deactivated credential can no longer be renamed or deleted', async () => {
    const { appId, clientId } = await server.newCredential();
    await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}?immediately=true`);
    assert.equal((await server.admin('PATCH', `/applications/${appId}/credentials/${clientId}`, { name: 'x' })).status, 404);
    assert.equal((await server.admin('DELETE', `/applications/${appId}/credentials/${clientId}`)).status, 404);
  });
});
