import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { decideTarget } from '../src/oauth/resource.js';
import { runCli } from './helpers/process.js';
import { ADMIN_TOKEN, ISSUER_FOR_TESTS, startTestServer, type TestServer } from './helpers/server.js';

const REPORTS = 'https://reports.example.com';
const BILLING = 'https://billing.example.com/v1';

describe('APIs with their own audience (RFC 8707 resource)', () => {
  let server: TestServer;
  let cred: { appId: number; clientId: string; clientSecret: string };
  let reportsId: number;
  let billingId: number;
  before(async () => {
    server = await startTestServer();
    cred = await server.newCredential({ scopes: ['retail-media'] });
    const reports = await server.admin('POST', '/apis', { identifier: REPORTS, name: 'Reports', scopes: ['reports:read', 'reports:write'] });
    const billing = await server.admin('POST', '/apis', { identifier: BILLING, name: 'Billing', scopes: ['invoices'] });
    assert.equal(reports.status, 201, JSON.stringify(reports.body));
    assert.equal(billing.status, 201);
    reportsId = reports.body.id;
    billingId = billing.body.id;
    assert.equal((await server.admin('PUT', `/applications/${cred.appId}/apis/${reportsId}`, { scopes: ['reports:read'] })).status, 200);
  });
  after(() => server.stop());

  const token = (extra: Record<string, string> = {}) =>
    server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, ...extra });

  test("a token asked with resource=<API> carries the API's identifier as aud and only the scopes of the grant", async () => {
    const res = await token({ resource: REPORTS });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.aud, REPORTS);
    assert.equal(claims.scope, 'reports:read');
    assert.equal(res.body.scope, 'reports:read');
  });

  test("without resource, tokens keep today's audience and the application's scopes", async () => {
    const res = await token();
    assert.equal(res.status, 200);
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.aud, ISSUER_FOR_TESTS);
    assert.equal(claims.scope, 'retail-media');
    assert.equal((await server.me(res.body.access_token)).status, 200);
  });

  test('an API the application is not granted, or a resource that is no absolute URI, is invalid_target', async () => {
    for (const resource of [BILLING, 'https://unknown.example', 'not a uri', `${REPORTS}#frag`]) {
      const res = await token({ resource });
      assert.equal(res.status, 400, resource);
      assert.equal(res.body.error, 'invalid_target', resource);
    }
  });

  test("a scope outside the application's grant of the API is invalid_scope, even one the application holds itself", async () => {
    for (const scope of ['reports:write', 'retail-media']) {
      const res = await token({ resource: REPORTS, scope });
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_scope');
    }
  });

  test("the platform's own endpoints refuse an API's token, yet its client can revoke and introspect it", async () => {
    const res = await token({ resource: REPORTS });
    const apiToken = res.body.access_token as string;
    assert.equal((await server.me(apiToken)).status, 401, 'a token for the Reports API is not for the platform');
    const form = (path: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: apiToken, client_id: cred.clientId, client_secret: cred.clientSecret }),
      });
    assert.equal(((await (await form('/oauth2/introspect')).json()) as { active: boolean; aud: string }).aud, REPORTS);
    assert.equal((await form('/oauth2/revoke')).status, 200);
    const feed = (await (await fetch(`${server.url}/oauth2/revocations`)).json()) as { tokens: Array<{ jti: string }> };
    assert.ok(
      feed.tokens.some((t) => t.jti === decodeJwt(apiToken).jti),
      'the revoked API token is in the feed',
    );
  });

  test('a revoked grant, or a deleted API, stops new tokens for it at once', async () => {
    const other = await server.newCredential();
    assert.equal((await server.admin('PUT', `/applications/${other.appId}/apis/${billingId}`, {})).status, 200);
    const ask = () => server.token({ grant_type: 'client_credentials', client_id: other.clientId, client_secret: other.clientSecret, resource: BILLING });
    const first = await ask();
    assert.equal(first.status, 200);
    assert.equal(decodeJwt(first.body.access_token).scope, 'invoices', 'a grant without scopes gives all of the API');
    assert.equal((await server.admin('DELETE', `/applications/${other.appId}/apis/${billingId}`)).status, 200);
    assert.equal((await ask()).body.error, 'invalid_target');
    assert.equal((await server.admin('PUT', `/applications/${other.appId}/apis/${billingId}`, {})).status, 200);
    assert.equal((await ask()).status, 200);
    const temp = await server.admin('POST', '/apis', { identifier: 'https://temp.example', name: 'Temp', scopes: [] });
    assert.equal((await server.admin('PUT', `/applications/${other.appId}/apis/${temp.body.id}`, {})).status, 200);
    assert.equal((await server.admin('DELETE', `/apis/${temp.body.id}`)).status, 200);
    const gone = await server.token({
      grant_type: 'client_credentials',
      client_id: other.clientId,
      client_secret: other.clientSecret,
      resource: 'https://temp.example',
    });
    assert.equal(gone.body.error, 'invalid_target');
  });

  test('the operator API refuses a bad identifier, a second API with the same identifier, and a scope the API does not define', async () => {
    for (const identifier of ['reports', 'ftp://x.example', 'https://x.example/#a', '']) {
      const res = await server.admin('POST', '/apis', { identifier, name: 'X' });
      assert.equal(res.status, 400, identifier);
    }
    assert.equal((await server.admin('POST', '/apis', { identifier: REPORTS, name: 'Again' })).status, 409);
    const foreign = await server.admin('PUT', `/applications/${cred.appId}/apis/${reportsId}`, { scopes: ['invoices'] });
    assert.equal(foreign.status, 400);
    assert.equal((await server.admin('PUT', `/applications/999999/apis/${reportsId}`, {})).status, 404);
    const grants = await server.admin('GET', `/applications/${cred.appId}/apis`);
    assert.deepEqual(grants.body, [{ api_id: reportsId, identifier: REPORTS, name: 'Reports', scopes: ['reports:read'] }]);
  });

  test('portcullis admin apis: create, list, grant and grants from the shell', async () => {
    const env = { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN };
    const created = await runCli(['admin', 'apis', 'create', '--identifier', 'https://cli.example', '--name', 'CLI', '--scopes', 'a,b', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const api = JSON.parse(created.stdout);
    assert.deepEqual(api.scopes, ['a', 'b']);
    const granted = await runCli(['admin', 'apis', 'grant', '--app', String(cred.appId), '--id', String(api.id), '--scopes', 'a'], env);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /granted API https:\/\/cli\.example with scopes a/);
    const listed = await runCli(['admin', 'apis', 'list'], env);
    assert.match(listed.stdout, /https:\/\/cli\.example/);
    const res = await token({ resource: 'https://cli.example' });
    assert.equal(decodeJwt(res.body.access_token).aud, 'https://cli.example');
  });

  test('portcullis admin apis self-service opens some of an API’s scopes to portal apps, refuses one it does not define, and "" closes them', async () => {
    const env = { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN };
    const created = await runCli(
      ['admin', 'apis', 'create', '--identifier', 'https://self.example', '--name', 'Self', '--scopes', 'a,b', '--self-service', 'b', '--json'],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const api = JSON.parse(created.stdout);
    assert.deepEqual(api.self_service_scopes, ['b']);
    const opened = await runCli(['admin', 'apis', 'self-service', '--id', String(api.id), '--scopes', 'a,b'], env);
    assert.equal(opened.code, 0, opened.stderr);
    assert.match(opened.stdout, /portal apps may take a b/);
    const foreign = await runCli(['admin', 'apis', 'self-service', '--id', String(api.id), '--scopes', 'c'], env);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr + foreign.stdout, /defines no scope "c"/);
    const closed = await runCli(['admin', 'apis', 'self-service', '--id', String(api.id), '--scopes', ''], env);
    assert.equal(closed.code, 0, closed.stderr);
    assert.deepEqual((await server.admin('GET', '/apis')).body.find((a: any) => a.id === api.id).self_service_scopes, []);
    assert.equal((await server.admin('PATCH', `/apis/${api.id}`, { self_service_scopes: 'b' })).status, 400);
    assert.equal((await server.admin('PATCH', '/apis/999999', { self_service_scopes: [] })).status, 404);
    const platform = await runCli(['admin', 'apis', 'self-service', '--id', 'default', '--scopes', 'retail-media'], env);
    assert.equal(platform.code, 0, platform.stderr);
    assert.match(platform.stdout, /default audience .*: portal apps may take retail-media/);
    assert.deepEqual((await server.admin('GET', '/default-audience')).body.self_service_scopes, ['retail-media']);
    assert.equal((await server.admin('PATCH', '/default-audience', { self_service_scopes: ['bad scope'] })).status, 400);
  });
});

test('decideTarget: no resource keeps the default; one must be granted and be an absolute URI without fragment', () => {
  const grants = [{ identifier: 'https://a.example', scopes: ['x'] }];
  assert.deepEqual(decideTarget(undefined, grants), { audience: undefined, scopes: undefined });
  assert.deepEqual(decideTarget('https://a.example', grants), { audience: 'https://a.example', scopes: ['x'] });
  for (const bad of ['https://b.example', 'a.example', 'https://a.example#x']) {
    assert.throws(
      () => decideTarget(bad, grants),
      (err: { code?: string }) => err.code === 'invalid_target',
    );
  }
});
