import type { TokenVerificationError } from './errors.js';

/** The body of every refusal of a bad or missing token, the same as the Portcullis platform's own. */
export const UNAUTHORIZED_BODY = '{"Status Message":"Unauthorized"}';

/** The challenge sent with it (RFC 6750 §3). */
export const UNAUTHORIZED_CHALLENGE = 'Bearer realm="portcullis", error="invalid_token"';

/** The body of a 403 for a valid token without the scopes a route needs, as the platform's gateway answers. */
export const FORBIDDEN_BODY = '{"Status Message":"Forbidden"}';

/** The body of a 503 when the verifier cannot decide (keys or revocations unreachable). */
export const UNAVAILABLE_BODY = '{"Status Message":"Service Unavailable"}';

/** How long a client should wait before trying again after a 503, in seconds. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** An HTTP answer to a refused request. */
export interface Refusal {
  status: 401 | 403 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * The answer the platform gives for `error`: 401 `invalid_token` with the reference body, 403
 * `insufficient_scope` naming the scopes needed (RFC 6750 §3.1), or 503 with `Retry-After` when
 * the verifier cannot know (so the caller does not blame its token).
 */
export function refusalFor(error: TokenVerificationError): Refusal {
  const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-type': 'application/json' };
  if (error.status === 403) {
    const scope = (error.scopes ?? []).join(' ').replace(/["\\]/g, '');
    headers['www-authenticate'] = `Bearer realm="portcullis", error="insufficient_scope", scope="${scope}"`;
    return { status: 403, headers, body: FORBIDDEN_BODY };
  }
  if (error.status === 503) {
    headers['retry-after'] = String(UNAVAILABLE_RETRY_AFTER_SECONDS);
    return { status: 503, headers, body: UNAVAILABLE_BODY };
  }
  headers['www-authenticate'] = UNAUTHORIZED_CHALLENGE;
  return { status: 401, headers, body: UNAUTHORIZED_BODY };
}
