import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { needService } from './helpers/services.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/screenshots');
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

const text = async (locator: Locator): Promise<string> => (await locator.textContent()) ?? '';
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function createKey(page: Page, name: string): Promise<{ file: string; secretShown: string; clientId: string }> {
  await page.getByLabel('New key name').fill(name);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Create key' }).click()]);
  const file = readFileSync((await download.path())!, 'utf8');
  const dialog = page.getByRole('dialog', { name: 'Your new API key' });
  await dialog.waitFor();
  const secretShown = await dialog.getByLabel('Client secret', { exact: true }).inputValue();
  const clientId = await dialog.getByLabel('Client ID', { exact: true }).inputValue();
  return { file, secretShown, clientId };
}

async function closeSecretDialog(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'I have saved the secret' }).click();
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
}

describe('developer portal in Chromium', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ PORTCULLIS_DEACTIVATION_GRACE: String(GRACE_SECONDS) });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  after(() => server.stop());

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
      await page.getByRole('link', { name: 'Create an account' }).click();
      await page.getByLabel('Email address').fill(owner);
      await page.getByLabel('Password').fill('too short');
      await page.getByRole('button', { name: 'Create account' }).click();
      assert.match(await text(page.getByRole('alert')), /Password must be at least 12 characters\./);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('heading', { name: 'Your organizations' }).waitFor();
      await page.getByText('You are not in any organization yet.').waitFor();

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

      // A key: the file downloads at once, the secret shows once, focus comes back after the dialog.
      const first = await createKey(page, 'Production Credentials');
      assert.match(first.file, new RegExp(`^client_id=${first.clientId}$`, 'm'));
      assert.match(first.file, new RegExp(`^client_secret=${first.secretShown}$`, 'm'));
      assert.match(first.secretShown, /^pcs_/);
      assert.match(await text(page.getByRole('dialog')), /you will not see this again/);
      await shot(page, '03-new-key-secret');
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

      // Four more keys make five; the sixth is refused with a message in the page.
      for (const n of [2, 3, 4, 5]) {
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

      // Invite a developer; the link is shown to the owner.
      await page.getByRole('link', { name: 'Members' }).click();
      await page.getByRole('heading', { name: 'Members of Acme Retail' }).waitFor();
      await page.getByLabel('Email address').fill(developer);
      await page.getByLabel('Role', { exact: true }).selectOption('developer');
      await page.getByRole('button', { name: 'Create invitation' }).click();
      const link = await page.getByLabel('Invitation link', { exact: true }).inputValue();
      await shot(page, '07-members-invitation');

      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Audit log of Acme Retail' }).waitFor();
      const audit = await text(page.locator('table'));
      assert.match(audit, /created the key “Production Credentials”/);
      assert.match(audit, /renamed the key .* to “Troubleshooting Credentials”/);
      assert.match(audit, new RegExp(`${owner.replace('.', '\\.')}`));
      assert.match(audit, /127\.0\.0\.1/);
      await shot(page, '08-audit-log');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();

      // The developer follows the link, creates an account, joins, and sees keys without managing them.
      await page.goto(server.url + new URL(link).pathname);
      await page.getByText(/You are invited to join Acme Retail as developer/).waitFor();
      await page.getByRole('link', { name: 'Create an account' }).click();
      await page.getByLabel('Email address').fill(developer);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('button', { name: 'Join Acme Retail' }).click();
      await page.getByRole('heading', { name: 'Acme Retail' }).waitFor();
      await page.goto(appUrl);
      await page.getByRole('heading', { name: 'API keys' }).waitFor();
      await page.getByText('Key 5').waitFor();
      assert.equal(await page.getByLabel('New key name').count(), 0, 'no key form for a developer');
      assert.equal(await page.getByRole('button', { name: /^Delete / }).count(), 0, 'no delete buttons for a developer');
      assert.equal(await page.getByRole('button', { name: /^Rename / }).count(), 0, 'no rename for a developer');
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

      // Used invitation link: a clear message.
      await page.goto(server.url + new URL(link).pathname);
      assert.match(await text(page.getByRole('alert')), /already been accepted/);

      // A narrow screen still works.
      await page.setViewportSize({ width: 390, height: 800 });
      await page.goto(appUrl);
      await page.getByRole('heading', { name: 'API keys' }).waitFor();
      await shot(page, '10-mobile-app');

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
    } finally {
      await browser.close();
    }
  });
});
