import { rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { sql } from 'kysely';
import { createSchema, type Db, openPostgres, openSqlite } from '../../src/store/db.js';
import { createStore, type Store } from '../../src/store/index.js';
import { migrateToLatest } from '../../src/store/migrations.js';
import { DIALECTS } from './dialects.js';
import { tempDir } from './server.js';
import { needService, POSTGRES_URL, postgresAvailable } from './services.js';

/** A store opened on one dialect of PORTCULLIS_TEST_DIALECTS (helpers/dialects.ts), for the suites that test the store itself. */
export interface StoreDialect {
  name: string;
  open(): Promise<{ db: Db; cleanup(): Promise<void> } | undefined>;
}

export const pgUp = postgresAvailable();

const all: StoreDialect[] = [
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
    name: 'postgres',
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

/** The dialects this run tests. */
export const STORE_DIALECTS = all.filter((d) => (DIALECTS as readonly string[]).includes(d.name));

/**
 * A migrated store on `dialect` for one suite: `open()` in `before`, `close()` in `after`, and each
 * test starting with `if (!(await suite.ready(t))) return;` (PostgreSQL missing: a notice, or a failure under CI).
 */
export function storeSuite(dialect: StoreDialect) {
  let opened: Awaited<ReturnType<StoreDialect['open']>>;
  return {
    /** The store, or undefined when the dialect's server is not there (then `ready` skips or fails). */
    async open(): Promise<Store | undefined> {
      opened = await dialect.open();
      if (!opened) return undefined;
      await migrateToLatest(opened.db);
      return createStore(opened.db);
    },
    close: async () => opened?.cleanup(),
    ready: async (t: TestContext) => dialect.name === 'sqlite' || needService(t, 'PostgreSQL', await pgUp),
    get db(): Db {
      if (!opened) throw new Error(`no ${dialect.name} store is open`);
      return opened.db;
    },
  };
}
