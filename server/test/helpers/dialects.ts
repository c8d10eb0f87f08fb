// The databases every HTTP suite runs on, chosen once, as Kysely's own tests list their dialects.
// PORTCULLIS_TEST_DIALECTS=sqlite,postgres (the default) runs each suite's top-level `describe`
// once per dialect; startTestServer gives a server of the `postgres` pass a fresh database.
// Without the variable, PostgreSQL is skipped with a notice when it is not reachable, except
// under CI=true, where it must be.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe as nodeDescribe } from 'node:test';
import pg from 'pg';
import { openPostgres } from '../../src/store/db.js';
import { migrateToLatest } from '../../src/store/migrations.js';
import { POSTGRES_URL } from './services.js';

export type Dialect = 'sqlite' | 'postgres';
const KNOWN: readonly Dialect[] = ['sqlite', 'postgres'];

function requested(): Dialect[] {
  const raw = process.env.PORTCULLIS_TEST_DIALECTS;
  if (raw === undefined || raw.trim() === '') return [...KNOWN];
  const names = raw
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .map((n) => (n === 'postgresql' || n === 'pg' ? 'postgres' : n));
  const unknown = names.filter((n) => !KNOWN.includes(n as Dialect));
  if (unknown.length > 0) throw new Error(`PORTCULLIS_TEST_DIALECTS: unknown dialect ${unknown.join(', ')}; use ${KNOWN.join(',')}`);
  return [...new Set(names as Dialect[])];
}

/**
 * Whether a PostgreSQL server is there. A refused or unresolvable connection means no; a slow or
 * full server (a loaded machine, too many clients) is retried, and counts as there: its suites
 * then fail loudly rather than being skipped in silence.
 */
async function postgresThere(): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === '3D000' || code === '28000') return false;
      if (attempt >= 2) return true;
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

async function available(wanted: Dialect[]): Promise<Dialect[]> {
  if (!wanted.includes('postgres') || (await postgresThere())) return wanted;
  if (process.env.CI === 'true' || process.env.PORTCULLIS_TEST_DIALECTS) {
    throw new Error('PostgreSQL is required (CI=true or PORTCULLIS_TEST_DIALECTS names it) but is not reachable');
  }
  process.stdout.write('# NOTICE: PostgreSQL is not reachable; suites run on SQLite only\n');
  return wanted.filter((d) => d !== 'postgres');
}

/** The dialects this run covers, in order. */
export const DIALECTS: readonly Dialect[] = await available(requested());

// Tests outside a per-dialect suite run on SQLite.
let current: Dialect = 'sqlite';
let depth = 0;

/** The dialect of the suite running now: what startTestServer uses unless told otherwise. */
export function currentDialect(): Dialect {
  return current;
}

type SuiteFn = (...args: any[]) => void | Promise<void>;

/**
 * node:test's `describe`, run once per dialect when called at the top of a file (named
 * "… [sqlite]", "… [postgres]"); nested calls are plain. Suites of one file run one after another,
 * so the dialect set by the first hook of a pass holds for all of that pass's tests.
 */
export const describe = ((name: string, ...rest: unknown[]) => {
  const fn = (typeof rest[rest.length - 1] === 'function' ? rest.pop() : undefined) as SuiteFn | undefined;
  const options = (rest[0] ?? {}) as Record<string, unknown>;
  if (depth > 0 || !fn) return nodeDescribe(name, options, fn);
  for (const dialect of DIALECTS) {
    nodeDescribe(`${name} [${dialect}]`, options, (...args: any[]) => {
      before(() => {
        current = dialect;
      });
      after(() => {
        current = 'sqlite';
      });
      depth++;
      try {
        return fn(...args);
      } finally {
        depth--;
      }
    });
  }
  return undefined;
}) as unknown as typeof nodeDescribe;

const MIGRATIONS = new URL('../../src/store/migrations.js', import.meta.url);
let template: Promise<string> | undefined;

const databaseUrl = (name: string) => {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A migrated database to copy, named after the migrations' compiled code, so it is built once
 * per migration set and machine (about a second of DDL saved per test server). It is built under
 * a temporary name and renamed when complete, so no process copies a half-migrated one.
 */
function migratedTemplate(): Promise<string> {
  template ??= withAdmin(async (admin) => {
    const name = `portcullis_tpl_${createHash('sha256').update(readFileSync(MIGRATIONS)).digest('hex').slice(0, 16)}`;
    if ((await admin.query('select 1 from pg_database where datname = $1', [name])).rowCount) return name;
    const building = `${name}_${randomBytes(4).toString('hex')}`;
    await admin.query(`create database ${building}`);
    const db = openPostgres(databaseUrl(building));
    try {
      await migrateToLatest(db);
    } finally {
      await db.destroy();
    }
    // Another process may have finished the same template first: then ours is not needed.
    await admin.query(`alter database ${building} rename to ${name}`).catch(() => admin.query(`drop database if exists ${building} with (force)`));
    return name;
  });
  return template;
}

/** A fresh, migrated PostgreSQL database for one test server, dropped by `drop()`. */
export async function createPostgresTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const source = await migratedTemplate();
  const name = `portcullis_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((admin) => admin.query(`create database ${name} template ${source}`));
  return {
    url: databaseUrl(name),
    drop: () => withAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
}
