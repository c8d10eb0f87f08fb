import type { FastifyReply } from 'fastify';
import type { RateLimitStore } from './store.js';

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

  /** x-ratelimit-limit, -remaining, -reset (Unix seconds), and Retry-After when refused. */
  headers(reply: FastifyReply, outcome: RateLimitOutcome): void {
    reply.header('x-ratelimit-limit', outcome.limit);
    reply.header('x-ratelimit-remaining', outcome.remaining);
    reply.header('x-ratelimit-reset', Math.ceil(outcome.resetAt / 1000));
    if (!outcome.allowed) reply.header('retry-after', Math.max(1, Math.ceil((outcome.resetAt - this.now()) / 1000)));
  }
}
