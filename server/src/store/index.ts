import { ApiRepository } from './apis.js';
import { ApplicationRepository } from './applications.js';
import { AuditRepository } from './audit.js';
import { AuthFailureRepository } from './auth-failures.js';
import { CredentialRepository } from './credentials.js';
import { type Db, inTransaction } from './db.js';
import { RevokedTokenRepository } from './revoked-tokens.js';
import { GatewayRouteRepository } from './gateway-routes.js';
import { IdempotencyKeyRepository } from './idempotency-keys.js';
import { InvitationRepository } from './invitations.js';
import { MembershipRepository } from './memberships.js';
import { OrganizationRepository } from './organizations.js';
import { PartnerRepository } from './partners.js';
import { PlacementRepository } from './placements.js';
import { PortalSessionRepository } from './portal-sessions.js';
import { OrganizationPolicyRepository } from './organization-policies.js';
import { PortalUserTokenRepository } from './portal-user-tokens.js';
import { RecoveryCodeRepository } from './recovery-codes.js';
import { PortalUserRepository } from './portal-users.js';
import { SettingsRepository } from './settings.js';
import { SigningKeyRepository } from './signing-keys.js';
import { StaticTokenRepository } from './static-tokens.js';
import { TokenCountRepository } from './token-counts.js';

export interface Store {
  db: Db;
  /**
   * Runs `fn` with repositories bound to one transaction: its writes commit together or not at
   * all. Inside `fn`, use only the store it is given (on SQLite the outer one waits for the
   * transaction's connection), and publish bus events after it returns.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  apis: ApiRepository;
  revokedTokens: RevokedTokenRepository;
  organizations: OrganizationRepository;
  applications: ApplicationRepository;
  credentials: CredentialRepository;
  signingKeys: SigningKeyRepository;
  audit: AuditRepository;
  authFailures: AuthFailureRepository;
  settings: SettingsRepository;
  partners: PartnerRepository;
  staticTokens: StaticTokenRepository;
  placements: PlacementRepository;
  gatewayRoutes: GatewayRouteRepository;
  portalUsers: PortalUserRepository;
  portalSessions: PortalSessionRepository;
  portalUserTokens: PortalUserTokenRepository;
  recoveryCodes: RecoveryCodeRepository;
  organizationPolicies: OrganizationPolicyRepository;
  memberships: MembershipRepository;
  invitations: InvitationRepository;
  tokenCounts: TokenCountRepository;
  idempotencyKeys: IdempotencyKeyRepository;
}

export function createStore(db: Db): Store {
  const store: Store = {
    db,
    transaction: (fn) => inTransaction(db, (trx) => fn(trx === db ? store : createStore(trx))),
    apis: new ApiRepository(db),
    revokedTokens: new RevokedTokenRepository(db),
    organizations: new OrganizationRepository(db),
    applications: new ApplicationRepository(db),
    credentials: new CredentialRepository(db),
    signingKeys: new SigningKeyRepository(db),
    audit: new AuditRepository(db),
    authFailures: new AuthFailureRepository(db),
    settings: new SettingsRepository(db),
    partners: new PartnerRepository(db),
    staticTokens: new StaticTokenRepository(db),
    placements: new PlacementRepository(db),
    gatewayRoutes: new GatewayRouteRepository(db),
    portalUsers: new PortalUserRepository(db),
    portalSessions: new PortalSessionRepository(db),
    portalUserTokens: new PortalUserTokenRepository(db),
    recoveryCodes: new RecoveryCodeRepository(db),
    organizationPolicies: new OrganizationPolicyRepository(db),
    memberships: new MembershipRepository(db),
    invitations: new InvitationRepository(db),
    tokenCounts: new TokenCountRepository(db),
    idempotencyKeys: new IdempotencyKeyRepository(db),
  };
  return store;
}
