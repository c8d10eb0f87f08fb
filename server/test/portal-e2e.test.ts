import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { createRequire } from 'node:module';
import { hotp } from '../src/domain/totp.js';
import { fromBase32 } from './helpers/base32.js';
import { curl, curlAvailable, referenceDeliveryCurl, referenceTokenCurl } from './helpers/curl.js';
import { linkIn, MailSink } from './helpers/mail.js';
import { PortalClient } from './helpers/portal.js';
import { recordSecret } from './helpers/secrets.js';
import { needService } from './helpers/services.js';
import { ISSUER_FOR_TESTS, startTestServer, type TestServer, tempDir } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
// docs/screenshots is refreshed only when asked (PORTCULLIS_SCREENSHOTS=1, after a UI change); otherwise the shots go to a temporary dir.
const SCREENSHOTS =
  process.env.PORTCULLIS_SCREENSHOTS === '1'
    ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/screenshots')
    : tempDir('portcullis-shots-');
const PASSWORD = 'correct horse battery 7';
const GRACE_SECONDS = 4;

async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = tempDir('portcullis-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 820 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Fails the test on any page error or Content-Security-Policy violation. */
function watch(page: Page, problems: string[]): void {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in the page (evaluated over the DevTools protocol, so the page's CSP stays on)
 * at the current width and at 390 px, and adds every serious or critical violation to `found`.
 */
async function checkAccessibility(page: Page, where: string, found: string[]): Promise<void> {
  const original = page.viewportSize() ?? { width: 1200, height: 820 };
  for (const width of [original.width, 390]) {
    await page.setViewportSize({ width, height: original.height });
    if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
    const violations = (await page.evaluate(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')))`,
    )) as string[];
    for (const v of violations) found.push(`${where} at ${width} px: ${v}`);
  }
  await page.setViewportSize(original);
}

/** Polls a condition of the page until it holds, or fails after a deadline (no string evaluation: the page's CSP forbids eval). */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const text = async (locator: Locator): Promise<string> => (await locator.textContent()) ?? '';
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function createKey(page: Page, name: string, { double = false } = {}): Promise<{ file: string; secretShown: string; clientId: string }> {
  await page.getByLabel('New key name').fill(name);
  const button = page.getByRole('button', { name: 'Create key' });
  const [download] = await Promise.all([page.waitForEvent('download'), double ? button.dblclick() : button.click()]);
  const file = readFileSync((await download.path())!, 'utf8');
  const dialog = page.getByRole('dialog', { name: 'Your new API key' });
  await dialog.waitFor();
  const secretShown = await dialog.getByLabel('Client secret', { exact: true }).inputValue();
  const clientId = await dialog.getByLabel('Client ID', { exact: true }).inputValue();
  recordSecret(secretShown);
  return { file, secretShown, clientId };
}

async function closeSecretDialog(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'I have saved the secret' }).click();
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
}

describe('developer portal in Chromium', { timeout: 120_000 }, () => {
  let server: TestServer;
  let mail: MailSink;
  const axeFound: string[] = [];
  /** The path and fragment of a mailed link, on the test server (links name the configured issuer). */
  const onServer = (link: string) => {
    const url = new URL(link);
    return server.url + url.pathname + url.hash;
  };
  before(async () => {
    mail = await MailSink.start();
    server = await startTestServer({ PORTCULLIS_DEACTIVATION_GRACE: String(GRACE_SECONDS), PORTCULLIS_SMTP_URL: mail.url });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    await server?.stop();
    await mail?.stop();
  });

  test('sign up, create an organization, an app and keys, use, rename and delete a key; a developer cannot create keys', async (t) => {
    if (!needService(t, 'Chromium (/usr/bin/chromium)', existsSync(CHROMIUM))) return;
    const started = Date.now();
    const browser = await launch();
    const problems: string[] = [];
    try {
      const page = await browser.context.newPage();
      watch(page, problems);
      const owner = 'ada@acme.example';
      const developer = 'grace@acme.example';

      // Sign up (after a refused short password).
      await page.goto(`${server.url}/`);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await shot(page, '01-sign-in');
      await checkAccessibility(page, 'sign-in', axeFound);
      await page.getByRole('link', { name: 'Create an account' }).click();
      await page.getByLabel('Email address').fill(owner);
      await page.getByLabel('Password').fill('too short');
      await page.getByRole('button', { name: 'Create account' }).click();
      assert.match(await text(page.getByRole('alert')), /Password must be at least 12 characters\./);
      await checkAccessibility(page, 'sign-up', axeFound);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      await page.getByText('You are not in any organization yet.').waitFor();
      assert.match(await text(page.getByRole('region', { name: 'Email verification' })), new RegExp(`We mailed a link to ${owner.replace('.', '\\.')}`));
      await checkAccessibility(page, 'organizations (unverified)', axeFound);

      // The mailed verification link works in the browser, and the banner goes.
      const verification = await mail.waitFor(owner, /Verify your email address/);
      await page.goto(onServer(linkIn(verification)));
      await page.getByText(`${owner} is verified.`).waitFor();
      assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
      await checkAccessibility(page, 'verify-email', axeFound);
      await page.getByRole('link', { name: 'Go to your organizations' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      assert.equal(await page.getByRole('region', { name: 'Email verification' }).count(), 0);

      // Organization and app.
      await page.getByRole('button', { name: 'Create organization' }).click();
      assert.match(await text(page.getByRole('alert')), /Name must not be empty\./);
      await page.getByLabel('Organization name').fill('Acme Retail');
      await page.getByRole('button', { name: 'Create organization' }).click();
      await page.getByRole('heading', { name: 'Acme Retail' }).waitFor();
      await page.getByText('No apps yet.').waitFor();
      await page.getByLabel('App name').fill('Shop integration');
      await page.getByLabel('Description (optional)').fill('Sponsored products on the shop');
      await page.getByRole('button', { name: 'Create app' }).click();
      await page.getByRole('heading', { name: 'Shop integration' }).waitFor();
      await page.getByText('This app has no API keys yet.').waitFor();
      const appUrl = page.url();
      assert.match(await page.getByLabel('With curl').inputValue(), new RegExp(`^curl -X POST '${ISSUER_FOR_TESTS}/oauth2/token'`));
      assert.match(await page.getByLabel(/In Node\.js with/).inputValue(), /createTokenProvider\(\{\n {2}tokenUrl: 'http:\/\/portcullis\.test\/oauth2\/token'/);
      await checkAccessibility(page, 'app (no keys)', axeFound);

      // A key: the file downloads at once, the secret shows once, focus comes back after the dialog.
      const first = await createKey(page, 'Production Credentials');
      assert.match(first.file, new RegExp(`^CLIENT_ID=${first.clientId}$`, 'm'));
      assert.match(first.file, new RegExp(`^CLIENT_SECRET=${first.secretShown}$`, 'm'));
      assert.match(first.secretShown, /^pcs_/);
      assert.match(await text(page.getByRole('dialog')), /you will not see this again/);
      await shot(page, '03-new-key-secret');
      await checkAccessibility(page, 'new key dialog', axeFound);
      await closeSecretDialog(page);
      assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Create key');

      // The key works against the token endpoint and /me.
      const token = await server.accessToken(first.clientId, first.secretShown);
      const me = await server.me(token);
      assert.equal(me.status, 200);
      assert.equal(me.body.data.attributes.name, 'Shop integration');

      // Rename in place: empty is refused in words, then a real name is saved.
      await page.getByRole('button', { name: 'Rename Production Credentials' }).click();
      const renameBox = page.getByLabel('New name for Production Credentials');
      await renameBox.fill('   ');
      await renameBox.press('Enter');
      assert.match(await text(page.getByRole('alert')), /Name must not be empty\./);
      await renameBox.fill('Troubleshooting Credentials');
      await renameBox.press('Enter');
      await page.getByRole('button', { name: 'Rename Troubleshooting Credentials' }).waitFor();

      // The quickstart's curl names the first key's client_id.
      assert.match(await page.getByLabel('With curl').inputValue(), new RegExp(`client_id=${first.clientId}`));

      // A double click on "Create key" creates one key (the button is busy while its request runs).
      const second = await createKey(page, 'Key 2', { double: true });
      await closeSecretDialog(page);
      assert.equal(await page.locator('tr[data-client-id]').count(), 2, 'one key per double click');
      // Three more keys make five; the sixth is refused with a message in the page.
      for (const n of [3, 4, 5]) {
        await createKey(page, `Key ${n}`);
        await closeSecretDialog(page);
      }
      await page.getByLabel('New key name').fill('Key 6');
      await page.getByRole('button', { name: 'Create key' }).click();
      assert.match(await text(page.getByRole('alert')), /already has 5 active credentials/);
      await shot(page, '04-keys');

      // Delete with a confirmation: the key shows "deactivating" with a countdown, then disappears.
      await page.getByRole('button', { name: 'Delete Troubleshooting Credentials' }).click();
      const confirm = page.getByRole('dialog', { name: 'Delete this key?' });
      assert.match(await text(confirm), /keeps getting tokens for 4 seconds/);
      await confirm.getByRole('button', { name: 'Delete key' }).click();
      const row = page.locator(`tr[data-client-id="${first.clientId}"]`);
      await row.getByText('Deactivating').waitFor();
      assert.match(await text(row.locator('.countdown')), /^0:0[0-4]$/);
      await shot(page, '05-key-deactivating');
      await server.accessToken(first.clientId, first.secretShown); // still works in its grace period
      await row.waitFor({ state: 'detached', timeout: (GRACE_SECONDS + 5) * 1000 });
      const after = await server.token({ grant_type: 'client_credentials', client_id: first.clientId, client_secret: first.secretShown });
      assert.equal(after.status, 401);
      assert.equal(after.body.error, 'invalid_client');

      // The usage chart counts the tokens issued.
      await page.reload();
      await page.getByText(/tokens issued in the last 30 days/).waitFor();
      assert.match(await text(page.locator('figcaption')), /^2 tokens issued/);
      await shot(page, '06-app-usage');
      await page
        .getByLabel('Show', { exact: true })
        .selectOption({ label: `Key 3 (${(await page.locator('tr[data-client-id]').nth(1).getAttribute('data-client-id'))!.slice(0, 8)}…)` });
      await page.getByText('No tokens were issued for this key in the last 30 days. 0 failed authentications').waitFor();
      await page.getByLabel('Show', { exact: true }).selectOption('');
      await page.getByText(/^2 tokens issued/).waitFor();
      await checkAccessibility(page, 'app with keys', axeFound);

      // "Revoke now" after a typed confirmation: the secret gets invalid_client at once, and issued tokens stop.
      const issued = await server.accessToken(second.clientId, second.secretShown);
      await page.getByRole('button', { name: 'Revoke now: Key 2' }).click();
      const revoke = page.getByRole('dialog', { name: 'Revoke this key now?' });
      await revoke.getByLabel(/Type the key's name/).fill('Key two');
      await revoke.getByRole('button', { name: 'Revoke now' }).click();
      assert.match(await text(revoke.getByRole('alert')), /Type the key's name, “Key 2”, to confirm\./);
      await checkAccessibility(page, 'revoke dialog', axeFound);
      await revoke.getByLabel(/Type the key's name/).fill('Key 2');
      await revoke.getByRole('button', { name: 'Revoke now' }).click();
      await page.getByText('“Key 2” is revoked').first().waitFor();
      const revoked = await server.token({ grant_type: 'client_credentials', client_id: second.clientId, client_secret: second.secretShown });
      assert.equal(revoked.status, 401);
      assert.equal(revoked.body.error, 'invalid_client');
      assert.equal((await server.me(issued)).status, 401);
      assert.equal(await page.locator(`tr[data-client-id="${second.clientId}"]`).count(), 0);
      await mail.waitFor(owner, new RegExp(`API key ${second.clientId} of Shop integration was revoked`));

      // Invite a developer; the link is shown to the owner.
      await page.getByRole('link', { name: 'Members' }).click();
      await page.getByRole('heading', { name: 'Members of Acme Retail' }).waitFor();
      await page.getByLabel('Email address').fill(developer);
      await page.getByLabel('Role', { exact: true }).selectOption('developer');
      await page.getByRole('button', { name: 'Create invitation' }).click();
      const link = await page.getByLabel('Invitation link', { exact: true }).inputValue();
      recordSecret(new URL(link).pathname.split('/').pop());
      assert.match(await text(page.getByRole('status').filter({ hasText: 'Invitation' })), new RegExp(`Invitation mailed to ${developer.replace('.', '\\.')}`));
      const invitationMail = await mail.waitFor(developer, /You are invited to Acme Retail/);
      assert.equal(linkIn(invitationMail), link);
      await shot(page, '07-members-invitation');
      await checkAccessibility(page, 'members', axeFound);

      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Audit log of Acme Retail' }).waitFor();
      const audit = await text(page.locator('table'));
      assert.match(audit, /created the key “Production Credentials”/);
      assert.match(audit, /renamed the key .* to “Troubleshooting Credentials”/);
      assert.match(audit, new RegExp(`${owner.replace('.', '\\.')}`));
      assert.match(audit, /127\.0\.0\.1/);
      assert.match(audit, /deleted the key “Troubleshooting Credentials”/, 'keys are named, not only numbered');
      assert.match(audit, /revoked the key “Key 2” immediately/);
      await page.getByLabel('What').selectOption('credential');
      await page.getByRole('button', { name: 'Filter' }).click();
      await until(async () => (await page.locator('tbody td[data-label="What"]').allTextContents()).every((what) => / key /.test(what)), 'only key events');
      const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
      const csv = readFileSync((await csvDownload.path())!, 'utf8');
      assert.match(csv, /^"occurred_at","actor","action"/);
      assert.match(csv, /"credential\.revoked"/);
      assert.doesNotMatch(csv, /"member\.invited"/, 'the CSV has the filter of the page');
      await shot(page, '08-audit-log');
      await checkAccessibility(page, 'audit log', axeFound);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();

      // The developer follows the link, creates an account, joins, and sees keys without managing them.
      await page.goto(server.url + new URL(link).pathname);
      await page.getByText(/You are invited to join Acme Retail as developer/).waitFor();
      await checkAccessibility(page, 'invitation', axeFound);
      await page.getByRole('link', { name: 'Create an account' }).click();
      // The invited address is filled in, and the invitation proves it: no verification needed.
      await until(async () => (await page.getByLabel('Email address').inputValue()) === developer, 'the invited address filled in');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('button', { name: 'Join Acme Retail' }).click();
      await page.getByRole('heading', { name: 'Acme Retail' }).waitFor();
      await page.goto(appUrl);
      await page.getByRole('heading', { name: 'API keys' }).waitFor();
      await page.getByText('Key 5', { exact: true }).waitFor();
      assert.equal(await page.getByLabel('New key name').count(), 0, 'no key form for a developer');
      assert.equal(await page.getByRole('button', { name: /^Delete / }).count(), 0, 'no delete buttons for a developer');
      assert.equal(await page.getByRole('button', { name: /^Rename / }).count(), 0, 'no rename for a developer');
      // A developer is told why, and whom to ask.
      const why = await text(page.getByRole('note'));
      assert.match(why, /Your role in Acme Retail is developer/);
      assert.match(why, new RegExp(`Ask ${owner.replace('.', '\\.')} \\(owner\\)`));
      assert.equal(mail.count(developer, /Verify your email/), 0);
      // The API refuses too, when the page's own session asks.
      const refused = (await page.evaluate(`(async () => {
        const session = await (await fetch('/portal/api/session')).json();
        const res = await fetch('/portal/api' + location.pathname + '/credentials', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
          body: JSON.stringify({ name: 'sneaky' }),
        });
        return { status: res.status, body: await res.json() };
      })()`)) as { status: number; body: any };
      assert.equal(refused.status, 403);
      assert.match(refused.body.errors[0].detail, /developer/);
      await shot(page, '09-developer-view');
      await checkAccessibility(page, 'developer view', axeFound);

      // Used invitation link: a clear message.
      await page.goto(server.url + new URL(link).pathname);
      assert.match(await text(page.getByRole('alert')), /already been accepted/);

      // A narrow screen still works.
      await page.setViewportSize({ width: 390, height: 800 });
      await page.goto(appUrl);
      await page.getByRole('heading', { name: 'API keys' }).waitFor();
      await shot(page, '10-mobile-app');
      await page.goto(`${server.url}/account`);
      await page.getByRole('heading', { name: 'Where you are signed in' }).waitFor();
      await checkAccessibility(page, 'account', axeFound);
      await page.goto(`${server.url}/orgs/1/nothing-here`);
      await page.getByRole('heading', { name: 'Page not found' }).waitFor();
      assert.equal(await page.title(), 'Page not found · Portcullis');
      await checkAccessibility(page, 'not found', axeFound);

      assert.deepEqual(problems, [], 'no page errors and no Content-Security-Policy violations');
      process.stdout.write(`# e2e portal flow took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } finally {
      await browser.close();
    }
  });

  test('organizations page screenshot with content, and the sign-in error in words', async (t) => {
    if (!needService(t, 'Chromium (/usr/bin/chromium)', existsSync(CHROMIUM))) return;
    const browser = await launch();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${server.url}/signin`);
      await page.getByLabel('Email address').fill('nobody@example.com');
      await page.getByLabel('Password').fill('wrong password 123');
      await page.getByRole('button', { name: 'Sign in' }).click();
      assert.equal(await text(page.getByRole('alert')), 'The email address or the password is wrong.');
      await page.getByLabel('Email address').fill('ada@acme.example');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      await page.getByRole('link', { name: 'Acme Retail' }).waitFor();
      await shot(page, '02-organizations');
      await checkAccessibility(page, 'organizations', axeFound);
    } finally {
      await browser.close();
    }
  });

  test('"forgot password" mails a reset link that sets a new password you can sign in with; then two-factor sign-in with a recovery code', async (t) => {
    if (!needService(t, 'Chromium (/usr/bin/chromium)', existsSync(CHROMIUM))) return;
    const browser = await launch();
    const problems: string[] = [];
    try {
      const address = 'ada@acme.example';
      const newPassword = 'a brand new passphrase 8';
      const page = await browser.context.newPage();
      watch(page, problems);
      await page.goto(`${server.url}/signin`);
      await page.getByRole('link', { name: 'Forgot your password?' }).click();
      await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
      await checkAccessibility(page, 'forgot password', axeFound);
      await page.getByLabel('Email address').fill(address);
      await page.getByRole('button', { name: 'Send reset link' }).click();
      assert.match(await text(page.getByRole('status')), /If an account exists for ada@acme\.example, we have mailed it a link/);
      const reset = await mail.waitFor(address, /Reset your Portcullis password/);
      await page.goto(onServer(linkIn(reset)));
      await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
      await checkAccessibility(page, 'reset password', axeFound);
      await page.getByLabel('New password').fill('short');
      await page.getByRole('button', { name: 'Set new password' }).click();
      assert.match(await text(page.getByRole('alert')), /at least 12 characters/);
      await page.getByLabel('New password').fill(newPassword);
      await page.getByRole('button', { name: 'Set new password' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.match(await text(page.getByRole('status')), /Your password has been changed/);
      await page.getByLabel('Email address').fill(address);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      assert.equal(await text(page.getByRole('alert')), 'The email address or the password is wrong.');
      await page.getByLabel('Password').fill(newPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();

      // Two-factor authentication: set up with a code from the key shown, then sign-in asks for a code.
      await page.goto(`${server.url}/account`);
      await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
      const key = (await text(page.locator('code.secret-key'))).replace(/\s+/g, '');
      recordSecret(key);
      await checkAccessibility(page, 'two-factor setup', axeFound);
      await page.getByLabel('Code from the app').fill(hotp(fromBase32(key), Math.floor(Date.now() / 30_000)));
      await page.getByRole('button', { name: 'Turn on' }).click();
      await page.getByText('Two-factor authentication is on.').waitFor();
      const codes = await page.locator('ul.codes code').allTextContents();
      recordSecret(...codes);
      assert.equal(codes.length, 10);
      await shot(page, '13-account-two-factor');
      await checkAccessibility(page, 'two-factor recovery codes', axeFound);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Email address').fill(address);
      await page.getByLabel('Password').fill(newPassword);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByLabel('Code from your authenticator app').fill(codes[0]!);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('an operator creates a partner, issues a static token (file downloaded), links an application_id; the reference curls then work', async (t) => {
    if (!needService(t, 'Chromium (/usr/bin/chromium)', existsSync(CHROMIUM))) return;
    if (!curlAvailable(t)) return;
    const tam = 'tam@portcullis.example';
    const operatorClient = new PortalClient(server.url);
    await operatorClient.signUp(tam, PASSWORD);
    await operatorClient.operator('POST', '/operators/grant', { email: tam });
    // A customer's app whose dynamic tokens will be allowed to call the partner.
    const customer = new PortalClient(server.url);
    await customer.signUp('dev@retailer.example', PASSWORD);
    const org = await customer.createOrg('Retailer Co');
    const app = await customer.createApp(org.id, 'Sponsored products');
    const key = await customer.createKey(org.id, app.id);
    recordSecret(key.client_secret);

    const browser = await launch();
    const problems: string[] = [];
    try {
      const page = await browser.context.newPage();
      watch(page, problems);
      await page.goto(`${server.url}/signin`);
      await page.getByLabel('Email address').fill(tam);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('link', { name: 'Operator console' }).click();
      await page.getByRole('heading', { name: 'Operator console: Organizations and apps' }).waitFor();
      await page.getByLabel('Search by name or application_id').fill(String(app.id));
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByText(`Sponsored products — application_id ${app.id}`).waitFor();
      await checkAccessibility(page, 'operator organizations', axeFound);

      await page.getByRole('link', { name: 'Partners and static tokens' }).click();
      await page.getByRole('heading', { name: 'Operator console: Partners and static tokens' }).waitFor();
      await page.getByLabel('Partner ID (criteo-partner-id)').fill('12345');
      await page.getByLabel('Partner name').fill('Retailer Co');
      await page.getByLabel('Rate limit per minute (optional)').fill('600');
      assert.equal(await page.getByLabel('Require a token for every delivery call').isChecked(), true);
      await page.getByRole('button', { name: 'Save partner' }).click();
      await page.getByText('Partner 12345 “Retailer Co” saved; tokens required.').first().waitFor();

      await page.getByLabel('New static token name').fill('Retailer handover');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Issue static token' }).click()]);
      const file = readFileSync((await download.path())!, 'utf8');
      const dialog = page.getByRole('dialog', { name: 'Your new static token' });
      const staticToken = await dialog.getByLabel('Static token', { exact: true }).inputValue();
      recordSecret(staticToken);
      assert.match(staticToken, /^pct_/);
      assert.match(file, new RegExp(`^STATIC_TOKEN=${staticToken}$`, 'm'));
      assert.match(file, /^PARTNER_ID=12345$/m);
      await checkAccessibility(page, 'operator static token dialog', axeFound);
      await dialog.getByRole('button', { name: 'I have saved the token' }).click();
      await page.getByLabel('application_id to link').fill(String(app.id));
      await page.getByRole('button', { name: 'Link application' }).click();
      await page.getByText(`Application ${app.id} is linked to partner 12345`).first().waitFor();
      await shot(page, '11-operator-partners');
      await checkAccessibility(page, 'operator partners', axeFound);

      // A portal app gets retail-media (PORTCULLIS_PORTAL_APP_SCOPES), so the operator's link is all its dynamic token needs.

      // The reference page's static-token and dynamic-token curls, as written, against the delivery API.
      const delivery = (token: string) => referenceDeliveryCurl(server.url, token);
      const withStatic = await curl(delivery(staticToken));
      assert.equal(withStatic.status, 200, withStatic.text);
      const tokenAnswer = await curl(referenceTokenCurl(server.url, key.client_id, key.client_secret));
      assert.equal(tokenAnswer.status, 200, tokenAnswer.text);
      recordSecret(tokenAnswer.body.access_token);
      const withDynamic = await curl(delivery(tokenAnswer.body.access_token));
      assert.equal(withDynamic.status, 200, withDynamic.text);
      const withoutToken = await curl(delivery('not-a-token'));
      assert.equal(withoutToken.status, 401);

      await page.getByRole('link', { name: 'Signing keys' }).click();
      await page.getByRole('button', { name: 'Rotate signing key' }).click();
      await page.getByText(/is published now and signs from/).waitFor();
      await checkAccessibility(page, 'operator keys', axeFound);
      await page.getByRole('link', { name: 'Gateway routes' }).click();
      await page.getByRole('heading', { name: 'Operator console: Gateway routes' }).waitFor();
      await checkAccessibility(page, 'operator gateway', axeFound);

      // An API registration, one scope opened to self-service, then granted to the customer's app by application_id.
      await page.getByRole('link', { name: 'API registrations' }).click();
      await page.getByRole('heading', { name: 'Operator console: API registrations' }).waitFor();
      await page.getByLabel('Identifier (URI)').fill('https://catalog.retailer.example');
      await page.getByLabel('Name', { exact: true }).fill('Catalog');
      await page.getByLabel('Scopes it defines').fill('catalog:read catalog:write');
      await page.getByRole('button', { name: 'Register API' }).click();
      await page.getByText('Registered https://catalog.retailer.example.').waitFor();
      // The box is ticked once the server saved it, so it is clicked rather than checked.
      await page.getByLabel('catalog:read').click();
      await until(async () => (await operatorClient.operator('GET', '/apis'))[0]?.self_service_scopes?.[0] === 'catalog:read', 'the self-service scope saved');
      await until(() => page.getByLabel('catalog:read').isChecked(), 'the box shows the saved scope');
      await page.getByLabel('application_id').fill(String(app.id));
      await page.getByLabel("Scopes (blank: all of the API's)").fill('catalog:write');
      await page.getByRole('button', { name: 'Grant', exact: true }).click();
      await page.getByText('https://catalog.retailer.example with catalog:write').waitFor();
      await checkAccessibility(page, 'operator API registrations', axeFound);

      // Each action is audited under this operator's own name.
      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Audit log, every organization' }).waitFor();
      const audit = await text(page.locator('main ul'));
      for (const action of ['partner.created', 'static_token.created', 'partner.application_linked', 'key.rotated']) {
        assert.match(audit, new RegExp(`tam@portcullis\\.example \\(operator\\) ${action.replace('.', '\\.')}`), action);
      }
      await shot(page, '12-operator-audit');
      await checkAccessibility(page, 'operator audit', axeFound);

      // The customer's owner adds the published scope on the app page; the operator's grant stays.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Email address').fill('dev@retailer.example');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      await page.goto(`${server.url}/orgs/${org.id}/apps/${app.id}`);
      await page.getByRole('heading', { name: 'APIs' }).waitFor();
      await page.getByText('This platform (tokens without resource) http://portcullis.test with retail-media').waitFor();
      await page.getByLabel('API', { exact: true }).selectOption({ label: 'Catalog (https://catalog.retailer.example)' });
      await page.getByLabel('catalog:read').check();
      await page.getByRole('button', { name: 'Save scopes' }).click();
      await page.getByText('The app may now ask tokens for https://catalog.retailer.example with catalog:read.').waitFor();
      await page.getByText('https://catalog.retailer.example with catalog:read catalog:write').waitFor();
      await page.getByRole('region', { name: 'APIs' }).screenshot({ path: path.join(SCREENSHOTS, '13-app-apis.png') });
      await checkAccessibility(page, 'app APIs', axeFound);
      const catalogToken = await server.token({
        grant_type: 'client_credentials',
        client_id: key.client_id,
        client_secret: key.client_secret,
        resource: 'https://catalog.retailer.example',
      });
      assert.equal(catalogToken.status, 200, JSON.stringify(catalogToken.body));
      recordSecret(catalogToken.body.access_token);
      assert.equal(catalogToken.body.scope, 'catalog:read catalog:write');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });

  test('axe-core finds no serious or critical violation on any page visited, at desktop and 390 px widths', () => {
    assert.deepEqual(axeFound, []);
  });
});
