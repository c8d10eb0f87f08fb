import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { decodeJwt } from 'jose';
import { ManualClock } from '../src/domain/clock.js';
import { openPostgres } from '../src/store/db.js';
import { PortalClient } from './helpers/portal.js';
import { recordSecret } from './helpers/secrets.js';
import { ISSUER_FOR_TESTS, startTestServer, type TestServer } from './helpers/server.js';
import { createTestDatabase, needService, postgresAvailable } from './helpers/services.js';
import { clearOfWindowEdge } from './helpers/windows.js';

const PASSWORD = 'a sturdy passphrase 42';
let counter = 0;
const email = (who: string) => `${who}.${process.pid}.${++counter}@example.com`;

function assertError(res: { status: number; body: any }, status: number, code?: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const error = res.body.errors?.[0];
  assert.ok(error, `errors shape: ${JSON.stringify(res.body)}`);
  for (const field of ['traceId', 'type', 'code', 'title', 'detail']) assert.equal(typeof error[field], 'string', field);
  assert.ok(['validation', 'authentication', 'authorization', 'availability', 'quota', 'access-control', 'unknown'].includes(error.type));
  if (code) assert.equal(error.code, code);
  return error as { detail: string; code: string; type: string };
}

describe('portal accounts and sessions', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('sign-up sets an HttpOnly SameSite=Lax session cookie (not Secure over plain HTTP) and answers who is signed in', async () => {
    const client = new PortalClient(server.url);
    const anonymous = await client.session();
    assert.equal(anonymous.status, 200);
    assert.equal(anonymous.body.user, null);
    assert.equal(anonymous.headers.get('cache-control'), 'no-store');
    const res = await client.call('POST', '/signup', { email: ' Ada@Example.com ', password: PASSWORD });
    assert.equal(res.status, 201);
    assert.equal(res.body.user.email, 'ada@example.com');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('portcullis_session='));
    assert.ok(cookie);
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Lax/i);
    assert.doesNotMatch(cookie, /Secure/i);
    const me = await client.session();
    assert.equal(me.body.user.email, 'ada@example.com');
  });

  test('the session cookie is Secure when the portal is served over HTTPS', async () => {
    const https = await startTestServer({ PORTCULLIS_ISSUER: 'https://portal.example' });
    try {
      const client = new PortalClient(https.url);
      await client.session();
      const res = await client.call('POST', '/signup', { email: email('secure'), password: PASSWORD });
      assert.match(res.headers.getSetCookie().find((c) => c.startsWith('portcullis_session=')) ?? '', /Secure/);
    } finally {
      await https.stop();
    }
  });

  test('bad sign-ups get a clear 400 or 409: empty, oversized, not an email, short, common, duplicate', async () => {
    const client = new PortalClient(server.url);
    await client.session();
    assertError(await client.call('POST', '/signup', { email: '', password: PASSWORD }), 400, 'invalid-email');
    assertError(await client.call('POST', '/signup', { email: `${'a'.repeat(250)}@example.com`, password: PASSWORD }), 400, 'invalid-email');
    assertError(await client.call('POST', '/signup', { email: 'not-an-email', password: PASSWORD }), 400, 'invalid-email');
    const short = assertError(await client.call('POST', '/signup', { email: email('p'), password: 'short pass' }), 400, 'invalid-password');
    assert.match(short.detail, /at least 12 characters/);
    assertError(await client.call('POST', '/signup', { email: email('p'), password: 'x'.repeat(300) }), 400, 'invalid-password');
    const common = assertError(await client.call('POST', '/signup', { email: email('p'), password: 'Password1234' }), 400, 'invalid-password');
    assert.match(common.detail, /too common/);
    assertError(await client.call('POST', '/signup', { password: PASSWORD }), 400, 'missing-email');
    const taken = email('dup');
    await new PortalClient(server.url).signUp(taken);
    const dup = assertError(await client.call('POST', '/signup', { email: taken.toUpperCase(), password: PASSWORD }), 409, 'email-taken');
    assert.match(dup.detail, /already exists/);
  });

  test('every state-changing request needs the CSRF token; a stale one is refused after the session rotates', async () => {
    const client = new PortalClient(server.url);
    await client.session();
    assertError(await client.call('POST', '/signup', { email: email('c'), password: PASSWORD }, { csrf: null }), 403, 'csrf-token-invalid');
    const address = email('c');
    await client.signUp(address);
    assertError(await client.call('POST', '/orgs', { name: 'No token' }, { csrf: null }), 403, 'csrf-token-invalid');
    assertError(await client.call('POST', '/orgs', { name: 'Wrong token' }, { csrf: 'x'.repeat(43) }), 403, 'csrf-token-invalid');
    const stale = client.csrf;
    await client.signIn(address);
    assert.notEqual(client.csrf, stale, 'sign-in rotates the session and its token');
    assertError(await client.call('POST', '/orgs', { name: 'Stale' }, { csrf: stale }), 403, 'csrf-token-invalid');
    assert.equal((await client.call('POST', '/orgs', { name: 'Fresh' })).status, 201);
  });

  test('sign-in rotates the session: the cookie from before no longer works', async () => {
    const address = email('rot');
    const first = new PortalClient(server.url);
    await first.signUp(address);
    const before = first.cookie('portcullis_session');
    await first.signIn(address);
    const after = first.cookie('portcullis_session');
    assert.ok(before && after && before !== after);
    const replay = await fetch(`${server.url}/portal/api/session`, { headers: { cookie: `portcullis_session=${before}` } });
    assert.equal(((await replay.json()) as any).user, null);
  });

  test('an unknown email and a wrong password get the same answer; repeated failures refuse this address for the account, with Retry-After', async () => {
    const address = email('lock');
    await new PortalClient(server.url).signUp(address);
    const client = new PortalClient(server.url);
    const unknown = assertError(await client.signIn(email('nobody'), PASSWORD), 401, 'invalid-credentials');
    const wrong = assertError(await client.signIn(address, 'wrong password 123'), 401, 'invalid-credentials');
    assert.equal(unknown.detail, wrong.detail);
    for (let i = 0; i < 3; i++) assertError(await client.signIn(address, 'wrong password 123'), 401);
    const locked = assertError(await client.signIn(address, 'wrong password 123'), 401);
    assert.equal(locked.code, 'invalid-credentials');
    const response = await client.signIn(address, PASSWORD);
    const refused = assertError(response, 429, 'too-many-attempts');
    assert.match(refused.detail, /try again in/);
    assert.ok(Number(response.headers.get('retry-after')) >= 1, 'every 429 carries Retry-After');
  });

  test('sign-out ends the session; change password needs the current one and ends other sessions', async () => {
    const address = email('pw');
    const laptop = new PortalClient(server.url);
    await laptop.signUp(address);
    const phone = new PortalClient(server.url);
    assert.equal((await phone.signIn(address)).status, 200);
    const wrong = assertError(await laptop.call('POST', '/password', { current_password: 'not my password', new_password: 'another sturdy passphrase' }), 400);
    assert.equal(wrong.code, 'wrong-current-password');
    assertError(await laptop.call('POST', '/password', { current_password: PASSWORD, new_password: 'short' }), 400, 'invalid-new_password');
    assert.equal((await laptop.call('POST', '/password', { current_password: PASSWORD, new_password: 'another sturdy passphrase' })).status, 200);
    assert.equal((await phone.session()).body.user, null, 'the other session ended');
    assert.equal((await laptop.session()).body.user.email, address, 'this one continues with a new token');
    assertError(await new PortalClient(server.url).signIn(address, PASSWORD), 401);
    assert.equal((await new PortalClient(server.url).signIn(address, 'another sturdy passphrase')).status, 200);
    assert.equal((await laptop.call('POST', '/signout')).status, 204);
    assert.equal((await laptop.session()).body.user, null);
    assertError(await laptop.call('GET', '/orgs'), 401, 'not-signed-in');
  });
});

describe('portal abuse limits (one trusted proxy hop: the address is the X-Forwarded-For entry it appended)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ PORTCULLIS_TRUST_PROXY: '1', PORTCULLIS_SIGNUP_LIMIT_PER_IP: '3', PORTCULLIS_SIGNIN_LIMIT_PER_IP: '100' });
  });
  after(() => server.stop());
  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  test('wrong passwords from another address never lock the account for its owner', async () => {
    const address = email('victim');
    await new PortalClient(server.url, from('198.51.100.10')).signUp(address);
    const attacker = new PortalClient(server.url, from('203.0.113.10'));
    const statuses: number[] = [];
    await clearOfWindowEdge(15 * 60_000, 30_000); // the attempts in one 15-minute window
    for (let i = 0; i < 8; i++) statuses.push((await attacker.signIn(address, `wrong password ${i}xx`)).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    const refused = await attacker.signIn(address, PASSWORD);
    assertError(refused, 429, 'too-many-attempts');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal((await new PortalClient(server.url, from('198.51.100.10')).signIn(address)).status, 200, 'the owner, from their address, signs in');
    assert.equal((await new PortalClient(server.url, from('198.51.100.11')).signIn(address)).status, 200, 'and from a new one');
  });

  test('sign-ups are limited per address, with Retry-After; other addresses are not affected', async () => {
    const client = () => new PortalClient(server.url, from('192.0.2.30'));
    await clearOfWindowEdge(3_600_000, 30_000); // the sign-ups in one clock hour
    for (let i = 0; i < 3; i++) await client().signUp(email('many'));
    const c = client();
    await c.session();
    const refused = await c.call('POST', '/signup', { email: email('many'), password: PASSWORD });
    assertError(refused, 429, 'too-many-signups');
    // The hour-long sliding window: three sign-ups in this clock hour, none in the last, so the
    // count falls under the limit when this hour ends (a minute-long window would say seconds,
    // except in an hour's last minute, when the two agree).
    const HOUR_MS = 3_600_000;
    const untilHourEnds = Math.ceil((HOUR_MS - (Date.now() % HOUR_MS)) / 1000);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(Math.abs(retryAfter - untilHourEnds) <= 2, `Retry-After ${retryAfter} s, the hour ends in ${untilHourEnds} s`);
    await new PortalClient(server.url, from('192.0.2.31')).signUp(email('elsewhere'));
  });
});

test('password hashing runs in a bounded pool: past its queue, 503 with Retry-After, and tokens keep coming', async () => {
  const server = await startTestServer({ PORTCULLIS_PASSWORD_WORKERS: '1', PORTCULLIS_PASSWORD_QUEUE: '1' });
  try {
    const cred = await server.newCredential();
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new PortalClient(server.url);
        await c.session();
        return c;
      }),
    );
    const [signUps, token] = await Promise.all([
      Promise.all(clients.map((c) => c.call('POST', '/signup', { email: email('flood'), password: PASSWORD }))),
      server.accessToken(cred.clientId, cred.clientSecret),
    ]);
    assert.ok(token.split('.').length === 3);
    const statuses = signUps.map((r) => r.status).sort();
    assert.ok(statuses.includes(201), `some sign-ups are served: ${statuses}`);
    assert.ok(
      statuses.every((s) => s === 201 || s === 503),
      `only 201 or 503: ${statuses}`,
    );
    const busy = signUps.find((r) => r.status === 503);
    assert.ok(busy, `the queue of one overflowed: ${statuses}`);
    assertError(busy, 503, 'password-hashing-busy');
    assert.ok(Number(busy.headers.get('retry-after')) >= 1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^portcullis_password_hashing_rejections_total [1-9]/m);
  } finally {
    await server.stop();
  }
});

describe('portal organizations, apps and credentials', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ PORTCULLIS_DEACTIVATION_GRACE: '900' });
  });
  after(() => server.stop());

  test('a person creates an organization, an app and a key, which gets tokens; the audit log names them with their IP', async () => {
    const client = new PortalClient(server.url);
    const address = email('owner');
    await client.signUp(address);
    const org = await client.createOrg('Acme');
    assert.deepEqual(
      (await client.call('GET', '/orgs')).body.map((o: any) => [o.name, o.role]),
      [['Acme', 'owner']],
    );
    const app = await client.createApp(org.id, 'Shop');
    const key = await client.createKey(org.id, app.id, 'Production Credentials');
    assert.match(key.client_secret, /^pcs_/);
    const token = await server.accessToken(key.client_id, key.client_secret);
    const me = await server.me(token);
    assert.equal(me.body.data.attributes.organizationId, org.id);
    // A self-service app gets PORTCULLIS_PORTAL_APP_SCOPES (retail-media by default), so it can call a partner's API once linked.
    assert.deepEqual(app.scopes, ['retail-media']);
    assert.equal(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).scope, 'retail-media');
    const list = await client.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials`);
    assert.deepEqual(
      list.body.map((c: any) => [c.name, c.client_id, c.status]),
      [['Production Credentials', key.client_id, 'active']],
    );
    assert.equal(list.body[0].client_secret, undefined, 'the secret is never listed');
    assert.ok(list.body[0].last_used_at, 'last use shows');

    const renamed = await client.call('PATCH', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`, { name: 'Troubleshooting Credentials' });
    assert.equal(renamed.body.name, 'Troubleshooting Credentials');
    assertError(await client.call('PATCH', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`, { name: '  ' }), 400, 'invalid-name');
    const deleted = await client.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`);
    assert.equal(deleted.body.status, 'deactivating');
    assert.ok(Date.parse(deleted.body.deactivates_at) - Date.now() > 14 * 60_000);
    await server.accessToken(key.client_id, key.client_secret); // still valid in its grace period

    const audit = await client.call('GET', `/orgs/${org.id}/audit`);
    assert.deepEqual(audit.body.map((e: any) => e.action).reverse(), [
      'organization.created',
      'application.created',
      'credential.created',
      'credential.renamed',
      'credential.deleted',
    ]);
    for (const event of audit.body) {
      assert.equal(event.actor, address);
      assert.equal(event.ip, '127.0.0.1');
    }
  });

  test('at most five live keys per app: the sixth gets a 409 that says so', async () => {
    const client = new PortalClient(server.url);
    await client.signUp(email('five'));
    const org = await client.createOrg();
    const app = await client.createApp(org.id);
    for (let i = 1; i <= 5; i++) await client.createKey(org.id, app.id, `key ${i}`);
    const sixth = assertError(await client.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, { name: 'key 6' }), 409, 'credential-limit-reached');
    assert.match(sixth.detail, /5 active credentials/);
  });

  test('bad input to apps and keys: empty and oversized names, unknown fields, bad ids, all 4xx', async () => {
    const client = new PortalClient(server.url);
    await client.signUp(email('bad'));
    assertError(await client.call('POST', '/orgs', { name: '' }), 400, 'invalid-name');
    assertError(await client.call('POST', '/orgs', { name: 'x'.repeat(101) }), 400, 'invalid-name');
    const org = await client.createOrg();
    assertError(await client.call('POST', `/orgs/${org.id}/apps`, { name: 'ok', scopes: ['admin'] }), 400, 'unknown-field');
    assertError(await client.call('POST', `/orgs/${org.id}/apps`, { name: 'ok', description: 'd'.repeat(501) }), 400, 'invalid-description');
    assertError(await client.call('GET', '/orgs/abc/apps'), 400, 'invalid-orgId');
    const app = await client.createApp(org.id);
    assertError(await client.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, {}), 400, 'missing-name');
    assertError(await client.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/nope`), 404, 'not-found');
  });

  test('tokens issued per day for the last 30 days, counted in memory and written in batches', async () => {
    const client = new PortalClient(server.url);
    await client.signUp(email('usage'));
    const org = await client.createOrg();
    const app = await client.createApp(org.id);
    const key = await client.createKey(org.id, app.id);
    for (let i = 0; i < 3; i++) await server.accessToken(key.client_id, key.client_secret);
    const usage = await client.call('GET', `/orgs/${org.id}/apps/${app.id}/usage`);
    assert.equal(usage.body.days.length, 30);
    assert.equal(usage.body.days[29].day, new Date().toISOString().slice(0, 10));
    assert.equal(usage.body.days[29].tokens, 3);
    assert.equal(
      usage.body.days.slice(0, 29).reduce((n: number, d: any) => n + d.tokens, 0),
      0,
    );
    const stored = await server.services.store.tokenCounts.since(app.id, '2000-01-01');
    assert.deepEqual(
      stored.map((c) => c.count),
      [3],
      'written to the table when read',
    );
  });
});

describe('portal tenant isolation', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('for every portal route that takes an id, a member of another organization gets 404', async () => {
    const alice = new PortalClient(server.url);
    await alice.signUp(email('alice'));
    const org = await alice.createOrg('Alice Co');
    const app = await alice.createApp(org.id, 'Alice App');
    const key = await alice.createKey(org.id, app.id, 'Alice key');
    const invite = await alice.call('POST', `/orgs/${org.id}/invitations`, { email: email('someone'), role: 'developer' });
    assert.equal(invite.status, 201);
    const aliceId = (await alice.session()).body.user.id;

    const mallory = new PortalClient(server.url);
    await mallory.signUp(email('mallory'));
    const own = await mallory.createOrg('Mallory Co');
    const ownApp = await mallory.createApp(own.id, 'Mallory App');

    const O = org.id;
    const A = app.id;
    const K = key.client_id;
    const attempts: [string, string, unknown?][] = [
      ['GET', `/orgs/${O}`],
      ['GET', `/orgs/${O}/apps`],
      ['POST', `/orgs/${O}/apps`, { name: 'x' }],
      ['GET', `/orgs/${O}/apps/${A}`],
      ['PATCH', `/orgs/${O}/apps/${A}`, { name: 'x' }],
      ['GET', `/orgs/${O}/apps/${A}/credentials`],
      ['POST', `/orgs/${O}/apps/${A}/credentials`, { name: 'x' }],
      ['PATCH', `/orgs/${O}/apps/${A}/credentials/${K}`, { name: 'x' }],
      ['DELETE', `/orgs/${O}/apps/${A}/credentials/${K}`],
      ['GET', `/orgs/${O}/apps/${A}/usage`],
      ['GET', `/orgs/${O}/audit`],
      ['GET', `/orgs/${O}/members`],
      ['PATCH', `/orgs/${O}/members/${aliceId}`, { role: 'developer' }],
      ['DELETE', `/orgs/${O}/members/${aliceId}`],
      ['GET', `/orgs/${O}/invitations`],
      ['POST', `/orgs/${O}/invitations`, { email: 'x@example.com', role: 'owner' }],
      ['DELETE', `/orgs/${O}/invitations/${invite.body.id}`],
      // Their own organization with the other organization's app and key ids.
      ['GET', `/orgs/${own.id}/apps/${A}`],
      ['PATCH', `/orgs/${own.id}/apps/${A}`, { name: 'x' }],
      ['GET', `/orgs/${own.id}/apps/${A}/credentials`],
      ['POST', `/orgs/${own.id}/apps/${A}/credentials`, { name: 'x' }],
      ['PATCH', `/orgs/${own.id}/apps/${A}/credentials/${K}`, { name: 'x' }],
      ['DELETE', `/orgs/${own.id}/apps/${A}/credentials/${K}`],
      ['GET', `/orgs/${own.id}/apps/${A}/usage`],
      ['PATCH', `/orgs/${own.id}/apps/${ownApp.id}/credentials/${K}`, { name: 'x' }],
      ['DELETE', `/orgs/${own.id}/apps/${ownApp.id}/credentials/${K}`],
      ['PATCH', `/orgs/${own.id}/members/${aliceId}`, { role: 'developer' }],
      ['DELETE', `/orgs/${own.id}/members/${aliceId}`],
      ['DELETE', `/orgs/${own.id}/invitations/${invite.body.id}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await mallory.call(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.errors[0].code, 'not-found');
      assert.doesNotMatch(JSON.stringify(res.body), /Alice/);
    }
    // Nothing changed on Alice's side.
    const keys = await alice.call('GET', `/orgs/${O}/apps/${A}/credentials`);
    assert.deepEqual(
      keys.body.map((k: any) => [k.name, k.status]),
      [['Alice key', 'active']],
    );
    assert.equal((await alice.call('GET', `/orgs/${O}/apps/${A}`)).body.name, 'Alice App');
    assert.equal((await alice.call('GET', `/orgs/${O}/members`)).body.length, 1);
    assert.equal((await alice.call('GET', `/orgs/${O}/invitations`)).body.length, 1);
    assert.equal((await alice.call('GET', `/orgs/${own.id}`)).status, 404, 'and the other way round');
  });
});

describe('portal members and invitations', () => {
  const clock = new ManualClock();
  let server: TestServer;
  before(async () => {
    server = await startTestServer({}, { clock });
  });
  after(() => server.stop());

  test('an invited developer sees apps and key metadata but cannot create, rename or delete keys', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('owner'));
    const org = await owner.createOrg('Team');
    const app = await owner.createApp(org.id);
    const key = await owner.createKey(org.id, app.id);
    const devEmail = email('dev');
    const invite = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: devEmail, role: 'developer' });
    assert.equal(invite.status, 201);
    assert.match(invite.body.link, /^http:\/\/portcullis\.test\/invitations\/[\w-]{43}$/);
    const token = invite.body.link.split('/').pop();

    const dev = new PortalClient(server.url);
    await dev.signUp(devEmail);
    const preview = await dev.call('GET', `/invitations/${token}`);
    assert.deepEqual(preview.body, { organization: { id: org.id, name: 'Team' }, email: devEmail, role: 'developer' });
    assert.equal((await dev.call('POST', `/invitations/${token}/accept`)).status, 200);
    assertError(await dev.call('POST', `/invitations/${token}/accept`), 410, 'invitation-used');

    assert.deepEqual(
      (await dev.call('GET', '/orgs')).body.map((o: any) => o.role),
      ['developer'],
    );
    const keys = await dev.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials`);
    assert.equal(keys.body[0].client_id, key.client_id);
    const refused = assertError(await dev.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, { name: 'mine' }), 403, 'forbidden');
    assert.equal(refused.type, 'authorization');
    assert.match(refused.detail, /developer/);
    assertError(await dev.call('PATCH', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`, { name: 'x' }), 403);
    assertError(await dev.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`), 403);
    assertError(await dev.call('POST', `/orgs/${org.id}/invitations`, { email: email('x'), role: 'owner' }), 403);
    assertError(await dev.call('GET', `/orgs/${org.id}/audit`), 403);

    const members = await owner.call('GET', `/orgs/${org.id}/members`);
    const devId = members.body.find((m: any) => m.email === devEmail).user_id;
    await owner.call('PATCH', `/orgs/${org.id}/members/${devId}`, { role: 'admin' });
    assert.equal((await dev.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, { name: 'now allowed' })).status, 201);
    const ownerId = members.body.find((m: any) => m.role === 'owner').user_id;
    assertError(await owner.call('PATCH', `/orgs/${org.id}/members/${ownerId}`, { role: 'admin' }), 409, 'last-owner');
  });

  test('expired, unknown, revoked and someone else’s invitations are refused with a clear message', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('owner'));
    const org = await owner.createOrg('Team');
    const invitedEmail = email('late');
    const late = (await owner.call('POST', `/orgs/${org.id}/invitations`, { email: invitedEmail, role: 'admin' })).body;
    const other = (await owner.call('POST', `/orgs/${org.id}/invitations`, { email: email('other'), role: 'admin' })).body;
    const revoked = (await owner.call('POST', `/orgs/${org.id}/invitations`, { email: invitedEmail, role: 'admin' })).body;
    assert.equal((await owner.call('DELETE', `/orgs/${org.id}/invitations/${revoked.id}`)).status, 204);
    assertError(await owner.call('POST', `/orgs/${org.id}/invitations`, { email: 'nope', role: 'admin' }), 400, 'invalid-email');
    assertError(await owner.call('POST', `/orgs/${org.id}/invitations`, { email: email('r'), role: 'boss' }), 400, 'invalid-role');

    const person = new PortalClient(server.url);
    await person.signUp(invitedEmail);
    const mismatch = assertError(await person.call('POST', `/invitations/${other.link.split('/').pop()}/accept`), 403, 'invitation-for-someone-else');
    assert.match(mismatch.detail, /sign in with that address/);
    assertError(await person.call('POST', `/invitations/${revoked.link.split('/').pop()}/accept`), 404, 'invitation-not-found');
    assertError(await person.call('GET', '/invitations/not-a-real-token'), 404, 'invitation-not-found');
    clock.advance(8 * 86_400);
    assertError(await person.call('POST', '/orgs', { name: 'x' }), 403, 'csrf-token-invalid'); // the idle session ended too
    assert.equal((await person.signIn(invitedEmail)).status, 200);
    const expired = assertError(await person.call('POST', `/invitations/${late.link.split('/').pop()}/accept`), 410, 'invitation-expired');
    assert.match(expired.detail, /expired/);
  });
});

describe('web pages', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('portal pages and the portal API carry the security headers: CSP, nosniff, referrer policy, no framing', async () => {
    for (const path of ['/', '/signin', '/portal/api/session', '/portal/api/nowhere']) {
      const res = await fetch(server.url + path, { headers: { accept: 'text/html' } });
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    }
  });

  test('the web UI is served at / and for its page paths, while API paths keep their JSON 404s', async () => {
    const home = await fetch(`${server.url}/`);
    assert.equal(home.status, 200);
    const html = await home.text();
    assert.match(html, /<div id="root">/);
    assert.doesNotMatch(html, /<script>(?!<\/script>)/, 'no inline script');
    const page = await fetch(`${server.url}/orgs/1/apps/2`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset);
    const js = await fetch(server.url + asset);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    // The build precompresses assets; the server picks what the browser accepts.
    for (const encoding of ['br', 'gzip']) {
      const compressed = await fetch(server.url + asset, { headers: { 'accept-encoding': encoding } });
      assert.equal(compressed.headers.get('content-encoding'), encoding);
      assert.equal(compressed.headers.get('vary'), 'accept-encoding');
      assert.match(compressed.headers.get('cache-control') ?? '', /immutable/);
      assert.match(await compressed.text(), /createRoot|react/i, 'decompresses to the script');
    }
    // Without an accepted coding (node:http does not decompress): the file itself, its exact length.
    const plain = await new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = httpRequest(server.url + asset, { headers: { 'accept-encoding': 'identity' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(Number(plain.headers['content-length']), Buffer.byteLength(plain.body));
    assert.match(plain.body, /createRoot|react/i);
    const head = await fetch(server.url + asset, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /javascript/);
    assert.equal(await head.text(), '');
    const unknown = await fetch(`${server.url}/assets/nothing-here.js`);
    assert.equal(unknown.status, 404);
    assert.ok(((await unknown.json()) as any).errors);
    for (const path of ['/admin/v1/nope', '/portal/api/nope', '/oauth2/nope', '/orgsx']) {
      const res = await fetch(server.url + path, { headers: { accept: 'text/html' } });
      assert.equal(res.status, path.startsWith('/admin') ? 401 : 404, path);
      assert.ok(((await res.json()) as any).errors, path);
    }
  });
});

describe('portal audit log', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test("names apps, keys and people; includes members' sign-ins, failures and lockouts; filters by who, what and day; pages; exports CSV", async () => {
    const owner = new PortalClient(server.url);
    const ownerEmail = email('auditor');
    await owner.signUp(ownerEmail);
    const org = await owner.createOrg('Audited');
    const app = await owner.createApp(org.id, 'Checkout');
    const key = await owner.createKey(org.id, app.id, 'Primary key');
    recordSecret(key.client_secret);
    assert.equal((await owner.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}`)).status, 200);
    for (let i = 0; i < 5; i++) await new PortalClient(server.url).signIn(ownerEmail, 'not the password 1');
    const locked = await new PortalClient(server.url).signIn(ownerEmail, PASSWORD);
    assert.equal(locked.status, 429);
    // An outsider's sign-ins are not this organization's business.
    const outsider = email('outsider');
    await new PortalClient(server.url).signUp(outsider);
    await new PortalClient(server.url).signIn(outsider);

    const all = await owner.call('GET', `/orgs/${org.id}/audit`);
    assert.equal(all.status, 200);
    const actions = all.body.map((e: any) => e.action);
    for (const a of ['credential.deleted', 'credential.created', 'application.created', 'user.sign_in_failed', 'user.sign_in_locked'])
      assert.ok(actions.includes(a), a);
    assert.ok(!all.body.some((e: any) => e.target_name === outsider));
    const deleted = all.body.find((e: any) => e.action === 'credential.deleted');
    assert.equal(deleted.target_name, 'Primary key');
    assert.equal(deleted.actor, ownerEmail);
    assert.equal(all.body.find((e: any) => e.action === 'user.sign_in_failed').actor, 'anonymous');

    const keysOnly = await owner.call('GET', `/orgs/${org.id}/audit?action=credential`);
    assert.deepEqual(
      keysOnly.body.map((e: any) => e.action),
      ['credential.deleted', 'credential.created'],
    );
    const byOwner = await owner.call('GET', `/orgs/${org.id}/audit?actor=${encodeURIComponent(ownerEmail.toUpperCase())}`);
    assert.ok(byOwner.body.length >= 4 && byOwner.body.every((e: any) => e.actor === ownerEmail));
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/audit?actor=nobody@example.com`)).body, []);
    const today = new Date().toISOString().slice(0, 10);
    assert.equal((await owner.call('GET', `/orgs/${org.id}/audit?from=${today}&to=${today}`)).body.length, all.body.length);
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/audit?to=2000-01-01`)).body, []);
    for (const bad of ['from=yesterday', 'to=2030-13-45x', 'action=DROP%20TABLE', 'limit=0', 'before=-1']) {
      assert.equal((await owner.call('GET', `/orgs/${org.id}/audit?${bad}`)).status, 400, bad);
    }
    const first = await owner.call('GET', `/orgs/${org.id}/audit?limit=2`);
    const next = await owner.call('GET', `/orgs/${org.id}/audit?limit=2&before=${first.body[1].id}`);
    assert.deepEqual(
      [...first.body, ...next.body].map((e: any) => e.id),
      all.body.slice(0, 4).map((e: any) => e.id),
    );

    const csv = await fetch(`${server.url}/portal/api/orgs/${org.id}/audit.csv?action=credential`, {
      headers: { cookie: `portcullis_session=${owner.cookie('portcullis_session')}` },
    });
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    assert.match(csv.headers.get('content-disposition') ?? '', /attachment; filename="audit-organization-\d+\.csv"/);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    assert.equal(lines[0], '"occurred_at","actor","action","target_type","target_id","target_name","ip","details"');
    assert.equal(lines.length, 3);
    assert.match(
      lines[1]!,
      new RegExp(`^"[^"]+","${ownerEmail.replace(/\./g, '\\.')}","credential\\.deleted","credential","${key.client_id}","Primary key","127\\.0\\.0\\.1",`),
    );
    const stranger = new PortalClient(server.url);
    await stranger.signUp(email('stranger'));
    const refused = await fetch(`${server.url}/portal/api/orgs/${org.id}/audit.csv`, {
      headers: { cookie: `portcullis_session=${stranger.cookie('portcullis_session')}` },
    });
    assert.equal(refused.status, 404);
  });
});

describe('portal key usage', () => {
  test("each key's tokens and failed authentications per day; another app's key is not found", async () => {
    const server = await startTestServer();
    try {
      const owner = new PortalClient(server.url);
      await owner.signUp(email('usage'));
      const org = await owner.createOrg('Usage');
      const app = await owner.createApp(org.id, 'Counted');
      const used = await owner.createKey(org.id, app.id, 'Used');
      const idle = await owner.createKey(org.id, app.id, 'Idle');
      recordSecret(used.client_secret, idle.client_secret);
      await server.accessToken(used.client_id, used.client_secret);
      await server.accessToken(used.client_id, used.client_secret);
      const wrong = await server.token({ grant_type: 'client_credentials', client_id: used.client_id, client_secret: idle.client_secret });
      assert.equal(wrong.status, 401);
      const res = await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials/${used.client_id}/usage`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.days.length, 30);
      const today = res.body.days.at(-1);
      assert.equal(today.day, new Date().toISOString().slice(0, 10));
      assert.equal(today.tokens, 2);
      assert.equal(today.failed_authentications, 1);
      const quiet = await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials/${idle.client_id}/usage`);
      assert.equal(quiet.body.days.at(-1).tokens, 0);
      assert.equal(quiet.body.days.at(-1).failed_authentications, 0);
      const otherApp = await owner.createApp(org.id, 'Other');
      assert.equal((await owner.call('GET', `/orgs/${org.id}/apps/${otherApp.id}/credentials/${used.client_id}/usage`)).status, 404);
      assert.equal((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials/${'x'.repeat(150)}/usage`)).status, 404);
      const stranger = new PortalClient(server.url);
      await stranger.signUp(email('stranger'));
      assert.equal((await stranger.call('GET', `/orgs/${org.id}/apps/${app.id}/credentials/${used.client_id}/usage`)).status, 404);
    } finally {
      await server.stop();
    }
  });
});

describe('portal on PostgreSQL', () => {
  test('sign-up, organization, app, key, invitation and usage work on PostgreSQL too', async (t) => {
    if (!needService(t, 'PostgreSQL', await postgresAvailable())) return;
    const database = await createTestDatabase();
    const server = await startTestServer({}, { db: openPostgres(database.url) });
    try {
      const owner = new PortalClient(server.url);
      await owner.signUp(email('pg'));
      assertError(await new PortalClient(server.url).call('GET', '/orgs'), 401, 'not-signed-in');
      const org = await owner.createOrg('On PostgreSQL');
      const app = await owner.createApp(org.id);
      const key = await owner.createKey(org.id, app.id);
      await server.accessToken(key.client_id, key.client_secret);
      const invite = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: email('pgdev'), role: 'developer' });
      assert.equal(invite.status, 201);
      assert.equal((await owner.call('GET', `/orgs/${org.id}/members`)).body.length, 1);
      assert.equal((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/usage`)).body.days[29].tokens, 1);
      const dup = new PortalClient(server.url);
      await dup.session();
      assertError(await dup.call('POST', '/signup', { email: (await owner.session()).body.user.email, password: PASSWORD }), 409, 'email-taken');
    } finally {
      await server.stop();
      await database.drop();
    }
  });
});

describe('portal: apps take the scopes the operator opens to self-service on published APIs', () => {
  const ORDERS = 'https://orders.example/api';
  let server: TestServer;
  let ordersId: number;
  before(async () => {
    // Apps start with no scopes here (not PORTCULLIS_PORTAL_APP_SCOPES' default), so every scope is the owner's pick.
    server = await startTestServer({ PORTCULLIS_PORTAL_APP_SCOPES: '' });
    const api = await server.admin('POST', '/apis', {
      identifier: ORDERS,
      name: 'Orders',
      scopes: ['orders:read', 'orders:write', 'orders:admin'],
      self_service_scopes: ['orders:read'],
    });
    assert.equal(api.status, 201, JSON.stringify(api.body));
    assert.deepEqual(api.body.self_service_scopes, ['orders:read']);
    ordersId = api.body.id;
    // Registered but not published: no scope is open to self-service.
    assert.equal((await server.admin('POST', '/apis', { identifier: 'https://hidden.example', name: 'Hidden', scopes: ['x'] })).status, 201);
  });
  after(() => server.stop());

  test("an owner grants the app a self-service scope; the app's key then gets a token with resource=<identifier>, aud=<identifier> and that scope", async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('apiowner'));
    const org = await owner.createOrg('Shop team');
    const app = await owner.createApp(org.id);
    const key = await owner.createKey(org.id, app.id);
    recordSecret(key.client_secret);
    const ask = () => server.token({ grant_type: 'client_credentials', client_id: key.client_id, client_secret: key.client_secret, resource: ORDERS });
    assert.equal((await ask()).body.error, 'invalid_target', 'no grant yet');

    const published = await owner.call('GET', '/apis');
    assert.equal(published.status, 200);
    assert.deepEqual(
      published.body,
      [{ id: ordersId, identifier: ORDERS, name: 'Orders', scopes: ['orders:read'] }],
      'only published APIs, only their open scopes',
    );
    const granted = await owner.call('PUT', `/orgs/${org.id}/apps/${app.id}/apis/${ordersId}`, { scopes: ['orders:read'] });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/apis`)).body, [
      { api_id: ordersId, identifier: ORDERS, name: 'Orders', scopes: ['orders:read'] },
    ]);

    const res = await ask();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.aud, ORDERS);
    assert.equal(claims.scope, 'orders:read');

    const audit = await owner.call('GET', `/orgs/${org.id}/audit?action=api.granted`);
    assert.ok(
      audit.body.some((e: any) => e.action === 'api.granted' && e.actor.startsWith('apiowner')),
      JSON.stringify(audit.body),
    );

    assert.equal((await owner.call('DELETE', `/orgs/${org.id}/apps/${app.id}/apis/${ordersId}`)).status, 200);
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}/apis`)).body, []);
    const deadline = Date.now() + 10_000;
    let after = await ask();
    while (after.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await ask();
    }
    assert.equal(after.body.error, 'invalid_target', 'the removed grant no longer yields tokens');
  });

  test('a scope the operator did not open to self-service is refused with 403 scope-not-self-service; an unpublished API is not found; bad scopes are a 400', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('greedy'));
    const org = await owner.createOrg('Greedy');
    const app = await owner.createApp(org.id);
    const path = `/orgs/${org.id}/apps/${app.id}/apis`;
    const refused = assertError(await owner.call('PUT', `${path}/${ordersId}`, { scopes: ['orders:read', 'orders:admin'] }), 403, 'scope-not-self-service');
    assert.match(refused.detail, /orders:admin/);
    const apis = await server.admin('GET', '/apis');
    const hidden = apis.body.find((a: any) => a.identifier === 'https://hidden.example').id;
    assertError(await owner.call('PUT', `${path}/${hidden}`, { scopes: ['x'] }), 404, 'not-found');
    assertError(await owner.call('PUT', `${path}/${ordersId}`, { scopes: 'orders:read' }), 400, 'invalid-scopes');
    assertError(await owner.call('PUT', `${path}/${ordersId}`, {}), 400);
    assert.deepEqual((await owner.call('GET', path)).body, [], 'nothing was granted');
  });

  test('an operator grant beyond self-service survives the owner changing the self-service part', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('mixed'));
    const org = await owner.createOrg('Mixed');
    const app = await owner.createApp(org.id);
    assert.equal((await server.admin('PUT', `/applications/${app.id}/apis/${ordersId}`, { scopes: ['orders:write'] })).status, 200);
    const path = `/orgs/${org.id}/apps/${app.id}/apis/${ordersId}`;
    assert.deepEqual((await owner.call('PUT', path, { scopes: ['orders:read'] })).body.scopes, ['orders:read', 'orders:write']);
    assert.deepEqual((await owner.call('DELETE', path)).body.scopes, ['orders:write']);
  });

  test("the app's own scopes (default audience, no resource): an owner takes one the operator opened, which tokens without resource then carry; others are 403", async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('platform'));
    const org = await owner.createOrg('Platform users');
    const app = await owner.createApp(org.id);
    const key = await owner.createKey(org.id, app.id);
    recordSecret(key.client_secret);
    const path = `/orgs/${org.id}/apps/${app.id}/apis/default`;
    assertError(await owner.call('PUT', path, { scopes: ['retail-media'] }), 403, 'scope-not-self-service');
    const opened = await server.admin('PATCH', '/default-audience', { self_service_scopes: ['retail-media'] });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    assert.equal(opened.body.audience, ISSUER_FOR_TESTS);
    assert.deepEqual((await owner.call('GET', '/apis')).body[0], {
      id: 'default',
      identifier: ISSUER_FOR_TESTS,
      name: 'This platform (tokens without resource)',
      scopes: ['retail-media'],
    });
    const granted = await owner.call('PUT', path, { scopes: ['retail-media'] });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.deepEqual(granted.body.scopes, ['retail-media']);
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}`)).body.scopes, ['retail-media']);
    assertError(await owner.call('PUT', path, { scopes: ['retail-media', 'admin'] }), 403, 'scope-not-self-service');
    const ask = () => server.token({ grant_type: 'client_credentials', client_id: key.client_id, client_secret: key.client_secret });
    const deadline = Date.now() + 10_000;
    let res = await ask();
    while (decodeJwt(res.body.access_token).scope !== 'retail-media' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      res = await ask();
    }
    recordSecret(res.body.access_token);
    assert.equal(decodeJwt(res.body.access_token).scope, 'retail-media');
    assert.equal(decodeJwt(res.body.access_token).aud, ISSUER_FOR_TESTS);
    assert.equal((await owner.call('DELETE', path)).status, 200);
    assert.deepEqual((await owner.call('GET', `/orgs/${org.id}/apps/${app.id}`)).body.scopes, []);
    assert.equal((await server.admin('PATCH', '/default-audience', { self_service_scopes: [] })).status, 200);
  });

  test('a developer sees the app’s APIs but cannot grant or remove them (403)', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('lead'));
    const org = await owner.createOrg('Devs');
    const app = await owner.createApp(org.id);
    assert.equal((await owner.call('PUT', `/orgs/${org.id}/apps/${app.id}/apis/${ordersId}`, { scopes: ['orders:read'] })).status, 200);
    const devEmail = email('coder');
    const invite = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: devEmail, role: 'developer' });
    const dev = new PortalClient(server.url);
    await dev.signUp(devEmail);
    assert.equal((await dev.call('POST', `/invitations/${invite.body.link.split('/').pop()}/accept`)).status, 200);
    const path = `/orgs/${org.id}/apps/${app.id}/apis`;
    assert.equal((await dev.call('GET', path)).body.length, 1);
    assertError(await dev.call('PUT', `${path}/${ordersId}`, { scopes: ['orders:read'] }), 403, 'forbidden');
    assertError(await dev.call('DELETE', `${path}/${ordersId}`), 403, 'forbidden');
    assert.deepEqual((await owner.call('GET', path)).body[0].scopes, ['orders:read'], 'unchanged');
    const stranger = new PortalClient(server.url);
    await stranger.signUp(email('stranger'));
    assertError(await stranger.call('PUT', `${path}/${ordersId}`, { scopes: ['orders:read'] }), 404, 'not-found');
  });
});
