import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { deriveKeys, unseal } from '../src/keys/master.js';
import { BIN, runCli } from './helpers/process.js';
import { recordSecret } from './helpers/secrets.js';
import { openPostgres, openSqlite } from '../src/store/db.js';
import { createTestDatabase, needService, postgresAvailable } from './helpers/services.js';
import { ADMIN_TOKEN, MASTER_KEY, startTestServer, type TestServer, tempDir } from './helpers/server.js';

const OTHER_KEY = 'b'.repeat(64);
const NEW_KEY = `${'c0ffee'.repeat(10)}0123`;
recordSecret(OTHER_KEY, NEW_KEY);

const dirs: string[] = [];
const newDir = () => {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type Credential = { clientId: string; clientSecret: string };

async function credentials(server: TestServer, count: number): Promise<Credential[]> {
  const made: Credential[] = [];
  for (let i = 0; i < count; i++) made.push(await server.newCredential({ name: `app ${i}` }));
  return made;
}

/** Every credential gets a token from `server`, and every token in `issued` verifies there. */
async function assertServes(server: TestServer, creds: Credential[], issued: string[]) {
  for (const c of creds) {
    const res = await server.token({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
    assert.equal(res.status, 200, `${c.clientId}: ${JSON.stringify(res.body)}`);
    assert.equal((await server.me(res.body.access_token)).status, 200);
  }
  for (const token of issued) assert.equal((await server.me(token)).status, 200, 'a token issued before the change verifies');
}

const oneLine = (text: string) => text.trim().split('\n').length === 1;

describe('backup and restore of the embedded store', () => {
  test('a backup taken while tokens are issued restores into a server that serves every credential and verifies earlier tokens', async () => {
    const source = await startTestServer({}, { dataDir: newDir() });
    const backup = path.join(newDir(), 'portcullis.backup');
    let creds: Credential[];
    let before: string[];
    try {
      creds = await credentials(source, 4);
      before = await Promise.all(creds.map((c) => source.accessToken(c.clientId, c.clientSecret)));
      // Tokens keep being issued (and their use recorded) while the backup runs in its own process.
      let issuing = true;
      let issuedDuring = 0;
      const load = (async () => {
        while (issuing) {
          for (const c of creds) {
            await source.accessToken(c.clientId, c.clientSecret);
            issuedDuring++;
          }
          await source.services.usage.flush();
        }
      })();
      const result = await runCli(['backup', backup], { PORTCULLIS_DATA_DIR: source.dataDir }).finally(() => {
        issuing = false;
      });
      await load;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /backup written to .* It does not hold the master key/);
      assert.ok(issuedDuring > 0);
    } finally {
      await source.stop();
    }

    const restoredDir = newDir();
    const restored = await runCli(['restore', backup, '--data-dir', restoredDir]);
    assert.equal(restored.code, 0, restored.stderr);
    const copy = await startTestServer({}, { dataDir: restoredDir });
    try {
      await assertServes(copy, creds, before);
    } finally {
      await copy.stop();
    }

    const wrongDir = newDir();
    assert.equal((await runCli(['restore', backup, '--data-dir', wrongDir])).code, 0);
    const wrong = await runCli(['serve'], { PORTCULLIS_DATA_DIR: wrongDir, PORTCULLIS_MASTER_KEY: OTHER_KEY, PORT: '0' });
    assert.equal(wrong.code, 78);
    assert.ok(oneLine(wrong.stderr), wrong.stderr);
    assert.match(wrong.stderr, /PORTCULLIS_MASTER_KEY is not the master key this data is sealed with/);

    // Restored without its key: the start does not generate a fresh one that would stick.
    const keyless = await runCli(['serve'], { PORTCULLIS_DATA_DIR: wrongDir, PORT: '0' });
    assert.equal(keyless.code, 78);
    assert.ok(oneLine(keyless.stderr), keyless.stderr);
    assert.match(keyless.stderr, /this store is sealed under a master key: set PORTCULLIS_MASTER_KEY/);
    assert.equal(existsSync(path.join(wrongDir, 'master.key')), false);
  });

  test('restore refuses a data dir with a store in it unless --force, and refuses a file that is not a backup', async () => {
    const server = await startTestServer({}, { dataDir: newDir() });
    const backup = path.join(newDir(), 'b.sqlite');
    let cred: Credential;
    try {
      cred = await server.newCredential();
      assert.equal((await runCli(['backup', backup], { PORTCULLIS_DATA_DIR: server.dataDir })).code, 0);
      const again = await runCli(['backup', backup], { PORTCULLIS_DATA_DIR: server.dataDir });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);
    } finally {
      await server.stop();
    }
    const busy = newDir();
    const other = await startTestServer({}, { dataDir: busy });
    await other.stop();
    const refused = await runCli(['restore', backup, '--data-dir', busy]);
    assert.equal(refused.code, 1);
    assert.ok(oneLine(refused.stderr));
    assert.match(refused.stderr, /is not empty .*--force/);
    const forced = await runCli(['restore', backup, '--data-dir', busy, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const copy = await startTestServer({}, { dataDir: busy });
    try {
      await assertServes(copy, [cred], []);
    } finally {
      await copy.stop();
    }

    const junk = path.join(newDir(), 'junk');
    writeFileSync(junk, 'not a database at all, just text');
    const bad = await runCli(['restore', junk, '--data-dir', newDir()]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not a Portcullis backup/);
    assert.ok(oneLine(bad.stderr));
  });
});

describe('master-key rotation', () => {
  test('after rotation every secret, static token and the operator token still work; keys open only with the new key; the old key alone is refused', async () => {
    const dataDir = newDir();
    const keyFile = path.join(newDir(), 'new.key');
    writeFileSync(keyFile, `${NEW_KEY}\n`, { mode: 0o600 });
    const first = await startTestServer({}, { dataDir });
    let creds: Credential[];
    let before: string[];
    let staticToken: string;
    try {
      creds = await credentials(first, 3);
      before = await Promise.all(creds.map((c) => first.accessToken(c.clientId, c.clientSecret)));
      assert.equal((await first.admin('PUT', '/partners/4242', { name: 'Retailer' })).status, 201);
      staticToken = (await first.admin('POST', '/partners/4242/static-tokens', { name: 'prod' })).body.token;
      assert.equal((await first.admin('POST', '/keys/rotate', {})).status < 300, true);
    } finally {
      await first.stop();
    }
    // The stored operator token (as a first start or reset-admin-token makes it), not the env one.
    const reset = await runCli(['reset-admin-token'], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY });
    assert.equal(reset.code, 0, reset.stderr);
    const operatorToken = /(pca_\S+)/.exec(reset.stdout)?.[1];
    assert.ok(operatorToken);
    recordSecret(operatorToken);

    const rotated = await runCli(['master-key', 'rotate', '--new-key-file', keyFile], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY });
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /master key rotated: 2 signing keys/);
    assert.ok(!`${rotated.stdout}${rotated.stderr}`.includes(NEW_KEY) && !`${rotated.stdout}${rotated.stderr}`.includes(MASTER_KEY));

    // The sealed private keys open with the new key's seal key and not with the old one.
    const db = new Database(path.join(dataDir, 'portcullis.sqlite'), { readonly: true });
    const rows = db.prepare('select kid, private_key from signing_keys').all() as Array<{ kid: string; private_key: string }>;
    db.close();
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.ok(unseal(deriveKeys(Buffer.from(NEW_KEY, 'hex')).sealKey, row.private_key, row.kid).length > 0);
      assert.throws(() => unseal(deriveKeys(Buffer.from(MASTER_KEY, 'hex')).sealKey, row.private_key, row.kid));
    }

    const after = await startTestServer({ PORTCULLIS_MASTER_KEY: NEW_KEY, PORTCULLIS_ADMIN_TOKEN: '' }, { dataDir });
    try {
      await assertServes(after, creds, before);
      const outcome = await after.services.staticTokens.verify(staticToken, 4242);
      assert.equal(outcome.ok, true, JSON.stringify(outcome));
      const admin = await fetch(`${after.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${operatorToken}` } });
      assert.equal(admin.status, 200);
      const envToken = await fetch(`${after.url}/admin/v1/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(envToken.status, 401, 'the stored token is the one in force');
      const made = await fetch(`${after.url}/admin/v1/keys/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.ok(made.status < 300);
    } finally {
      await after.stop();
    }

    const old = await runCli(['serve'], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY, PORT: '0' });
    assert.equal(old.code, 78);
    assert.ok(oneLine(old.stderr), old.stderr);
    assert.match(old.stderr, /PORTCULLIS_MASTER_KEY is not the master key this data is sealed with/);

    const again = await runCli(['master-key', 'rotate', '--new-key-file', keyFile], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already sealed under the new master key/);
  });

  for (const kind of ['sqlite', 'postgresql'] as const) {
    test(`on ${kind}, during a fleet rotation nodes holding both keys serve before, across and after it, and seal new keys under the current one`, async (t) => {
      if (kind === 'postgresql' && !needService(t, 'PostgreSQL', await postgresAvailable())) return;
      const database = kind === 'postgresql' ? await createTestDatabase() : undefined;
      const dataDir = newDir();
      const env: Record<string, string> = database ? { DATABASE_URL: database.url } : {};
      const keyFile = path.join(newDir(), 'new.key');
      writeFileSync(keyFile, NEW_KEY, { mode: 0o600 });
      const both = { ...env, PORTCULLIS_MASTER_KEY: NEW_KEY, PORTCULLIS_PREVIOUS_MASTER_KEY: MASTER_KEY };
      const sealedKey = async (kid: string) => {
        const db = database ? openPostgres(database.url) : openSqlite(dataDir);
        try {
          return (await db.selectFrom('signing_keys').select('private_key').where('kid', '=', kid).executeTakeFirstOrThrow()).private_key;
        } finally {
          await db.destroy();
        }
      };
      try {
        const seed = await startTestServer(env, { dataDir });
        const [cred] = await credentials(seed, 1);
        await seed.stop();
        assert.ok(cred);
        // Step 1: every node is restarted with the new key and the old one as previous, before the rotation.
        const node = await startTestServer(both, { dataDir });
        try {
          await assertServes(node, [cred], []);
          const rotated = await runCli(['master-key', 'rotate', '--new-key-file', keyFile], {
            ...env,
            PORTCULLIS_DATA_DIR: dataDir,
            PORTCULLIS_MASTER_KEY: MASTER_KEY,
          });
          assert.equal(rotated.code, 0, rotated.stderr);
          // Step 2 done: the node keeps serving across the rotation, and a key it makes now is sealed under the new key.
          await assertServes(node, [cred], []);
          const made = await node.admin('POST', '/keys/rotate', {});
          assert.ok(made.status < 300, JSON.stringify(made.body));
          assert.ok(unseal(deriveKeys(Buffer.from(NEW_KEY, 'hex')).sealKey, await sealedKey(made.body.kid), made.body.kid));
          const signedByNewKey = await node.accessToken(cred.clientId, cred.clientSecret);
          if (database) {
            // Another node of the fleet, started after the rotation, verifies what the first one signed.
            const other = await startTestServer(both, { dataDir: newDir() });
            try {
              await assertServes(other, [cred], [signedByNewKey]);
            } finally {
              await other.stop();
            }
          }
        } finally {
          await node.stop();
        }
        // Step 3: the previous key is dropped.
        const last = await startTestServer({ ...env, PORTCULLIS_MASTER_KEY: NEW_KEY }, { dataDir });
        try {
          await assertServes(last, [cred], []);
        } finally {
          await last.stop();
        }
      } finally {
        await database?.drop();
      }
    });
  }

  test('the new key is read from a file only, and a bad or missing file is one clear line', async () => {
    const dir = newDir();
    const cases: Array<[string[], RegExp]> = [
      [['master-key', 'rotate'], /--new-key-file FILE is required/],
      [['master-key', 'rotate', '--new-key-file', path.join(dir, 'missing')], /cannot be read: ENOENT/],
      [['master-key', 'rotate', '--new-key', NEW_KEY], /Unknown option '--new-key'/],
      [['master-key', 'spin'], /unknown master-key command "spin"/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_MASTER_KEY: MASTER_KEY });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, message);
      assert.ok(oneLine(result.stderr), result.stderr);
    }
    assert.equal(existsSync(path.join(dir, 'portcullis.sqlite')), false, 'a refused rotation touches no store');
  });
});

describe('log format', () => {
  test('on a terminal the log is pretty-printed; piped, it is JSON', async (t) => {
    if (!existsSync('/usr/bin/script')) {
      if (process.env.CI === 'true') assert.fail('script(1) from util-linux is needed to give the server a terminal');
      t.skip('script(1) is not installed: no terminal to test with');
      return;
    }
    const env = {
      ...process.env,
      PORTCULLIS_DATA_DIR: newDir(),
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    };
    // script(1) runs the server on a pseudo-terminal of its own; detached, so the whole group can be stopped.
    const child = spawn('/usr/bin/script', ['-qfec', `${process.execPath} ${BIN} serve`, '/dev/null'], {
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const deadline = Date.now() + 20_000;
      while (!/portcullis is listening/.test(output) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /INFO.*portcullis is listening/);
      assert.doesNotMatch(output, /"msg":"portcullis is listening"/);
    } finally {
      if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGTERM');
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
    }
    const piped = await runCli(['serve', '--port', 'x'], { PORTCULLIS_DATA_DIR: newDir() });
    assert.equal(piped.code, 78, 'a configuration error stays one plain line either way');
  });
});
