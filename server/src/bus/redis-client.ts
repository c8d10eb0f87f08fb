import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/**
 * ioredis, loaded on first use: a server without REDIS_URL never carries it (about 2 MB of heap
 * and 45 modules). The event bus, the rate-limit store and the beacon ledger all construct through it.
 */
export const loadRedis = (): typeof Redis => (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;

/**
 * A Redis client for a caller that answers from memory while Redis is away (the rate-limit store,
 * the beacon ledger): commands fail at once instead of queueing, each waits at most `timeoutMs`,
 * reconnection backs off to 2 s, and connection errors are not thrown (the caller's local answer covers them).
 */
export function failFastRedis(url: string, timeoutMs: number): Redis {
  const redis = new (loadRedis())(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000),
  });
  redis.on('error', () => {});
  return redis;
}
