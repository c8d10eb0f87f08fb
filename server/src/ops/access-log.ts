import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** Fields a route adds to its request's access-log line (the delivery API's shopper context). */
    accessLog?: Record<string, unknown>;
  }
}

/**
 * One access-log line per request, written when the answer is sent (Fastify's own two lines are
 * off): the request, its status and time, and what the route added. `sample` (0 to 1) keeps that
 * share of the lines for answers below 500; server errors are always written.
 */
export function useAccessLog(app: FastifyInstance, sample: number): void {
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (status >= 500 || sample >= 1 || Math.random() < sample) {
      request.log.info({ req: request, res: { statusCode: status }, responseTime: reply.elapsedTime, ...request.accessLog }, 'request completed');
    }
    done();
  });
}
