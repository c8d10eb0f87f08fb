import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import { type BearerAuthentication, sendInsufficientScope, sendUnauthorized } from '../http/bearer.js';
import { problem, sendApiError } from '../http/errors.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { RetailMedia } from '../retailmedia/service.js';
import { answerPreflight, corsResponseHeaders, decideAccess, identityHeaders, isPreflight } from './access.js';
import { clientResponseHeaders, forward, type UpstreamFailure, type UpstreamTarget, upstreamRequestHeaders, upstreamTarget } from './proxy.js';
import { METHODS, ROUTE_FIELDS, routeOptionsView } from './routes-config.js';
import type { GatewayRoute, GatewayRoutes } from './service.js';

export interface GatewayOptions {
  routes: GatewayRoutes;
  bearer: BearerAuthentication;
  limiter: RateLimiter;
  retail: RetailMedia;
  defaultRateLimit: number;
  defaultTimeoutMs: number;
  /** Whether X-Forwarded-For from the proxy in front is kept (PORTCULLIS_TRUST_PROXY). */
  trustProxy: boolean;
}

const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
};

/** A path that could climb out of the upstream's base path once the upstream decodes it. */
function climbs(path: string): boolean {
  if (!path.includes('.') && !path.includes('%') && !path.includes('\\')) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  return decoded.includes('\\') || decoded.split('/').some((s) => s === '..' || s === '.');
}

/**
 * The reverse proxy: requests under a route's prefix pass the shared bearer step and the route's
 * rules, then go to the upstream over a keep-alive pool with the token and the portal's cookies
 * removed and the caller's identity added. Bodies stream both ways.
 */
export async function gatewayRoutes(app: FastifyInstance, opts: GatewayOptions): Promise<void> {
  const { routes, bearer, limiter } = opts;
  await routes.reload();
  const targets = new WeakMap<GatewayRoute, UpstreamTarget>();
  const targetOf = (route: GatewayRoute) => {
    let target = targets.get(route);
    if (target === undefined) {
      target = upstreamTarget(route.upstream);
      targets.set(route, target);
    }
    return target;
  };

  // A constraint makes the catch-all route exist only for paths under a declared prefix, so every
  // other path keeps its own 404 (the operator API's included).
  app.addConstraintStrategy({
    name: 'portcullisGateway',
    storage() {
      const handlers = new Map<string, unknown>();
      return {
        get: (value: string) => (handlers.get(value) as any) ?? null,
        set: (value: string, handler: unknown) => {
          handlers.set(value, handler);
        },
      };
    },
    deriveConstraint: (req: { url?: string }) => (routes.size > 0 && routes.match(pathOf(req.url ?? '/')) ? 'route' : undefined),
    mustMatchWhenDerived: false,
  } as any);

  // Request bodies are not parsed: they stream to the upstream as they come.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const failed = (request: FastifyRequest, reply: FastifyReply, route: GatewayRoute, failure: UpstreamFailure, err: Error) => {
    request.log.warn({ err, prefix: route.prefix }, 'upstream failed');
    return sendApiError(
      reply,
      request,
      failure === 'timeout'
        ? problem('upstreamTimeout', `the upstream of ${route.prefix} did not answer in time`)
        : problem('upstreamUnavailable', `the upstream of ${route.prefix} could not be reached or failed to answer`),
    );
  };

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = pathOf(request.url);
    const route = routes.match(path);
    if (!route) return reply.callNotFound();
    const origin = request.headers.origin;
    if (isPreflight(request)) return answerPreflight(reply, route.cors, origin as string, METHODS);
    const cors = route.cors !== null && origin !== undefined ? corsResponseHeaders(route.cors, origin) : undefined;
    if (cors) reply.headers(cors);
    // Node hands an Upgrade request over as a plain one when no 'upgrade' listener exists; say so instead of downgrading it.
    if (request.headers.upgrade !== undefined) {
      return sendApiError(
        reply,
        request,
        problem('upgradeNotSupported', 'the gateway does not proxy protocol upgrades (WebSocket); call the upstream directly or through nginx'),
      );
    }
    const decision = await decideAccess(bearer, request, 'gateway', route, request.method);
    if (decision.kind === 'unauthorized') return sendUnauthorized(reply);
    if (decision.kind === 'forbidden') return sendInsufficientScope(reply, decision.scopes);
    const claims = decision.claims;
    if (climbs(path)) throw ApiError.validation('invalid-path', 'the path must not contain . or .. segments or backslashes');
    const perMinute = route.rateLimitPerMinute ?? (await opts.retail.applicationLimits.get(claims.application_id))?.perMinute ?? opts.defaultRateLimit;
    const limit = await limiter.take(`gateway:${route.prefix}:app:${claims.application_id}`, perMinute);
    if (!limit.allowed) {
      limiter.headers(reply, limit);
      return sendApiError(reply, request, problem('rateLimitExceeded', `at most ${limit.limit} calls per minute on ${route.prefix}`));
    }
    const target = targetOf(route);
    const headers = upstreamRequestHeaders(request, target.host, { identity: identityHeaders(claims), trustProxy: opts.trustProxy });
    const upstreamPath = target.basePath + request.url.slice(route.prefix.length);
    return new Promise<FastifyReply>((resolve) => {
      forward(
        request,
        target,
        upstreamPath,
        headers,
        route.timeoutMs ?? opts.defaultTimeoutMs,
        (upstream: IncomingMessage) => {
          // From here the answer is the upstream's own: Fastify's onSend hooks (and their headers) stay out of it.
          reply.hijack();
          const res = reply.raw;
          const out = clientResponseHeaders(upstream);
          if (cors) {
            // The upstream's own Vary stays, with Origin added.
            const vary = out.vary;
            Object.assign(out, cors);
            if (vary !== undefined) out.vary = `${vary}, Origin`;
          }
          res.writeHead(upstream.statusCode ?? 502, out);
          upstream.pipe(res);
          upstream.on('error', () => res.destroy());
          res.on('close', () => {
            if (!upstream.complete) upstream.destroy();
          });
          resolve(reply);
        },
        (failure, err) => resolve(failed(request, reply, route, failure, err)),
      );
    });
  };

  app.route({ method: METHODS, url: '/*', constraints: { portcullisGateway: 'route' }, exposeHeadRoute: false, handler: proxy });
}

/** The operator API for gateway routes (under /admin/v1). */
export async function gatewayAdminRoutes(app: FastifyInstance, opts: { routes: GatewayRoutes }): Promise<void> {
  const view = (r: GatewayRoute) => ({
    id: r.id,
    source: r.source,
    prefix: r.prefix,
    upstream: r.upstream,
    scopes: r.scopes,
    timeout_ms: r.timeoutMs,
    ...routeOptionsView(r),
  });
  app.get('/gateway/routes', async () => opts.routes.list().map(view));
  app.post('/gateway/routes', async (request, reply) => {
    const body = jsonObject(request.body, ROUTE_FIELDS, ['prefix', 'upstream']);
    return reply.code(201).send(view(await opts.routes.create(body, { actor: 'operator', ip: request.ip })));
  });
  app.delete<{ Params: { id: string } }>('/gateway/routes/:id', async (request) => ({
    ...view(await opts.routes.remove(pathId(request.params.id, 'id'), { actor: 'operator', ip: request.ip })),
    deleted: true,
  }));
}
