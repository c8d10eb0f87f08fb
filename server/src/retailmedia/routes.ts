import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';
import { type BearerAuthentication, grantsScopes, sendInsufficientScope, sendUnauthorized } from '../http/bearer.js';
import { problem, sendApiError } from '../http/errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { PartnerAccess } from '../store/partners.js';
import { DeliveryAnswers } from './answer.js';
import type { Beacons } from './beacons.js';
import { deliveryParams, mergeParameters } from './params.js';
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
  | { kind: 'application'; applicationId: number; organizationId: number; clientId: string; scope: string }
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
  const answers = new DeliveryAnswers(beacons);

  /**
   * Bearer verification for the delivery API: the caller, or undefined for a 401. A token given
   * is always checked, and a partner that opted in needs one. (The one place to swap for a shared
   * bearer step.)
   */
  async function caller(request: FastifyRequest, partner: PartnerAccess): Promise<DeliveryCaller | undefined> {
    if (request.headers.authorization === undefined && !partner.requireToken) return { kind: 'anonymous' };
    const who = await bearer.authenticate(request, 'delivery', partner.id);
    if (who === undefined) return undefined;
    if (who.kind === 'static_token') return { kind: 'static_token', tokenId: who.token.id };
    const { application_id: applicationId, organization_id: organizationId, client_id: clientId, scope } = who.claims;
    if (!partner.applicationIds.includes(applicationId)) return bearer.refuse(request, 'delivery', 'application_not_linked');
    return { kind: 'application', applicationId, organizationId, clientId, scope: scope ?? '' };
  }

  /** Per partner: per application (its own limit, else the partner's, else the default), per static token, or per client address without a token. */
  async function rateLimit(partner: PartnerAccess, who: DeliveryCaller, ip: string) {
    const partnerLimit = partner.rateLimitPerMinute ?? opts.defaultRateLimit;
    if (who.kind === 'application') {
      const own = (await retail.applicationLimits.get(who.applicationId))?.perMinute ?? null;
      return limiter.take(`delivery:${partner.id}:app:${who.applicationId}`, own ?? partnerLimit);
    }
    if (who.kind === 'static_token') return limiter.take(`delivery:${partner.id}:static:${who.tokenId}`, partnerLimit);
    return limiter.take(`delivery:${partner.id}:anonymous:${ip}`, partnerLimit);
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
    // Static tokens are the partner's own; a dynamic token needs the partner's scope.
    if (who.kind === 'application' && !grantsScopes(who.scope, [partner.requiredScope])) {
      bearer.refuse(request, 'delivery', 'insufficient_scope');
      return sendInsufficientScope(reply, [partner.requiredScope]);
    }
    const limit = await rateLimit(partner, who, request.ip);
    limiter.headers(reply, limit);
    // The shopper's context goes in the request's one access-log line.
    request.accessLog = {
      partner_id: partner.id,
      event_type: params.eventType,
      page_id: params.pageId,
      caller: who,
      shopper: shopperContext(request),
      allowed: limit.allowed,
    };
    if (!limit.allowed) {
      return sendApiError(
        reply,
        request,
        problem('rateLimitExceeded', `at most ${limit.limit} calls per minute; try again after ${new Date(limit.resetAt).toISOString()}`),
      );
    }
    const placements = (await retail.catalogue.get(partner.id))?.get(params.eventType) ?? [];
    const size = params.listSize;
    const first = size === undefined ? 0 : (params.pageNumber - 1) * size;
    return reply
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send(answers.render(partner, params.eventType, params.pageId, placements, first, size));
  });

  // Beacons may come as image requests (GET) or navigator.sendBeacon (POST, any body, ignored).
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { bodyLimit: 64 * 1024 }, (_request, payload, done) => {
      payload.resume();
      payload.on('end', () => done(null, undefined));
      payload.on('error', done);
    });
    const count = async (request: FastifyRequest<{ Params: { impression: string; beacon: string } }>, reply: FastifyReply) => {
      const hit = await beacons.hit(request.params.impression, request.params.beacon);
      if (!hit.ok && hit.reason === 'expired') {
        throw new ApiError(
          410,
          'validation',
          'beacon-expired',
          'Beacon expired',
          `beacons count for ${beacons.ttlSeconds} seconds after their delivery response; this one has expired`,
        );
      }
      if (!hit.ok) throw ApiError.notFound('beacon');
      // A replay is answered like the first hit, and counts nothing.
      request.accessLog = { beacon_counted: hit.counted };
      return reply.code(204).header('cache-control', 'no-store').send();
    };
    scope.get('/delivery/beacons/:impression/:beacon', count);
    scope.post('/delivery/beacons/:impression/:beacon', count);
  });
}
