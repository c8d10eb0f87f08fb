import type { ServerResponse } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, type ApiErrorType } from '../domain/errors.js';
import { isStoreUnavailable } from '../store/db.js';

interface ErrorKind {
  status: number;
  type: ApiErrorType;
  code: string;
  title: string;
}

/**
 * Every named error the HTTP API answers in the `{"errors":[…]}` shape: its status, machine
 * `code` and safe title. Callers branch on `code`; the detail of each answer says what to do.
 * (Validation errors of one field keep their own `invalid-…`/`missing-…` codes, see ApiError.validation.)
 */
export const ERRORS = {
  badRequest: { status: 400, type: 'validation', code: 'bad-request', title: 'Bad request' },
  invalidPath: { status: 400, type: 'validation', code: 'invalid-path', title: 'The request is not valid' },
  invalidParameter: { status: 400, type: 'validation', code: 'invalid-parameter', title: 'Invalid parameter' },
  missingParameter: { status: 400, type: 'validation', code: 'missing-parameter', title: 'Missing parameter' },
  parameterTooLong: { status: 400, type: 'validation', code: 'parameter-too-long', title: 'Parameter too long' },
  wrongCurrentPassword: { status: 400, type: 'validation', code: 'wrong-current-password', title: 'The request is not valid' },
  operatorUnauthorized: { status: 401, type: 'authentication', code: 'unauthorized', title: 'Unauthorized' },
  notSignedIn: { status: 401, type: 'authentication', code: 'not-signed-in', title: 'Not signed in' },
  invalidCredentials: { status: 401, type: 'authentication', code: 'invalid-credentials', title: 'Sign-in failed' },
  insufficientScope: { status: 403, type: 'authorization', code: 'insufficient-scope', title: 'Forbidden' },
  forbidden: { status: 403, type: 'authorization', code: 'forbidden', title: 'Not allowed' },
  invitationForSomeoneElse: { status: 403, type: 'authorization', code: 'invitation-for-someone-else', title: 'Not allowed' },
  noRoute: { status: 403, type: 'access-control', code: 'no-route', title: 'Forbidden' },
  csrfTokenInvalid: { status: 403, type: 'access-control', code: 'csrf-token-invalid', title: 'Page out of date' },
  notFound: { status: 404, type: 'validation', code: 'not-found', title: 'Not found' },
  invitationNotFound: { status: 404, type: 'validation', code: 'invitation-not-found', title: 'Not found' },
  unknownPartner: { status: 404, type: 'validation', code: 'unknown-partner', title: 'Unknown partner' },
  invitationUsed: { status: 410, type: 'validation', code: 'invitation-used', title: 'Invitation already used' },
  invitationExpired: { status: 410, type: 'validation', code: 'invitation-expired', title: 'Invitation expired' },
  bodyTooLarge: { status: 413, type: 'validation', code: 'body-too-large', title: 'Body too large' },
  pathTooLong: { status: 414, type: 'validation', code: 'path-too-long', title: 'Path too long' },
  unsupportedMediaType: { status: 415, type: 'validation', code: 'unsupported-media-type', title: 'Unsupported media type' },
  rateLimitExceeded: { status: 429, type: 'quota', code: 'rate-limit-exceeded', title: 'Too many requests' },
  tooManyAttempts: { status: 429, type: 'quota', code: 'too-many-attempts', title: 'Too many attempts' },
  internalError: { status: 500, type: 'unknown', code: 'internal-error', title: 'Internal error' },
  upgradeNotSupported: { status: 501, type: 'availability', code: 'upgrade-not-supported', title: 'Not implemented' },
  upstreamUnavailable: { status: 502, type: 'availability', code: 'upstream-unavailable', title: 'Bad gateway' },
  databaseUnavailable: { status: 503, type: 'availability', code: 'database-unavailable', title: 'Service unavailable' },
  upstreamTimeout: { status: 504, type: 'availability', code: 'upstream-timeout', title: 'Upstream timeout' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorName = keyof typeof ERRORS;

/** The named error with this answer's detail, ready to throw or send. */
export function problem(name: ErrorName, detail?: string): ApiError {
  const kind: ErrorKind = ERRORS[name];
  return new ApiError(kind.status, kind.type, kind.code, kind.title, detail);
}

const errorBody = (traceId: string, err: ApiError) => ({ errors: [{ traceId, type: err.type, code: err.code, title: err.title, detail: err.detail }] });

/** Renders an ApiError in the reference product's shape: {"errors":[{traceId,type,code,title,detail}]}. */
export function sendApiError(reply: FastifyReply, request: FastifyRequest, err: ApiError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', err.retryAfter);
  return reply.code(err.status).header('cache-control', 'no-store').send(errorBody(request.id, err));
}

/** The same answer on a raw response (the gateway answers outside Fastify); fields already set on `res` (CORS) stay. */
export function writeApiError(res: ServerResponse, traceId: string, err: ApiError): void {
  const body = JSON.stringify(errorBody(traceId, err));
  if (err.retryAfter !== undefined) res.setHeader('retry-after', err.retryAfter);
  res.writeHead(err.status, {
    'cache-control': 'no-store',
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** The 500 of an unexpected failure: nothing of the failure is told, it is logged. */
export const internalError = () => problem('internalError', 'the server failed to handle this request; it has been logged');

/** Maps Fastify's own request errors (bad JSON, wrong content type, body too large) to ApiErrors. */
function fromFastifyError(err: FastifyError): ApiError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return ApiError.validation('invalid-json', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ApiError.validation('empty-body', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem('unsupportedMediaType', 'send the body as Content-Type: application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem('bodyTooLarge', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ApiError.validation('invalid-content-length', 'the Content-Length header does not match the body');
    default:
      return err.statusCode !== undefined && err.statusCode < 500
        ? new ApiError(err.statusCode, 'validation', ERRORS.badRequest.code, ERRORS.badRequest.title, 'the request could not be read')
        : undefined;
  }
}

/**
 * Fastify's `frameworkErrors`: a request whose path cannot be routed (bad percent-encoding, a
 * path parameter over maxParamLength) gets the errors shape too, not Fastify's own body.
 */
export function sendFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendApiError(reply, request, problem('pathTooLong', 'a path segment of this request is too long'));
  if (err.code === 'FST_ERR_BAD_URL') return sendApiError(reply, request, problem('invalidPath', 'the request path is not valid percent-encoded UTF-8'));
  request.log.error({ err }, 'request could not be routed');
  return sendApiError(reply, request, internalError());
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
      return sendApiError(reply, request, problem('databaseUnavailable', 'the database is unreachable; try again in a few seconds'));
    }
    request.log.error({ err }, 'request failed');
    return sendApiError(reply, request, internalError());
  });
  if (!notFound) return;
  app.setNotFoundHandler((request, reply) => sendApiError(reply, request, ApiError.notFound(`${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`)));
}

/**
 * Whether the client went away before its request was read: its connection is gone and the
 * request never completed. Error handlers ask this only for errors that are not their own, so
 * an unfinished body is the client's doing, never a database outage, and nobody is left to answer.
 */
export function clientAborted(request: FastifyRequest): boolean {
  const raw = request.raw;
  return !raw.complete && (raw.socket === null || raw.socket.destroyed);
}
