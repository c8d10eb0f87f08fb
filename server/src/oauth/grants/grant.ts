import type { OAuthError } from '../../domain/errors.js';
import type { Application } from '../../store/applications.js';
import type { Credential } from '../../store/credentials.js';

/** What a grant decides: the scope to issue, or the RFC 6749 error that refuses the request. */
export type GrantOutcome = { ok: true; scope: string } | { ok: false; error: OAuthError };

/** The authenticated client a grant works for, and the scopes its token may carry. */
export interface GrantClient {
  credential: Credential;
  application: Application;
  /** The application's scopes, or those of its grant of the API named by `resource` (RFC 8707). */
  allowedScopes: readonly string[];
}

/**
 * One grant type: the exact parameters it reads (any other is ignored, as RFC 6749 §3.2 says
 * unrecognised parameters must be) and its handler. Adding a grant is a module and a line below.
 */
export interface Grant<P extends string = string> {
  readonly parameters: readonly P[];
  handle(client: GrantClient, params: Partial<Record<P, string>>): GrantOutcome;
}
