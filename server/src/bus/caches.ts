import type { BusEvent, BusListener } from './events.js';

export type BusEventType = BusEvent['type'];
type EventOf<T extends BusEventType> = Extract<BusEvent, { type: T }>;

/** What an event does to a cache: one key is re-read, or everything is. */
export type Invalidation<K> = { key: K } | 'all';

/** The events that invalidate a cache, each with how: `{ key }` for one entry, `'all'` for the whole cache. */
export type InvalidatedBy<K> = { [T in BusEventType]?: (event: EventOf<T>) => Invalidation<K> };

/** How fresh every registered cache must be; the registry sets it, the same for all of them. */
export interface Freshness {
  /** Past this age a cached value is re-read (whole-table caches reload on this period). */
  maxAgeMs: number;
  /**
   * True while events may be missed (Redis away) and the database answers: a value past its age
   * is re-read before it is served. False: it is served while a background read refreshes it.
   */
  revalidate: boolean;
}

export interface CacheStats {
  /** `keyed` caches read rows on a miss; `whole-table` ones hold a whole table (every lookup a hit, misses are reloads). */
  kind: 'keyed' | 'whole-table';
  hits: number;
  misses: number;
  entries: number;
}

/** What the registry needs of a cache: drop one key, drop (or reload) everything, obey the freshness rule. */
export interface RegisteredCache<K> {
  invalidate(key: K): void;
  clear(): void;
  setFreshness(freshness: Freshness): void;
  stats(): CacheStats;
  /** Stops timers, if the cache has any. */
  stop?(): void;
}

export interface FreshnessRule {
  /** While events arrive: the safety net for a missed one. */
  normalMs: number;
  /** While events cannot arrive: how stale any access decision may be. */
  degradedMs: number;
}

export const DEFAULT_FRESHNESS: FreshnessRule = { normalMs: 30_000, degradedMs: 1_000 };

interface Registration {
  name: string;
  cache: RegisteredCache<unknown>;
  invalidatedBy: InvalidatedBy<unknown>;
}

/**
 * The one owner of cache freshness, held by the event layer. Every read-through cache registers
 * here with the events that invalidate it; the registry routes events to them, applies the same
 * freshness rule to all (short, and re-read before use, while Redis is away) and makes them all
 * resync when events may have been missed. No cache subscribes to the bus on its own.
 */
export class CacheRegistry {
  private readonly registrations: Registration[] = [];
  private eventsDown = false;
  private databaseDown = false;

  constructor(private readonly rule: FreshnessRule = DEFAULT_FRESHNESS) {}

  /** Registers a cache under a unique name (its metrics label); returns the cache. */
  register<K, C extends RegisteredCache<K>>(name: string, cache: C, invalidatedBy: InvalidatedBy<K>): C {
    if (this.registrations.some((r) => r.name === name)) throw new Error(`a cache named ${name} is registered already`);
    this.registrations.push({ name, cache: cache as RegisteredCache<unknown>, invalidatedBy: invalidatedBy as InvalidatedBy<unknown> });
    cache.setFreshness(this.freshness());
    return cache;
  }

  /** The bus delivers every event here (its own and other nodes'), and `resync` when events may have been lost. */
  readonly deliver: BusListener = (event) => {
    if (event.type === 'resync' || event.type === 'caches.resync') {
      for (const r of this.registrations) r.cache.clear();
      return;
    }
    for (const r of this.registrations) {
      const how = (r.invalidatedBy[event.type] as ((e: BusEvent) => Invalidation<unknown>) | undefined)?.(event);
      if (how === undefined) continue;
      if (how === 'all') r.cache.clear();
      else r.cache.invalidate(how.key);
    }
  };

  /** The bus reports whether events from other nodes can arrive. */
  setEventsDown(down: boolean): void {
    if (down === this.eventsDown) return;
    this.eventsDown = down;
    this.apply();
  }

  /** The database monitor reports whether the store answers; when it does not, re-reading first would only add waits. */
  setDatabaseDown(down: boolean): void {
    if (down === this.databaseDown) return;
    this.databaseDown = down;
    this.apply();
  }

  freshness(): Freshness {
    return {
      maxAgeMs: this.eventsDown ? this.rule.degradedMs : this.rule.normalMs,
      revalidate: this.eventsDown && !this.databaseDown,
    };
  }

  private apply(): void {
    const freshness = this.freshness();
    for (const r of this.registrations) r.cache.setFreshness(freshness);
  }

  /** Every registered cache by name, for metrics. */
  list(): Array<{ name: string; cache: RegisteredCache<unknown> }> {
    return this.registrations.map((r) => ({ name: r.name, cache: r.cache }));
  }

  stop(): void {
    for (const r of this.registrations) r.cache.stop?.();
  }
}
