import type { FastifyReply } from 'fastify';
import { type RateLimitHit, type RateLimitStore, windowOf } from './store.js';

export const MINUTE_MS = 60_000;

export interface RateLimitOutcome {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the caller may try again (the window's end for fixed windows), ms since the epoch. */
  resetAt: number;
}

/**
 * The count of a sliding window of `windowMs` ending now: the current fixed window's count plus
 * the share of the previous window that still lies within it. No key resets at an aligned instant.
 */
export function slidingCount(hit: RateLimitHit, windowMs: number, now: number): number {
  const elapsed = now - (hit.resetAt - windowMs);
  return hit.previous * Math.max(0, 1 - elapsed / windowMs) + hit.count;
}

/** Milliseconds until the sliding count falls below `limit` if nothing more is counted (0 when it already is). */
export function slidingWait(hit: RateLimitHit, windowMs: number, limit: number, now: number): number {
  const elapsed = now - (hit.resetAt - windowMs);
  if (hit.count < limit) {
    if (hit.previous <= limit - hit.count) return 0;
    return Math.max(0, Math.ceil(windowMs * (1 - (limit - hit.count) / hit.previous) - elapsed) + 1);
  }
  return Math.ceil(windowMs - elapsed + windowMs * (1 - limit / hit.count)) + 1;
}

/** Counts calls per key: per-minute fixed windows for quotas, sliding windows for failure counts. */
export class RateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    private readonly now: () => number,
  ) {}

  /** Counts a call against a per-minute quota (the reference product states its limits per minute). */
  take(key: string, perMinute: number): RateLimitOutcome {
    const hit = this.store.hit(key, MINUTE_MS, perMinute);
    return { allowed: hit.count <= perMinute, limit: perMinute, remaining: Math.max(0, perMinute - hit.count), resetAt: hit.resetAt };
  }

  /** Whether `key` has already used up `perMinute` in this window (nothing is counted). */
  exhausted(key: string, perMinute: number): RateLimitOutcome | undefined {
    const count = this.store.peek(key, MINUTE_MS).count;
    if (count < perMinute) return undefined;
    return { allowed: false, limit: perMinute, remaining: 0, resetAt: windowOf(this.now(), MINUTE_MS).resetAt };
  }

  /** Counts one event (a failure, a sign-up) in a sliding window and returns the window's count, this one included. */
  count(key: string, windowMs: number): number {
    return slidingCount(this.store.hit(key, windowMs, 0), windowMs, this.now());
  }

  /** The sliding window's count for `key`, without counting. */
  counted(key: string, windowMs: number): number {
    return slidingCount(this.store.peek(key, windowMs), windowMs, this.now());
  }

  /** A refusal when `key` has `limit` or more events in its sliding window, with when to retry; else undefined. */
  over(key: string, windowMs: number, limit: number): RateLimitOutcome | undefined {
    const hit = this.store.peek(key, windowMs);
    const now = this.now();
    if (slidingCount(hit, windowMs, now) < limit) return undefined;
    return { allowed: false, limit, remaining: 0, resetAt: now + slidingWait(hit, windowMs, limit, now) };
  }

  /** Seconds until the outcome's window ends (at least 1), for Retry-After. */
  retryAfter(outcome: RateLimitOutcome): number {
    return Math.max(1, Math.ceil((outcome.resetAt - this.now()) / 1000));
  }

  /** x-ratelimit-limit, -remaining, -reset (Unix seconds), and Retry-After when refused. */
  headers(reply: Pick<FastifyReply, 'header'> | { setHeader(name: string, value: number): unknown }, outcome: RateLimitOutcome): void {
    // A Fastify reply, or a raw ServerResponse (the gateway answers outside Fastify).
    const set =
      'setHeader' in reply ? (name: string, value: number) => reply.setHeader(name, value) : (name: string, value: number) => reply.header(name, value);
    set('x-ratelimit-limit', outcome.limit);
    set('x-ratelimit-remaining', outcome.remaining);
    set('x-ratelimit-reset', Math.ceil(outcome.resetAt / 1000));
    if (!outcome.allowed) set('retry-after', this.retryAfter(outcome));
  }
}
