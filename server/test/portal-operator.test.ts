import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PortalClient } from './helpers/portal.js';
import { recordSecret } from './helpers/secrets.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let counter = 0;
const email = (who: string) => `${who}.${process.pid}.${++counter}@example.com`;

describe('operator console API (/portal/api/operator)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('only a signed-in account granted the operator role may use it: 401 signed out, 403 otherwise, and again 403 once revoked', async () => {
    const anonymous = new PortalClient(server.url);
    await anonymous.session();
    assert.equal((await anonymous.call('GET', '/operator/partners')).status, 401);
    const person = new PortalClient(server.url);
    const address = email('person');
    await person.signUp(address);
    const refused = await person.call('PUT', '/operator/partners/77', { name: 'Sneaky' });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errors[0].code, 'not-an-operator');
    assert.match(refused.body.errors[0].detail, /portcullis admin operators grant EMAIL/);
    assert.equal((await server.admin('GET', '/partners/77')).status, 404, 'nothing was created');
    await person.operator('POST', '/operators/grant', { email: address });
    assert.equal((await person.call('GET', '/operator/partners')).status, 200);
    await person.operator('POST', '/operators/revoke', { email: address });
    assert.equal((await person.call('GET', '/operator/partners')).status, 403);
  });

  test("each operator action is audited under that operator's identity, not the shared operator token", async () => {
    const tam = new PortalClient(server.url);
    const address = email('tam');
    const user = await tam.signUp(address);
    await tam.operator('POST', '/operators/grant', { email: address });
    assert.equal((await tam.session()).body.user.operator, true);
    const partner = await tam.call('PUT', '/operator/partners/4242', { name: 'Console partner', require_token: true, rate_limit_per_minute: 60 });
    assert.equal(partner.status, 201, JSON.stringify(partner.body));
    const token = await tam.call('POST', '/operator/partners/4242/static-tokens', { name: 'handover' });
    assert.equal(token.status, 201);
    recordSecret(token.body.token);
    assert.equal((await tam.call('DELETE', `/operator/partners/4242/static-tokens/${token.body.id}`)).status, 200);
    const bad = await tam.call('PUT', '/operator/partners/4242', { name: '', require_token: 'yes' });
    assert.equal(bad.status, 400);
    const events = await server.admin('GET', '/audit-events?limit=10');
    const mine = events.body.filter((e: any) => e.actor === `operator:user:${user.id}`).map((e: any) => e.action);
    assert.deepEqual(mine.sort(), ['partner.created', 'static_token.created', 'static_token.revoked']);
    const named = await tam.call('GET', '/operator/audit?limit=5');
    assert.equal(named.status, 200);
    assert.ok(named.body.some((e: any) => e.actor === `${address} (operator)` && e.action === 'partner.created'));
    const search = await tam.call('GET', `/operator/organizations?search=${'x'.repeat(500)}`);
    assert.equal(search.status, 200);
    assert.deepEqual(search.body, []);
  });

  test('an operator registers an API, opens scopes to self-service, grants and revokes it for an application_id, and deletes it; all audited as that operator', async () => {
    const op = new PortalClient(server.url);
    const address = email('apiop');
    const user = await op.signUp(address);
    await op.operator('POST', '/operators/grant', { email: address });
    const org = await op.operator('POST', '/organizations', { name: 'API customers' });
    const application = await op.operator('POST', `/organizations/${org.id}/applications`, { name: 'Reporter', scopes: [] });

    const created = await op.call('POST', '/operator/apis', {
      identifier: 'https://reports.console.example',
      name: 'Reports',
      scopes: ['reports:read', 'reports:write'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.self_service_scopes, []);
    const apiId = created.body.id;
    const dup = await op.call('POST', '/operator/apis', { identifier: 'https://reports.console.example', name: 'Again' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.errors[0].code, 'api-exists');
    const bad = await op.call('POST', '/operator/apis', { identifier: 'not a uri', name: 'Bad' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].code, 'invalid-api');

    const foreign = await op.call('PATCH', `/operator/apis/${apiId}`, { self_service_scopes: ['billing'] });
    assert.equal(foreign.status, 400);
    assert.equal(foreign.body.errors[0].code, 'invalid-self_service_scopes');
    const opened = await op.call('PATCH', `/operator/apis/${apiId}`, { self_service_scopes: ['reports:read'] });
    assert.equal(opened.status, 200);
    assert.deepEqual(opened.body.self_service_scopes, ['reports:read']);
    assert.deepEqual((await op.call('GET', '/operator/apis')).body.find((a: any) => a.id === apiId).self_service_scopes, ['reports:read']);

    const platform = await op.call('PATCH', '/operator/default-audience', { self_service_scopes: ['retail-media'] });
    assert.equal(platform.status, 200);
    assert.deepEqual((await op.call('GET', '/operator/default-audience')).body.self_service_scopes, ['retail-media']);

    const grant = await op.call('PUT', `/operator/applications/${application.id}/apis/${apiId}`, { scopes: ['reports:write'] });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    assert.deepEqual(grant.body.scopes, ['reports:write']);
    const undefinedScope = await op.call('PUT', `/operator/applications/${application.id}/apis/${apiId}`, { scopes: ['nope'] });
    assert.equal(undefinedScope.status, 400);
    assert.equal((await op.call('PUT', `/operator/applications/999999/apis/${apiId}`, {})).status, 404);
    assert.deepEqual(
      (await op.call('GET', `/operator/applications/${application.id}/apis`)).body.map((g: any) => g.scopes),
      [['reports:write']],
    );
    assert.equal((await op.call('DELETE', `/operator/applications/${application.id}/apis/${apiId}`)).status, 200);
    assert.deepEqual((await op.call('GET', `/operator/applications/${application.id}/apis`)).body, []);
    assert.equal((await op.call('DELETE', `/operator/applications/${application.id}/apis/${apiId}`)).status, 404);
    assert.equal((await op.call('DELETE', `/operator/apis/${apiId}`)).status, 200);
    assert.equal(
      (await op.call('GET', '/operator/apis')).body.some((a: any) => a.id === apiId),
      false,
    );

    const events = await server.admin('GET', '/audit-events?limit=20');
    const mine = events.body.filter((e: any) => e.actor === `operator:user:${user.id}`).map((e: any) => e.action);
    assert.deepEqual(mine.sort(), [
      'api.created',
      'api.deleted',
      'api.grant_revoked',
      'api.granted',
      'api.self_service_changed',
      'default_audience.self_service_changed',
    ]);
  });
});
