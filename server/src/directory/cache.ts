import { type CacheStats, DEFAULT_FRESHNESS, type Freshness, type RegisteredCache } from '../bus/caches.js';
import type { Clock } from '../domain/clock.js';

export interface CacheOptions {
  /** How long an absent row is remembered, so unknown keys do not reach the store each time. */
  negativeMs: number;
  maxEntries: number;
}

interface Entry<V> {
  value: V | undefined;
  loadedAt: number;
  refreshing: boolean;
}

/**
 * A read-through cache in front of the store, registered with the event layer's cache registry,
 * which invalidates its entries on events and sets its freshness. Normally a value past its age is
 * served while a background read refreshes it, so the hot path does not wait on the database;
 * while events may be missed it is re-read first (and served stale only if the read fails).
 */
export class ReadThroughCache<K, V> implements RegisteredCache<K> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly loading = new Map<K, Promise<V | undefined>>();
  private generation = 0;
  private freshness: Freshness = { maxAgeMs: DEFAULT_FRESHNESS.normalMs, revalidate: false };
  hits = 0;
  misses = 0;

  constructor(
    private readonly load: (key: K) => Promise<V | undefined>,
    private readonly clock: Clock,
    private readonly options: CacheOptions,
  ) {}

  setFreshness(freshness: Freshness): void {
    this.freshness = freshness;
  }

  /**
   * The value for `key`: from memory when it can be answered now (the value itself, so a hot-path
   * caller need not wait a turn for a promise), else a promise of the store's answer.
   */
  get(key: K): V | undefined | Promise<V | undefined> {
    const entry = this.entries.get(key);
    if (entry) {
      const age = this.clock.now() - entry.loadedAt;
      const { maxAgeMs, revalidate } = this.freshness;
      if (entry.value !== undefined) {
        this.hits++;
        if (age <= maxAgeMs) return entry.value;
        if (revalidate) return this.fetch(key).catch(() => entry.value);
        if (!entry.refreshing) this.refresh(key, entry);
        return entry.value;
      }
      if (age <= Math.min(this.options.negativeMs, maxAgeMs)) {
        this.hits++;
        return undefined;
      }
    }
    this.misses++;
    return this.fetch(key);
  }

  private fetch(key: K): Promise<V | undefined> {
    let pending = this.loading.get(key);
    if (!pending) {
      const generation = this.generation;
      let loaded: Promise<V | undefined>;
      try {
        loaded = this.load(key);
      } catch (err) {
        // get() answers a miss with a promise, so a loader that throws does not throw at the caller.
        loaded = Promise.reject(err);
      }
      pending = loaded.then(
        (value) => {
          this.loading.delete(key);
          // An invalidation during the load means the value may predate the change: do not keep it.
          if (generation === this.generation) this.put(key, value);
          return value;
        },
        (err: unknown) => {
          this.loading.delete(key);
          throw err;
        },
      );
      this.loading.set(key, pending);
    }
    return pending;
  }

  private refresh(key: K, entry: Entry<V>): void {
    entry.refreshing = true;
    this.fetch(key).catch(() => {
      // Keep serving the stale value; the next hit tries again.
      entry.refreshing = false;
    });
  }

  private put(key: K, value: V | undefined): void {
    this.entries.delete(key);
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, loadedAt: this.clock.now(), refreshing: false });
  }

  invalidate(key: K): void {
    this.generation++;
    this.entries.delete(key);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): CacheStats {
    return { kind: 'keyed', hits: this.hits, misses: this.misses, entries: this.entries.size };
  }
}

/**
 * A whole table held in memory (signing keys, gateway routes, revoked tokens), registered with
 * the cache registry: any invalidating event reloads it whole, and it reloads on the registry's
 * freshness period. Reloads run one at a time; one asked for during a reload runs after it, since
 * the running one may have read the rows before the change.
 */
export class WholeTableCache implements RegisteredCache<unknown> {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private periodMs = 0;
  reloads = 0;

  constructor(
    private readonly loadAll: () => Promise<void>,
    private readonly entries: () => number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Reloads now (or right after the reload in progress); resolves when the table is current. */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          this.reloads++;
          await this.loadAll();
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  invalidate(): void {
    this.reload().catch(this.onError);
  }

  clear(): void {
    this.reload().catch(this.onError);
  }

  setFreshness(freshness: Freshness): void {
    if (freshness.maxAgeMs === this.periodMs) return;
    this.periodMs = freshness.maxAgeMs;
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.reload().catch(this.onError), freshness.maxAgeMs);
    this.timer.unref();
  }

  stats(): CacheStats {
    return { kind: 'whole-table', hits: 0, misses: this.reloads, entries: this.entries() };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
