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
  /** JSON object: rules, rate_limit_per_minute, cors, audience (gateway/routes-config.ts checks it). */
  options: Generated<string>;
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
  /** When the address was proven by a mailed link (or by an operator); null until then. */
  email_verified_at: number | null;
  /** When an operator disabled the account; a disabled account cannot sign in. */
  disabled_at: number | null;
  /** When the account was granted the operator role (the operator console); null for everyone else. */
  operator_since: number | null;
  /** The TOTP secret, sealed (AES-256-GCM) under the master key; set during setup, before it is enabled. */
  totp_secret: string | null;
  /** When the second factor was turned on; null while it is off. */
  totp_enabled_at: number | null;
  /** The last time step a code was accepted for, so a code is never accepted twice. */
  totp_last_step: number | null;
}

/** Single-use recovery codes of an account's second factor, as SHA-256 hashes. */
export interface PortalRecoveryCodesTable {
  user_id: number;
  code_hash: string;
  used_at: number | null;
}

/** What an organization's owners require of its members. */
export interface OrganizationPoliciesTable {
  organization_id: number;
  /** When an owner made a second factor required; null when it is not. */
  second_factor_required_at: number | null;
}

export interface PortalSessionsTable {
  /** SHA-256 of the cookie's token, hex. */
  id: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

/** Single-use tokens of mailed links: email verification and password reset. */
export interface PortalUserTokensTable {
  /** SHA-256 of the link's token, hex. */
  id: string;
  user_id: number;
  /** verify-email or reset-password. */
  purpose: string;
  /** The address the link was sent to: verifying proves this address, not a later one. */
  email: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
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

/** Tokens issued per key (client_id) and UTC day, written in batches. */
export interface CredentialTokenCountsTable {
  client_id: string;
  day: string;
  count: number;
}

export interface RevokedTokensTable {
  jti: string;
  /** The token's own expiry (ms); the row is useless after it. */
  expires_at: number;
}

/** The first answer to an operator request sent with an Idempotency-Key, kept 24 hours. */
export interface IdempotencyKeysTable {
  /** HMAC of the operator token that sent the request: a key is only replayed to the same token. */
  principal: string;
  key: string;
  /** SHA-256 of the method, path and body: the same key with another request is refused. */
  request_hash: string;
  /** null while the first request is in progress. */
  status: number | null;
  /** The answer's content type and body, sealed with AES-256-GCM (it may hold a new secret). */
  response: string | null;
  created_at: number;
}

/** An API with its own audience: tokens asked for with `resource=<identifier>` carry it as `aud`. */
export interface ApisTable {
  id: Generated<number>;
  identifier: string;
  name: string;
  /** JSON array of the scopes the API defines. */
  scopes: string;
  /** JSON array: the subset of `scopes` an organization's owner may grant its own apps in the portal. */
  self_service_scopes: Generated<string>;
  created_at: number;
}

/** An application granted an API, with the API's scopes it may ask for. */
export interface ApplicationApisTable {
  application_id: number;
  api_id: number;
  /** JSON array of scope strings, a subset of the API's. */
  scopes: string;
  created_at: number;
}

export interface Database {
  idempotency_keys: IdempotencyKeysTable;
  apis: ApisTable;
  application_apis: ApplicationApisTable;
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
  portal_user_tokens: PortalUserTokensTable;
  portal_recovery_codes: PortalRecoveryCodesTable;
  organization_policies: OrganizationPoliciesTable;
  memberships: MembershipsTable;
  invitations: InvitationsTable;
  token_counts: TokenCountsTable;
  credential_token_counts: CredentialTokenCountsTable;
}
