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

/** A retail-media partner; `id` is the operator-chosen criteo-partner-id. */
export interface PartnersTable {
  id: number;
  name: string;
  /** 0 or 1: whether delivery calls must carry a token of this partner. */
  require_token: number;
  rate_limit_per_minute: number | null;
  /** The scope a dynamic token needs for this partner's delivery API; null means retail-media. */
  required_scope: string | null;
  created_at: number;
  updated_at: number;
}

export interface PartnerApplicationsTable {
  partner_id: number;
  application_id: number;
  linked_at: number;
}

export interface StaticTokensTable {
  id: Generated<number>;
  partner_id: number;
  name: string;
  /** HMAC-SHA-256 of the token under the pepper, hex. */
  token_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface PlacementsTable {
  id: Generated<number>;
  partner_id: number;
  event_type: string;
  slot: string;
  format: string;
  /** JSON array of product objects (ProductId, ParentSKU and creative fields). */
  products: string;
  /** JSON object of rendering fields. */
  rendering: string;
  updated_at: number;
}

export interface BeaconCountsTable {
  partner_id: number;
  /** 0 for the page-level load beacon. */
  placement_id: number;
  /** '' for a placement-level beacon. */
  product_id: string;
  kind: string;
  count: number;
}

export interface ApplicationRateLimitsTable {
  application_id: number;
  per_minute: number;
}

export interface GatewayRoutesTable {
  id: Generated<number>;
  prefix: string;
  upstream: string;
  /** JSON array of the scopes a token needs. */
  scopes: string;
  timeout_ms: number | null;
  created_at: number;
}

/** A person who signs in to the developer portal. */
export interface PortalUsersTable {
  id: Generated<number>;
  /** Trimmed and lower-cased. */
  email: string;
  /** argon2id, PHC string. */
  password_hash: string;
  created_at: number;
  password_changed_at: number;
}

export interface PortalSessionsTable {
  /** SHA-256 of the cookie's token, hex. */
  id: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export interface MembershipsTable {
  organization_id: number;
  user_id: number;
  /** owner, admin or developer. */
  role: string;
  created_at: number;
}

export interface InvitationsTable {
  id: Generated<number>;
  organization_id: number;
  email: string;
  role: string;
  /** SHA-256 of the invitation link's token, hex. */
  token_hash: string;
  invited_by: number;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: number | null;
  revoked_at: number | null;
}

/** Tokens issued per application and UTC day, written in batches. */
export interface TokenCountsTable {
  application_id: number;
  day: string;
  count: number;
}

export interface RevokedTokensTable {
  jti: string;
  /** The token's own expiry (ms); the row is useless after it. */
  expires_at: number;
}

export interface Database {
  revoked_tokens: RevokedTokensTable;
  organizations: OrganizationsTable;
  applications: ApplicationsTable;
  credentials: CredentialsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  auth_failures: AuthFailuresTable;
  settings: SettingsTable;
  partners: PartnersTable;
  partner_applications: PartnerApplicationsTable;
  static_tokens: StaticTokensTable;
  placements: PlacementsTable;
  beacon_counts: BeaconCountsTable;
  application_rate_limits: ApplicationRateLimitsTable;
  gateway_routes: GatewayRoutesTable;
  portal_users: PortalUsersTable;
  portal_sessions: PortalSessionsTable;
  memberships: MembershipsTable;
  invitations: InvitationsTable;
  token_counts: TokenCountsTable;
}
