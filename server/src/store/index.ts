import { ApplicationRepository } from './applications.js';
import { AuditRepository } from './audit.js';
import { AuthFailureRepository } from './auth-failures.js';
import { CredentialRepository } from './credentials.js';
import type { Db } from './db.js';
import { GatewayRouteRepository } from './gateway-routes.js';
import { OrganizationRepository } from './organizations.js';
import { PartnerRepository } from './partners.js';
import { PlacementRepository } from './placements.js';
import { SettingsRepository } from './settings.js';
import { SigningKeyRepository } from './signing-keys.js';
import { StaticTokenRepository } from './static-tokens.js';

export interface Store {
  db: Db;
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
}

export function createStore(db: Db): Store {
  return {
    db,
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
  };
}
