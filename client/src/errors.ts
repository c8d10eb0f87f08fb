/**
 * Every error this package throws on purpose is a {@link PortcullisError} with a stable `code`:
 * branch on the code (or the class), never on the message.
 */
export class PortcullisError extends Error {
  /** A stable, machine-readable code. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The token endpoint refused the client's credentials (`invalid_client`, RFC 6749 §5.2): the
 * client_id is unknown, the secret is wrong, or the credential was deleted or revoked. It is never
 * retried, since asking again with the same secret cannot succeed; a provider that got it keeps
 * failing with it until it is given new credentials.
 */
export class InvalidClientError extends PortcullisError {
  /** The HTTP status of the answer (401, or 400 from servers that use it). */
  readonly status: number;
  /** The server's `error_description`, if any. */
  readonly description: string | undefined;
  constructor(status: number, description: string | undefined) {
    super('invalid_client', `the token endpoint refused the client credentials (invalid_client${description ? `: ${description}` : ''})`);
    this.status = status;
    this.description = description;
  }
}

/**
 * The token endpoint could not give a token. `code` is the RFC 6749 `error` of the answer
 * (`invalid_request`, `invalid_scope`, `unsupported_grant_type`, `server_error`, …), or one of
 * `network_error` (no answer, or a timeout), `http_error` (an error status without an OAuth
 * error body), `invalid_response` (a 200 that is not a usable token response) and
 * `retry_after_too_long` (the server asked to wait longer than the provider may) and
 * `deadline_exceeded` (no token within `deadlineMs`, retries included).
 */
export class TokenEndpointError extends PortcullisError {
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;
  /** How many requests were made before giving up. */
  readonly attempts: number;
  /** What the server's `Retry-After` asked for, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(code: string, message: string, details: { status?: number; attempts: number; retryAfterMs?: number; cause?: unknown }) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.attempts = details.attempts;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The issuer's RFC 8414 metadata could not be read, or does not belong to that issuer. */
export class DiscoveryError extends PortcullisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('discovery_failed', message, options);
  }
}

/**
 * Why a token was refused: `missing` (no bearer token), `malformed`, `algorithm`, `type`,
 * `unknown_key`, `signature`, `expired`, `not_yet_valid`, `issuer`, `audience`, `claims`,
 * `revoked` (the token or its credential was revoked: the issuer's revocation feed says so),
 * `scope` (a valid token without a scope the request needs), or, when the verifier cannot
 * decide, `keys_unavailable` (the key set could not be fetched) and `revocations_unavailable`
 * (the revocation feed could not be read for longer than allowed).
 */
export type VerificationFailure =
  | 'missing'
  | 'malformed'
  | 'algorithm'
  | 'type'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'revoked'
  | 'scope'
  | 'keys_unavailable'
  | 'revocations_unavailable';

/**
 * A bearer token was refused, or could not be checked. `code` is the RFC 6750 error the
 * middleware answers: `invalid_token` (401), `insufficient_scope` (403) or
 * `temporarily_unavailable` (503, the verifier cannot reach its issuer); `reason` says why.
 */
export class TokenVerificationError extends PortcullisError {
  readonly reason: VerificationFailure;
  /** The HTTP status this refusal is answered with: 401, 403 or 503. */
  readonly status: 401 | 403 | 503;
  /** For `scope`: the scopes the request needed. */
  readonly scopes: readonly string[] | undefined;
  constructor(reason: VerificationFailure, message: string, options?: { cause?: unknown; scopes?: readonly string[] }) {
    const status = reason === 'scope' ? 403 : reason === 'keys_unavailable' || reason === 'revocations_unavailable' ? 503 : 401;
    super(status === 403 ? 'insufficient_scope' : status === 503 ? 'temporarily_unavailable' : 'invalid_token', message, options);
    this.reason = reason;
    this.status = status;
    this.scopes = options?.scopes;
  }
}
