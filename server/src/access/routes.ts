import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Directory } from '../directory/service.js';
import type { AccessClaims } from '../oauth/tokens.js';
import type { BearerVerifier } from './verifier.js';

/** The one answer to every missing or bad token, as the reference product gives it. */
export const UNAUTHORIZED_BODY = '{"Status Message":"Unauthorized"}';

export function sendUnauthorized(reply: FastifyReply): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', 'Bearer realm="portcullis", error="invalid_token"')
    .header('cache-control', 'no-store')
    .type('application/json')
    .send(UNAUTHORIZED_BODY);
}

/** The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined;
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(7).trim();
  return token === '' ? undefined : token;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: AccessClaims;
  }
}

/** An onRequest hook that lets only requests with a valid token through, with `request.identity` set. */
export function requireBearer(verifier: BearerVerifier) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const token = bearerToken(request.headers.authorization);
    const outcome = token === undefined ? undefined : await verifier.verify(token);
    if (!outcome?.ok) {
      request.log.debug({ reason: outcome?.reason ?? 'missing' }, 'bearer token refused');
      return sendUnauthorized(reply);
    }
    request.identity = outcome.claims;
  };
}

const VERSION = /^(\d{4}-\d{2}|preview)$/;
const SERVICE = /^[a-z][a-z0-9-]{0,63}$/;

/** GET /me and GET /{version}/{service}/me: the calling application, in the reference product's shape. */
export async function accessRoutes(app: FastifyInstance, opts: { verifier: BearerVerifier; directory: Directory }): Promise<void> {
  const guard = requireBearer(opts.verifier);

  // The versioned path answers exactly the reference product's fields (its SDKs' models may be
  // strict); the unversioned /me adds the client_id and scopes.
  const me = (service: string | null) => async (request: FastifyRequest, reply: FastifyReply) => {
    const identity = request.identity as AccessClaims;
    const application = await opts.directory.applications.get(identity.application_id);
    if (!application) return sendUnauthorized(reply);
    return reply.header('cache-control', 'no-store').send({
      data: {
        type: 'Application',
        attributes: {
          applicationId: application.id,
          organizationId: application.organizationId,
          name: application.name,
          description: application.description,
          criteoService: service,
          ...(service === null ? { clientId: identity.client_id, scopes: identity.scope ? identity.scope.split(' ') : [] } : {}),
        },
      },
      errors: [],
      warnings: [],
    });
  };

  app.get('/me', { onRequest: guard }, me(null));
  app.get<{ Params: { version: string; service: string } }>('/:version/:service/me', async (request, reply) => {
    const { version, service } = request.params;
    if (!VERSION.test(version) || !SERVICE.test(service)) {
      return reply.callNotFound();
    }
    await guard(request, reply);
    if (reply.sent) return reply;
    return me(service)(request, reply);
  });
}
