// The databases every HTTP suite runs on, chosen once, as Kysely's own tests list their dialects.
// PORTCULLIS_TEST_DIALECTS=sqlite,postgres (the default) runs each suite's top-level `describe`
// once per dialect; startTestServer gives a server of the `postgres` pass a fresh database.
// Without the variable, PostgreSQL is skipped with a notice when it is not reachable, except
// under CI=true, where it must be.
import { after, before, describe as nodeDescribe } from 'node:test';
import pg from 'pg';
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
