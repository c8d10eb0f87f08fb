import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { bearerToken } from '../http/bearer.js';
import type { Metrics, TokenOutcome } from './metrics.js';
import { TOKEN_OUTCOMES } from './metrics.js';
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

/** The outcome of a token request, from its status and (for a refusal) the `error` of its RFC 6749 body. */
function tokenOutcome(status: number, payload: unknown): TokenOutcome {
  if (status === 200) return 'issued';
  if (status === 429) return 'rate_limited';
  if (typeof payload !== 'string') return 'other';
  try {
    const error = (JSON.parse(payload) as { error?: unknown }).error;
    return TOKEN_OUTCOMES.includes(error as TokenOutcome) ? (error as TokenOutcome) : 'other';
  } catch {
    return 'other';
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

  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
    if (route.url === '/oauth2/token') {
      // Only this route pays for reading its answer: the RFC 6749 error code is the refusal's reason.
      const count = async (_request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
        metrics.tokenRequest(tokenOutcome(reply.statusCode, payload));
        return payload;
      };
      const existing = route.onSend === undefined ? [] : [route.onSend].flat();
      route.onSend = [...existing, count] as RouteOptions['onSend'];
    }
  });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.request(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
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
