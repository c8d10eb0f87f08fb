import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

/**
 * ioredis, loaded on first use: a server without REDIS_URL never carries it (about 2 MB of heap
 * and 45 modules). The event bus, the rate-limit store and the beacon ledger all construct through it.
 */
export const loadRedis = (): typeof Redis => (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;
