import type { Clock } from '../domain/clock.js';

/** One counted call: how many calls the key has made in the current window, and when it ends (ms). */
export interface RateLimitHit {
  count: number;
  resetAt: number;
}

/**
 * Fixed-window counters shared by every node that uses the same store. The embedded default is
 * in memory; a fleet plugs in a Redis store with the same two methods.
 */
export interface RateLimitStore {
  /** Counts one call for `key` in the current window of `windowMs` and returns the window's count. */
  hit(key: string, windowMs: number, limit: number): Promise<RateLimitHit>;
  /** The current window's count for `key`, without counting a call. */
  peek(key: string, windowMs: number): Promise<number>;
  close(): Promise<void>;
}

/** Windows are aligned to multiples of their length, so every store agrees on when one ends. */
export function windowOf(now: number, windowMs: number): { start: number; resetAt: number } {
  const start = Math.floor(now / windowMs) * windowMs;
  return { start, resetAt: start + windowMs };
}

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { resetAt: number; count: number }>();
  private nextSweepAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  async hit(key: string, windowMs: number, _limit: number): Promise<RateLimitHit> {
    const now = this.clock.now();
    // Ended windows are dropped once per window length, so the map holds the keys seen in the
    // last window or two (not every client_id since start, up to maxKeys, as credentials churn).
    if (now >= this.nextSweepAt) {
      this.dropEnded(now);
      this.nextSweepAt = now + windowMs;
    }
    let entry = this.windows.get(key);
    if (!entry || entry.resetAt <= now) {
      if (!entry && this.windows.size >= this.maxKeys) this.sweep(now);
      entry = { resetAt: windowOf(now, windowMs).resetAt, count: 0 };
      this.windows.set(key, entry);
    }
    entry.count++;
    return { count: entry.count, resetAt: entry.resetAt };
  }

  async peek(key: string, _windowMs: number): Promise<number> {
    const entry = this.windows.get(key);
    return entry && entry.resetAt > this.clock.now() ? entry.count : 0;
  }

  /** Keys held (live windows, and ended ones not yet swept). */
  get size(): number {
    return this.windows.size;
  }

  private dropEnded(now: number): void {
    for (const [key, entry] of this.windows) if (entry.resetAt <= now) this.windows.delete(key);
  }

  /** Drops ended windows; if every window is live, the oldest key goes (a bounded map, never unbounded growth). */
  private sweep(now: number): void {
    this.dropEnded(now);
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}
