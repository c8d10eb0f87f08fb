import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import { type BearerAuthentication, sendUnauthorized } from '../http/bearer.js';
import { problem, sendApiError } from '../http/errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { PartnerAccess } from '../store/partners.js';
import type { Placement } from '../store/placements.js';
import type { Beacons } from './beacons.js';
import { type DeliveryParams, deliveryParams, mergeParameters } from './params.js';
import type { RetailMedia } from './service.js';

export interface DeliveryRouteOptions {
  retail: RetailMedia;
  bearer: BearerAuthentication;
  beacons: Beacons;
  limiter: RateLimiter;
  defaultRateLimit: number;
}

/** Who is calling the delivery API, once its token (if any) has been checked against the partner. */
export type DeliveryCaller =
  | { kind: 'static_token'; tokenId: number }
  | { kind: 'application'; applicationId: number; organizationId: number; clientId: string }
  | { kind: 'anonymous' };

const DELIVERY_BODY_LIMIT = 16 * 1024;

/** Reads a GET body that Fastify leaves alone (curl's --data-urlencode without -G sends one). */
async function readBody(request: FastifyRequest): Promise<Buffer | undefined> {
  const raw = request.raw;
  if (raw.headers['content-length'] === undefined && raw.headers['transfer-encoding'] === undefined) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw) {
    size += (chunk as Buffer).length;
    if (size > DELIVERY_BODY_LIMIT) {
      throw new ApiError(413, 'validation', 'body-too-large', 'Body too large', `the request body is larger than ${DELIVERY_BODY_LIMIT} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const type = raw.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new ApiError(
      415,
      'validation',
      'unsupported-media-type',
      'Unsupported media type',
      'send the parameters in the query string or as an application/x-www-form-urlencoded body',
    );
  }
  return Buffer.concat(chunks, size);
}

/** The shopper's context, as the retailer's server forwards it; never used for access decisions. */
function shopperContext(request: FastifyRequest) {
  const forwarded = request.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().slice(0, 100);
  return {
    ip: first || null,
    ip_valid: first ? isIP(first) !== 0 : false,
    user_agent: request.headers['user-agent']?.slice(0, 500) ?? null,
    referer: request.headers.referer?.slice(0, 500) ?? null,
  };
}

/** GET /delivery/retailmedia (the reference product's ad delivery API) and its beacons. */
export async function deliveryRoutes(app: FastifyInstance, opts: DeliveryRouteOptions): Promise<void> {
  const { retail, bearer, beacons, limiter } = opts;

  /** The caller, or undefined for a 401: a token given is always checked, and a partner that opted in needs one. */
  async function caller(request: FastifyRequest, partner: PartnerAccess): Promise<DeliveryCaller | undefined> {
    if (request.headers.authorization === undefined && !partner.requireToken) return { kind: 'anonymous' };
    const who = await bearer.authenticate(request, 'delivery', partner.id);
    if (who === undefined) return undefined;
    if (who.kind === 'static_token') return { kind: 'static_token', tokenId: who.token.id };
    const { application_id: applicationId, organization_id: organizationId, client_id: clientId } = who.claims;
    if (!partner.applicationIds.includes(applicationId)) return bearer.refuse(request, 'delivery', 'application_not_linked');
    return { kind: 'application', applicationId, organizationId, clientId };
  }

  /** Per partner: per application (its own limit, else the partner's, else the default), per static token, or for anonymous calls together. */
  async function rateLimit(partner: PartnerAccess, who: DeliveryCaller) {
    const partnerLimit = partner.rateLimitPerMinute ?? opts.defaultRateLimit;
    if (who.kind === 'application') {
      const own = (await retail.applicationLimits.get(who.applicationId))?.perMinute ?? null;
      return limiter.take(`delivery:${partner.id}:app:${who.applicationId}`, own ?? partnerLimit);
    }
    if (who.kind === 'static_token') return limiter.take(`delivery:${partner.id}:static:${who.tokenId}`, partnerLimit);
    return limiter.take(`delivery:${partner.id}:anonymous`, partnerLimit);
  }

  function placementBody(params: DeliveryParams, placement: Placement) {
    const beacon = (kind: 'load' | 'view' | 'click', productId = '') =>
      beacons.url({ partnerId: placement.partnerId, placementId: placement.id, productId, kind });
    const size = params.listSize;
    const products = size === undefined ? placement.products : placement.products.slice((params.pageNumber - 1) * size, params.pageNumber * size);
    return {
      [`${params.pageId}-${placement.slot}`]: [
        {
          format: placement.format,
          OnLoadBeacon: beacon('load'),
          OnViewBeacon: beacon('view'),
          OnClickBeacon: beacon('click'),
          products: products.map((p) => ({
            ...p,
            OnLoadBeacon: beacon('load', p.ProductId),
            OnViewBeacon: beacon('view', p.ProductId),
            OnClickBeacon: beacon('click', p.ProductId),
          })),
          products_order: products.map((p) => p.ProductId),
          rendering: placement.rendering,
        },
      ],
    };
  }

  app.get('/delivery/retailmedia', async (request, reply) => {
    const body = await readBody(request);
    const query = request.url.indexOf('?');
    const params = deliveryParams(mergeParameters(query === -1 ? '' : request.url.slice(query + 1), body));
    const partner = await retail.partners.get(params.partnerId);
    if (!partner) {
      throw new ApiError(404, 'validation', 'unknown-partner', 'Unknown partner', `criteo-partner-id ${params.partnerId} is not a known partner`);
    }
    const who = await caller(request, partner);
    if (who === undefined) return sendUnauthorized(reply);
    const limit = await rateLimit(partner, who);
    limiter.headers(reply, limit);
    const shopper = shopperContext(request);
    request.log.info(
      { partner_id: partner.id, event_type: params.eventType, page_id: params.pageId, caller: who, shopper, allowed: limit.allowed },
      'delivery request',
    );
    if (!limit.allowed) {
      return sendApiError(
        reply,
        request,
        problem('rateLimitExceeded', `at most ${limit.limit} calls per minute; try again after ${new Date(limit.resetAt).toISOString()}`),
      );
    }
    const placements = ((await retail.catalogue.get(partner.id)) ?? []).filter((p) => p.eventType === params.eventType);
    return reply.header('cache-control', 'no-store').send({
      status: 'OK',
      onLoadBeacon: beacons.url({ partnerId: partner.id, placementId: 0, productId: '', kind: 'load' }),
      placements: placements.map((p) => placementBody(params, p)),
    });
  });

  // Beacons may come as image requests (GET) or navigator.sendBeacon (POST, any body, ignored).
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { bodyLimit: 64 * 1024 }, (_request, payload, done) => {
      payload.resume();
      payload.on('end', () => done(null, undefined));
      payload.on('error', done);
    });
    const count = async (request: FastifyRequest<{ Params: { beacon: string } }>, reply: FastifyReply) => {
      const beacon = beacons.read(request.params.beacon);
      if (!beacon) throw ApiError.notFound('beacon');
      beacons.count(beacon);
      return reply.code(204).header('cache-control', 'no-store').send();
    };
    scope.get('/delivery/beacons/:beacon', count);
    scope.post('/delivery/beacons/:beacon', count);
  });
}
