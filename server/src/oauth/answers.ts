import { OAuthError } from '../domain/errors.js';
import type { TokenOutcome } from '../ops/metrics.js';
import { isStoreUnavailable } from '../store/db.js';
import { RateLimitedError } from './client-auth.js';
import type { IssuedToken } from './tokens.js';

/**
 * An answer of the OAuth endpoints, built once and written either by Fastify (oauth/routes.ts)
 * or on the raw listener (oauth/token-lane.ts), so both spell it the same way.
 */
export interface OAuthAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** What the request ended in, for the token endpoint's metrics. */
  outcome: TokenOutcome;
}

export const JSON_TYPE = 'application/json; charset=utf-8';

// Criteo's generated SDKs read `refresh_token` from every token response and fail without the
// key; RFC 6749 §4.4.3 says a client-credentials response should carry none, and strict
// clients reject a null one. So the null key goes only to those SDKs, known by their User-Agent.
const NEEDS_REFRESH_TOKEN_KEY = /^OpenAPI-Generator\//;

/** RFC 6749 §5.1: the issued token; `userAgent` decides the null refresh_token above. */
export function issuedAnswer(issued: IssuedToken, userAgent: string | undefined): OAuthAnswer {
  // Written out rather than through JSON.stringify of an object: a compact JWS holds only
  // base64url characters and dots (RFC 7515 §7.1), so it needs no escaping; the scope does.
  let body = `{"access_token":"${issued.accessToken}","token_type":"Bearer","expires_in":${issued.expiresIn}`;
  if (issued.scope) body += `,"scope":${JSON.stringify(issued.scope)}`;
  if (userAgent !== undefined && NEEDS_REFRESH_TOKEN_KEY.test(userAgent)) body += ',"refresh_token":null';
  return {
    status: 200,
    headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', pragma: 'no-cache' },
    body: `${body}}`,
    outcome: 'issued',
  };
}

/**
 * RFC 6749 §5.2: an error answer. `basic`: the client tried the Authorization header, so a 401
 * tells it which scheme to use. A 429 carries Retry-After and the limit it hit.
 */
export function oauthErrorAnswer(err: OAuthError, basic: boolean): OAuthAnswer {
  const headers: Record<string, string> = { 'content-type': JSON_TYPE, 'cache-control': 'no-store', pragma: 'no-cache' };
  if (err instanceof RateLimitedError) {
    headers['retry-after'] = String(err.retryAfter);
    headers['x-ratelimit-limit'] = String(err.outcome.limit);
    headers['x-ratelimit-remaining'] = '0';
    headers['x-ratelimit-reset'] = String(Math.ceil(err.outcome.resetAt / 1000));
  }
  if (err.status === 401 && basic) headers['www-authenticate'] = 'Basic realm="portcullis", charset="UTF-8"';
  return {
    status: err.status,
    headers,
    body: JSON.stringify({ error: err.code, error_description: err.description }),
    outcome: err instanceof RateLimitedError ? 'rate_limited' : err.code,
  };
}

/** The largest request body the OAuth endpoints read. */
export const TOKEN_BODY_LIMIT = 16 * 1024;

/** The request body is over TOKEN_BODY_LIMIT. */
export const bodyTooLarge = (basic: boolean): OAuthAnswer =>
  oauthErrorAnswer(new OAuthError('invalid_request', `the request body is larger than ${TOKEN_BODY_LIMIT} bytes`, 413), basic);

/**
 * An error thrown on the way, not a refusal: the database away is a 503 the client may retry
 * (`log` says to warn), anything else a 500 that tells nothing of the failure (`log` says error).
 */
export function failureAnswer(err: unknown, basic: boolean): { answer: OAuthAnswer; level: 'warn' | 'error'; message: string } {
  if (isStoreUnavailable(err)) {
    const answer = oauthErrorAnswer(new OAuthError('temporarily_unavailable', 'the credential store is unreachable; try again in a few seconds', 503), basic);
    answer.headers['retry-after'] = '5';
    return { answer, level: 'warn', message: 'token endpoint: database unreachable' };
  }
  return {
    answer: oauthErrorAnswer(new OAuthError('server_error', 'the server could not issue a token; try again'), basic),
    level: 'error',
    message: 'token endpoint failed',
  };
}
