import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { ApiError } from '../domain/errors.js';
import type { AccessClaims } from '../domain/claims.js';
import { type BearerAuthentication, type BearerSubject, writeInsufficientScope, writeUnauthorized } from '../http/bearer.js';
import type { ClientAddresses } from '../http/client-address.js';
import { internalError, problem, writeApiError } from '../http/errors.js';
import { jsonObject, pathId } from '../http/json-body.js';
import { type Lane, LaneRequest, writeClosing } from '../http/lanes.js';
import { levelEnabled, type RequestLog } from '../http/request-log.js';
import type { Metrics } from '../ops/metrics.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { RetailMedia } from '../retailmedia/service.js';
import { isStoreUnavailable } from '../store/db.js';
import { addIdentityHeaders, corsResponseHeaders, decideAccess, preflightHeaders } from './access.js';
import {
  type ForwardedRequest,
  forward,
  type UpstreamCall,
  type UpstreamExchange,
  type UpstreamFailure,
  type UpstreamTarget,
  upstreamRequestHeaders,
  upstreamTarget,
} from './proxy.js';
import { METHODS, ROUTE_FIELDS, routeOptionsView } from './routes-config.js';
import type { GatewayRoute, GatewayRoutes } from './service.js';

export interface GatewayOptions {
  routes: GatewayRoutes;
  bearer: BearerAuthentication;
  limiter: RateLimiter;
  retail: RetailMedia;
  metrics: Metrics;
  requestLog: RequestLog;
  /** The client's address, Host and protocol by the PORTCULLIS_TRUST_PROXY rules Fastify applies. */
  clients: ClientAddresses;
  defaultRateLimit: number;
  defaultTimeoutMs: number;
}

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

const kExchange = Symbol('portcullis.gatewayExchange');
type Tagged<T> = T & { [kExchange]?: Exchange };

/** The methods a route proxies; any other (WebDAV's, say) is left to Fastify, which has no route for it. */
const PROXIED_METHODS = new Set(METHODS);

/**
 * The built-in gateway, served on the raw node:http request listener before Fastify: a request
 * whose path falls under a route's prefix is answered here (CORS preflight, the shared bearer step,
 * the route's rules, its rate limit, then the upstream over a keep-alive pool with the token and
 * the portal's cookies removed and the caller's identity added; bodies stream both ways). Every
 * other request goes to Fastify untouched. Its log line and metrics are those of a Fastify route,
 * labelled with the route's prefix.
 */
export class Gateway implements Lane {
  /** Set once Fastify is built (its logger, with the app's serializers and redaction). */
  log: FastifyBaseLogger | undefined;
  /** Set when the server closes: requests then get Fastify's 503 and Connection: close. */
  closing = false;
  private readonly targets = new WeakMap<GatewayRoute, UpstreamTarget>();

  constructor(readonly options: GatewayOptions) {}

  /** Serves `req` when its path is under a route's prefix; false leaves it to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const routes = this.options.routes;
    if (routes.size === 0 || !PROXIED_METHODS.has(req.method as string)) return false;
    const url = req.url as string;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = routes.match(path);
    if (route === undefined) return false;
    if (this.closing) {
      writeClosing(res);
      return true;
    }
    void new Exchange(this, req, res, route, path).run();
    return true;
  }

  target(route: GatewayRoute): UpstreamTarget {
    let target = this.targets.get(route);
    if (target === undefined) {
      target = upstreamTarget(route.upstream);
      this.targets.set(route, target);
    }
    return target;
  }
}

/** Connects the gateway to its Fastify app: the route table is read before listening. */
export function attachGateway(app: FastifyInstance, gateway: Gateway): void {
  app.addHook('onReady', async () => gateway.options.routes.reload());
}

/** The response's 'close': the request is over, answered in full or abandoned by the client. */
function responseClosed(this: Tagged<ServerResponse>): void {
  this[kExchange]?.closed();
}

/**
 * One proxied request: what the bearer step, the log line and the forwarding read of it (one
 * object per request, its listeners shared functions, no Fastify request or reply).
 */
class Exchange extends LaneRequest implements BearerSubject, ForwardedRequest, UpstreamExchange {
  private cors: Record<string, string> | undefined = undefined;
  private call: UpstreamCall | undefined = undefined;
  private broken = false;

  constructor(
    private readonly gateway: Gateway,
    raw: IncomingMessage,
    readonly res: Tagged<ServerResponse>,
    private readonly route: GatewayRoute,
    private readonly path: string,
  ) {
    super(raw, gateway.options.clients);
  }

  get headers() {
    return this.raw.headers;
  }
  get socket() {
    return this.raw.socket;
  }
  get protocol(): string {
    return this.clients.protocol(this.raw);
  }
  /** The logger the bearer step writes its debug line to: with the request id only when debug lines are written at all. */
  get log(): FastifyBaseLogger {
    const log = this.gateway.log as FastifyBaseLogger;
    return levelEnabled(log, 'debug') ? log.child({ reqId: this.id }) : log;
  }
  /** A warning or error line about this request, with its id as Fastify's child logger adds it. */
  private say(level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    (this.gateway.log as FastifyBaseLogger)[level]({ reqId: this.id, ...fields }, message);
  }

  async run(): Promise<void> {
    const { raw, res, route } = this;
    const { options } = this.gateway;
    res[kExchange] = this;
    res.on('close', responseClosed);
    try {
      const headers = raw.headers;
      const origin = headers.origin;
      if (origin !== undefined) {
        // A preflight carries no credentials: it is answered before any authentication.
        if (raw.method === 'OPTIONS' && headers['access-control-request-method'] !== undefined) {
          res.writeHead(204, preflightHeaders(route.cors, origin, METHODS));
          res.end();
          return;
        }
        if (route.cors !== null) this.cors = corsResponseHeaders(route.cors, origin);
      }
      // Node hands an Upgrade request over as a plain one when no 'upgrade' listener exists; say so instead of downgrading it.
      if (headers.upgrade !== undefined) {
        return this.fail(
          problem('upgradeNotSupported', 'the gateway does not proxy protocol upgrades (WebSocket); call the upstream directly or through nginx'),
        );
      }
      const method = raw.method as string;
      const decision = await decideAccess(options.bearer, this, 'gateway', route, method);
      if (decision.kind === 'unauthorized') return writeUnauthorized(res, this.cors);
      if (decision.kind === 'forbidden') return writeInsufficientScope(res, decision.scopes, this.cors);
      const claims = decision.claims;
      if (climbs(this.path)) return this.fail(ApiError.validation('invalid-path', 'the path must not contain . or .. segments or backslashes'));
      if (!(await this.withinLimit(claims))) return;
      const target = this.gateway.target(route);
      const out = upstreamRequestHeaders(this, target.host, options.clients.trustsProxies);
      addIdentityHeaders(out, claims);
      this.call = forward(
        raw,
        res,
        target,
        target.basePath + (raw.url as string).slice(route.prefix.length),
        out,
        route.timeoutMs ?? options.defaultTimeoutMs,
        this,
      );
    } catch (err) {
      this.failed(undefined, err);
    }
  }

  /** Counts the call against the route's (or the application's) per-minute limit; answers 429 when it is spent. */
  private async withinLimit(claims: AccessClaims): Promise<boolean> {
    const { options } = this.gateway;
    const route = this.route;
    let perMinute = route.rateLimitPerMinute;
    if (perMinute === null) perMinute = (await options.retail.applicationLimits.get(claims.application_id))?.perMinute ?? options.defaultRateLimit;
    const limit = options.limiter.take(`gateway:${route.prefix}:app:${claims.application_id}`, perMinute);
    if (limit.allowed) return true;
    options.limiter.headers(this.res, limit);
    this.fail(problem('rateLimitExceeded', `at most ${limit.limit} calls per minute on ${route.prefix}`));
    return false;
  }

  /** Answers with a problem from the catalogue, CORS fields included for an allowed origin. */
  private fail(err: ApiError): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    const cors = this.cors;
    if (cors !== undefined) for (const name in cors) res.setHeader(name, cors[name] as string);
    writeApiError(res, this.id, err);
  }

  /** The upstream answered: its status and headers (hop-by-hop fields and the portal's cookies dropped); its body follows. */
  answered(status: number, out: OutgoingHttpHeaders): boolean {
    const res = this.res;
    if (res.destroyed) return false;
    const cors = this.cors;
    if (cors !== undefined) {
      // The upstream's own Vary stays, with Origin added.
      const vary = out.vary;
      Object.assign(out, cors);
      if (vary !== undefined) out.vary = `${vary}, Origin`;
    }
    res.writeHead(status, out);
    return true;
  }

  /**
   * No answer from the upstream (`failure`), or an unexpected error on the way (`failure`
   * undefined): a 502/504/503/500 problem, unless the client has gone, which is no server error.
   */
  failed(failure: UpstreamFailure | undefined, err: unknown): void {
    if (this.res.destroyed || this.raw.socket === null || this.raw.socket.destroyed) return;
    const route = this.route;
    if (failure !== undefined) {
      this.say('warn', { err, prefix: route.prefix }, 'upstream failed');
      this.fail(
        failure === 'timeout'
          ? problem('upstreamTimeout', `the upstream of ${route.prefix} did not answer in time`)
          : problem('upstreamUnavailable', `the upstream of ${route.prefix} could not be reached or failed to answer`),
      );
    } else if (err instanceof ApiError) {
      this.fail(err);
    } else if (isStoreUnavailable(err)) {
      this.say('warn', { err }, 'database unreachable');
      this.res.setHeader('retry-after', '5');
      this.fail(problem('databaseUnavailable', 'the database is unreachable; try again in a few seconds'));
    } else {
      this.say('error', { err }, 'request failed');
      this.fail(internalError());
    }
  }

  /** The upstream's answer broke off mid-body: so does the client's, whose connection is closed. */
  broke(err: Error): void {
    this.broken = true;
    this.say('warn', { err, prefix: this.route.prefix }, 'the upstream answer broke off');
    this.res.destroy();
  }

  /** The response closed: the request's metrics and log line, or, when the client left first, the upstream call is dropped. */
  closed(): void {
    const { res, route } = this;
    const { options } = this.gateway;
    if (!res.writableFinished && !this.broken) {
      this.call?.cancel();
      options.metrics.clientAborted(route.prefix);
      this.log.debug('the client closed the connection before its request was answered');
      return;
    }
    const elapsed = performance.now() - this.started;
    const status = res.statusCode;
    options.metrics.request(this.raw.method as string, route.prefix, status, elapsed / 1000);
    options.requestLog.laneCompleted(this.gateway.log as FastifyBaseLogger, this, status, elapsed);
  }
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
