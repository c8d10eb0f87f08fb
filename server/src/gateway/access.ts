import { type BearerAuthentication, type BearerSubject, type Checkpoint, grantsScopes } from '../http/bearer.js';
import type { AccessClaims } from '../domain/claims.js';
import { type CorsSettings, type RouteSpec, requiredScopes } from './routes-config.js';

/** What a route's rules say about one request: the gateway and the decision endpoint act on the same answer. */
export type AccessDecision = { kind: 'allow'; claims: AccessClaims } | { kind: 'unauthorized' } | { kind: 'forbidden'; scopes: string[] };

const UNAUTHORIZED: AccessDecision = { kind: 'unauthorized' };

const audienceNames = (aud: unknown, resource: string) => aud === resource || (Array.isArray(aud) && aud.includes(resource));

/**
 * The bearer step, then the route's rules: the token's audience must name the route's resource
 * when it declares one (RFC 8707), and its scopes must cover those of the rule for this method.
 */
export async function decideAccess(
  bearer: BearerAuthentication,
  request: BearerSubject,
  checkpoint: Checkpoint,
  route: RouteSpec,
  method: string,
): Promise<AccessDecision> {
  const claims = await bearer.application(request, checkpoint);
  if (claims === undefined) return UNAUTHORIZED;
  if (route.audience !== null && !audienceNames(claims.aud, route.audience)) {
    bearer.refuse(request, checkpoint, 'wrong_resource');
    return UNAUTHORIZED;
  }
  const needed = requiredScopes(route, method);
  if (!grantsScopes(claims.scope, needed)) {
    bearer.refuse(request, checkpoint, 'insufficient_scope');
    return { kind: 'forbidden', scopes: needed };
  }
  return { kind: 'allow', claims };
}

/** The caller's identity as the upstream receives it. */
export function identityHeaders(claims: AccessClaims): Record<string, string> {
  return {
    'x-portcullis-application': String(claims.application_id),
    'x-portcullis-organization': String(claims.organization_id),
    'x-portcullis-client': claims.client_id,
    'x-portcullis-scopes': claims.scope ?? '',
  };
}

/** Adds the caller's identity fields to the flat header list of the gateway's upstream request. */
export function addIdentityHeaders(headers: Array<string | string[]>, claims: AccessClaims): void {
  headers.push(
    'x-portcullis-application',
    String(claims.application_id),
    'x-portcullis-organization',
    String(claims.organization_id),
    'x-portcullis-client',
    claims.client_id,
    'x-portcullis-scopes',
    claims.scope ?? '',
  );
}

const allowedOrigin = (cors: CorsSettings, origin: string) => cors.origins[0] === '*' || cors.origins.includes(origin);

/** The CORS fields of an answer to an allowed origin (Fetch standard, CORS protocol), else none. */
export function corsResponseHeaders(cors: CorsSettings, origin: string): Record<string, string> | undefined {
  if (!allowedOrigin(cors, origin)) return undefined;
  const headers: Record<string, string> = { 'access-control-allow-origin': cors.origins[0] === '*' ? '*' : origin, vary: 'Origin' };
  if (cors.credentials) headers['access-control-allow-credentials'] = 'true';
  if (cors.exposeHeaders.length > 0) headers['access-control-expose-headers'] = cors.exposeHeaders.join(', ');
  return headers;
}

/**
 * The fields of the answer to a preflight, which comes before any authentication (browsers send
 * no credentials with it): 204 with the allowed methods and headers for an allowed origin, 204
 * without them otherwise, so the browser refuses.
 */
export function preflightHeaders(cors: CorsSettings | null, origin: string, methods: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  const allowed = cors === null ? undefined : corsResponseHeaders(cors, origin);
  if (cors !== null && allowed !== undefined) {
    Object.assign(headers, allowed);
    headers['access-control-allow-methods'] = methods.join(', ');
    headers['access-control-allow-headers'] = ['Authorization', 'Content-Type', ...cors.headers].join(', ');
    headers['access-control-max-age'] = String(cors.maxAgeSeconds);
  } else {
    headers.vary = 'Origin';
  }
  return headers;
}
