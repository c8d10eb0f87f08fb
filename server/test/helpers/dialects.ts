// The databases every HTTP suite runs on, chosen once, as Kysely's own tests list their dialects.
// PORTCULLIS_TEST_DIALECTS=sqlite,postgres (the default) runs each suite's top-level `describe`
// once per dialect; startTestServer gives a server of the `postgres` pass a fresh database.
// Without the variable, PostgreSQL is skipped with a notice when it is not reachable, except
// under CI=true, where it must be.
import { after, before, describe as nodeDescribe } from 'node:test';
import { postgresAvailable } from './services.js';

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

async function available(wanted: Dialect[]): Promise<Dialect[]> {
  if (!wanted.includes('postgres') || (await postgresAvailable())) return wanted;
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
