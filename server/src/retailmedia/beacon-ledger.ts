import type { Redis } from 'ioredis';
import { failFastRedis } from '../bus/redis-client.js';
import type { Clock } from '../domain/clock.js';

/** Which (impression, beacon) pairs have been counted, until the beacon expires: a replay counts nothing. */
export interface BeaconLedger {
  /** True the first time `key` is seen before `expiresAt` (ms); false for a replay. */
  firstSighting(key: string, expiresAt: number): Promise<boolean>;
  close(): Promise<void>;
}

const BUCKET_MS = 60_000;

/**
 * In-memory ledger for one node: keys sit in one-minute buckets by expiry, a bucket is dropped
 * whole once it has expired, and past `maxEntries` the soonest-expiring bucket goes first
 * (so memory is bounded; a replay of an evicted beacon could then count again, which the
 * `evicted` counter shows).
 */
export class MemoryBeaconLedger implements BeaconLedger {
  private readonly buckets = new Map<number, Set<string>>();
  private entries = 0;
  evicted = 0;

  constructor(
    private readonly clock: Clock,
    readonly maxEntries = 1_000_000,
  ) {}

  async firstSighting(key: string, expiresAt: number): Promise<boolean> {
    return this.firstSightingNow(key, expiresAt);
  }

  firstSightingNow(key: string, expiresAt: number): boolean {
    const bucket = Math.ceil(expiresAt / BUCKET_MS);
    let keys = this.buckets.get(bucket);
    if (keys?.has(key)) return false;
    this.dropExpired();
    if (this.entries >= this.maxEntries) this.dropSoonest();
    if (!keys) {
      keys = new Set();
      this.buckets.set(bucket, keys);
    }
    keys.add(key);
    this.entries++;
    return true;
  }

  get size(): number {
    return this.entries;
  }

  private dropExpired(): void {
    const current = Math.floor(this.clock.now() / BUCKET_MS);
    for (const [bucket, keys] of this.buckets) {
      if (bucket >= current) continue;
      this.entries -= keys.size;
      this.buckets.delete(bucket);
    }
  }

  private dropSoonest(): void {
    let soonest: number | undefined;
    for (const bucket of this.buckets.keys()) if (soonest === undefined || bucket < soonest) soonest = bucket;
    if (soonest === undefined) return;
    const keys = this.buckets.get(soonest) as Set<string>;
    this.entries -= keys.size;
    this.evicted += keys.size;
    this.buckets.delete(soonest);
  }

  async close(): Promise<void> {}
}

/**
 * Ledger shared by every node through Redis: `SET key 1 NX PXAT expiry`, one round trip per
 * beacon. While Redis cannot answer, the node falls back to its own memory ledger (a replay
 * sent to two nodes during an outage could then count twice).
 */
export class RedisBeaconLedger implements BeaconLedger {
  private readonly redis: Redis;
  private readonly local: MemoryBeaconLedger;

  constructor(url: string, clock: Clock, timeoutMs = 1_000) {
    this.redis = failFastRedis(url, timeoutMs); // the local ledger answers while Redis is away
    this.local = new MemoryBeaconLedger(clock);
  }

  async firstSighting(key: string, expiresAt: number): Promise<boolean> {
    try {
      return (await this.redis.set(`portcullis:beacon:${key}`, '1', 'PXAT', expiresAt, 'NX')) === 'OK';
    } catch {
      return this.local.firstSightingNow(key, expiresAt);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
