import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters, type JWTPayload, jwtVerify } from 'jose';
import { type AuthorizationServerMetadata, discover, type FetchLike } from './discovery.js';
import { TokenVerificationError, type VerificationFailure } from './errors.js';
import { RevocationFeed, type RevocationOptions } from './revocations.js';

/** Options of {@link createVerifier}. */
export interface VerifierOptions {
  /** The issuer the tokens must name in `iss`; its metadata gives the JWKS address unless `jwksUri` is set. */
  issuer: string;
  /** The audience (or audiences) one of which the tokens' `aud` must hold. */
  audience: string | readonly string[];
  /** Scopes every token must hold (each request may add more). */
  requiredScopes?: readonly string[];
  /** The JWKS address; read from the issuer's RFC 8414 metadata when not given. */
  jwksUri?: string;
  /** The signature algorithms accepted; anything else is refused before a key is looked up. Default RS256, ES256, EdDSA. */
  algorithms?: readonly string[];
  /** The `typ` header required (RFC 9068), or `false` for none. Default `at+jwt`. */
  tokenType?: string | false;
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 10: hosts kept in time by
   * NTP differ by far less, and every second of it keeps an expired token alive.
   */
  clockToleranceSeconds?: number;
  /** How long a fetched key set is used before it is fetched again, in seconds. Default 600. */
  jwksMaxAgeSeconds?: number;
  /** An unknown `kid` fetches the key set again at most once per this many seconds. Default 30. */
  jwksCooldownSeconds?: number;
  /** Timeout of a key-set or metadata request. Default 5000. */
  requestTimeoutMs?: number;
  /**
   * The issuer's revocation feed, followed by default so that tokens revoked with RFC 7009 and
   * tokens of credentials revoked "now" are refused within `intervalSeconds` (5). `false` turns it off.
   */
  revocations?: RevocationOptions | false;
  /** How many verified tokens are remembered, so a repeated token skips the signature check. Default 10000; 0 turns it off. */
  cacheSize?: number;
  /** The fetch to use; the global `fetch` by default. */
  fetch?: FetchLike;
  /** The clock, in milliseconds since the epoch; `Date.now` by default. For tests. */
  now?: () => number;
}

/** Options of one verification. */
export interface VerifyOptions {
  /** Scopes this request needs, on top of the verifier's own. */
  requiredScopes?: readonly string[];
}

/** The claims of a Portcullis access token. */
export interface AccessTokenClaims extends JWTPayload {
  client_id?: string;
  scope?: string;
  application_id?: number;
  organization_id?: number;
}

/** Who called: a token that passed every check. */
export interface VerifiedToken {
  /** The calling client's id (`client_id`). */
  clientId: string;
  /** The token's subject (`sub`). */
  subject: string;
  /** The granted scopes. */
  scopes: string[];
  /** The Portcullis application and organization, when the token names them. */
  applicationId: number | undefined;
  organizationId: number | undefined;
  /** When the token expires. */
  expiresAt: Date;
  /** Every claim, as signed. */
  claims: AccessTokenClaims;
}

/** Checks bearer tokens of one issuer. */
export interface Verifier {
  /** The identity in `token`, or a {@link TokenVerificationError} saying why it is refused. */
  verify(token: string, options?: VerifyOptions): Promise<VerifiedToken>;
  /** Same, from an `Authorization` header value (`Bearer …`); a missing or other scheme is refused with reason `missing`. */
  verifyAuthorization(header: string | undefined, options?: VerifyOptions): Promise<VerifiedToken>;
  /** Stops following the revocation feed (its timer never keeps a process alive anyway). */
  close(): void;
}

/** Refuses `identity` unless it holds every scope of `required`; the error names them all, for the 403's `scope`. */
export function checkScopes(identity: Pick<VerifiedToken, 'scopes'>, required: readonly string[]): void {
  for (const scope of required) {
    if (!identity.scopes.includes(scope)) {
      throw new TokenVerificationError('scope', `the token lacks the scope ${JSON.stringify(scope)}`, { scopes: required });
    }
  }
}

/** The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match?.[1];
}

const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

/**
 * The issuer's key set, fetched when first needed, used for `maxAge`, and fetched again early
 * when a token names an unknown `kid`, at most once per `cooldown` whatever tokens arrive.
 */
class KeySet {
  private local: ReturnType<typeof createLocalJWKSet> | undefined;
  private fetchedAt = 0;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;
  private uri: Promise<string> | undefined;
  /** Told when a fetched key set replaces another, so verdicts reached with the old one are forgotten. */
  onReload: () => void = () => {};

  constructor(
    private readonly options: {
      issuer: string;
      jwksUri: string | undefined;
      metadata: () => Promise<AuthorizationServerMetadata>;
      maxAgeMs: number;
      cooldownMs: number;
      timeoutMs: number;
      fetch: FetchLike;
      now: () => number;
    },
  ) {
    if (options.jwksUri) this.uri = Promise.resolve(options.jwksUri);
  }

  private jwksUri(): Promise<string> {
    this.uri ??= this.options.metadata().then(
      (metadata) => {
        if (!metadata.jwks_uri) throw new Error(`the metadata of ${this.options.issuer} has no jwks_uri`);
        return metadata.jwks_uri;
      },
      (err) => {
        this.uri = undefined;
        throw err;
      },
    );
    return this.uri;
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      this.lastAttempt = this.options.now();
      try {
        const uri = await this.jwksUri();
        const response = await this.options.fetch(uri, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.options.timeoutMs) });
        if (!response.ok) {
          await response.body?.cancel();
          throw new Error(`${uri} answered HTTP ${response.status}`);
        }
        const set = (await response.json()) as JSONWebKeySet;
        if (!set || !Array.isArray(set.keys)) throw new Error(`${uri} is not a JWK set`);
        const replaced = this.local !== undefined;
        this.local = createLocalJWKSet(set);
        this.fetchedAt = this.options.now();
        if (replaced) this.onReload();
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** The key for a token's header, as jose's `jwtVerify` asks for it. */
  readonly key = async (header: JWSHeaderParameters, token: Parameters<ReturnType<typeof createLocalJWKSet>>[1]) => {
    const now = this.options.now();
    if (!this.local || now - this.fetchedAt >= this.options.maxAgeMs) {
      try {
        await this.reload();
      } catch (err) {
        // An old key set still verifies the tokens it knows while the issuer is unreachable.
        if (!this.local) throw new TokenVerificationError('keys_unavailable', `the key set could not be fetched: ${(err as Error).message}`, { cause: err });
      }
    }
    const used = this.local!;
    try {
      return await used(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // Another caller's fetch, finished or under way, may have brought the key: use it rather than fetching again.
      if (!this.loading && this.local === used && this.options.now() - this.lastAttempt < this.options.cooldownMs) throw err;
    }
    try {
      if (this.loading || this.local === used) await this.reload();
    } catch (err) {
      throw new TokenVerificationError('keys_unavailable', `the key set could not be fetched: ${(err as Error).message}`, { cause: err });
    }
    return this.local!(header, token);
  };
}

function failure(err: unknown): TokenVerificationError {
  if (err instanceof TokenVerificationError) return err;
  const { code, claim, message } = err as { code?: string; claim?: string; message?: string };
  const reasons: Record<string, VerificationFailure> = {
    ERR_JWT_EXPIRED: 'expired',
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'signature',
    ERR_JOSE_ALG_NOT_ALLOWED: 'algorithm',
    ERR_JOSE_NOT_SUPPORTED: 'algorithm',
    ERR_JWKS_NO_MATCHING_KEY: 'unknown_key',
    ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'unknown_key',
    ERR_JWS_INVALID: 'malformed',
    ERR_JWT_INVALID: 'malformed',
  };
  const claimReasons: Record<string, VerificationFailure> = { iss: 'issuer', aud: 'audience', nbf: 'not_yet_valid', typ: 'type' };
  let reason: VerificationFailure | undefined = code === undefined ? undefined : reasons[code];
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') reason = (claim && claimReasons[claim]) || 'claims';
  if (reason === undefined) throw err; // not a verdict on the token: a bug, surfaced as such
  return new TokenVerificationError(reason, message ?? reason, { cause: err });
}

/**
 * A verifier of Portcullis access tokens (or any RFC 9068 JWT access tokens) for API owners:
 * signature by the issuer's published keys (fetched, cached, and fetched again on an unknown
 * `kid` at a bounded rate), a strict algorithm allow-list, `typ`, `iss`, `aud`, `exp`/`nbf`
 * with clock skew, and required scopes.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ issuer: 'https://auth.example.com', audience: 'https://auth.example.com' });
 * const { clientId, scopes } = await verifier.verifyAuthorization(request.headers.authorization);
 * ```
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (!options.issuer) throw new TypeError('createVerifier needs the issuer');
  if (!options.audience || options.audience.length === 0) throw new TypeError('createVerifier needs the audience');
  const now = options.now ?? Date.now;
  const doFetch: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const toleranceSeconds = options.clockToleranceSeconds ?? 10;
  let metadata: Promise<AuthorizationServerMetadata> | undefined;
  // One discovery for the key set and the feed; a failure is forgotten so the next need tries again.
  const discovered = () => {
    metadata ??= discover(options.issuer, { fetch: doFetch, timeoutMs }).catch((err: unknown) => {
      metadata = undefined;
      throw err;
    });
    return metadata;
  };
  const keys = new KeySet({
    issuer: options.issuer,
    jwksUri: options.jwksUri,
    metadata: discovered,
    maxAgeMs: (options.jwksMaxAgeSeconds ?? 600) * 1000,
    cooldownMs: (options.jwksCooldownSeconds ?? 30) * 1000,
    timeoutMs,
    fetch: doFetch,
    now,
  });
  const feedOptions = options.revocations === false ? undefined : (options.revocations ?? {});
  const feed =
    feedOptions &&
    new RevocationFeed({
      uri: feedOptions.uri
        ? () => Promise.resolve(feedOptions.uri)
        : async () => {
            const uri = (await discovered()).revocations_uri;
            return typeof uri === 'string' ? uri : undefined;
          },
      intervalSeconds: feedOptions.intervalSeconds ?? 5,
      maxStalenessSeconds: feedOptions.maxStalenessSeconds ?? 30,
      toleranceMs: toleranceSeconds * 1000,
      timeoutMs,
      fetch: doFetch,
      now,
    });
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];
  const tokenType = options.tokenType === undefined ? 'at+jwt' : options.tokenType;
  const verifierScopes = options.requiredScopes ?? [];
  const cache = new VerifiedTokens(options.cacheSize ?? 10_000);
  keys.onReload = () => cache.clear();

  /** The signature and claims: the expensive part, done once per token. */
  const check = async (token: string): Promise<VerifiedToken> => {
    let claims: AccessTokenClaims;
    try {
      ({ payload: claims } = await jwtVerify<AccessTokenClaims>(token, keys.key, {
        issuer: options.issuer,
        audience,
        algorithms,
        ...(tokenType === false ? {} : { typ: tokenType }),
        clockTolerance: toleranceSeconds,
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
      }));
    } catch (err) {
      throw failure(err);
    }
    if (typeof claims.client_id !== 'string' || typeof claims.sub !== 'string') throw new TokenVerificationError('claims', 'client_id and sub must be strings');
    return {
      clientId: claims.client_id,
      subject: claims.sub,
      scopes: typeof claims.scope === 'string' && claims.scope !== '' ? claims.scope.split(' ') : [],
      applicationId: typeof claims.application_id === 'number' ? claims.application_id : undefined,
      organizationId: typeof claims.organization_id === 'number' ? claims.organization_id : undefined,
      expiresAt: new Date((claims.exp as number) * 1000),
      claims,
    };
  };

  const verify: Verifier['verify'] = async (token, perCall = {}) => {
    const waiting = feed?.ready();
    if (waiting) await waiting;
    let identity = cache.get(token);
    if (identity !== undefined && identity.expiresAt.getTime() + toleranceSeconds * 1000 <= now()) {
      cache.delete(token);
      identity = undefined; // the full check says why: expired
    }
    if (identity === undefined) {
      identity = await check(token);
      cache.set(token, identity);
    }
    if (feed?.revoked(identity.claims.jti, identity.clientId, identity.claims.iat as number)) {
      cache.delete(token);
      throw new TokenVerificationError('revoked', 'the token, or the credential it was issued to, was revoked');
    }
    if (verifierScopes.length > 0) checkScopes(identity, verifierScopes);
    if (perCall.requiredScopes && perCall.requiredScopes.length > 0) checkScopes(identity, perCall.requiredScopes);
    return identity;
  };

  return {
    verify,
    verifyAuthorization(header, perCall) {
      const token = bearerToken(header);
      if (token === undefined) return Promise.reject(new TokenVerificationError('missing', 'no bearer token'));
      return verify(token, perCall);
    },
    close() {
      feed?.stop();
    },
  };
}

/** Tokens that passed the signature and claims checks, least recently used first out. */
class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedToken>();
  constructor(private readonly size: number) {}

  get(token: string): VerifiedToken | undefined {
    const identity = this.entries.get(token);
    if (identity !== undefined) {
      // Moved to the end: the map's order is the recency order.
      this.entries.delete(token);
      this.entries.set(token, identity);
    }
    return identity;
  }

  set(token: string, identity: VerifiedToken): void {
    if (this.size <= 0) return;
    if (this.entries.size >= this.size) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, identity);
  }

  delete(token: string): void {
    this.entries.delete(token);
  }

  clear(): void {
    this.entries.clear();
  }
}
