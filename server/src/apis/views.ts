import type { Api, ApiGrant } from '../store/apis.js';

/** An API as the operator API, the operator console and the portal show it. */
export const apiView = (a: Api) => ({
  id: a.id,
  identifier: a.identifier,
  name: a.name,
  scopes: a.scopes,
  self_service_scopes: a.selfServiceScopes,
  created_at: new Date(a.createdAt).toISOString(),
});

export const grantView = (g: ApiGrant) => ({ api_id: g.apiId, identifier: g.identifier, name: g.name, scopes: g.scopes });
