import type { FastifyReply, FastifyRequest } from 'fastify';
import { type BearerAuthentication, type Checkpoint, missingScopes } from '../http/bearer.js';
import type { AccessClaims } from '../oauth/tokens.js';
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
  request: FastifyRequest,
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
  if (missingScopes(claims.scope, needed).length > 0) {
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

const allowedOrigin = (cors: CorsSettings, origin: string) => cors.origins[0] === '*' || cors.origins.includes(origin);

/** The CORS fields of an answer to an allowed origin (Fetch standard, CORS protocol), else none. */
export function corsResponseHeaders(cors: CorsSettings, origin: string): Record<string, string> | undefined {
  if (!allowedOrigin(cors, origin)) return undefined;
  const headers: Record<string, string> = { 'access-control-allow-origin': cors.origins[0] === '*' ? '*' : origin, vary: 'Origin' };
  if (cors.credentials) headers['access-control-allow-credentials'] = 'true';
  if (cors.exposeHeaders.length > 0) headers['access-control-expose-headers'] = cors.exposeHeaders.join(', ');
  return headers;
}

/** Whether a request is a CORS preflight: OPTIONS with an Origin and the method it asks about. */
export const isPreflight = (request: FastifyRequest) =>
  request.method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined;

/**
 * Answers a preflight before any authentication (browsers send no credentials with it): 204 with
 * the allowed methods and headers for an allowed origin, 204 without them otherwise, so the browser refuses.
 */
export function answerPreflight(reply: FastifyReply, cors: CorsSettings | null, origin: string, methods: readonly string[]): FastifyReply {
  reply.code(204).header('cache-control', 'no-store');
  const allowed = cors === null ? undefined : corsResponseHeaders(cors, origin);
  if (cors !== null && allowed !== undefined) {
    reply.headers(allowed);
    reply.header('access-control-allow-methods', methods.join(', '));
    reply.header('access-control-allow-headers', ['Authorization', 'Content-Type', ...cors.headers].join(', '));
    reply.header('access-control-max-age', String(cors.maxAgeSeconds));
  } else {
    reply.header('vary', 'Origin');
  }
  return reply.send();
}
