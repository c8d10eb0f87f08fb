import { OAuthError } from '../domain/errors.js';

/** What the token endpoint knows of an API the application was granted. */
export interface GrantedApi {
  identifier: string;
  /** The API's scopes the application may ask for. */
  scopes: readonly string[];
}

/** The token's target: the default audience and the application's own scopes, or one API's. */
export type Target = { audience: undefined; scopes: undefined } | { audience: string; scopes: readonly string[] };

/**
 * RFC 8707 §2: the `resource` parameter of a token request, decided against the application's
 * grants. No `resource`: today's audience and scopes. One: the API with that identifier, which the
 * application must be granted; its token carries the identifier as `aud` and only scopes of the
 * grant. One audience per token, so a token for one API cannot be replayed at another.
 */
export function decideTarget(resource: string | undefined, grants: readonly GrantedApi[]): Target {
  if (resource === undefined) return { audience: undefined, scopes: undefined };
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new OAuthError('invalid_target', 'resource must be an absolute URI (RFC 8707)');
  }
  if (url.hash !== '' || resource.includes('#')) throw new OAuthError('invalid_target', 'resource must not contain a fragment (RFC 8707)');
  const api = grants.find((g) => g.identifier === resource);
  if (!api) throw new OAuthError('invalid_target', `the application is not granted the API ${JSON.stringify(resource.slice(0, 200))}`);
  return { audience: api.identifier, scopes: api.scopes };
}
