import { Redis } from 'ioredis';
import type { Clock } from '../domain/clock.js';
import { MemoryRateLimitStore, type RateLimitHit, type RateLimitStore, windowOf } from './store.js';

/**
 * Counters in Redis, so every node counts against the same window. A call waits at most
 * `timeoutMs` for Redis; when Redis is down or slow this node counts on its own (as the
 * embedded default does) rather than refusing or stalling traffic.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: Redis;
  private readonly local: MemoryRateLimitStore;

  constructor(
    url: string,
    private readonly clock: Clock,
    timeoutMs = 250,
  ) {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000),
    });
    this.redis.on('error', () => {}); // the fallback covers it
    this.local = new MemoryRateLimitStore(clock);
  }

  async hit(key: string, windowMs: number, limit: number): Promise<RateLimitHit> {
    const { start, resetAt } = windowOf(this.clock.now(), windowMs);
    const redisKey = `portcullis:rl:${key}:${start}`;
    try {
      const results = await this.redis
        .multi()
        .incr(redisKey)
        .pexpireat(redisKey, resetAt + 1_000)
        .exec();
      const count = results?.[0]?.[1];
      if (typeof count !== 'number') throw new Error('unexpected answer from redis');
      return { count, resetAt };
    } catch {
      return this.local.hit(key, windowMs, limit);
    }
  }

  async peek(key: string, windowMs: number): Promise<number> {
    const { start } = windowOf(this.clock.now(), windowMs);
    try {
      return Number((await this.redis.get(`portcullis:rl:${key}:${start}`)) ?? 0);
    } catch {
      return this.local.peek(key, windowMs);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    await this.local.close();
  }
}
