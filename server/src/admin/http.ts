import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import type { AdminAuth } from './auth.js';
import { clientAborted } from '../ops/connections.js';
import { isStoreUnavailable } from '../store/db.js';

/** Renders an ApiError in the reference product's shape: {"errors":[{traceId,type,code,title,detail}]}. */
export function sendApiError(reply: FastifyReply, request: FastifyRequest, err: ApiError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', err.retryAfter);
  return reply
    .code(err.status)
    .header('cache-control', 'no-store')
    .send({ errors: [{ traceId: request.id, type: err.type, code: err.code, title: err.title, detail: err.detail }] });
}

/** Maps Fastify's own request errors (bad JSON, wrong content type, body too large) to ApiErrors. */
function fromFastifyError(err: FastifyError): ApiError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return ApiError.validation('invalid-json', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ApiError.validation('empty-body', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'validation', 'unsupported-media-type', 'Unsupported media type', 'send the body as Content-Type: application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'validation', 'body-too-large', 'Body too large', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ApiError.validation('invalid-content-length', 'the Content-Length header does not match the body');
    default:
      return err.statusCode !== undefined && err.statusCode < 500
        ? new ApiError(err.statusCode, 'validation', 'bad-request', 'Bad request', 'the request could not be read')
        : undefined;
  }
}

/**
 * Fastify's `frameworkErrors`: a request whose path cannot be routed (bad percent-encoding, a
 * path parameter over maxParamLength) gets the errors shape too, not Fastify's own body.
 */
export function sendFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return sendApiError(reply, request, new ApiError(414, 'validation', 'path-too-long', 'Path too long', 'a path segment of this request is too long'));
  }
  if (err.code === 'FST_ERR_BAD_URL')
    return sendApiError(reply, request, ApiError.validation('invalid-path', 'the request path is not valid percent-encoded UTF-8'));
  request.log.error({ err }, 'request could not be routed');
  return sendApiError(
    reply,
    request,
    new ApiError(500, 'unknown', 'internal-error', 'Internal error', 'the server failed to handle this request; it has been logged'),
  );
}

/**
 * Error and not-found handlers for a JSON API scope: every answer has the errors shape, never a
 * stack. A second plugin under a prefix that already has its not-found handler passes `notFound: false`.
 */
export function useApiErrors(app: FastifyInstance, { notFound = true }: { notFound?: boolean } = {}): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = err instanceof ApiError ? err : fromFastifyError(err);
    if (known) return sendApiError(reply, request, known);
    if (clientAborted(request)) {
      // Its unfinished body failed to read: not a database outage, and nobody is left to answer.
      request.log.debug({ err: err.message }, 'the client went away while sending its request');
      return reply.code(499).send();
    }
    if (isStoreUnavailable(err)) {
      request.log.warn({ err }, 'database unreachable');
      reply.header('retry-after', '5');
      return sendApiError(
        reply,
        request,
        new ApiError(503, 'availability', 'database-unavailable', 'Service unavailable', 'the database is unreachable; try again in a few seconds'),
      );
    }
    request.log.error({ err }, 'request failed');
    return sendApiError(
      reply,
      request,
      new ApiError(500, 'unknown', 'internal-error', 'Internal error', 'the server failed to handle this request; it has been logged'),
    );
  });
  if (!notFound) return;
  app.setNotFoundHandler((request, reply) => sendApiError(reply, request, ApiError.notFound(`${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`)));
}

/** An onRequest hook that lets only the operator token through, with a 401 in the errors shape otherwise. */
export function requireOperator(auth: AdminAuth) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!auth.check(request.headers.authorization)) {
      reply.header('www-authenticate', 'Bearer realm="portcullis-admin"');
      return sendApiError(
        reply,
        request,
        new ApiError(401, 'authentication', 'unauthorized', 'Unauthorized', 'send the operator token as Authorization: Bearer <PORTCULLIS_ADMIN_TOKEN>'),
      );
    }
  };
}

/** A path id: a positive integer, else a 400 naming the parameter. */
export function pathId(raw: string, what: string): number {
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw ApiError.validation(`invalid-${what}`, `${what} must be a positive integer`);
  const id = Number(raw);
  if (!Number.isSafeInteger(id)) throw ApiError.validation(`invalid-${what}`, `${what} is out of range`);
  return id;
}

/** The request body as an object with only the allowed fields, else a 400 saying what is wrong. */
export function jsonObject(body: unknown, allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> {
  if (body === undefined || body === null) {
    if (required.length === 0) return {};
    throw ApiError.validation('missing-body', `send a JSON object with ${required.join(', ')}`);
  }
  if (typeof body !== 'object' || Array.isArray(body)) throw ApiError.validation('invalid-body', 'the request body must be a JSON object');
  const object = body as Record<string, unknown>;
  const unknown = Object.keys(object).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    throw ApiError.validation('unknown-field', `unknown field ${JSON.stringify(unknown.slice(0, 50))}; allowed: ${allowed.join(', ')}`);
  }
  const missing = required.find((k) => object[k] === undefined);
  if (missing !== undefined) throw ApiError.validation(`missing-${missing}`, `${missing} is required`);
  return object;
}
