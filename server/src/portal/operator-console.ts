import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiRegistry } from '../apis/service.js';
import { apiView, grantView } from '../apis/views.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { Actor, Directory } from '../directory/service.js';
import { ApiError } from '../domain/errors.js';
import type { GatewayRoute, GatewayRoutes } from '../gateway/service.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RetailMedia } from '../retailmedia/service.js';
import type { PortalUser } from '../store/portal-users.js';
import type { Portal } from './service.js';
import { applicationView } from './service.js';

export interface OperatorConsoleOptions {
  directory: Directory;
  retail: RetailMedia;
  gateway: GatewayRoutes;
  keys: KeyRing;
  apis: ApiRegistry;
  portal: Portal;
}

const iso = (ms: number) => new Date(ms).toISOString();
const notOperator = () =>
  new ApiError(
    403,
    'authorization',
    'not-an-operator',
    'Not allowed',
    'the operator console is for accounts granted the operator role (portcullis admin operators grant EMAIL)',
  );
const routeView = (r: GatewayRoute) => ({ id: r.id, source: r.source, prefix: r.prefix, upstream: r.upstream, scopes: r.scopes, timeout_ms: r.timeoutMs });
type Ids = { partnerId: string; appId: string; tokenId: string; routeId: string; apiId: string };

/**
 * The operator console's API under /portal/api/operator: the operator API's services, for a
 * signed-in portal user granted the operator role, each change audited as `operator:user:<id>`.
 */
export function operatorConsoleRoutes(app: FastifyInstance, opts: OperatorConsoleOptions, current: (request: FastifyRequest) => { user: PortalUser }): void {
  const { directory, retail, gateway, keys, apis } = opts;
  const operator = (request: FastifyRequest): Actor => {
    const { user } = current(request);
    if (user.operatorSince === null) throw notOperator();
    return { actor: `operator:user:${user.id}`, ip: request.ip };
  };
  const partnerId = (request: FastifyRequest<{ Params: Ids }>) => pathId(request.params.partnerId, 'partnerId');
  const apiId = (request: FastifyRequest<{ Params: Ids }>) => pathId(request.params.apiId, 'apiId');

  app.get<{ Querystring: { search?: string } }>('/operator/organizations', async (request) => {
    operator(request);
    const search = String(request.query.search ?? '')
      .trim()
      .toLowerCase()
      .slice(0, 100);
    const found = [];
    // Page by page, so the search holds one page of organizations at a time; it stops at 200 matches.
    for (let after = 0; found.length < 200; ) {
      const page = await directory.listOrganizations({ limit: 1000, after });
      for (const org of page) {
        const apps = (await directory.listApplications(org.id)).map(applicationView);
        const orgMatches = search === '' || org.name.toLowerCase().includes(search) || String(org.id) === search;
        const matching = orgMatches ? apps : apps.filter((a) => a.name.toLowerCase().includes(search) || String(a.id) === search);
        if (orgMatches || matching.length > 0) found.push({ id: org.id, name: org.name, created_at: iso(org.createdAt), applications: matching });
        if (found.length >= 200) break;
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    return found;
  });

  app.get('/operator/partners', async (request) => {
    operator(request);
    return retail.listPartners({ limit: 1000, after: 0 });
  });

  app.put<{ Params: Ids }>('/operator/partners/:partnerId', async (request, reply) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['name', 'require_token', 'rate_limit_per_minute'], ['name']);
    const { created, partner } = await retail.putPartner(partnerId(request), body, who);
    return reply.code(created ? 201 : 200).send(partner);
  });

  app.post<{ Params: Ids }>('/operator/partners/:partnerId/applications', async (request, reply) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['application_id'], ['application_id']);
    const { created, link } = await retail.linkApplication(partnerId(request), body.application_id, who);
    return reply.code(created ? 201 : 200).send(link);
  });

  app.delete<{ Params: Ids }>('/operator/partners/:partnerId/applications/:appId', async (request) => {
    const who = operator(request);
    return retail.unlinkApplication(partnerId(request), pathId(request.params.appId, 'appId'), who);
  });

  app.get<{ Params: Ids }>('/operator/partners/:partnerId/static-tokens', async (request) => {
    operator(request);
    return retail.listStaticTokens(partnerId(request));
  });

  app.post<{ Params: Ids }>('/operator/partners/:partnerId/static-tokens', async (request, reply) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['name', 'expires_at'], ['name']);
    return reply.code(201).send(await retail.createStaticToken(partnerId(request), body, who));
  });

  app.delete<{ Params: Ids }>('/operator/partners/:partnerId/static-tokens/:tokenId', async (request) => {
    const who = operator(request);
    return retail.revokeStaticToken(partnerId(request), pathId(request.params.tokenId, 'tokenId'), who);
  });

  app.get('/operator/keys', async (request) => {
    operator(request);
    return keys.list().map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, created_at: iso(k.createdAt), activates_at: iso(k.activatesAt) }));
  });

  app.post('/operator/keys/rotate', async (request) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['activate_after_seconds', 'force']);
    const delay = body.activate_after_seconds;
    if (delay !== undefined && (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > 7 * 86_400)) {
      throw ApiError.validation('invalid-activate_after_seconds', 'activate_after_seconds must be a whole number of seconds from 0 to 604800');
    }
    if (body.force !== undefined && typeof body.force !== 'boolean') throw ApiError.validation('invalid-force', 'force must be true or false');
    const { key, warnings } = await keys.rotate(delay as number | undefined, who, { force: body.force === true });
    return { kid: key.kid, alg: key.alg, created_at: iso(key.createdAt), activates_at: iso(key.activatesAt), warnings };
  });

  app.get('/operator/gateway/routes', async (request) => {
    operator(request);
    return gateway.list().map(routeView);
  });

  app.post('/operator/gateway/routes', async (request, reply) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['prefix', 'upstream', 'scopes', 'timeout_ms'], ['prefix', 'upstream']);
    return reply.code(201).send(routeView(await gateway.create(body, who)));
  });

  app.delete<{ Params: Ids }>('/operator/gateway/routes/:routeId', async (request) => {
    const who = operator(request);
    return { ...routeView(await gateway.remove(pathId(request.params.routeId, 'routeId'), who)), deleted: true };
  });

  app.get('/operator/apis', async (request) => {
    operator(request);
    return (await apis.list()).map(apiView);
  });

  app.post('/operator/apis', async (request, reply) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['identifier', 'name', 'scopes', 'self_service_scopes'], ['identifier', 'name']);
    return reply.code(201).send(apiView(await apis.create(body, who)));
  });

  app.patch<{ Params: Ids }>('/operator/apis/:apiId', async (request) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['self_service_scopes'], ['self_service_scopes']);
    return apiView(await apis.setSelfServiceScopes(apiId(request), body, who));
  });

  app.delete<{ Params: Ids }>('/operator/apis/:apiId', async (request) => {
    const who = operator(request);
    return { ...apiView(await apis.remove(apiId(request), who)), deleted: true };
  });

  app.get('/operator/default-audience', async (request) => {
    operator(request);
    return { audience: apis.defaultAudience, self_service_scopes: await apis.defaultSelfServiceScopes() };
  });

  app.patch('/operator/default-audience', async (request) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['self_service_scopes'], ['self_service_scopes']);
    return { audience: apis.defaultAudience, self_service_scopes: await apis.setDefaultSelfServiceScopes(body, who) };
  });

  app.get<{ Params: Ids }>('/operator/applications/:appId/apis', async (request) => {
    operator(request);
    return (await apis.grantsOf(pathId(request.params.appId, 'appId'))).map(grantView);
  });

  app.put<{ Params: Ids }>('/operator/applications/:appId/apis/:apiId', async (request) => {
    const who = operator(request);
    const body = jsonObject(request.body, ['scopes']);
    return grantView(await apis.grant(pathId(request.params.appId, 'appId'), apiId(request), body, who));
  });

  app.delete<{ Params: Ids }>('/operator/applications/:appId/apis/:apiId', async (request) => {
    const who = operator(request);
    await apis.revokeGrant(pathId(request.params.appId, 'appId'), apiId(request), who);
    return { revoked: true };
  });

  app.get<{ Querystring: { limit?: string; before?: string } }>('/operator/audit', async (request) => {
    operator(request);
    const limit = request.query.limit === undefined ? 100 : Math.min(500, pathId(String(request.query.limit), 'limit'));
    const before = request.query.before === undefined ? undefined : pathId(String(request.query.before), 'before');
    return opts.portal.auditEvents({ limit, ...(before !== undefined ? { before } : {}) });
  });
}
