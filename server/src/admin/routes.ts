import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor, Directory } from '../directory/service.js';
import { type Clock, DAY_MS, utcDay } from '../domain/clock.js';
import type { UsageRecorder } from '../directory/usage.js';
import { ApiError } from '../domain/errors.js';
import type { KeyRing } from '../keys/keyring.js';
import type { Store } from '../store/index.js';
import type { Application } from '../store/applications.js';
import type { Organization } from '../store/organizations.js';
import { problem, sendApiError, useApiErrors } from '../http/errors.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { AdminAuth } from './auth.js';
import { pageQuery, sendPage } from '../http/paging.js';

export interface AdminRouteOptions {
  directory: Directory;
  keys: KeyRing;
  store: Store;
  usage: UsageRecorder;
  clock: Clock;
}

const iso = (ms: number) => new Date(ms).toISOString();
const organizationView = (o: Organization) => ({ id: o.id, name: o.name, created_at: iso(o.createdAt) });
const applicationView = (a: Application) => ({
  id: a.id,
  organization_id: a.organizationId,
  name: a.name,
  description: a.description,
  scopes: a.scopes,
  created_at: iso(a.createdAt),
});

/** An onRequest hook that lets only the operator token through, with a 401 in the errors shape otherwise. */
export function requireOperator(auth: AdminAuth) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!auth.check(request.headers.authorization)) {
      reply.header('www-authenticate', 'Bearer realm="portcullis-admin"');
      return sendApiError(reply, request, problem('operatorUnauthorized', 'send the operator token as Authorization: Bearer <PORTCULLIS_ADMIN_TOKEN>'));
    }
  };
}

/**
 * The operator API under /admin/v1: one scope owns its authentication (the operator token) and
 * its errors shape, and the features register their operator routes inside it.
 */
export async function operatorApi(app: FastifyInstance, opts: { auth: AdminAuth; features: Array<(scope: FastifyInstance) => Promise<void>> }) {
  useApiErrors(app);
  app.addHook('onRequest', requireOperator(opts.auth));
  for (const feature of opts.features) await app.register(feature);
}

type Ids = { orgId: string; appId: string; clientId: string };

/** The operator API's directory and keys (under /admin/v1; operatorApi owns its authentication and errors). */
export async function adminRoutes(app: FastifyInstance, opts: AdminRouteOptions): Promise<void> {
  const { directory, keys } = opts;

  const actor = (request: FastifyRequest): Actor => ({ actor: 'operator', ip: request.ip });

  app.post('/organizations', async (request, reply) => {
    const body = jsonObject(request.body, ['name'], ['name']);
    const org = await directory.createOrganization({ name: body.name }, actor(request));
    return reply.code(201).send(organizationView(org));
  });

  app.get('/organizations', async (request, reply) => {
    const page = pageQuery(request.query);
    return sendPage(reply, (await directory.listOrganizations(page)).map(organizationView), page);
  });

  app.get<{ Params: Ids }>('/organizations/:orgId', async (request) => organizationView(await directory.organization(pathId(request.params.orgId, 'orgId'))));

  app.post<{ Params: Ids }>('/organizations/:orgId/applications', async (request, reply) => {
    const orgId = pathId(request.params.orgId, 'orgId');
    const body = jsonObject(request.body, ['name', 'description', 'scopes'], ['name']);
    const created = await directory.createApplication(orgId, body as { name: unknown }, actor(request));
    return reply.code(201).send(applicationView(created));
  });

  app.get<{ Params: Ids }>('/organizations/:orgId/applications', async (request, reply) => {
    const page = pageQuery(request.query);
    return sendPage(reply, (await directory.listApplications(pathId(request.params.orgId, 'orgId'), page)).map(applicationView), page);
  });

  app.get<{ Params: Ids }>('/applications/:appId', async (request) => applicationView(await directory.application(pathId(request.params.appId, 'appId'))));

  app.patch<{ Params: Ids }>('/applications/:appId', async (request) => {
    const appId = pathId(request.params.appId, 'appId');
    const body = jsonObject(request.body, ['name', 'description', 'scopes']);
    return applicationView(await directory.updateApplication(appId, body, actor(request)));
  });

  app.post<{ Params: Ids }>('/applications/:appId/credentials', async (request, reply) => {
    const appId = pathId(request.params.appId, 'appId');
    const body = jsonObject(request.body, ['name'], ['name']);
    const { credential, secret } = await directory.createCredential(appId, { name: body.name }, actor(request));
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .send({
        client_id: credential.clientId,
        client_secret: secret,
        name: credential.name,
        application_id: credential.applicationId,
        status: 'active',
        created_at: iso(credential.createdAt),
      });
  });

  app.get<{ Params: Ids }>('/applications/:appId/credentials', async (request) => {
    const appId = pathId(request.params.appId, 'appId');
    await opts.usage.flush();
    return directory.listCredentials(appId);
  });

  app.get<{ Params: Ids }>('/applications/:appId/credentials/:clientId', async (request) =>
    directory.credential(pathId(request.params.appId, 'appId'), request.params.clientId),
  );

  app.patch<{ Params: Ids }>('/applications/:appId/credentials/:clientId', async (request) => {
    const appId = pathId(request.params.appId, 'appId');
    const body = jsonObject(request.body, ['name'], ['name']);
    return directory.renameCredential(appId, request.params.clientId, { name: body.name }, actor(request));
  });

  app.delete<{ Params: Ids; Querystring: Record<string, string | string[]> }>('/applications/:appId/credentials/:clientId', async (request) => {
    const appId = pathId(request.params.appId, 'appId');
    const flag = request.query.immediately;
    if (flag !== undefined && flag !== 'true' && flag !== 'false') {
      throw ApiError.validation('invalid-immediately', 'immediately must be true or false');
    }
    const result = await directory.deleteCredential(appId, request.params.clientId, flag === 'true', actor(request));
    return { client_id: request.params.clientId, status: result.revoked ? 'revoked' : 'deactivating', deactivates_at: result.deactivates_at };
  });

  app.get('/keys', async () =>
    keys.list().map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, created_at: iso(k.createdAt), activates_at: iso(k.activatesAt) })),
  );

  app.post('/keys/rotate', async (request) => {
    const body = jsonObject(request.body, ['activate_after_seconds', 'force']);
    const delay = body.activate_after_seconds;
    if (delay !== undefined && (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > 7 * 86_400)) {
      throw ApiError.validation('invalid-activate_after_seconds', 'activate_after_seconds must be a whole number of seconds from 0 to 604800');
    }
    if (body.force !== undefined && typeof body.force !== 'boolean') throw ApiError.validation('invalid-force', 'force must be true or false');
    const { key, warnings } = await keys.rotate(delay as number | undefined, actor(request), { force: body.force === true });
    return {
      kid: key.kid,
      alg: key.alg,
      created_at: iso(key.createdAt),
      activates_at: iso(key.activatesAt),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  });

  app.get<{ Querystring: { organization_id?: string; limit?: string; before?: string } }>('/audit-events', async (request) => {
    const q = request.query;
    const limit = q.limit === undefined ? 100 : pathId(String(q.limit), 'limit');
    const events = await opts.store.audit.list({
      limit: Math.min(limit, 1000),
      ...(q.organization_id !== undefined ? { organizationId: pathId(String(q.organization_id), 'organization_id') } : {}),
      ...(q.before !== undefined ? { before: pathId(String(q.before), 'before') } : {}),
    });
    return events.map((e) => ({
      id: e.id,
      occurred_at: iso(e.occurredAt),
      actor: e.actor,
      ip: e.ip,
      action: e.action,
      target_type: e.targetType,
      target_id: e.targetId,
      organization_id: e.organizationId,
      details: e.details,
    }));
  });

  app.get('/auth-failures', async () => {
    await opts.usage.flush();
    const since = utcDay(opts.clock.now() - 30 * DAY_MS);
    return (await opts.store.authFailures.since(since)).map((f) => ({ day: f.day, client_id: f.clientId || null, reason: f.reason, count: f.count }));
  });
}
