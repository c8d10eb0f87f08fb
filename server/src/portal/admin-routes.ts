import type { FastifyInstance, FastifyRequest } from 'fastify';
import { jsonObject } from '../http/json-body.js';
import { Accounts } from './accounts.js';

export interface PortalAdminRouteOptions {
  accounts: Accounts;
}

/**
 * The operator API for portal accounts (`portcullis admin users …`, `admin operators …`), under
 * /admin/v1; operatorApi owns the operator's authentication and errors.
 */
export async function portalAdminRoutes(app: FastifyInstance, opts: PortalAdminRouteOptions): Promise<void> {
  const { accounts } = opts;
  const actor = (request: FastifyRequest) => ({ actor: 'operator', ip: request.ip });
  const email = (body: unknown) => jsonObject(body, ['email'], ['email']).email;

  app.get<{ Querystring: { email?: string } }>('/portal-users', async (request) => Accounts.view(await accounts.find(request.query.email)));

  app.post('/portal-users/verify', async (request) => Accounts.view(await accounts.verifyByOperator(email(request.body), actor(request))));

  app.post('/portal-users/reset', async (request) => {
    const { user, link, mail } = await accounts.resetByOperator(email(request.body), actor(request));
    return { ...Accounts.view(user), reset_link: link, mail };
  });

  app.post('/portal-users/disable', async (request) => Accounts.view(await accounts.setDisabled(email(request.body), true, actor(request))));

  app.post('/portal-users/enable', async (request) => Accounts.view(await accounts.setDisabled(email(request.body), false, actor(request))));

  app.post('/operators/grant', async (request) => Accounts.view(await accounts.setOperator(email(request.body), true, actor(request))));

  app.post('/operators/revoke', async (request) => Accounts.view(await accounts.setOperator(email(request.body), false, actor(request))));
}
