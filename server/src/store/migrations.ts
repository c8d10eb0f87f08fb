import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import { isPostgres, isStoreUnavailable } from './db.js';

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

migrations['0005_idempotency_keys'] = {
  async up(db: Db) {
    await db.schema
      .createTable('idempotency_keys')
      .addColumn('principal', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('request_hash', 'text', (c) => c.notNull())
      .addColumn('status', 'integer')
      .addColumn('response', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal', 'key'])
      .execute();
    await db.schema.createIndex('idempotency_keys_by_age').on('idempotency_keys').column('created_at').execute();
  },
};

// Rules per method, a rate limit, CORS and an audience of an operator-API gateway route, as one JSON object.
migrations['0006_gateway_route_options'] = {
  async up(db: Db) {
    await db.schema
      .alterTable('gateway_routes')
      .addColumn('options', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
  },
};

// APIs with their own audience (RFC 8707 resource indicators), and the applications granted them.
migrations['0007_apis'] = {
  async up(db: Db) {
    const pg = isPostgres(db);
    const id = pg ? ('bigserial' as const) : ('integer' as const);
    await db.schema
      .createTable('apis')
      .addColumn('id', id, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('identifier', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('application_apis')
      .addColumn('application_id', 'bigint', (c) => c.notNull().references('applications.id'))
      .addColumn('api_id', 'bigint', (c) => c.notNull().references('apis.id'))
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('application_apis_pk', ['application_id', 'api_id'])
      .execute();
    await db.schema.createIndex('application_apis_by_api').on('application_apis').column('api_id').execute();
    // The revocation feed reads the credentials revoked recently, every 30 s on every node.
    await db.schema.createIndex('credentials_by_revoked_at').on('credentials').column('revoked_at').execute();
  },
};

// Email verification, password reset, disabled accounts, operators, and what a session list shows.
migrations['0008_portal_accounts'] = {
  async up(db: Db) {
    await db.schema.alterTable('portal_users').addColumn('email_verified_at', 'bigint').execute();
    await db.schema.alterTable('portal_users').addColumn('disabled_at', 'bigint').execute();
    await db.schema.alterTable('portal_users').addColumn('operator_since', 'bigint').execute();
    await db.schema.alterTable('portal_sessions').addColumn('ip', 'text').execute();
    await db.schema.alterTable('portal_sessions').addColumn('user_agent', 'text').execute();
    // The id is the SHA-256 of the mailed link's token; the link itself is never stored.
    await db.schema
      .createTable('portal_user_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'bigint', (c) => c.notNull().references('portal_users.id'))
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('email', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute();
    await db.schema.createIndex('portal_user_tokens_by_user').on('portal_user_tokens').column('user_id').execute();
  },
};

// A second factor: TOTP (the secret sealed under the master key), recovery codes, and organizations that require it.
migrations['0009_portal_second_factor'] = {
  async up(db: Db) {
    await db.schema.alterTable('portal_users').addColumn('totp_secret', 'text').execute();
    await db.schema.alterTable('portal_users').addColumn('totp_enabled_at', 'bigint').execute();
    await db.schema.alterTable('portal_users').addColumn('totp_last_step', 'bigint').execute();
    await db.schema
      .createTable('portal_recovery_codes')
      .addColumn('user_id', 'bigint', (c) => c.notNull().references('portal_users.id'))
      .addColumn('code_hash', 'text', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .addPrimaryKeyConstraint('portal_recovery_codes_pk', ['user_id', 'code_hash'])
      .execute();
    await db.schema
      .createTable('organization_policies')
      .addColumn('organization_id', 'bigint', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('second_factor_required_at', 'bigint')
      .execute();
  },
};

// Tokens issued per key and day, beside the per-app counts, for each key's usage in the portal.
migrations['0010_portal_key_usage'] = {
  async up(db: Db) {
    await db.schema
      .createTable('credential_token_counts')
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('day', 'text', (c) => c.notNull())
      .addColumn('count', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('credential_token_counts_pk', ['client_id', 'day'])
      .execute();
  },
};

// A partner may name the scope a dynamic token needs for its delivery API (null: retail-media).
migrations['0011_partner_required_scope'] = {
  async up(db: Db) {
    await db.schema.alterTable('partners').addColumn('required_scope', 'text').execute();
  },
};

// The scopes of an API that apps created in the developer portal may take for themselves.
migrations['0012_api_self_service'] = {
  async up(db: Db) {
    await db.schema
      .alterTable('apis')
      .addColumn('self_service_scopes', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
  },
};

/** This release's migrations, by name; tests add synthetic later ones to play the next release. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = migrations;

const MIGRATION_TABLE = 'portcullis_migrations';

/**
 * Migrations a newer release applied are unknown to this code; Kysely calls the store "corrupted"
 * when an applied migration is missing, so they are listed as already-applied no-ops. Whether this
 * code may run on the schema they left is the compatibility level's question (compatibility.ts).
 * Read before the migrator starts: SQLite's one connection is the migrator's while it runs.
 */
async function knownAndApplied(db: Db, known: Readonly<Record<string, Migration>>): Promise<MigrationProvider> {
  const applied = await db
    .selectFrom(MIGRATION_TABLE)
    .select('name')
    .execute()
    .catch((err: unknown) => {
      if (isStoreUnavailable(err)) throw err;
      return [] as Array<{ name: string }>; // no table yet: a new store
    });
  const all: Record<string, Migration> = { ...known };
  for (const { name } of applied) all[name] ??= { up: async () => {} };
  return { getMigrations: async () => all };
}

export async function migrator(db: Db, known: Readonly<Record<string, Migration>> = migrations): Promise<Migrator> {
  return new Migrator({
    db,
    provider: await knownAndApplied(db, known),
    // A release branch may add a migration that sorts before one a later release already applied.
    allowUnorderedMigrations: true,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: 'portcullis_migrations_lock',
  });
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Db, known: Readonly<Record<string, Migration>> = migrations): Promise<string[]> {
  const { error, results } = await (await migrator(db, known)).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    // No failing migration means the migrator could not start at all: keep the cause for the caller.
    if (!failed) throw error;
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Db, known: Readonly<Record<string, Migration>> = migrations): Promise<string[]> {
  const all = await (await migrator(db, known)).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
