import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Caller, Refusal } from './bearer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Fields a route adds to its request's log line (the delivery API's shopper context). */
    accessLog?: Record<string, unknown>;
  }
}

/**
 * The path a log line names: no query string (the delivery API's carries shoppers' ids) and no
 * invitation token (it is the secret of an invitation link).
 */
export function loggedPath(request: { url: string }): string {
  const url = request.url;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.includes('/invitations/') ? path.replace(/\/invitations\/(?!\d+(\/|$))[^/]+/, '/invitations/…') : path;
}

/** Whether lines at `level` are written at all (a disabled logger, logger: false, has no levels). */
export function levelEnabled(log: FastifyBaseLogger, level: 'debug' | 'info'): boolean {
  return (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.(level) ?? false;
}

/** What a log line names of a request: a FastifyRequest, or a request answered on a lane (http/lanes.ts). */
export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly ip: string;
  readonly caller: Caller | null;
  readonly refusal: Refusal | null;
  readonly accessLog?: Record<string, unknown>;
}

/** What a log line says of the request when one is logged with it. */
export function requestForLog(request: LoggedRequest) {
  return { method: request.method, url: loggedPath(request), host: request.host, remoteAddress: request.ip };
}

/**
 * One line per finished request, instead of Fastify's two, in their shape ("request completed"
 * with `req`, `res` and `responseTime`): the caller or the reason it was refused, and what the
 * route added (`request.accessLog`). Answers below 400 are logged at the `sample` rate
 * (PORTCULLIS_LOG_SAMPLE); refusals and errors always are.
 */
export class RequestLog extends LogController {
  constructor(private readonly sample: number) {
    super({});
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const status = reply.statusCode;
    if (!error && !(this.logs(status) && levelEnabled(request.log, 'info'))) return;
    const line = completedLine(request, status, reply.elapsedTime);
    if (error) request.log.error({ ...line, err: error }, 'request failed');
    else request.log.info(line, 'request completed');
  }

  /** Whether a request that ended without an error in `status` is logged: refusals and errors always, others at the sample rate. */
  logs(status: number): boolean {
    return status >= 400 || (this.sample > 0 && (this.sample >= 1 || Math.random() < this.sample));
  }

  /** The same line for a request answered outside Fastify (http/lanes.ts), `reqId` first as Fastify's child logger puts it. */
  laneCompleted(log: FastifyBaseLogger, request: LoggedRequest & { readonly id: string }, status: number, elapsedMs: number): void {
    // Nothing is built (not even the request id) when info lines are not written at all.
    if (!levelEnabled(log, 'info') || !this.logs(status)) return;
    log.info({ reqId: request.id, ...completedLine(request, status, elapsedMs) }, 'request completed');
  }
}

function completedLine(request: LoggedRequest, status: number, elapsedMs: number): Record<string, unknown> {
  const line: Record<string, unknown> = { req: request, res: { statusCode: status }, responseTime: Math.round(elapsedMs * 10) / 10 };
  const caller = request.caller;
  if (caller) {
    line.caller =
      caller.kind === 'application'
        ? { application_id: caller.claims.application_id, client_id: caller.claims.client_id }
        : { static_token_id: caller.token.id };
  }
  if (request.refusal) line.refusal = request.refusal;
  if (request.accessLog) Object.assign(line, request.accessLog);
  return line;
}
