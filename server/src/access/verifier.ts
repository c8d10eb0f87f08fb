import type { Clock } from '../domain/clock.js';
import { tokensStillValid } from '../domain/credentials.js';
import type { Directory } from '../directory/service.js';
import type { TokenDenylist } from './denylist.js';
import { TOKEN_TYPE, verifySignature } from '../keys/jwt.js';
import type { KeyRing } from '../keys/keyring.js';
import type { AccessClaims } from '../domain/claims.js';

export type VerifyFailure = 'malformed' | 'unknown_key' | 'bad_signature' | 'wrong_issuer' | 'wrong_audience' | 'expired' | 'not_yet_valid' | 'revoked';

export type VerifyOutcome = { ok: true; claims: AccessClaims } | { ok: false; reason: VerifyFailure };

export interface VerifierOptions {
  issuer: string;
  audience: string;
  clockSkewSeconds: number;
  /** How many verified tokens to remember, so a repeated token skips parsing and RSA. */
  cacheSize?: number;
  /** Told every outcome (metrics count them); must be cheap, it runs on the hot path. */
  onOutcome?: (outcome: VerifyOutcome) => void;
}

const MAX_TOKEN_LENGTH = 8192;
const MAX_TOKEN_LIFETIME_SECONDS = 86_400; // the most PORTCULLIS_TOKEN_TTL allows
const SEGMENT = /^[A-Za-z0-9_-]+$/;
// Header parameters that point at keys or add semantics we do not implement: refuse them outright.
const FORBIDDEN_HEADER_PARAMS = ['jwk', 'jku', 'x5u', 'x5c', 'crit', 'b64', 'zip', 'enc'];

function decodeJson(segment: string): Record<string, unknown> | undefined {
  if (!SEGMENT.test(segment)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isPositiveInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Slots of the verified-token cache's doorkeeper (a power of two; 4 bytes each). */
const DOORKEEPER_SLOTS = 1 << 14;

/**
 * A 32-bit FNV-1a hash of a token's last 16 characters: its signature, which differs between any
 * two tokens. Only tokens already verified are fingerprinted, so a collision only admits a valid
 * token to the cache one verification early.
 */
function fingerprint(token: string): number {
  let hash = 0x811c9dc5;
  for (let i = Math.max(0, token.length - 16); i < token.length; i++) hash = Math.imul(hash ^ token.charCodeAt(i), 0x01000193);
  return (hash | 1) >>> 0; // never 0, the value of an empty slot
}

/**
 * Checks bearer tokens: signature with the algorithm of the key named by `kid` (never the
 * token's own choice), issuer, audience, lifetime with clock skew, and revocation.
 * Outcomes are values; nothing here throws for a bad token.
 */
export class BearerVerifier {
  private readonly verified = new Map<string, AccessClaims>();
  private readonly cacheSize: number;
  /**
   * The cache's doorkeeper: a fingerprint of each token verified once. A token enters the cache on
   * its second verification, so tokens presented once (a client that fetches a token per call)
   * neither evict the ones in use nor fill the heap with entries that die before they are read.
   */
  private readonly seenOnce = new Uint32Array(DOORKEEPER_SLOTS);

  constructor(
    private readonly keys: KeyRing,
    private readonly directory: Directory,
    private readonly denylist: TokenDenylist,
    private readonly clock: Clock,
    private readonly options: VerifierOptions,
  ) {
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  /** Tokens whose signature and claims are remembered (at most the cache size). */
  get cachedTokens(): number {
    return this.verified.size;
  }

  /**
   * `anyAudience`: a token of this issuer for any audience, such as an API's (RFC 8707); for the
   * revocation and introspection endpoints, which ask whose token it is, not whether it is for them.
   */
  async verify(token: string, options: { anyAudience?: boolean } = {}): Promise<VerifyOutcome> {
    const outcome = await this.check(token, options.anyAudience === true);
    this.options.onOutcome?.(outcome);
    return outcome;
  }

  private async check(token: string, anyAudience: boolean): Promise<VerifyOutcome> {
    let claims = this.verified.get(token);
    if (claims === undefined) {
      let checked = this.checkSignedToken(token);
      // A key made on another node moments ago: read the keys again (with a cooldown) and retry once.
      if (!checked.ok && checked.reason === 'unknown_key' && checked.kid !== undefined && (await this.keys.findVerificationKey(checked.kid)))
        checked = this.checkSignedToken(token);
      if (!checked.ok) return { ok: false, reason: checked.reason };
      claims = checked.claims;
    }
    if (!anyAudience && !this.forUs(claims.aud)) return { ok: false, reason: 'wrong_audience' };
    const now = this.clock.now();
    const skew = this.options.clockSkewSeconds * 1000;
    if (claims.exp * 1000 + skew <= now) {
      this.verified.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (claims.nbf * 1000 - skew > now) return { ok: false, reason: 'not_yet_valid' };
    if (this.denylist.has(claims.jti)) {
      this.verified.delete(token);
      return { ok: false, reason: 'revoked' };
    }
    // A cache hit is answered at once; only a miss is awaited.
    let credential = this.directory.credentials.get(claims.client_id);
    if (credential instanceof Promise) credential = await credential;
    if (!credential || credential.applicationId !== claims.application_id || !tokensStillValid(credential)) {
      this.verified.delete(token);
      return { ok: false, reason: 'revoked' };
    }
    if (!this.verified.has(token)) this.remember(token, claims);
    return { ok: true, claims };
  }

  private forUs(aud: unknown): boolean {
    return aud === this.options.audience || (Array.isArray(aud) && aud.includes(this.options.audience));
  }

  private remember(token: string, claims: AccessClaims): void {
    const print = fingerprint(token);
    const slot = print & (DOORKEEPER_SLOTS - 1);
    if (this.seenOnce[slot] !== print) {
      this.seenOnce[slot] = print;
      return;
    }
    if (this.verified.size >= this.cacheSize) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(token, claims);
  }

  /** Everything that depends only on the token's bytes and the key set. */
  private checkSignedToken(token: string): { ok: true; claims: AccessClaims } | { ok: false; reason: VerifyFailure; kid?: string } {
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    const firstDot = token.indexOf('.');
    const secondDot = token.indexOf('.', firstDot + 1);
    if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1 || secondDot === token.length - 1) {
      return { ok: false, reason: 'malformed' };
    }
    const header = decodeJson(token.slice(0, firstDot));
    if (!header || header.typ !== TOKEN_TYPE || typeof header.kid !== 'string' || typeof header.alg !== 'string') {
      return { ok: false, reason: 'malformed' };
    }
    if (FORBIDDEN_HEADER_PARAMS.some((p) => p in header)) return { ok: false, reason: 'malformed' };
    const key = this.keys.verificationKey(header.kid);
    if (!key) return { ok: false, reason: 'unknown_key', kid: header.kid };
    if (header.alg !== key.alg) return { ok: false, reason: 'bad_signature' };
    const signature = token.slice(secondDot + 1);
    if (!SEGMENT.test(signature)) return { ok: false, reason: 'malformed' };
    const signatureBytes = Buffer.from(signature, 'base64url');
    // One spelling per signature: unused low bits in the last character would give a token twins.
    if (signatureBytes.toString('base64url') !== signature) return { ok: false, reason: 'malformed' };
    if (!verifySignature(token.slice(0, secondDot), signatureBytes, key.alg, key.publicKey)) {
      return { ok: false, reason: 'bad_signature' };
    }
    const payload = decodeJson(token.slice(firstDot + 1, secondDot));
    if (!payload) return { ok: false, reason: 'malformed' };
    if (payload.iss !== this.options.issuer) return { ok: false, reason: 'wrong_issuer' };
    const aud = payload.aud;
    if (typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) return { ok: false, reason: 'malformed' };
    if (
      !isTime(payload.exp) ||
      !isTime(payload.nbf) ||
      !isTime(payload.iat) ||
      typeof payload.client_id !== 'string' ||
      typeof payload.jti !== 'string' ||
      !isPositiveInteger(payload.application_id) ||
      !isPositiveInteger(payload.organization_id) ||
      (payload.scope !== undefined && typeof payload.scope !== 'string') ||
      // No token of ours lives longer than the longest configurable lifetime.
      payload.exp - payload.iat > MAX_TOKEN_LIFETIME_SECONDS ||
      payload.exp < payload.iat
    ) {
      return { ok: false, reason: 'malformed' };
    }
    return { ok: true, claims: payload as unknown as AccessClaims };
  }
}
