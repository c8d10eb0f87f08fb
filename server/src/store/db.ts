import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, type KyselyConfig, PostgresAdapter, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { createRequire } from 'node:module';
import type PgModule from 'pg';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export const SQLITE_FILE = 'portcullis.sqlite';

/** Raised when the database cannot be reached or answers too slowly: a 503, never a 500 or a hang. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300',
]);
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|Client has encountered a connection error/i;

/** Whether an error means the database could not be reached in time (rather than a bug). */
export function isStoreUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return (code !== undefined && UNAVAILABLE_CODES.has(code)) || UNAVAILABLE_MESSAGES.test(err.message);
}

export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/** Opens (creating if needed) the embedded SQLite store in the data directory, in WAL mode; `log` sees every query. */
export function openSqlite(dataDir: string, log?: KyselyConfig['log']): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = new SqliteDatabase(path.join(dataDir, SQLITE_FILE));
  file.pragma('journal_mode = WAL');
  file.pragma('synchronous = NORMAL');
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  // Memory the store may hold, set here rather than inherited from the driver's build (16 MiB).
  // The page cache fills as the file grows (inserts touch new pages) and stays at its cap: 2 MiB
  // (SQLite's own default) is full within minutes, whereas 8 MiB took 40 minutes of a soak. The
  // hot path reads caches, not SQLite, and the kernel's page cache holds the file for the rest.
  // After each checkpoint the write-ahead log is truncated back to 4 MiB.
  file.pragma('cache_size = -2048');
  file.pragma('journal_size_limit = 4194304');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: file }), ...(log ? { log } : {}) });
}

// bigint columns hold millisecond times and ids, all far below 2^53: read them as numbers.
const INT8 = 20;

// pg is loaded on first use, so the embedded (SQLite) server does not carry it in memory.
const require = createRequire(import.meta.url);
const loadPg = (): typeof PgModule => require('pg') as typeof PgModule;

export interface PostgresOptions {
  /** Tables live in this schema (created if missing); tests give each suite its own. */
  schema?: string;
  /** Called with connection errors of idle clients, which would otherwise crash the process. */
  onError?: (err: Error) => void;
  log?: KyselyConfig['log'];
}

const pools = new WeakMap<Db, PgModule.Pool>();

/** The connection pool behind a PostgreSQL store (for its gauges); undefined on SQLite. */
export function poolOf(db: Db): { totalCount: number; idleCount: number; waitingCount: number } | undefined {
  return pools.get(db);
}

/**
 * PostgreSQL through a pool with bounded waits: a connection attempt gives up after 3 s and a
 * query after 10 s, so an unreachable database turns into errors, not hung requests.
 */
export function openPostgres(url: string, options: PostgresOptions = {}): Db {
  const pg = loadPg();
  const types = {
    getTypeParser: (oid: number, format?: any) => (oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)),
  };
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 3_000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    types,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  pool.on('error', (err) => options.onError?.(err));
  // A connection that drops while checked out between two queries emits 'error' on its client,
  // where no pool listener is attached; without one the process would crash. The query in
  // progress, if any, fails on its own and the pool discards the broken client.
  pool.on('connect', (client) => client.on('error', (err) => options.onError?.(err)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(options.log ? { log: options.log } : {}) });
  pools.set(db, pool);
  return db;
}

/**
 * Runs `fn` in one transaction, or inside the caller's when `db` already is one (Kysely does not
 * nest them): whatever `fn` writes commits together or not at all.
 */
export function inTransaction<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute(fn);
}

export async function createSchema(db: Db, schema: string): Promise<void> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
}

/**
 * Runs `fn` while holding a named lock across every node: a PostgreSQL session advisory lock.
 * The embedded SQLite store serves one process, whose callers already serialise themselves.
 */
export async function withLock<T>(db: Db, name: string, fn: () => Promise<T>): Promise<T> {
  if (!isPostgres(db)) return fn();
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(hashtext(${`portcullis:${name}`}))`.execute(conn);
    try {
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${`portcullis:${name}`}))`.execute(conn);
    }
  });
}
