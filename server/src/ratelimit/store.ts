import type { Clock } from '../domain/clock.js';

/** A key's counts: the current window's (this call included, for a hit), the previous window's, and when the current one ends (ms). */
export interface RateLimitHit {
  count: number;
  previous: number;
  resetAt: number;
}

/**
 * Fixed-window counters shared by every node that uses the same store. The embedded default is
 * in memory; a fleet plugs in a Redis store with the same methods. Both answer from memory at
 * once (Redis totals are exchanged in the background), so the hot path never waits on I/O.
 * Each key also remembers the previous window's count, so callers can weigh a sliding window
 * and nobody's limit resets at the same aligned instant.
 */
export interface RateLimitStore {
  /** Counts one call for `key` in the current window of `windowMs`. */
  hit(key: string, windowMs: number, limit: number): RateLimitHit;
  /** The counts for `key`, without counting a call. */
  peek(key: string, windowMs: number): RateLimitHit;
  /** Keys held in memory (for the metrics). */
  readonly size: number;
  close(): Promise<void>;
}

/** Windows are aligned to multiples of their length, so every store agrees on when one ends. */
export function windowOf(now: number, windowMs: number): { start: number; resetAt: number } {
  const start = Math.floor(now / windowMs) * windowMs;
  return { start, resetAt: start + windowMs };
}

interface Entry {
  windowMs: number;
  resetAt: number;
  count: number;
  previous: number;
}

/** How often the in-memory store drops idle keys: the shortest window in use (a minute). */
export const SWEEP_EVERY_MS = 60_000;

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, Entry>();
  private nextSweepAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** The key's entry moved to the current window (its last window's count kept as `previous` when adjacent). */
  private current(key: string, windowMs: number, create: boolean): Entry | undefined {
    const now = this.clock.now();
    // Idle keys are dropped once a minute whatever the window of the key that happens to trigger
    // the sweep (an hour-long sign-up window once postponed every sweep by an hour), so the map
    // holds the keys seen in their last two windows, not every client_id since start.
    if (now >= this.nextSweepAt) {
      this.dropIdle(now);
      this.nextSweepAt = now + SWEEP_EVERY_MS;
    }
    let entry = this.windows.get(key);
    if (entry && entry.resetAt <= now) {
      const { resetAt } = windowOf(now, windowMs);
      entry.previous = entry.resetAt === resetAt - windowMs ? entry.count : 0;
      entry.count = 0;
      entry.resetAt = resetAt;
    }
    if (!entry && create) {
      if (this.windows.size >= this.maxKeys) this.sweep(now);
      entry = { windowMs, resetAt: windowOf(now, windowMs).resetAt, count: 0, previous: 0 };
      this.windows.set(key, entry);
    }
    return entry;
  }

  hit(key: string, windowMs: number, _limit: number): RateLimitHit {
    const entry = this.current(key, windowMs, true) as Entry;
    entry.count++;
    return { count: entry.count, previous: entry.previous, resetAt: entry.resetAt };
  }

  peek(key: string, windowMs: number): RateLimitHit {
    const entry = this.current(key, windowMs, false);
    return entry
      ? { count: entry.count, previous: entry.previous, resetAt: entry.resetAt }
      : { count: 0, previous: 0, resetAt: windowOf(this.clock.now(), windowMs).resetAt };
  }

  /** Keys held (live windows, and idle ones not yet swept). */
  get size(): number {
    return this.windows.size;
  }

  /** Drops keys idle for two windows: neither their count nor, as `previous`, the sliding window needs them. */
  private dropIdle(now: number): void {
    for (const [key, entry] of this.windows) if (entry.resetAt + entry.windowMs <= now) this.windows.delete(key);
  }

  /** Drops idle keys; if every key is live, the oldest goes (a bounded map, never unbounded growth). */
  private sweep(now: number): void {
    this.dropIdle(now);
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}
