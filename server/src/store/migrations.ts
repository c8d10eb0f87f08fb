import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import { isPostgres } from './db.js';

// Migrations use only types both dialects share: an identity column helper for the
// auto-incrementing integer ids, bigint for millisecond times, text for the rest.
// Kysely's migrator takes a lock first (an advisory lock on PostgreSQL), so nodes that start
// together apply each migration once.
type Db = Kysely<any>;

const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Db) {
      const pg = isPostgres(db);
      const id = pg ? ('bigserial' as const) : ('integer' as const);
      await db.schema
        .createTable('organizations')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('applications')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('organization_id', 'bigint', (c) => c.notNull().references('organizations.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('applications_by_organization').on('applications').column('organization_id').execute();
      await db.schema
        .createTable('credentials')
        .addColumn('client_id', 'text', (c) => c.primaryKey())
        .addColumn('application_id', 'bigint', (c) => c.notNull().references('applications.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addColumn('deleted_at', 'bigint')
        .addColumn('deactivates_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('credentials_by_application').on('credentials').column('application_id').execute();
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('activates_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_events')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('occurred_at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('organization_id', 'bigint')
        .addColumn('ip', 'text')
        .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema.createIndex('audit_events_by_time').on('audit_events').column('occurred_at').execute();
      await db.schema.createIndex('audit_events_by_organization').on('audit_events').columns(['organization_id', 'occurred_at']).execute();
      await db.schema
        .createTable('auth_failures')
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('auth_failures_pk', ['day', 'client_id', 'reason'])
        .execute();
      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0002_retail_media': {
    async up(db: Db) {
      const pg = isPostgres(db);
      const id = pg ? ('bigserial' as const) : ('integer' as const);
      // Partner ids are chosen by the operator (the reference product's criteo-partner-id).
      await db.schema
        .createTable('partners')
        .addColumn('id', 'bigint', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('require_token', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('rate_limit_per_minute', 'integer')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('partner_applications')
        .addColumn('partner_id', 'bigint', (c) => c.notNull().references('partners.id'))
        .addColumn('application_id', 'bigint', (c) => c.notNull().references('applications.id'))
        .addColumn('linked_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('partner_applications_pk', ['partner_id', 'application_id'])
        .execute();
      await db.schema
        .createTable('static_tokens')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('partner_id', 'bigint', (c) => c.notNull().references('partners.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('static_tokens_by_partner').on('static_tokens').column('partner_id').execute();
      await db.schema
        .createTable('placements')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('partner_id', 'bigint', (c) => c.notNull().references('partners.id'))
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('slot', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('products', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('rendering', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('placements_slot', ['partner_id', 'event_type', 'slot'])
        .execute();
      await db.schema
        .createTable('beacon_counts')
        .addColumn('partner_id', 'bigint', (c) => c.notNull())
        .addColumn('placement_id', 'bigint', (c) => c.notNull())
        .addColumn('product_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('beacon_counts_pk', ['partner_id', 'placement_id', 'product_id', 'kind'])
        .execute();
      await db.schema
        .createTable('application_rate_limits')
        .addColumn('application_id', 'bigint', (c) => c.primaryKey().references('applications.id'))
        .addColumn('per_minute', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('gateway_routes')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('prefix', 'text', (c) => c.notNull().unique())
        .addColumn('upstream', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('timeout_ms', 'integer')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0003_portal': {
    async up(db: Db) {
      const pg = isPostgres(db);
      const id = pg ? ('bigserial' as const) : ('integer' as const);
      await db.schema
        .createTable('portal_users')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('password_changed_at', 'bigint', (c) => c.notNull())
        .execute();
      // The id is the SHA-256 of the cookie's token, so a leaked table cannot be replayed as cookies.
      await db.schema
        .createTable('portal_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'bigint', (c) => c.notNull().references('portal_users.id'))
        .addColumn('csrf_token', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('portal_sessions_by_user').on('portal_sessions').column('user_id').execute();
      await db.schema
        .createTable('memberships')
        .addColumn('organization_id', 'bigint', (c) => c.notNull().references('organizations.id'))
        .addColumn('user_id', 'bigint', (c) => c.notNull().references('portal_users.id'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('memberships_pk', ['organization_id', 'user_id'])
        .execute();
      await db.schema.createIndex('memberships_by_user').on('memberships').column('user_id').execute();
      await db.schema
        .createTable('invitations')
        .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('organization_id', 'bigint', (c) => c.notNull().references('organizations.id'))
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('invited_by', 'bigint', (c) => c.notNull().references('portal_users.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('accepted_at', 'bigint')
        .addColumn('accepted_by', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('invitations_by_organization').on('invitations').column('organization_id').execute();
      await db.schema
        .createTable('token_counts')
        .addColumn('application_id', 'bigint', (c) => c.notNull())
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('token_counts_pk', ['application_id', 'day'])
        .execute();
    },
  },
};

// Migrations run in the order of their names.
migrations['0004_revoked_tokens'] = {
  async up(db: Db) {
    await db.schema
      .createTable('revoked_tokens')
      .addColumn('jti', 'text', (c) => c.primaryKey())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('revoked_tokens_by_expiry').on('revoked_tokens').column('expires_at').execute();
  },
};

// A partner may name the scope a dynamic token needs for its delivery API (null: retail-media).
migrations['0004_delivery_partner_scope'] = {
  async up(db: Db) {
    await db.schema.alterTable('partners').addColumn('required_scope', 'text').execute();
  },
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export function migrator(db: Db): Migrator {
  return new Migrator({ db, provider, migrationTableName: 'portcullis_migrations', migrationLockTableName: 'portcullis_migrations_lock' });
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const { error, results } = await migrator(db).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
