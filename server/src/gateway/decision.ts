import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type BearerAuthentication, sendInsufficientScope, sendUnauthorized } from '../http/bearer.js';
import { problem, sendApiError } from '../http/errors.js';
import { decideAccess, identityHeaders } from './access.js';
import { METHODS } from './routes-config.js';
import type { GatewayRoutes } from './service.js';

/** Where proxies ask; Envoy's ext_authz appends the original path to it. */
export const DECISION_PATH = '/decision';

const pathOf = (uri: string) => {
  const q = uri.indexOf('?');
  return q === -1 ? uri : uri.slice(0, q);
};

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? undefined : value);

/**
 * The decision endpoint for real proxies: nginx's auth_request (original method and URI in
 * X-Original-Method and X-Original-URI) or Envoy's HTTP ext_authz (original method, original path
 * after /decision). The same route rules as the built-in gateway answer: 200 with the caller's
 * identity in X-Portcullis-* headers, 401 with the reference body, or 403 insufficient_scope.
 */
export async function decisionRoutes(app: FastifyInstance, opts: { routes: GatewayRoutes; bearer: BearerAuthentication }): Promise<void> {
  const { routes, bearer } = opts;
  // The check carries no body worth reading (Envoy may still send a Content-Type): drain and ignore it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { bodyLimit: 64 * 1024 }, (_request, payload, done) => {
    payload.resume();
    payload.on('end', () => done(null, undefined));
    payload.on('error', done);
  });

  const decide = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store');
    const method = (single(request.headers['x-original-method']) ?? request.method).toUpperCase();
    const uri = single(request.headers['x-original-uri']) ?? (request.url.slice(DECISION_PATH.length) || '/');
    if (!METHODS.includes(method) || !uri.startsWith('/')) {
      return sendApiError(reply, request, problem('badRequest', 'X-Original-Method must be an HTTP method and X-Original-URI a path starting with /'));
    }
    const route = routes.match(pathOf(uri));
    // 403, not 404: nginx's auth_request turns any status but 2xx, 401 and 403 into a 500.
    if (!route) return sendApiError(reply, request, problem('noRoute', `no gateway route declares ${pathOf(uri).slice(0, 200)}`));
    // A CORS preflight carries no credentials; the upstream (or the proxy) answers it.
    if (method === 'OPTIONS' && request.headers.origin !== undefined && request.headers['access-control-request-method'] !== undefined) {
      return reply.code(200).send();
    }
    const decision = await decideAccess(bearer, request, 'decision', route, method);
    if (decision.kind === 'unauthorized') return sendUnauthorized(reply);
    if (decision.kind === 'forbidden') return sendInsufficientScope(reply, decision.scopes);
    return reply.code(200).headers(identityHeaders(decision.claims)).send();
  };

  app.route({ method: METHODS, url: DECISION_PATH, exposeHeadRoute: false, handler: decide });
  app.route({ method: METHODS, url: `${DECISION_PATH}/*`, exposeHeadRoute: false, handler: decide });
}
