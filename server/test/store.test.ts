import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, type TestContext, test } from 'node:test';
import { sql } from 'kysely';
import { createSchema, type Db, isPostgres, openPostgres, openSqlite } from '../src/store/db.js';
import { createStore, type Store } from '../src/store/index.js';
import { migrateToLatest, pendingMigrations } from '../src/store/migrations.js';
import { tempDir } from './helpers/server.js';
import { needService, POSTGRES_URL, postgresAvailable } from './helpers/services.js';

/** One storage suite, run against each dialect: the embedded SQLite file and PostgreSQL. */
interface Dialect {
  name: string;
  open(): Promise<{ db: Db; cleanup(): Promise<void> } | undefined>;
}

const pgUp = postgresAvailable();

const dialects: Dialect[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = tempDir();
      const db = openSqlite(dir);
      return {
        db,
        async cleanup() {
          await db.destroy();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgresql',
    async open() {
      if (!(await pgUp)) return undefined;
      const schema = `store_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      const bootstrap = openPostgres(POSTGRES_URL);
      await createSchema(bootstrap, schema);
      await bootstrap.destroy();
      const db = openPostgres(POSTGRES_URL, { schema });
      return {
        db,
        async cleanup() {
          await sql`drop schema ${sql.id(schema)} cascade`.execute(db);
          await db.destroy();
        },
      };
    },
  },
];

for (const dialect of dialects) {
  describe(`store on ${dialect.name}`, () => {
    let opened: Awaited<ReturnType<Dialect['open']>>;
    let store: Store;
    const now = 1_800_000_000_000;

    before(async () => {
      opened = await dialect.open();
      if (!opened) return;
      await migrateToLatest(opened.db);
      store = createStore(opened.db);
    });
    after(async () => {
      await opened?.cleanup();
    });

    const ready = async (t: TestContext) => dialect.name === 'sqlite' || needService(t, 'PostgreSQL', await pgUp);

    test('migrations apply once and leave nothing pending, however often they run', async (t) => {
      if (!(await ready(t))) return;
      assert.deepEqual(await migrateToLatest(opened!.db), []);
      assert.deepEqual(await pendingMigrations(opened!.db), []);
      assert.equal(isPostgres(opened!.db), dialect.name === 'postgresql');
    });

    test('organizations and applications get increasing positive integer ids, read back as numbers', async (t) => {
      if (!(await ready(t))) return;
      const a = await store.organizations.create('A', now);
      const b = await store.organizations.create('B', now + 1);
      assert.ok(Number.isInteger(a.id) && a.id > 0 && b.id > a.id);
      assert.equal(typeof a.createdAt, 'number');
      const app = await store.applications.create({ organizationId: a.id, name: 'App', description: 'd', scopes: ['x', 'y'] }, now);
      assert.deepEqual(await store.applications.get(app.id), app);
      assert.deepEqual(
        (await store.applications.listByOrganization(a.id)).map((x) => x.id),
        [app.id],
      );
      assert.deepEqual(await store.applications.listByOrganization(b.id), []);
      const changed = await store.applications.update(app.id, { name: 'Renamed', scopes: ['z'] });
      assert.equal(changed?.name, 'Renamed');
      assert.deepEqual(changed?.scopes, ['z']);
      assert.equal(await store.organizations.get(999_999), undefined);
    });

    test('concurrent credential creations never pass the limit of active credentials', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Limit', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'L', description: '', scopes: [] }, now);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.credentials.createWithinLimit(
            { clientId: `limit-${dialect.name}-${i}`, applicationId: app.id, name: `k${i}`, secretHash: 'h', createdAt: now },
            5,
          ),
        ),
      );
      assert.equal(results.filter((r) => r !== 'limit-reached').length, 5);
      assert.equal((await store.credentials.listLive(app.id, now)).length, 5);
    });

    test('a credential moves through deletion and revocation, keeping its first deadline', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Life', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'L', description: '', scopes: [] }, now);
      const created = await store.credentials.createWithinLimit(
        { clientId: `life-${dialect.name}`, applicationId: app.id, name: 'k', secretHash: 'h', createdAt: now },
        5,
      );
      assert.notEqual(created, 'limit-reached');
      const deleted = await store.credentials.markDeleted(`life-${dialect.name}`, now + 10, now + 900_010);
      assert.equal(deleted?.deactivatesAt, now + 900_010);
      const again = await store.credentials.markDeleted(`life-${dialect.name}`, now + 20, now + 900_020);
      assert.equal(again?.deactivatesAt, now + 900_010, 'deleting twice keeps the first deadline');
      assert.equal((await store.credentials.listLive(app.id, now + 900_009)).length, 1);
      assert.equal((await store.credentials.listLive(app.id, now + 900_010)).length, 0);
      const revoked = await store.credentials.markRevoked(`life-${dialect.name}`, now + 30);
      assert.equal(revoked?.revokedAt, now + 30);
      assert.equal(revoked?.deletedAt, now + 10, 'revoking keeps the deletion time');
    });

    test('last use is written in a batch and never moves backwards', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Use', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'U', description: '', scopes: [] }, now);
      const id = `use-${dialect.name}`;
      await store.credentials.createWithinLimit({ clientId: id, applicationId: app.id, name: 'k', secretHash: 'h', createdAt: now }, 5);
      await store.credentials.recordLastUsed(new Map([[id, now + 500]]));
      await store.credentials.recordLastUsed(new Map([[id, now + 100]]));
      assert.equal((await store.credentials.get(id))?.lastUsedAt, now + 500);
    });

    test('failed authentications accumulate per day, client and reason', async (t) => {
      if (!(await ready(t))) return;
      await store.authFailures.add([{ day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 3 }]);
      await store.authFailures.add([
        { day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 4 },
        { day: '2027-01-15', clientId: '', reason: 'unknown_client', count: 1 },
      ]);
      const counts = await store.authFailures.since('2027-01-15');
      assert.deepEqual(counts, [
        { day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 7 },
        { day: '2027-01-15', clientId: '', reason: 'unknown_client', count: 1 },
      ]);
    });

    test('settings, signing keys and audit events round-trip', async (t) => {
      if (!(await ready(t))) return;
      await store.settings.set('k', 'v1');
      await store.settings.set('k', 'v2');
      assert.equal(await store.settings.get('k'), 'v2');
      await store.signingKeys.insert({ kid: 'old', alg: 'RS256', publicJwk: '{}', privateKey: 'v1.a.b.c', createdAt: now, activatesAt: now });
      await store.signingKeys.insert({ kid: 'new', alg: 'RS256', publicJwk: '{}', privateKey: 'v1.a.b.c', createdAt: now + 1, activatesAt: now + 600_000 });
      assert.deepEqual(
        (await store.signingKeys.list()).map((k) => [k.kid, k.activatesAt]),
        [
          ['new', now + 600_000],
          ['old', now],
        ],
      );
      for (let i = 0; i < 3; i++) {
        await store.audit.record({
          occurredAt: now + i,
          actor: 'operator',
          action: `a${i}`,
          targetType: 't',
          targetId: String(i),
          organizationId: 42,
          ip: '127.0.0.1',
          details: { i },
        });
      }
      const page = await store.audit.list({ organizationId: 42, limit: 2 });
      assert.deepEqual(
        page.map((e) => e.action),
        ['a2', 'a1'],
      );
      const next = await store.audit.list({ organizationId: 42, limit: 2, before: page[1]!.id });
      assert.deepEqual(
        next.map((e) => [e.action, e.details]),
        [['a0', { i: 0 }]],
      );
    });
  });
}
