import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Kysely, Migration } from 'kysely';
import { loadConfig } from '../src/config.js';
import { CODE_LEVEL, prepareSchema, requireCodeLevel } from '../src/store/compatibility.js';
import { type Db, openPostgres, openSqlite } from '../src/store/db.js';
import { MIGRATIONS, migrateToLatest } from '../src/store/migrations.js';
import { runCli } from './helpers/process.js';
import { MASTER_KEY, startTestServer, type TestServer, tempDir } from './helpers/server.js';
import { createTestDatabase, needService, postgresAvailable } from './helpers/services.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const newDir = () => {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
};

/** What the next release adds: only additive changes, which this release's code ignores. */
const NEXT_ADDITIVE: Record<string, Migration> = {
  '9001_next_release_labels': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('credentials').addColumn('label', 'text').execute();
      await db.schema
        .createTable('next_release_things')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
};
/** A later release's change this code cannot live with, marked as such. */
const NEXT_INCOMPATIBLE: Record<string, Migration> = {
  '9002_next_release_renames': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('next_release_renamed')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
      await requireCodeLevel(db, CODE_LEVEL + 1, '9002_next_release_renames');
    },
  },
};

async function serves(server: TestServer, cred: { clientId: string; clientSecret: string }, earlier: string) {
  assert.equal((await server.me(await server.accessToken(cred.clientId, cred.clientSecret))).status, 200);
  assert.equal((await server.me(earlier)).status, 200, 'a token issued before the upgrade verifies');
  // Writing through the old code into a table the next release widened still works.
  const fresh = await server.newCredential({ name: 'made by the old node' });
  assert.ok(fresh.clientId);
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200, await ready.text());
}

for (const kind of ['sqlite', 'postgresql'] as const) {
  describe(`rolling upgrade on ${kind}`, () => {
    test("a node of the previous release keeps serving, and restarts, after the next release's additive migrations ran; an incompatible one makes it refuse in one line", async (t) => {
      if (kind === 'postgresql' && !needService(t, 'PostgreSQL', await postgresAvailable())) return;
      const database = kind === 'postgresql' ? await createTestDatabase() : undefined;
      const dataDir = newDir();
      const env: Record<string, string> = database ? { DATABASE_URL: database.url } : {};
      const openNextRelease = (): Db => (database ? openPostgres(database.url) : openSqlite(dataDir));
      let old = await startTestServer(env, { dataDir });
      try {
        const cred = await old.newCredential();
        const earlier = await old.accessToken(cred.clientId, cred.clientSecret);

        // The next release's `portcullis migrate` runs while this node serves.
        const next = openNextRelease();
        try {
          assert.deepEqual(await migrateToLatest(next, { ...MIGRATIONS, ...NEXT_ADDITIVE }), ['9001_next_release_labels']);
        } finally {
          await next.destroy();
        }
        await serves(old, cred, earlier);

        // The old node crashes mid-deploy and comes back on the newer schema.
        await old.stop();
        old = await startTestServer(env, { dataDir });
        await serves(old, cred, earlier);
        const migrate = await runCli(['migrate'], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY, ...env });
        assert.equal(migrate.code, 0, migrate.stderr);
        assert.match(migrate.stdout, /up to date/);

        // A later release marks its migration incompatible with this code.
        const later = openNextRelease();
        try {
          const config = loadConfig({ PORTCULLIS_DATA_DIR: dataDir, ...env });
          const applied = await prepareSchema(later, config, {
            migrate: true,
            migrations: { ...MIGRATIONS, ...NEXT_ADDITIVE, ...NEXT_INCOMPATIBLE },
            codeLevel: CODE_LEVEL + 1,
          });
          assert.deepEqual(applied, ['9002_next_release_renames']);
        } finally {
          await later.destroy();
        }
        const refused = await runCli(['serve'], { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY, PORT: '0', ...env });
        assert.equal(refused.code, 78);
        assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
        assert.match(
          refused.stderr,
          new RegExp(`compatibility level ${CODE_LEVEL + 1} \\(since migration 9002_next_release_renames\\); this release supports up to level ${CODE_LEVEL}`),
        );
        assert.doesNotMatch(refused.stderr, /postgres@|password/);
      } finally {
        await old.stop();
        await database?.drop();
      }
    });
  });
}

describe('migrations as a deploy step', () => {
  test('with PORTCULLIS_MIGRATE_ON_START=false a node refuses a store lacking migrations, in one line, and starts after `portcullis migrate`', async () => {
    const dataDir = newDir();
    const env = { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY, PORTCULLIS_MIGRATE_ON_START: 'false', PORT: '0' };
    const refused = await runCli(['serve'], env);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /lacks migrations this release needs \(0001_initial.*run "portcullis migrate" first/);
    const migrated = await runCli(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /applied 0001_initial/);
    const server = await startTestServer({ PORTCULLIS_MIGRATE_ON_START: 'false' }, { dataDir });
    try {
      const cred = await server.newCredential();
      assert.ok(await server.accessToken(cred.clientId, cred.clientSecret));
    } finally {
      await server.stop();
    }
  });

  test('an unreachable PostgreSQL at start is named with its address and without its password', async () => {
    const result = await runCli(['serve'], {
      PORTCULLIS_DATA_DIR: newDir(),
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORT: '0',
      DATABASE_URL: 'postgres://portcullis:pw-never-shown-123@127.0.0.1:1/portcullis',
    });
    assert.equal(result.code, 69);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /^portcullis: cannot reach PostgreSQL at 127\.0\.0\.1:1\/portcullis after 3 attempts: .*ECONNREFUSED/);
    assert.doesNotMatch(result.stderr, /pw-never-shown/);
  });

  test('a data dir that cannot be used is named in one line, not blamed on the port', async () => {
    const dir = newDir();
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    // Without a master key the first use of the data dir is generating the key file there.
    const notADir = await runCli(['serve'], { PORTCULLIS_DATA_DIR: path.join(file, 'data'), PORT: '0' });
    assert.equal(notADir.code, 1);
    assert.equal(notADir.stderr.trim().split('\n').length, 1, notADir.stderr);
    assert.match(notADir.stderr, /^portcullis: cannot use the data dir \(PORTCULLIS_DATA_DIR\): ENOTDIR/);
    const withKey = await runCli(['serve'], { PORTCULLIS_DATA_DIR: path.join(file, 'data'), PORTCULLIS_MASTER_KEY: MASTER_KEY, PORT: '0' });
    assert.equal(withKey.code, 1);
    assert.match(withKey.stderr, /^portcullis: cannot open SQLite at \S+\/a-file\/data\/portcullis.sqlite: ENOTDIR/);
    const storeIsADir = newDir();
    mkdirSync(path.join(storeIsADir, 'portcullis.sqlite'));
    const cannotOpen = await runCli(['serve'], { PORTCULLIS_DATA_DIR: storeIsADir, PORTCULLIS_MASTER_KEY: MASTER_KEY, PORT: '0' });
    assert.equal(cannotOpen.code, 1);
    assert.equal(cannotOpen.stderr.trim().split('\n').length, 1, cannotOpen.stderr);
    assert.match(cannotOpen.stderr, new RegExp(`^portcullis: cannot open SQLite at ${storeIsADir}/portcullis.sqlite: `));
  });
});
