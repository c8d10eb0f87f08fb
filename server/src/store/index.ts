import { ApplicationRepository } from './applications.js';
import { AuditRepository } from './audit.js';
import { AuthFailureRepository } from './auth-failures.js';
import { CredentialRepository } from './credentials.js';
import type { Db } from './db.js';
import { OrganizationRepository } from './organizations.js';
import { SettingsRepository } from './settings.js';
import { SigningKeyRepository } from './signing-keys.js';

export interface Store {
  db: Db;
  organizations: OrganizationRepository;
  applications: ApplicationRepository;
  credentials: CredentialRepository;
  signingKeys: SigningKeyRepository;
  audit: AuditRepository;
  authFailures: AuthFailureRepository;
  settings: SettingsRepository;
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
  };
}
