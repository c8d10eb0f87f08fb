import type { FastifyInstance } from 'fastify';
import type { ApiRegistry } from '../apis/service.js';
import { apiView, grantView } from '../apis/views.js';
import { jsonObject, pathId } from '../http/json-body.js';

/**
 * The operator API for APIs with their own audience: register and delete APIs, grant them (with
 * some or all of their scopes) to applications. A token asked for with `resource=<identifier>`
 * then carries that identifier as its `aud`. Registered inside operatorApi, which owns the
 * operator's authentication and errors.
 */
export async function apiAdminRoutes(app: FastifyInstance, opts: { apis: ApiRegistry }): Promise<void> {
  const who = (ip: string) => ({ actor: 'operator', ip });

  app.get('/apis', async () => (await opts.apis.list()).map(apiView));
  app.post('/apis', async (request, reply) => {
    const body = jsonObject(request.body, ['identifier', 'name', 'scopes', 'self_service_scopes'], ['identifier', 'name']);
    return reply.code(201).send(apiView(await opts.apis.create(body, who(request.ip))));
  });
  app.patch<{ Params: { apiId: string } }>('/apis/:apiId', async (request) => {
    const body = jsonObject(request.body, ['self_service_scopes'], ['self_service_scopes']);
    return apiView(await opts.apis.setSelfServiceScopes(pathId(request.params.apiId, 'apiId'), body, who(request.ip)));
  });
  app.delete<{ Params: { apiId: string } }>('/apis/:apiId', async (request) => ({
    ...apiView(await opts.apis.remove(pathId(request.params.apiId, 'apiId'), who(request.ip))),
    deleted: true,
  }));
  app.get('/default-audience', async () => ({
    audience: opts.apis.defaultAudience,
    self_service_scopes: await opts.apis.defaultSelfServiceScopes(),
  }));
  app.patch('/default-audience', async (request) => {
    const body = jsonObject(request.body, ['self_service_scopes'], ['self_service_scopes']);
    return { audience: opts.apis.defaultAudience, self_service_scopes: await opts.apis.setDefaultSelfServiceScopes(body, who(request.ip)) };
  });
  app.get<{ Params: { appId: string } }>('/applications/:appId/apis', async (request) =>
    (await opts.apis.grantsOf(pathId(request.params.appId, 'appId'))).map(grantView),
  );
  app.put<{ Params: { appId: string; apiId: string } }>('/applications/:appId/apis/:apiId', async (request) => {
    const body = jsonObject(request.body, ['scopes']);
    return grantView(await opts.apis.grant(pathId(request.params.appId, 'appId'), pathId(request.params.apiId, 'apiId'), body, who(request.ip)));
  });
  app.delete<{ Params: { appId: string; apiId: string } }>('/applications/:appId/apis/:apiId', async (request) => {
    await opts.apis.revokeGrant(pathId(request.params.appId, 'appId'), pathId(request.params.apiId, 'apiId'), who(request.ip));
    return { revoked: true };
  });
}
