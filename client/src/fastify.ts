import type { FastifyReply, FastifyRequest } from 'fastify';
import { TokenVerificationError } from './errors.js';
import { UNAUTHORIZED_BODY, UNAUTHORIZED_CHALLENGE } from './unauthorized.js';
import type { Verifier, VerifiedToken } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by {@link fastifyBearerAuth}. */
    portcullis?: VerifiedToken;
  }
}

/**
 * A Fastify `onRequest` hook that lets through only requests with a valid bearer token and puts
 * the caller on `request.portcullis`. Any refusal is `401 {"Status Message":"Unauthorized"}`,
 * as the platform answers. Fastify is a peer dependency: this module only uses its types.
 *
 * @example
 * ```ts
 * app.addHook('onRequest', fastifyBearerAuth(verifier));                               // every route
 * app.get('/reports', { onRequest: fastifyBearerAuth(verifier, { requiredScopes: ['reports'] }) }, handler);
 * ```
 */
export function fastifyBearerAuth(verifier: Verifier, options: { requiredScopes?: readonly string[] } = {}) {
  return async function portcullisBearerAuth(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    try {
      request.portcullis = await verifier.verifyAuthorization(request.headers.authorization, options);
      return undefined;
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      request.log.debug({ reason: err.reason }, 'bearer token refused');
      // Returning the reply tells Fastify the answer is sent and the route handler must not run.
      return reply
        .code(401)
        .header('www-authenticate', UNAUTHORIZED_CHALLENGE)
        .header('cache-control', 'no-store')
        .type('application/json')
        .send(UNAUTHORIZED_BODY);
    }
  };
}
