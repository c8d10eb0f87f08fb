import type { Clock } from '../domain/clock.js';

export interface CacheOptions {
  /** After this age a hit is still served, and a background reload refreshes the entry. */
  freshMs: number;
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
 * A read-through cache in front of the store. Changes arrive as invalidations from the bus;
 * the age limit is only a safety net. A stale hit is served while a reload runs in the
 * background, so the hot path does not wait on the database in the steady state.
 */
export class ReadThroughCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly loading = new Map<K, Promise<V | undefined>>();
  private generation = 0;
  hits = 0;
  misses = 0;

  private freshMs: number;

  constructor(
    private readonly load: (key: K) => Promise<V | undefined>,
    private readonly clock: Clock,
    private readonly options: CacheOptions,
  ) {
    this.freshMs = options.freshMs;
  }

  /** Shortens (or restores) the age after which hits reload, e.g. while invalidation events cannot arrive. */
  setFreshMs(ms: number): void {
    this.freshMs = ms;
  }

  async get(key: K): Promise<V | undefined> {
    const entry = this.entries.get(key);
    if (entry) {
      const age = this.clock.now() - entry.loadedAt;
      if (entry.value !== undefined) {
        this.hits++;
        if (age > this.freshMs && !entry.refreshing) this.refresh(key, entry);
        return entry.value;
      }
      if (age <= Math.min(this.options.negativeMs, this.freshMs)) {
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
      pending = this.load(key).then(
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
}
