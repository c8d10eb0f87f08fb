import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Caller, Refusal } from './bearer.js';
import type { ClientAddresses } from './client-address.js';
import type { LoggedRequest } from './request-log.js';

/**
 * A hot path served on the raw node:http request listener, before Fastify sees the request (the
 * gateway's proxied routes, POST /oauth2/token): it skips Fastify's routing, hooks and reply for
 * the requests that carry most of the traffic, and keeps their log line and metrics identical.
 */
export interface Lane {
  /** Answers `req` and returns true, or returns false to leave it to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** Fastify's logger (with the app's serializers and redaction), set by attachLanes. */
  log: FastifyBaseLogger | undefined;
  /** Set when the server closes: the lane then answers as Fastify does (writeClosing). */
  closing: boolean;
}

/** Fastify's answer while the server closes (return503OnClosing), given by the lanes too. */
const CLOSING_BODY = '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';

export function writeClosing(res: ServerResponse): void {
  res.writeHead(503, { connection: 'close', 'content-type': 'application/json', 'content-length': String(CLOSING_BODY.length) });
  res.end(CLOSING_BODY);
}

/**
 * A node:http server whose requests the lanes see first, in order, with the server settings
 * Fastify applies to its own (Fastify's `serverFactory`; `options` are Fastify's, defaults filled in).
 */
export function laneServer(lanes: readonly Lane[], fastifyHandler: http.RequestListener, options: FastifyServerOptions): http.Server {
  const listener: http.RequestListener = (req, res) => {
    for (const lane of lanes) if (lane.serve(req, res)) return;
    fastifyHandler(req, res);
  };
  const server = http.createServer((options as { http?: http.ServerOptions }).http ?? {}, listener);
  server.keepAliveTimeout = options.keepAliveTimeout as number;
  server.requestTimeout = options.requestTimeout as number;
  server.setTimeout(options.connectionTimeout as number);
  if ((options.maxRequestsPerSocket ?? 0) > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket as number;
  return server;
}

/** Connects the lanes to their Fastify app: its logger, and the closing state. */
export function attachLanes(app: FastifyInstance, lanes: readonly Lane[]): void {
  for (const lane of lanes) lane.log = app.log;
  app.addHook('preClose', (done) => {
    for (const lane of lanes) lane.closing = true;
    done();
  });
}

/**
 * One request answered on a lane: what its log line reads of it (method, path, client address and
 * Host by the trusted-proxy rules Fastify applies), when it started, and its id, made only when a
 * log line or an error body names it.
 */
export class LaneRequest implements LoggedRequest {
  caller: Caller | null = null;
  refusal: Refusal | null = null;
  readonly started = performance.now();
  private reqId: string | undefined = undefined;

  constructor(
    readonly raw: IncomingMessage,
    protected readonly clients: ClientAddresses,
  ) {}

  get method(): string {
    return this.raw.method as string;
  }
  get url(): string {
    return this.raw.url as string;
  }
  get ip(): string {
    return this.clients.address(this.raw);
  }
  get host(): string {
    return this.clients.host(this.raw);
  }
  /** The request id (as Fastify's genReqId makes them). */
  get id(): string {
    this.reqId ??= randomUUID();
    return this.reqId;
  }
}
