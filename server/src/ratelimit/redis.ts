import type { Redis } from 'ioredis';
import { failFastRedis } from '../bus/redis-client.js';
import type { Clock } from '../domain/clock.js';
import { type RateLimitHit, type RateLimitStore, windowOf } from './store.js';

interface Counter {
  /** The window's count across every node, as Redis last told it (this node's pushed hits included). */
  known: number;
  /** This node's hits not yet pushed to Redis. */
  pending: number;
  resetAt: number;
  windowMs: number;
  /** When this node last counted or checked the key: idle keys are not synced. */
  usedAt: number;
}

const ACTIVE_MS = 1_000;

/**
 * Counters shared by every node through Redis, without a round trip per request: each node
 * counts in memory and every `syncMs` pushes its new hits (INCRBY, one pipeline for all keys)
 * and learns the totals. A key's count is the last total plus the hits since, so limits hold
 * across nodes to within about `syncMs` of traffic. When Redis is down the node goes on
 * counting alone, as the embedded default does, and catches up when it returns.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: Redis;
  private readonly counters = new Map<string, Counter>();
  private readonly timer: NodeJS.Timeout;
  private syncing: Promise<void> = Promise.resolve();

  constructor(
    url: string,
    private readonly clock: Clock,
    syncMs = 100,
    timeoutMs = 1_000,
  ) {
    this.redis = failFastRedis(url, timeoutMs); // counting goes on locally while Redis is away
    this.timer = setInterval(() => void this.sync(), syncMs);
    this.timer.unref();
  }

  /** The key's counter for the window starting at `start`; a key in use also tracks its previous window, which other nodes may have counted. */
  private counter(key: string, start: number, windowMs: number): Counter {
    const redisKey = `portcullis:rl:${key}:${start}`;
    let counter = this.counters.get(redisKey);
    if (!counter) {
      counter = { known: 0, pending: 0, resetAt: start + windowMs, windowMs, usedAt: 0 };
      this.counters.set(redisKey, counter);
    }
    counter.usedAt = this.clock.now();
    return counter;
  }

  private counts(key: string, windowMs: number): { current: Counter; previous: Counter } {
    const { start } = windowOf(this.clock.now(), windowMs);
    return { current: this.counter(key, start, windowMs), previous: this.counter(key, start - windowMs, windowMs) };
  }

  hit(key: string, windowMs: number, _limit: number): RateLimitHit {
    const { current, previous } = this.counts(key, windowMs);
    current.pending++;
    return { count: current.known + current.pending, previous: previous.known + previous.pending, resetAt: current.resetAt };
  }

  peek(key: string, windowMs: number): RateLimitHit {
    const { current, previous } = this.counts(key, windowMs);
    return { count: current.known + current.pending, previous: previous.known + previous.pending, resetAt: current.resetAt };
  }

  /** Keys held in memory: those counted or checked in their current or previous window. */
  get size(): number {
    return this.counters.size;
  }

  /** Pushes pending hits and reads back every live key's total; one sync at a time. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.push());
    return this.syncing;
  }

  private async push(): Promise<void> {
    const now = this.clock.now();
    for (const [redisKey, counter] of this.counters) if (counter.resetAt + counter.windowMs <= now) this.counters.delete(redisKey);
    // Keys with hits to push, and keys in use, whose totals other nodes may be moving.
    const batch = [...this.counters].filter(([, c]) => c.pending > 0 || now - c.usedAt < ACTIVE_MS);
    if (batch.length === 0) return;
    const pushed = batch.map(([, counter]) => counter.pending);
    const pipeline = this.redis.multi();
    for (const [redisKey, counter] of batch) {
      pipeline.incrby(redisKey, counter.pending).pexpireat(redisKey, counter.resetAt + counter.windowMs + 1_000);
    }
    try {
      const results = await pipeline.exec();
      batch.forEach(([, counter], i) => {
        const total = results?.[2 * i]?.[1];
        if (typeof total !== 'number') return;
        counter.pending -= pushed[i] ?? 0;
        counter.known = total;
      });
    } catch {
      // Redis is down or slow: the hits stay pending and count locally until a sync succeeds.
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sync().catch(() => {});
    this.redis.disconnect();
  }
}
