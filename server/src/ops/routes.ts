import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { bearerToken } from '../http/bearer.js';
import type { Metrics, TokenOutcome } from './metrics.js';
import { openApiDocument } from './openapi.js';

export interface OperationsOptions {
  metrics: Metrics;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`; otherwise only loopback callers may read it. */
  metricsToken: string | undefined;
  /** The public base URL, named as the server of the OpenAPI document. */
  issuer: string;
}

/** Every route the app registered (method and URL pattern), for the OpenAPI sync test. */
const registered = new WeakMap<FastifyInstance, Array<{ method: string; url: string }>>();

export function registeredRoutes(app: FastifyInstance): Array<{ method: string; url: string }> {
  return registered.get(app) ?? [];
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * A direct loopback caller. The socket's address, not request.ip (X-Forwarded-For can name
 * anything when every proxy is trusted), and no forwarding header, so a reverse proxy on the
 * same host does not open /metrics to the world.
 */
function fromLoopback(request: FastifyRequest): boolean {
  const headers = request.headers;
  return LOOPBACK.has(request.socket.remoteAddress ?? '') && headers['x-forwarded-for'] === undefined && headers.forwarded === undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the token endpoint to what the request ended in, for the metrics. */
    tokenOutcome: TokenOutcome | undefined;
  }
}

/**
 * Cross-cutting operations for the whole app: request latency and 429s for every route, token
 * endpoint outcomes, GET /metrics and GET /openapi.json. Call it before any route is added, so
 * its onRoute hook sees them all.
 */
export function useOperations(app: FastifyInstance, opts: OperationsOptions): void {
  const { metrics } = opts;
  const routes: Array<{ method: string; url: string }> = [];
  registered.set(app, routes);

  app.decorateRequest('tokenOutcome', undefined);
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (route === '/oauth2/token') metrics.tokenRequest(request.tokenOutcome ?? 'other');
    done();
  });

  app.addHook('onRequestAbort', (request, done) => {
    metrics.clientAborted(request.routeOptions.url ?? 'unmatched');
    request.log.debug('the client closed the connection before its request was answered');
    done();
  });

  const expected = opts.metricsToken === undefined ? undefined : digest(opts.metricsToken);
  app.get('/metrics', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    if (expected !== undefined) {
      const token = bearerToken(request.headers.authorization);
      if (token === undefined || !timingSafeEqual(digest(token), expected)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="portcullis-metrics"')
          .send({ error: 'send PORTCULLIS_METRICS_TOKEN as a bearer token' });
      }
    } else if (!fromLoopback(request)) {
      return reply.code(403).send({ error: 'metrics are served to loopback callers only; set PORTCULLIS_METRICS_TOKEN to read them remotely' });
    }
    return reply.type(metrics.contentType()).send(await metrics.render());
  });

  const document = JSON.stringify(openApiDocument(opts.issuer));
  app.get('/openapi.json', async (_request, reply) => reply.type('application/json').header('cache-control', 'public, max-age=300').send(document));
}
