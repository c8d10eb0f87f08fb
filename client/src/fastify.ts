import type { FastifyReply, FastifyRequest } from 'fastify';
import { TokenVerificationError } from './errors.js';
import { refusalFor } from './unauthorized.js';
import { checkScopes, type Verifier, type VerifiedToken } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by {@link fastifyBearerAuth}. */
    portcullis?: VerifiedToken;
  }
}

/** Options of {@link fastifyBearerAuth}. */
export interface FastifyAuthOptions {
  /** Scopes this route needs; a valid token without them gets 403 `insufficient_scope`. */
  requiredScopes?: readonly string[];
  /** Told why each request was refused (the `reason` and `status` are on the error); for logs and metrics. Must not throw. */
  onRefused?: (error: TokenVerificationError, request: FastifyRequest) => void;
}

function refuse(reply: FastifyReply, request: FastifyRequest, error: TokenVerificationError, options: FastifyAuthOptions): FastifyReply {
  request.log.debug({ reason: error.reason, status: error.status }, 'bearer token refused');
  options.onRefused?.(error, request);
  const answer = refusalFor(error);
  // Returning the reply tells Fastify the answer is sent and the route handler must not run.
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

/**
 * A Fastify `onRequest` hook that lets through only requests with a valid bearer token and puts
 * the caller on `request.portcullis`. It answers as the platform does: 401
 * `{"Status Message":"Unauthorized"}` for a missing, bad, expired or revoked token, 403
 * `insufficient_scope` for a valid token without a required scope, and 503 with `Retry-After`
 * when the verifier cannot reach its issuer. Fastify is a peer dependency: this module only uses its types.
 *
 * @example
 * ```ts
 * app.addHook('onRequest', fastifyBearerAuth(verifier));                               // every route
 * app.get('/reports', { preHandler: requireScopes('reports') }, handler);              // and a scope
 * ```
 */
export function fastifyBearerAuth(verifier: Verifier, options: FastifyAuthOptions = {}) {
  const perCall = options.requiredScopes ? { requiredScopes: options.requiredScopes } : {};
  return async function portcullisBearerAuth(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    try {
      request.portcullis = await verifier.verifyAuthorization(request.headers.authorization, perCall);
      return undefined;
    } catch (err) {
      if (!(err instanceof TokenVerificationError)) throw err;
      return refuse(reply, request, err, options);
    }
  };
}

/**
 * A hook that needs `scopes` of the caller that {@link fastifyBearerAuth} already verified
 * (no second verification): 403 `insufficient_scope` without them, 401 when no caller was verified.
 */
export function requireScopes(...scopes: string[]) {
  return async function portcullisRequireScopes(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const identity = request.portcullis;
    try {
      if (!identity) throw new TokenVerificationError('missing', 'no verified caller: fastifyBearerAuth must run first');
      checkScopes(identity, scopes);
      return undefined;
    } catch (err) {
      return refuse(reply, request, err as TokenVerificationError, {});
    }
  };
}
