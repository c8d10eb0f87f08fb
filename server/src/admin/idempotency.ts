import { createHash, createHmac, hkdfSync } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import { seal, unseal } from '../keys/master.js';
import type { IdempotencyKeyRepository, IdempotencyRecord } from '../store/idempotency-keys.js';
import { sendApiError } from '../http/errors.js';

/** How long a key and its first answer are kept. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
/** A key still in progress after this long belonged to a request that died with its node. */
const ABANDONED_MS = 60_000;
const PRUNE_EVERY_MS = 10 * 60_000;
/** Printable ASCII without spaces, as the IETF draft and Stripe's keys (UUIDs and the like). */
const WELL_FORMED = /^[\x21-\x7e]{1,255}$/;

export type IdempotencyOutcome =
  | { run: true }
  | { run: false; status: number; contentType: string | undefined; body: string }
  | { run: false; error: ApiError };

/** A JSON text of `value` with object keys sorted, so the same body in another key order is the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Idempotency keys of operator POSTs: the first request with a key runs and its answer is kept,
 * sealed, for 24 hours; a retry with the same key and operator token gets that answer again
 * (a new credential's secret included), the same key with another request a 422, and a retry
 * while the first still runs a 409.
 */
export class Idempotency {
  private readonly sealKey: Buffer;
  private readonly principalKey: Buffer;
  private lastPrune = 0;

  constructor(
    private readonly keys: IdempotencyKeyRepository,
    pepper: Buffer,
    private readonly clock: Clock,
  ) {
    // Own keys, derived from the pepper (which a master-key rotation keeps), so no key serves two
    // purposes and answers sealed before a rotation can still be replayed after it.
    this.sealKey = Buffer.from(hkdfSync('sha256', pepper, Buffer.alloc(0), 'portcullis/idempotency-seal/v1', 32));
    this.principalKey = Buffer.from(hkdfSync('sha256', pepper, Buffer.alloc(0), 'portcullis/idempotency-principal/v1', 32));
  }

  /** Who sent the request, as stored: an HMAC of the operator token, never the token. */
  principal(token: string): string {
    return createHmac('sha256', this.principalKey).update(token).digest('hex');
  }

  requestHash(method: string, url: string, body: unknown): string {
    return createHash('sha256')
      .update(`${method} ${url}\n${body === undefined ? '' : canonical(body)}`)
      .digest('hex');
  }

  /** Claims `key` for a request, or says what to answer instead of running it. */
  async begin(principal: string, key: string, requestHash: string): Promise<IdempotencyOutcome> {
    if (!WELL_FORMED.test(key)) {
      return {
        run: false,
        error: ApiError.validation('invalid-idempotency-key', 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces'),
      };
    }
    const now = this.clock.now();
    let found = await this.keys.claim(principal, key, requestHash, now);
    if (found !== 'claimed' && found.createdAt <= now - IDEMPOTENCY_WINDOW_MS) {
      await this.keys.release(principal, key, found.createdAt);
      found = await this.keys.claim(principal, key, requestHash, now);
    }
    if (found === 'claimed') return { run: true };
    return this.answerFor(found, requestHash, now);
  }

  private answerFor(record: IdempotencyRecord, requestHash: string, now: number): IdempotencyOutcome {
    if (record.requestHash !== requestHash) {
      return {
        run: false,
        error: new ApiError(
          422,
          'validation',
          'idempotency-key-reused',
          'Idempotency key reused',
          'this Idempotency-Key was used with another request (method, path or body) in the last 24 hours; use a new key for a new request',
        ),
      };
    }
    if (record.status === null || record.response === null) {
      if (record.createdAt > now - ABANDONED_MS) {
        return {
          run: false,
          error: ApiError.conflict('idempotency-key-in-use', 'the first request with this Idempotency-Key is still running; retry in a moment'),
        };
      }
      return {
        run: false,
        error: ApiError.conflict(
          'idempotency-outcome-unknown',
          'the first request with this Idempotency-Key was interrupted (its server stopped); it may or may not have taken effect: check, then retry with a new key',
        ),
      };
    }
    const stored = JSON.parse(unseal(this.sealKey, record.response, `${record.principal}:${record.key}`).toString('utf8')) as {
      contentType?: string;
      body: string;
    };
    return { run: false, status: record.status, contentType: stored.contentType, body: stored.body };
  }

  /** Keeps the answer of a request that ran. */
  finish(principal: string, key: string, status: number, contentType: string | undefined, body: string): Promise<void> {
    const sealed = seal(this.sealKey, Buffer.from(JSON.stringify({ contentType, body })), `${principal}:${key}`);
    return this.keys.complete(principal, key, status, sealed);
  }

  /** Frees a key whose request failed on the server's side, so a retry runs again. */
  abandon(principal: string, key: string): Promise<void> {
    return this.keys.release(principal, key);
  }

  /** Deletes keys older than the window, at most once per PRUNE_EVERY_MS. */
  async pruneIfDue(): Promise<number> {
    const now = this.clock.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return 0;
    this.lastPrune = now;
    return this.keys.prune(now - IDEMPOTENCY_WINDOW_MS);
  }
}

const claims = new WeakMap<FastifyRequest, { principal: string; key: string }>();

/**
 * Applies Idempotency-Key to every POST under `prefix` (the operator API). The hooks run after
 * the scope's own onRequest authentication, so only an authenticated operator claims keys.
 */
export function useIdempotency(app: FastifyInstance, idempotency: Idempotency, prefix = '/admin/v1/'): void {
  app.addHook('preHandler', async (request, reply) => {
    const header = request.headers['idempotency-key'];
    if (request.method !== 'POST' || header === undefined || !request.url.startsWith(prefix) || !request.routeOptions.url) return;
    const key = Array.isArray(header) ? '' : header;
    const token = (request.headers.authorization ?? '').replace(/^bearer\s+/i, '');
    const principal = idempotency.principal(token);
    idempotency.pruneIfDue().catch((err: unknown) => request.log.warn({ err }, 'could not prune idempotency keys'));
    const outcome = await idempotency.begin(principal, key, idempotency.requestHash(request.method, request.url, request.body));
    if (outcome.run) {
      claims.set(request, { principal, key });
      return;
    }
    if ('error' in outcome) {
      if (outcome.error.code === 'idempotency-key-in-use') reply.header('retry-after', '1');
      return sendApiError(reply, request, outcome.error);
    }
    reply.code(outcome.status).header('cache-control', 'no-store').header('idempotent-replayed', 'true');
    if (outcome.contentType) reply.header('content-type', outcome.contentType);
    return reply.send(outcome.body);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claim = claims.get(request);
    if (!claim) return payload;
    claims.delete(request);
    try {
      if (reply.statusCode >= 500 || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) {
        await idempotency.abandon(claim.principal, claim.key);
      } else {
        const contentType = reply.getHeader('content-type');
        await idempotency.finish(claim.principal, claim.key, reply.statusCode, typeof contentType === 'string' ? contentType : undefined, String(payload));
      }
    } catch (err) {
      // The answer still goes out; a retry with this key meets the unfinished claim and is told so.
      request.log.warn({ err }, 'could not keep the answer of an idempotent request');
    }
    return payload;
  });
}
