import { clientCredentials } from './client-credentials.js';
import type { Grant } from './grant.js';

export type { Grant } from './grant.js';

/** The grant types this server supports, by their `grant_type` value. */
export const GRANTS: ReadonlyMap<string, Grant> = new Map<string, Grant>([['client_credentials', clientCredentials]]);

/** The parameters a grant accepts, picked from the request's. */
export function grantParameters(grant: Grant, params: Map<string, string>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of grant.parameters) {
    const value = params.get(name);
    if (value !== undefined) picked[name] = value;
  }
  return picked;
}
