import type { FastifyInstance, FastifyRequest } from 'fastify';
import { pageQuery, sendPage } from '../http/paging.js';
import type { Actor } from '../directory/service.js';
import { jsonObject, pathId } from '../http/json-body.js';
import type { Store } from '../store/index.js';
import type { Beacons } from './beacons.js';
import type { RetailMedia } from './service.js';

export interface RetailMediaAdminOptions {
  retail: RetailMedia;
  beacons: Beacons;
  store: Store;
}

type Ids = { partnerId: string; appId: string; tokenId: string; eventType: string; slot: string };

/** The operator API for partners, their linked applications, static tokens, catalogue and rate limits (under /admin/v1). */
export async function retailMediaAdminRoutes(app: FastifyInstance, opts: RetailMediaAdminOptions): Promise<void> {
  const { retail } = opts;
  const actor = (request: FastifyRequest): Actor => ({ actor: 'operator', ip: request.ip });
  const partnerId = (request: FastifyRequest<{ Params: Ids }>) => pathId(request.params.partnerId, 'partnerId');

  app.get('/partners', async (request, reply) => {
    const page = pageQuery(request.query);
    return sendPage(reply, await retail.listPartners(page), page);
  });

  app.get<{ Params: Ids }>('/partners/:partnerId', async (request) => retail.partnerView(partnerId(request)));

  app.put<{ Params: Ids }>('/partners/:partnerId', async (request, reply) => {
    const id = partnerId(request);
    const body = jsonObject(request.body, ['name', 'require_token', 'rate_limit_per_minute', 'required_scope'], ['name']);
    const { created, partner } = await retail.putPartner(id, body, actor(request));
    return reply.code(created ? 201 : 200).send(partner);
  });

  app.post<{ Params: Ids }>('/partners/:partnerId/applications', async (request, reply) => {
    const id = partnerId(request);
    const body = jsonObject(request.body, ['application_id'], ['application_id']);
    const { created, link } = await retail.linkApplication(id, body.application_id, actor(request));
    return reply.code(created ? 201 : 200).send(link);
  });

  app.delete<{ Params: Ids }>('/partners/:partnerId/applications/:appId', async (request) =>
    retail.unlinkApplication(partnerId(request), pathId(request.params.appId, 'appId'), actor(request)),
  );

  app.post<{ Params: Ids }>('/partners/:partnerId/static-tokens', async (request, reply) => {
    const id = partnerId(request);
    const body = jsonObject(request.body, ['name', 'expires_at'], ['name']);
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .send(await retail.createStaticToken(id, body, actor(request)));
  });

  app.get<{ Params: Ids }>('/partners/:partnerId/static-tokens', async (request, reply) => {
    const page = pageQuery(request.query);
    return sendPage(reply, await retail.listStaticTokens(partnerId(request), page), page);
  });

  app.delete<{ Params: Ids }>('/partners/:partnerId/static-tokens/:tokenId', async (request) =>
    retail.revokeStaticToken(partnerId(request), pathId(request.params.tokenId, 'tokenId'), actor(request)),
  );

  app.get<{ Params: Ids }>('/partners/:partnerId/placements', async (request, reply) => {
    const page = pageQuery(request.query);
    return sendPage(reply, await retail.listPlacements(partnerId(request), page), page);
  });

  app.put<{ Params: Ids }>('/partners/:partnerId/placements/:eventType/:slot', async (request, reply) => {
    const id = partnerId(request);
    const body = jsonObject(request.body, ['format', 'products', 'rendering'], ['format']);
    const { created, placement } = await retail.putPlacement(id, request.params.eventType, request.params.slot, body, actor(request));
    return reply.code(created ? 201 : 200).send(placement);
  });

  app.delete<{ Params: Ids }>('/partners/:partnerId/placements/:eventType/:slot', async (request) =>
    retail.deletePlacement(partnerId(request), request.params.eventType, request.params.slot, actor(request)),
  );

  app.get<{ Params: Ids }>('/partners/:partnerId/beacon-counts', async (request) => {
    const id = partnerId(request);
    await retail.partner(id);
    await opts.beacons.flush();
    return (await opts.store.placements.beaconCounts(id)).map((c) => ({
      placement_id: c.placementId,
      product_id: c.productId === '' ? null : c.productId,
      kind: c.kind,
      count: c.count,
    }));
  });

  app.get<{ Params: Ids }>('/applications/:appId/rate-limit', async (request) => retail.applicationRateLimit(pathId(request.params.appId, 'appId')));

  app.put<{ Params: Ids }>('/applications/:appId/rate-limit', async (request) => {
    const body = jsonObject(request.body, ['per_minute'], ['per_minute']);
    return retail.setApplicationRateLimit(pathId(request.params.appId, 'appId'), body.per_minute, actor(request));
  });
}
