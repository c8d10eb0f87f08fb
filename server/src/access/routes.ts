import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Directory } from '../directory/service.js';
import { type BearerAuthentication, sendUnauthorized } from '../http/bearer.js';
import type { AccessClaims } from '../domain/claims.js';

const VERSION = /^(\d{4}-\d{2}|preview)$/;
const SERVICE = /^[a-z][a-z0-9-]{0,63}$/;

/** GET /me and GET /{version}/{service}/me: the calling application, in the reference product's shape. */
export async function accessRoutes(app: FastifyInstance, opts: { bearer: BearerAuthentication; directory: Directory }): Promise<void> {
  const guard = opts.bearer.requireApplication('me');

  // The versioned path answers exactly the reference product's fields (its SDKs' models may be
  // strict); the unversioned /me adds the client_id and scopes.
  const me = (service: string | null) => async (request: FastifyRequest, reply: FastifyReply) => {
    const identity = (request.caller as { claims: AccessClaims }).claims;
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
