import type { Kysely, Migration } from 'kysely';
import { describeDatabase, reasonOf, StartError } from './start-errors.js';
import type { Config } from '../config.js';
import { type Db, isStoreUnavailable } from './db.js';
import { MIGRATIONS, migrateToLatest, pendingMigrations } from './migrations.js';

/**
 * Rolling upgrades: migrations are additive by default (new tables, nullable or defaulted
 * columns), which the previous release's code ignores, so old and new nodes share one schema.
 * A migration the previous code cannot live with (a dropped or renamed column, a NOT NULL column
 * without a default that old inserts would miss, a changed meaning) calls `requireCodeLevel` with
 * the next level, and also raises CODE_LEVEL in the same release. A node refuses to start only
 * when the schema requires a level above its own.
 */
export const CODE_LEVEL = 1;
/** The settings row holding the level the schema requires (absent: level 1). */
export const SCHEMA_LEVEL = 'schema_requires_code_level';

/** For a migration's `up`: from now on, only code of at least `level` may use this schema. */
export async function requireCodeLevel(db: Kysely<any>, level: number, migration: string): Promise<void> {
  const current = await schemaLevel(db);
  if (current.level >= level) return;
  const value = JSON.stringify({ level, migration });
  await db
    .insertInto('settings')
    .values({ key: SCHEMA_LEVEL, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

export async function schemaLevel(db: Kysely<any>): Promise<{ level: number; migration?: string }> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', SCHEMA_LEVEL).executeTakeFirst();
  if (!row) return { level: 1 };
  const parsed = JSON.parse(String(row.value)) as { level: number; migration?: string };
  return { level: Number(parsed.level), ...(parsed.migration ? { migration: parsed.migration } : {}) };
}

export interface SchemaOptions {
  /** Apply pending migrations (PORTCULLIS_MIGRATE_ON_START); when false the schema must already be current. */
  migrate: boolean;
  /** This code's migrations and level; tests pass a "next release" here. */
  migrations?: Readonly<Record<string, Migration>>;
  codeLevel?: number;
}

/**
 * Brings the schema to what this code needs (or checks it is there), then checks that the schema
 * does not need newer code. Every refusal is a StartError naming the database, in one line.
 */
export async function prepareSchema(db: Db, config: Pick<Config, 'databaseUrl' | 'dataDir'>, options: SchemaOptions): Promise<string[]> {
  const where = describeDatabase(config);
  const known = options.migrations ?? MIGRATIONS;
  const codeLevel = options.codeLevel ?? CODE_LEVEL;
  try {
    let applied: string[] = [];
    if (options.migrate) applied = await migrateToLatest(db, known);
    else {
      const pending = await pendingMigrations(db, known);
      if (pending.length) {
        throw new StartError(
          `${where} lacks migrations this release needs (${pending.join(', ')}); run "portcullis migrate" first, or set PORTCULLIS_MIGRATE_ON_START=true`,
        );
      }
    }
    const schema = await schemaLevel(db);
    if (schema.level > codeLevel) {
      throw new StartError(
        `${where} has a schema for compatibility level ${schema.level}${schema.migration ? ` (since migration ${schema.migration})` : ''}; this release supports up to level ${codeLevel}: upgrade this node, or roll back by restoring the backup taken before the upgrade`,
        78,
      );
    }
    return applied;
  } catch (err) {
    if (err instanceof StartError) throw err;
    if (isStoreUnavailable(err) || isConnectionFailure(err)) throw new StartError(`cannot reach ${where}: ${reasonOf(err)}`);
    throw new StartError(`${where}: ${reasonOf(err)}`);
  }
}

/** Errors of reaching the database that isStoreUnavailable (a runtime notion) does not list: refused logins, missing databases. */
function isConnectionFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return (
    code === '28P01' ||
    code === '28000' ||
    code === '3D000' ||
    code === 'SQLITE_CANTOPEN' ||
    code === 'SQLITE_READONLY' ||
    (err as Error)?.name === 'AggregateError'
  );
}
