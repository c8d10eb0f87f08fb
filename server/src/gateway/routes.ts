import type { IncomingHttpHeaders } from 'node:http';
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import { type BearerAuthentication, missingScopes, sendInsufficientScope, sendUnauthorized } from '../http/bearer.js';
import { problem, sendApiError } from '../http/errors.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { RetailMedia } from '../retailmedia/service.js';
import type { GatewayRoute, GatewayRoutes } from './service.js';

export interface GatewayOptions {
  routes: GatewayRoutes;
  bearer: BearerAuthentication;
  limiter: RateLimiter;
  retail: RetailMedia;
  defaultRateLimit: number;
  defaultTimeoutMs: number;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
// RFC 9110 §7.6.1: connection-specific fields a proxy must not forward, plus the obsolete ones still seen.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
];
const VIA = '1.1 portcullis';

const pathOf = (url: string): string => {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
};

/** Removes hop-by-hop fields and those the Connection field names (RFC 9110 §7.6.1). */
function withoutHopByHop<T extends Record<string, unknown>>(headers: T): T {
  const out: Record<string, unknown> = { ...headers };
  const named = String(headers.connection ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const name of [...HOP_BY_HOP, ...named]) delete out[name];
  return out as T;
}

const appendVia = (existing: unknown) => (typeof existing === 'string' && existing !== '' ? `${existing}, ${VIA}` : VIA);

/** A path that could climb out of the upstream's base path once the upstream decodes it. */
function climbs(path: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  return decoded.includes('\\') || decoded.split('/').some((s) => s === '..' || s === '.');
}

declare module 'fastify' {
  interface FastifyContextConfig {
    gateway?: boolean;
  }
}

/**
 * The reverse proxy: requests under a route's prefix with a valid token whose scopes cover the
 * route's go to the upstream with the token removed and the caller's identity added. Bodies
 * stream both ways (@fastify/reply-from over undici).
 */
export async function gatewayRoutes(app: FastifyInstance, opts: GatewayOptions): Promise<void> {
  const { routes, bearer, limiter } = opts;
  await routes.reload();

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

  await app.register(replyFrom, { disableRequestLogging: true, retryDelay: () => null } as any);

  // Request bodies are not parsed: they stream to the upstream as they come.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const fail = (reply: FastifyReply, request: FastifyRequest, status: 502 | 504, route: GatewayRoute) =>
    sendApiError(
      reply,
      request,
      status === 504
        ? problem('upstreamTimeout', `the upstream of ${route.prefix} did not answer in time`)
        : problem('upstreamUnavailable', `the upstream of ${route.prefix} could not be reached or failed to answer`),
    );

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = pathOf(request.url);
    const route = routes.match(path);
    if (!route) return reply.callNotFound();
    const claims = await bearer.application(request, 'gateway');
    if (claims === undefined) return sendUnauthorized(reply);
    if (missingScopes(claims.scope, route.scopes).length > 0) {
      bearer.refuse(request, 'gateway', 'insufficient_scope');
      return sendInsufficientScope(reply, route.scopes);
    }
    if (climbs(path)) throw ApiError.validation('invalid-path', 'the path must not contain . or .. segments or backslashes');
    const own = (await opts.retail.applicationLimits.get(claims.application_id))?.perMinute ?? null;
    const limit = await limiter.take(`gateway:app:${claims.application_id}`, own ?? opts.defaultRateLimit);
    limiter.headers(reply, limit);
    if (!limit.allowed) {
      return sendApiError(reply, request, problem('rateLimitExceeded', `at most ${limit.limit} calls per minute`));
    }
    return reply.from(route.upstream + path.slice(route.prefix.length), {
      timeout: route.timeoutMs ?? opts.defaultTimeoutMs,
      rewriteRequestHeaders: (req, headers: IncomingHttpHeaders) => {
        const out = withoutHopByHop(headers);
        delete out.authorization;
        for (const name of Object.keys(out)) if (name.startsWith('x-portcullis-')) delete out[name];
        out['x-portcullis-application'] = String(claims.application_id);
        out['x-portcullis-organization'] = String(claims.organization_id);
        out['x-portcullis-client'] = claims.client_id;
        out['x-portcullis-scopes'] = claims.scope ?? '';
        const forwarded = headers['x-forwarded-for'];
        out['x-forwarded-for'] = forwarded ? `${forwarded}, ${req.ip}` : req.ip;
        out['x-forwarded-proto'] = req.protocol;
        if (headers.host) out['x-forwarded-host'] = headers.host;
        out.via = appendVia(headers.via);
        return out;
      },
      rewriteHeaders: (headers) => {
        const out = withoutHopByHop(headers as Record<string, unknown>);
        out.via = appendVia(out.via);
        return out as typeof headers;
      },
      onError: (r, { error }) => {
        request.log.warn({ err: error, prefix: route.prefix }, 'upstream failed');
        fail(r as FastifyReply, request, (error as { statusCode?: number }).statusCode === 504 ? 504 : 502, route);
      },
    });
  };

  app.route({ method: METHODS, url: '/*', constraints: { portcullisGateway: 'route' }, exposeHeadRoute: false, handler: proxy });
}

/** The operator API for gateway routes (under /admin/v1). */
export async function gatewayAdminRoutes(app: FastifyInstance, opts: { routes: GatewayRoutes }): Promise<void> {
  const view = (r: GatewayRoute) => ({ id: r.id, source: r.source, prefix: r.prefix, upstream: r.upstream, scopes: r.scopes, timeout_ms: r.timeoutMs });
  app.get('/gateway/routes', async () => opts.routes.list().map(view));
  app.post('/gateway/routes', async (request, reply) => {
    const body = jsonObject(request.body, ['prefix', 'upstream', 'scopes', 'timeout_ms'], ['prefix', 'upstream']);
    return reply.code(201).send(view(await opts.routes.create(body, { actor: 'operator', ip: request.ip })));
  });
  app.delete<{ Params: { id: string } }>('/gateway/routes/:id', async (request) => ({
    ...view(await opts.routes.remove(pathId(request.params.id, 'id'), { actor: 'operator', ip: request.ip })),
    deleted: true,
  }));
}
