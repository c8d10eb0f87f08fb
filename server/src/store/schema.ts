import type { Generated } from 'kysely';

/** Times are integer milliseconds since the epoch (bigint in PostgreSQL, integer in SQLite). */
export interface OrganizationsTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface ApplicationsTable {
  id: Generated<number>;
  organization_id: number;
  name: string;
  description: string;
  /** JSON array of scope strings. */
  scopes: string;
  created_at: number;
}

export interface CredentialsTable {
  client_id: string;
  application_id: number;
  name: string;
  secret_hash: string;
  created_at: number;
  last_used_at: number | null;
  deleted_at: number | null;
  deactivates_at: number | null;
  revoked_at: number | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  /** AES-256-GCM under a key derived from the master key: "v1.<iv>.<tag>.<ciphertext>", base64url. */
  private_key: string;
  created_at: number;
  /** When the key starts signing; it is published from created_at. */
  activates_at: number;
}

export interface AuditEventsTable {
  id: Generated<number>;
  occurred_at: number;
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  organization_id: number | null;
  ip: string | null;
  details: string;
}

export interface AuthFailuresTable {
  day: string;
  client_id: string;
  reason: string;
  count: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Database {
  organizations: OrganizationsTable;
  applications: ApplicationsTable;
  credentials: CredentialsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  auth_failures: AuthFailuresTable;
  settings: SettingsTable;
}
