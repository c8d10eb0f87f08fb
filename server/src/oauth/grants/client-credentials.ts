import { OAuthError } from '../../domain/errors.js';
import type { Grant, GrantOutcome } from './grant.js';

/** RFC 6749 §4.4.2: the only parameter of the grant itself (client authentication has its own step). */
export const parameters = ['scope'] as const;

/**
 * The client-credentials grant (RFC 6749 §4.4): the token is for the authenticated client itself,
 * with the scopes requested (each one allowed: held by its application, or by its grant of the
 * target API) or, when none are, all of them.
 */
export const clientCredentials: Grant<(typeof parameters)[number]> = {
  parameters,
  handle({ allowedScopes }, params): GrantOutcome {
    const requested = params.scope;
    if (requested === undefined) return { ok: true, scope: allowedScopes.join(' ') };
    const scopes = requested.split(' ');
    if (scopes.some((s) => s === '')) return { ok: false, error: new OAuthError('invalid_scope', 'scope must be scope names separated by single spaces') };
    const unknown = scopes.find((s) => !allowedScopes.includes(s));
    if (unknown !== undefined) {
      return { ok: false, error: new OAuthError('invalid_scope', `the application is not allowed the scope ${JSON.stringify(unknown.slice(0, 64))}`) };
    }
    return { ok: true, scope: [...new Set(scopes)].join(' ') };
  },
};
