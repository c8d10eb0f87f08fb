import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { linkIn, MailSink } from './helpers/mail.js';
import { PortalClient } from './helpers/portal.js';
import { runCli } from './helpers/process.js';
import { recordSecret } from './helpers/secrets.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from './helpers/server.js';

const PASSWORD = 'a sturdy passphrase 42';
const NEW_PASSWORD = 'another sturdy phrase 43';
let counter = 0;
const email = (who: string) => `${who}.${process.pid}.${++counter}@example.com`;
const tokenOf = (link: string) => {
  const token = new URL(link).hash.replace(/^#token=/, '');
  recordSecret(token);
  return token;
};

function assertError(res: { status: number; body: any }, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.errors?.[0]?.code, code, JSON.stringify(res.body));
  return res.body.errors[0] as { detail: string };
}

describe('portal mail over SMTP (a real SMTP server on loopback)', () => {
  let server: TestServer;
  let mail: MailSink;
  before(async () => {
    mail = await MailSink.start();
    server = await startTestServer({ PORTCULLIS_SMTP_URL: mail.url, PORTCULLIS_MAIL_FROM: 'Acme Portal <portal@acme.example>' });
  });
  after(async () => {
    await server?.stop();
    await mail?.stop();
  });

  test('sign-up mails a verification link; until it is opened the account cannot create keys; the link works once', async () => {
    const address = email('verify');
    const client = new PortalClient(server.url);
    await client.session();
    const signup = await client.call('POST', '/signup', { email: address, password: PASSWORD });
    assert.equal(signup.status, 201);
    assert.equal(signup.body.verification, 'sent');
    assert.equal(signup.body.user.email_verified, false);
    assert.equal(signup.body.mail_delivers, true);
    const message = await mail.waitFor(address, /Verify your email/);
    assert.equal(message.header_from, '"Acme Portal" <portal@acme.example>');
    const link = linkIn(message);
    assert.match(
      link,
      /^http:\/\/portcullis\.test\/verify-email#token=[A-Za-z0-9_-]{43}$/,
      'the token is in the fragment, which browsers never send to a server',
    );

    const org = await client.createOrg('Unverified Org');
    const app = await client.createApp(org.id);
    const refused = assertError(await client.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, { name: 'k' }), 403, 'email-not-verified');
    assert.match(refused.detail, /verify your email address/);

    // Anyone holding the link may use it (the mailbox is the proof), signed in or not.
    const anonymous = new PortalClient(server.url);
    await anonymous.session();
    const verified = await anonymous.call('POST', '/verify-email', { token: tokenOf(link) });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.equal(verified.body.email, address);
    assertError(await anonymous.call('POST', '/verify-email', { token: tokenOf(link) }), 400, 'link-not-valid');
    assert.equal((await client.session()).body.user.email_verified, true);
    assert.equal((await client.call('POST', `/orgs/${org.id}/apps/${app.id}/credentials`, { name: 'k' })).status, 201);
    assertError(await client.call('POST', '/verification'), 409, 'already-verified');
  });

  test('a resent verification link replaces the older one; garbage tokens get a clear 400', async () => {
    const address = email('resend');
    const client = new PortalClient(server.url);
    await client.signUp(address, PASSWORD, { verified: false });
    const first = linkIn(await mail.waitFor(address, /Verify your email/));
    const resent = await client.call('POST', '/verification');
    assert.equal(resent.status, 202);
    assert.equal(resent.body.mail, 'sent');
    const second = linkIn(await mail.waitFor(address, /Verify your email/, { skip: 1 }));
    assertError(await client.call('POST', '/verify-email', { token: tokenOf(first) }), 400, 'link-not-valid');
    for (const token of ['', 'x'.repeat(500), 'not-a-token', 42]) assertError(await client.call('POST', '/verify-email', { token }), 400, 'link-not-valid');
    assert.equal((await client.call('POST', '/verify-email', { token: tokenOf(second) })).status, 200);
  });

  test('"forgot password" mails a single-use reset link that sets a new password and ends every session; the answer never says who has an account', async () => {
    const address = email('reset');
    const client = new PortalClient(server.url);
    await client.signUp(address, PASSWORD);
    const other = new PortalClient(server.url);
    assert.equal((await other.signIn(address, PASSWORD)).status, 200);

    const stranger = new PortalClient(server.url);
    await stranger.session();
    const unknown = await stranger.call('POST', '/password-reset', { email: email('nobody') });
    const known = await stranger.call('POST', '/password-reset', { email: address.toUpperCase() });
    assert.equal(unknown.status, 202);
    assert.deepEqual(known.body, unknown.body);
    assert.deepEqual(known.body, { mail: 'sent-if-registered' });
    const link = linkIn(await mail.waitFor(address, /Reset your Portcullis password/));
    assert.match(link, /^http:\/\/portcullis\.test\/reset-password#token=/);
    const token = tokenOf(link);

    // A refused password leaves the link usable.
    assertError(await stranger.call('POST', '/password-reset/confirm', { token, new_password: 'short' }), 400, 'invalid-new_password');
    const done = await stranger.call('POST', '/password-reset/confirm', { token, new_password: NEW_PASSWORD });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.email, address);
    assertError(await stranger.call('POST', '/password-reset/confirm', { token, new_password: `${NEW_PASSWORD}!` }), 400, 'link-not-valid');

    assertError(await client.call('GET', '/orgs'), 401, 'not-signed-in');
    assertError(await other.call('GET', '/orgs'), 401, 'not-signed-in');
    assertError(await new PortalClient(server.url).signIn(address, PASSWORD), 401, 'invalid-credentials');
    assert.equal((await new PortalClient(server.url).signIn(address, NEW_PASSWORD)).status, 200);
  });

  test('an invitation is mailed with its link; signing up through it with the invited address needs no second mail', async () => {
    const owner = new PortalClient(server.url);
    const ownerEmail = email('owner');
    await owner.signUp(ownerEmail);
    const org = await owner.createOrg('Mailed Org');
    const invitee = email('invitee');
    const sent = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: invitee, role: 'admin' });
    assert.equal(sent.status, 201);
    assert.equal(sent.body.mail, 'sent');
    recordSecret(sent.body.link.split('/').pop());
    const message = await mail.waitFor(invitee, /You are invited to Mailed Org/);
    assert.equal(linkIn(message), sent.body.link);
    assert.match(message.text, new RegExp(`${ownerEmail.replace(/\./g, '\\.')} invited you to join Mailed Org as admin`));
    const token = sent.body.link.split('/').pop();

    const newcomer = new PortalClient(server.url);
    await newcomer.session();
    const wrongAddress = await newcomer.call('POST', '/signup', { email: email('someone-else'), password: PASSWORD, invitation: token });
    assert.equal(wrongAddress.body.verification, 'sent', 'another address is not proven by the invitation');
    const joined = new PortalClient(server.url);
    await joined.session();
    const signup = await joined.call('POST', '/signup', { email: invitee, password: PASSWORD, invitation: token });
    assert.equal(signup.status, 201);
    assert.equal(signup.body.verification, 'verified');
    assert.equal(signup.body.user.email_verified, true);
    assert.equal(mail.count(invitee, /Verify your email/), 0);
    const accepted = await joined.call('POST', `/invitations/${token}/accept`);
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.role, 'admin');
  });

  test('an unverified account cannot accept an invitation', async () => {
    const owner = new PortalClient(server.url);
    await owner.signUp(email('owner2'));
    const org = await owner.createOrg('Gated');
    const invitee = email('gated');
    const sent = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: invitee, role: 'developer' });
    const token = sent.body.link.split('/').pop();
    recordSecret(token);
    const person = new PortalClient(server.url);
    await person.signUp(invitee, PASSWORD, { verified: false });
    assertError(await person.call('POST', `/invitations/${token}/accept`), 403, 'email-not-verified');
  });

  test('"revoke now" stops a key at once (invalid_client, issued tokens refused) and mails owners and admins', async () => {
    const owner = new PortalClient(server.url);
    const ownerEmail = email('revoker');
    await owner.signUp(ownerEmail);
    const org = await owner.createOrg('Revoking');
    const app = await owner.createApp(org.id, 'Leaky app');
    const key = await owner.createKey(org.id, app.id);
    recordSecret(key.client_secret);
    const token = await server.accessToken(key.client_id, key.client_secret);
    assert.equal((await server.me(token)).status, 200);

    assertError(await owner.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}?immediately=maybe`), 400, 'invalid-immediately');
    const revoked = await owner.call('DELETE', `/orgs/${org.id}/apps/${app.id}/credentials/${key.client_id}?immediately=true`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.status, 'deactivated');
    const refused = await server.token({ grant_type: 'client_credentials', client_id: key.client_id, client_secret: key.client_secret });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');
    assert.equal((await server.me(token)).status, 401);
    const notice = await mail.waitFor(ownerEmail, /was revoked/);
    assert.match(notice.subject, new RegExp(`API key ${key.client_id} of Leaky app was revoked`));
    const audit = await owner.call('GET', `/orgs/${org.id}/audit`);
    assert.ok(audit.body.some((e: any) => e.action === 'credential.revoked' && e.target_id === key.client_id && e.actor === ownerEmail));
  });

  test('a sign-in from a new browser is mailed to the account; the account lists its sessions and can end one', async () => {
    const address = email('sessions');
    const first = new PortalClient(server.url);
    await first.signUp(address);
    const before = mail.count(address, /New sign-in/);
    // The same browser from the same address again is not news; another browser is.
    assert.equal((await new PortalClient(server.url).signIn(address)).status, 200);
    const second = new PortalClient(server.url);
    second.headers['user-agent'] = 'Mozilla/5.0 (X11; Linux x86_64) Chromium/140';
    assert.equal((await second.signIn(address)).status, 200);
    const notice = await mail.waitFor(address, /New sign-in/, { skip: before });
    assert.match(notice.text, /from address 127\.0\.0\.1\nwith Mozilla\/5\.0 \(X11; Linux x86_64\) Chromium\/140/);
    assert.equal(mail.count(address, /New sign-in/), before + 1);

    const list = await first.call('GET', '/sessions');
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 3);
    const mine = list.body.find((s: any) => s.current);
    const theirs = list.body.find((s: any) => s.user_agent?.includes('Chromium'));
    assert.ok(mine && theirs);
    assert.match(theirs.id, /^[0-9a-f]{24}$/);
    assert.equal((await first.call('DELETE', `/sessions/${theirs.id}`)).status, 204);
    assertError(await second.call('GET', '/orgs'), 401, 'not-signed-in');
    assert.equal((await first.call('GET', '/orgs')).status, 200);
    assertError(await first.call('DELETE', `/sessions/${theirs.id}`), 404, 'not-found');
    // Another account's session ids mean nothing here.
    const stranger = new PortalClient(server.url);
    await stranger.signUp(email('stranger'));
    assertError(await stranger.call('DELETE', `/sessions/${mine.id}`), 404, 'not-found');
  });
});

describe('portal without a mail server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('the portal says no mail was sent; an invitation link is shown to the inviting owner only', async () => {
    const client = new PortalClient(server.url);
    const session = await client.session();
    assert.equal(session.body.mail_delivers, false);
    const signup = await client.call('POST', '/signup', { email: email('nomail'), password: PASSWORD });
    assert.equal(signup.body.verification, 'not-sent');
    assert.equal((await client.call('POST', '/password-reset', { email: email('any') })).body.mail, 'not-configured');
    const owner = new PortalClient(server.url);
    await owner.signUp(email('owner'));
    const org = await owner.createOrg('No Mail');
    const sent = await owner.call('POST', `/orgs/${org.id}/invitations`, { email: email('x'), role: 'developer' });
    recordSecret(sent.body.link.split('/').pop());
    assert.equal(sent.body.mail, 'not-sent');
    assert.match(sent.body.link, /^http:\/\/portcullis\.test\/invitations\//);
  });

  test('portcullis admin users verify, reset, disable and enable; operators grant; each audited as the operator', async () => {
    const address = email('cli');
    const client = new PortalClient(server.url);
    await client.signUp(address, PASSWORD, { verified: false });
    const cli = (...args: string[]) => runCli(['admin', ...args], { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN });

    const shown = await cli('users', 'show', address);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /not verified/);
    const verified = await cli('users', 'verify', address);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(`${address.replace(/\./g, '\\.')} \\(user \\d+\\): verified`));
    assert.equal((await client.session()).body.user.email_verified, true);

    const reset = await cli('users', 'reset', address);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /no mail was sent/);
    const link = /http:\/\/\S+/.exec(reset.stdout)?.[0] ?? '';
    const stranger = new PortalClient(server.url);
    await stranger.session();
    assert.equal((await stranger.call('POST', '/password-reset/confirm', { token: tokenOf(link), new_password: NEW_PASSWORD })).status, 200);
    assert.equal((await new PortalClient(server.url).signIn(address, NEW_PASSWORD)).status, 200);

    const signedIn = new PortalClient(server.url);
    await signedIn.signIn(address, NEW_PASSWORD);
    const disabled = await cli('users', 'disable', address);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /disabled/);
    assertError(await signedIn.call('GET', '/orgs'), 401, 'not-signed-in');
    assertError(await new PortalClient(server.url).signIn(address, NEW_PASSWORD), 403, 'account-disabled');
    assertError(await new PortalClient(server.url).signIn(address, 'a wrong password here'), 401, 'invalid-credentials');
    assert.equal((await cli('users', 'enable', address)).code, 0);
    assert.equal((await new PortalClient(server.url).signIn(address, NEW_PASSWORD)).status, 200);

    const granted = await cli('operators', 'grant', address);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /operator/);
    const missing = await cli('users', 'verify', email('ghost'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
    const noEmail = await cli('operators', 'grant');
    assert.equal(noEmail.code, 2);
    assert.match(noEmail.stderr, /name the account/);

    const events = await client.operator('GET', '/audit-events?limit=20');
    const actions = events.filter((e: any) => e.target_type === 'user' && e.details.email === address).map((e: any) => `${e.actor} ${e.action}`);
    for (const action of ['user.verified', 'user.password_reset_started', 'user.disabled', 'user.enabled', 'operator.granted']) {
      assert.ok(actions.includes(`operator ${action}`), `${action} in ${JSON.stringify(actions)}`);
    }
  });
});
