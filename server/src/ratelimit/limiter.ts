import type { FastifyReply } from 'fastify';
import { type RateLimitStore, windowOf } from './store.js';

export const MINUTE_MS = 60_000;

export interface RateLimitOutcome {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the window ends, ms since the epoch. */
  resetAt: number;
}

/** Counts calls per key and per minute, as the reference product states its limits. */
export class RateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    private readonly now: () => number,
  ) {}

  async take(key: string, perMinute: number): Promise<RateLimitOutcome> {
    const hit = await this.store.hit(key, MINUTE_MS, perMinute);
    return { allowed: hit.count <= perMinute, limit: perMinute, remaining: Math.max(0, perMinute - hit.count), resetAt: hit.resetAt };
  }

  /** Whether `key` has already used up `perMinute` in this window (nothing is counted). */
  async exhausted(key: string, perMinute: number): Promise<RateLimitOutcome | undefined> {
    const count = await this.store.peek(key, MINUTE_MS);
    if (count < perMinute) return undefined;
    return { allowed: false, limit: perMinute, remaining: 0, resetAt: windowOf(this.now(), MINUTE_MS).resetAt };
  }

  /** Seconds until the outcome's window ends (at least 1), for Retry-After. */
  retryAfter(outcome: RateLimitOutcome): number {
    return Math.max(1, Math.ceil((outcome.resetAt - this.now()) / 1000));
  }

  /** x-ratelimit-limit, -remaining, -reset (Unix seconds), and Retry-After when refused. */
  headers(reply: FastifyReply, outcome: RateLimitOutcome): void {
    reply.header('x-ratelimit-limit', outcome.limit);
    reply.header('x-ratelimit-remaining', outcome.remaining);
    reply.header('x-ratelimit-reset', Math.ceil(outcome.resetAt / 1000));
    if (!outcome.allowed) reply.header('retry-after', this.retryAfter(outcome));
  }
}
