export const MAX_ACTIVE_CREDENTIALS_PER_APP = 5;

export type CredentialStatus = 'active' | 'deactivating' | 'deactivated' | 'revoked';

export interface CredentialTimes {
  deactivatesAt: number | null;
  revokedAt: number | null;
}

/**
 * live → (deleted) deactivating until the grace period ends → deactivated.
 * "Revoke now" skips the grace period and also invalidates tokens already issued.
 */
export function credentialStatus(c: CredentialTimes, now: number): CredentialStatus {
  if (c.revokedAt !== null) return 'revoked';
  if (c.deactivatesAt === null) return 'active';
  return now < c.deactivatesAt ? 'deactivating' : 'deactivated';
}

/** Whether the credential may still obtain tokens. */
export function canIssueTokens(c: CredentialTimes, now: number): boolean {
  const status = credentialStatus(c, now);
  return status === 'active' || status === 'deactivating';
}

/** Whether tokens already issued from this credential still verify: only "revoke now" stops them. */
export function tokensStillValid(c: CredentialTimes): boolean {
  return c.revokedAt === null;
}
