import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/domain/clock.js';
import { base32, hotp, matchTotp, otpauthUri } from '../src/domain/totp.js';
import { fromBase32 } from './helpers/base32.js';
import { PortalClient } from './helpers/portal.js';
import { recordSecret } from './helpers/secrets.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const RFC_SECRET = Buffer.from('12345678901234567890');

describe('TOTP (RFC 6238 over RFC 4226)', () => {
  test('HOTP matches the RFC 4226 Appendix D values', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    for (const [counter, code] of expected.entries()) assert.equal(hotp(RFC_SECRET, counter), code);
  });

  test('TOTP matches RFC 6238 Appendix B (SHA-1, last six digits) within one step of drift, and never twice', () => {
    // RFC 6238: T = 59 s gives 94287082; T = 1111111109 s gives 07081804.
    assert.equal(matchTotp(RFC_SECRET, '287082', 59_000), 1);
    assert.equal(matchTotp(RFC_SECRET, '081804', 1_111_111_109_000), 37_037_036);
    assert.equal(matchTotp(RFC_SECRET, '081804', 1_111_111_109_000 + 30_000), 37_037_036, 'one step late still matches');
    assert.equal(matchTotp(RFC_SECRET, '081804', 1_111_111_109_000 + 61_000), undefined, 'two steps late does not');
    assert.equal(matchTotp(RFC_SECRET, '081804', 1_111_111_109_000, 37_037_036), undefined, 'a code used once is refused');
    for (const bad of ['', '28708', '2870822', 'abcdef', '28 70 8x']) assert.equal(matchTotp(RFC_SECRET, bad, 59_000), undefined, bad);
  });

  test('the secret is written in RFC 4648 base32 inside an otpauth:// URI', () => {
    assert.equal(base32(RFC_SECRET), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    assert.equal(
      otpauthUri(RFC_SECRET, 'ada@example.com', 'Portcullis'),
      'otpauth://totp/Portcullis%3Aada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portcullis&algorithm=SHA1&digits=6&period=30',
    );
  });
});

describe('portal second factor', () => {
  let server: TestServer;
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  before(async () => {
    server = await startTestServer({}, { clock });
  });
  after(() => server.stop());

  const code = (secret: Buffer) => hotp(secret, Math.floor(clock.now() / 30_000));

  test('turning TOTP on needs a code from the app; then sign-in needs a code, each code works once, and a recovery code works once', async () => {
    const client = new PortalClient(server.url);
    const address = 'totp@example.com';
    await client.signUp(address);
    const setup = await client.call('POST', '/second-factor/setup');
    assert.equal(setup.status, 200);
    recordSecret(setup.body.secret);
    const secret = fromBase32(setup.body.secret);
    assert.equal(secret.length, 20);
    assert.match(setup.body.otpauth_uri, /^otpauth:\/\/totp\/Portcullis%20portcullis\.test%3Atotp%40example\.com\?secret=[A-Z2-7]{32}&/);
    assert.equal(
      (await client.call('POST', '/second-factor/enable', { code: '000000' === code(secret) ? '111111' : '000000' })).body.errors[0].code,
      'wrong-code',
    );
    const enabled = await client.call('POST', '/second-factor/enable', { code: code(secret) });
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    const recovery: string[] = enabled.body.recovery_codes;
    recordSecret(...recovery);
    assert.equal(recovery.length, 10);
    assert.equal(new Set(recovery).size, 10);
    for (const c of recovery) assert.match(c, /^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
    assert.equal((await client.session()).body.user.second_factor, true);

    // The password alone no longer starts a session.
    const passwordOnly = await new PortalClient(server.url).signIn(address);
    assert.equal(passwordOnly.status, 401);
    assert.equal(passwordOnly.body.errors[0].code, 'second-factor-required');
    assert.equal(
      passwordOnly.headers.getSetCookie().some((c) => c.startsWith('portcullis_session=')),
      false,
    );
    // The code used to turn it on cannot be used again.
    const replay = new PortalClient(server.url);
    await replay.session();
    assert.equal(
      (await replay.call('POST', '/signin', { email: address, password: 'a sturdy passphrase 42', code: code(secret) })).body.errors[0].code,
      'wrong-code',
    );
    clock.advance(30);
    const withCode = await replay.call('POST', '/signin', { email: address, password: 'a sturdy passphrase 42', code: code(secret) });
    assert.equal(withCode.status, 200, JSON.stringify(withCode.body));
    // A wrong password with a right code is still a wrong password.
    clock.advance(30);
    const wrongPassword = new PortalClient(server.url);
    await wrongPassword.session();
    assert.equal((await wrongPassword.call('POST', '/signin', { email: address, password: 'not the password 99', code: code(secret) })).status, 401);

    const viaRecovery = new PortalClient(server.url);
    await viaRecovery.session();
    const typed = recovery[0]!.toUpperCase().replace(/-/g, ' ');
    assert.equal((await viaRecovery.call('POST', '/signin', { email: address, password: 'a sturdy passphrase 42', code: typed })).status, 200);
    const again = new PortalClient(server.url);
    await again.session();
    assert.equal(
      (await again.call('POST', '/signin', { email: address, password: 'a sturdy passphrase 42', code: recovery[0] })).body.errors[0].code,
      'wrong-code',
    );
    assert.equal((await client.call('GET', '/second-factor')).body.recovery_codes_left, 9);

    // Turning it off needs a code too.
    assert.equal((await client.call('POST', '/second-factor/disable', { code: 'nope' })).status, 400);
    assert.equal((await client.call('POST', '/second-factor/disable', { code: recovery[1] })).status, 204);
    assert.equal((await new PortalClient(server.url).signIn(address)).status, 200);
  });

  test('an owner can require a second factor of every member: members without one are refused until they turn it on', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp('owner2fa@example.com');
    const org = await owner.createOrg('Strict');
    const refused = await owner.call('PUT', `/orgs/${org.id}/policy`, { second_factor_required: true });
    assert.equal(refused.status, 409, 'an owner without a second factor would lock themselves out');
    const setup = await owner.call('POST', '/second-factor/setup');
    recordSecret(setup.body.secret);
    const secret = fromBase32(setup.body.secret);
    clock.advance(30);
    recordSecret(...(await owner.call('POST', '/second-factor/enable', { code: code(secret) })).body.recovery_codes);
    assert.equal((await owner.call('PUT', `/orgs/${org.id}/policy`, { second_factor_required: 'yes' })).status, 400);
    const required = await owner.call('PUT', `/orgs/${org.id}/policy`, { second_factor_required: true });
    assert.equal(required.status, 200);
    assert.equal((await owner.call('GET', `/orgs/${org.id}`)).body.second_factor_required, true);

    const member = new PortalClient(server.url);
    await member.signUp('member2fa@example.com');
    const invitation = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: 'member2fa@example.com', role: 'admin' });
    const token = invitation.body.link.split('/').pop();
    recordSecret(token);
    assert.equal((await member.call('POST', `/invitations/${token}/accept`)).status, 200);
    const blocked = await member.call('GET', `/orgs/${org.id}/apps`);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.body.errors[0].code, 'organization-requires-second-factor');
    assert.match(blocked.body.errors[0].detail, /turn it on in your account page/);
    const memberSetup = await member.call('POST', '/second-factor/setup');
    recordSecret(memberSetup.body.secret);
    recordSecret(...(await member.call('POST', '/second-factor/enable', { code: code(fromBase32(memberSetup.body.secret)) })).body.recovery_codes);
    assert.equal((await member.call('GET', `/orgs/${org.id}/apps`)).status, 200);
    const audit = await owner.call('GET', `/orgs/${org.id}/audit`);
    assert.ok(audit.body.some((e: any) => e.action === 'organization.second_factor_required' && e.actor === 'owner2fa@example.com'));
  });
});
