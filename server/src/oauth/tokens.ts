import { randomUUID } from 'node:crypto';
import type { AccessClaims } from '../domain/claims.js';
import type { Clock } from '../domain/clock.js';
import { canIssueTokens } from '../domain/credentials.js';
import { CLIENT_ID_PATTERN, isWellFormedSecret, SECRET_PREFIX, secretMatches } from '../domain/secrets.js';
import type { Directory } from '../directory/service.js';
import type { AuthFailureReason, UsageRecorder } from '../directory/usage.js';
import { signCompact } from '../keys/jwt.js';
import type { KeyRing } from '../keys/keyring.js';
import type { Application } from '../store/applications.js';
import type { Credential } from '../store/credentials.js';

/** A checked client_id and secret; a failure names its reason and, when the client_id exists, its credential. */
export type ClientAuthentication =
  | { ok: true; credential: Credential; application: Application }
  | { ok: false; reason: AuthFailureReason; credential?: Credential };

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  scope: string;
}

/** Client authentication and token signing: the work behind POST /oauth2/token. */
export class TokenIssuer {
  constructor(
    private readonly directory: Directory,
    private readonly keys: KeyRing,
    private readonly usage: UsageRecorder,
    private readonly clock: Clock,
    private readonly pepper: Buffer,
    private readonly options: { issuer: string; audience: string; ttlSeconds: number },
  ) {}

  /** Checks a client_id and secret; the outcome is a value, and every failure is counted. */
  async authenticate(clientId: string, secret: string): Promise<ClientAuthentication> {
    const outcome = await this.check(clientId, secret);
    if (!outcome.ok) this.usage.failed(clientId, outcome.reason);
    return outcome;
  }

  private async check(clientId: string, secret: string): Promise<ClientAuthentication> {
    // Ids that cannot exist never reach the cache or the store.
    if (!CLIENT_ID_PATTERN.test(clientId)) return { ok: false, reason: 'unknown_client' };
    // The caches answer a hit at once; only a miss is awaited.
    let credential = this.directory.credentials.get(clientId);
    if (credential instanceof Promise) credential = await credential;
    if (!credential) return { ok: false, reason: 'unknown_client' };
    if (!isWellFormedSecret(secret, SECRET_PREFIX.clientSecret) || !secretMatches(this.pepper, secret, credential.secretHash)) {
      return { ok: false, reason: 'bad_secret', credential };
    }
    if (!canIssueTokens(credential, this.clock.now())) return { ok: false, reason: 'deactivated', credential };
    let application = this.directory.applications.get(credential.applicationId);
    if (application instanceof Promise) application = await application;
    if (!application) return { ok: false, reason: 'unknown_client' };
    return { ok: true, credential, application };
  }

  /** Signs a token; `audience` is an API's identifier (RFC 8707 `resource`), else the configured audience. */
  async issue(credential: Credential, application: Application, scope: string, audience = this.options.audience): Promise<IssuedToken> {
    const key = this.keys.signingKey();
    const iat = Math.floor(this.clock.now() / 1000);
    const claims: AccessClaims = {
      iss: this.options.issuer,
      sub: credential.clientId,
      aud: audience,
      client_id: credential.clientId,
      iat,
      nbf: iat,
      exp: iat + this.options.ttlSeconds,
      jti: randomUUID(),
      application_id: application.id,
      organization_id: application.organizationId,
    };
    if (scope) claims.scope = scope;
    const accessToken = await signCompact(key.encodedHeader, claims, key.alg, key.privateKey);
    this.usage.used(credential.clientId, application.id);
    return { accessToken, expiresIn: this.options.ttlSeconds, scope };
  }
}
