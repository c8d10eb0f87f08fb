import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { ADMIN_TOKEN, MASTER_KEY, tempDir } from './helpers/server.js';
import { runCli, spawnServer } from './helpers/process.js';

const dirs: string[] = [];
const newDir = () => {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function tokenFor(url: string, clientId: string, clientSecret: string) {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, grant_type: 'client_credentials' }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('configuration', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^portcullis: configuration error: PORT must be a whole number/],
    [{ PORT: '70000' }, /^portcullis: configuration error: PORT must be between 0 and 65535/],
    [{ PORTCULLIS_MASTER_KEY: 'short' }, /PORTCULLIS_MASTER_KEY must be 32 bytes/],
    [{ PORTCULLIS_ISSUER: 'not a url' }, /PORTCULLIS_ISSUER must be an absolute URL/],
    [{ PORTCULLIS_TOKEN_TTL: '0' }, /PORTCULLIS_TOKEN_TTL must be between 1 and 86400/],
    [{ PORTCULLIS_DEACTIVATION_GRACE: '-5' }, /PORTCULLIS_DEACTIVATION_GRACE must be a whole number/],
    [{ PORTCULLIS_SIGNING_ALG: 'HS256' }, /PORTCULLIS_SIGNING_ALG must be one of RS256, ES256, EdDSA/],
    [{ PORTCULLIS_ADMIN_TOKEN: 'short' }, /PORTCULLIS_ADMIN_TOKEN must be at least 16/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ];
  for (const [env, message] of cases) {
    test(`bad ${Object.keys(env)[0]} stops the start with one line naming it`, async () => {
      const result = await runCli(['serve'], { PORTCULLIS_DATA_DIR: newDir(), PORT: '0', ...env });
      assert.equal(result.code, 78);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    });
  }

  test('flags mirror the environment and are checked the same way', async () => {
    const result = await runCli(['serve', '--port', 'x'], { PORTCULLIS_DATA_DIR: newDir() });
    assert.equal(result.code, 78);
    assert.match(result.stderr, /PORT must be a whole number/);
    const unknown = await runCli(['serve', '--colour', 'blue'], { PORTCULLIS_DATA_DIR: newDir() });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /colour/);
  });
});

describe('first start and restart', () => {
  test('the first start generates a 0600 master key and an operator token printed once; a restart keeps everything', async () => {
    const dataDir = newDir();
    const env = { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_ADMIN_TOKEN: '', PORTCULLIS_MASTER_KEY: '' };
    const first = await spawnServer(env);
    let second: Awaited<ReturnType<typeof spawnServer>> | undefined;
    try {
      const printed = /^ {2}(pca_[A-Za-z0-9_-]+)$/m.exec(first.output());
      assert.ok(printed?.[1], `the operator token is printed:\n${first.output()}`);
      const adminToken = printed[1];
      assert.match(first.output(), /"level":40[^\n]*PORTCULLIS_MASTER_KEY is not set/);
      const keyFile = path.join(dataDir, 'master.key');
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.match(readFileSync(keyFile, 'utf8').trim(), /^[0-9a-f]{64}$/);

      const cli = (...args: string[]) => runCli(['admin', ...args, '--json'], { PORTCULLIS_URL: first.url, PORTCULLIS_ADMIN_TOKEN: adminToken });
      const org = JSON.parse((await cli('orgs', 'create', '--name', 'Acme')).stdout);
      const app = JSON.parse((await cli('apps', 'create', '--org', String(org.id), '--name', 'Shop', '--scopes', 'read,write')).stdout);
      const cred = JSON.parse((await cli('credentials', 'create', '--app', String(app.id), '--name', 'prod')).stdout);
      const issued = await tokenFor(first.url, cred.client_id, cred.client_secret);
      assert.equal(issued.status, 200);
      const kid = decodeProtectedHeader(issued.body.access_token).kid;

      assert.equal(await first.stop(), 0, 'SIGTERM shuts down cleanly');
      assert.ok(!first.output().includes(cred.client_secret), 'the client secret never reaches the log');

      second = await spawnServer(env);
      assert.ok(!second.output().includes('pca_'), 'the operator token is printed only at the first start');
      const me = await fetch(`${second.url}/me`, { headers: { authorization: `Bearer ${issued.body.access_token}` } });
      assert.equal(me.status, 200, 'a token issued before the restart still verifies');
      const again = await tokenFor(second.url, cred.client_id, cred.client_secret);
      assert.equal(again.status, 200);
      assert.equal(decodeProtectedHeader(again.body.access_token).kid, kid, 'the same key signs after the restart');
      const list = await runCli(['admin', 'credentials', 'list', '--app', String(app.id), '--json'], {
        PORTCULLIS_URL: second.url,
        PORTCULLIS_ADMIN_TOKEN: adminToken,
      });
      const [listed] = JSON.parse(list.stdout);
      assert.equal(listed.client_id, cred.client_id);
      assert.notEqual(listed.last_used_at, null, 'last use written at shutdown survives the restart');
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  test('the CLI prints human output, reports API errors in words and refuses calls without a token', async () => {
    const server = await spawnServer({ PORTCULLIS_DATA_DIR: newDir(), PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN, PORTCULLIS_MASTER_KEY: MASTER_KEY });
    try {
      const env = { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN };
      const created = await runCli(['admin', 'orgs', 'create', '--name', 'Acme'], env);
      assert.equal(created.code, 0);
      assert.match(created.stdout, /^organization 1 "Acme" created$/m);
      const cred = await runCli(['admin', 'credentials', 'create', '--app', '1', '--name', 'x'], env);
      assert.equal(cred.code, 1);
      assert.match(cred.stderr, /^portcullis admin: 404: application 1 was not found$/m);
      const empty = await runCli(['admin', 'orgs', 'create', '--name', ''], env);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /--name is required/);
      const noToken = await runCli(['admin', 'orgs', 'list'], { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: '' });
      assert.equal(noToken.code, 2);
      assert.match(noToken.stderr, /no operator token/);
      const wrong = await runCli(['admin', 'orgs', 'list', '--token', 'wrong-token-wrong-token'], { PORTCULLIS_URL: server.url });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /401/);
      const unreachable = await runCli(['admin', 'orgs', 'list'], { PORTCULLIS_URL: 'http://127.0.0.1:9', PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN });
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, /cannot reach/);
    } finally {
      await server.stop();
    }
  });

  test('migrate applies the schema once and then reports it up to date', async () => {
    const dataDir = newDir();
    const first = await runCli(['migrate'], { PORTCULLIS_DATA_DIR: dataDir });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied 0001_initial/);
    const second = await runCli(['migrate'], { PORTCULLIS_DATA_DIR: dataDir });
    assert.match(second.stdout, /up to date/);
  });
});
