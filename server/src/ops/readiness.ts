import { sql } from 'kysely';
import type { Bus } from '../bus/index.js';
import type { Clock } from '../domain/clock.js';
import type { KeyRing } from '../keys/keyring.js';
import type { Db } from '../store/db.js';

export type DependencyName = 'database' | 'redis';

export interface DependencyState {
  state: 'ok' | 'down';
  /** Shown in /readyz, which anyone may read: no address or driver message. */
  detail: string;
  /** The error that took it away, for the log line only. */
  reason?: string;
  /** When it entered this state (ms). */
  since: number;
}

export type ReadinessStatus = 'ready' | 'degraded' | 'draining' | 'unavailable';

export interface ReadinessReport {
  status: ReadinessStatus;
  /** 200 while the node can serve (`degraded` included); 503 when it cannot or is draining. */
  httpStatus: 200 | 503;
  body: Record<string, unknown>;
}

const PROBE_MS = 1_000;

/**
 * What this node depends on and whether it can serve: PostgreSQL (probed every second; SQLite
 * is in-process and never away), Redis (as the bus reports it), a signing key, and whether it is
 * draining. Tells the cache registry when the database is away and its listeners (logs, metrics)
 * of every change.
 */
export class Readiness {
  private readonly states = new Map<DependencyName, DependencyState>();
  private readonly listeners: Array<(name: DependencyName, state: DependencyState) => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private drainingSince: number | undefined;

  constructor(
    private readonly database: { db: Db; kind: 'postgresql' | 'sqlite' },
    private readonly bus: Bus,
    /** Whether Redis is configured (else events stay in-process and there is nothing to report). */
    redis: boolean,
    private readonly keys: KeyRing,
    private readonly clock: Clock,
  ) {
    this.states.set('database', { state: 'ok', detail: database.kind, since: clock.now() });
    if (redis) {
      const apply = (status: { state: 'ok' | 'down'; detail: string }) => this.set('redis', status.state, status.detail);
      this.states.set('redis', { ...bus.status(), since: clock.now() });
      bus.onStatusChange(apply);
    }
  }

  /** Starts probing PostgreSQL; a no-op on SQLite. */
  start(): void {
    if (this.database.kind !== 'postgresql') return;
    this.timer = setInterval(() => void this.probe(), PROBE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await sql`select 1`.execute(this.database.db);
      this.set('database', 'ok', this.database.kind);
    } catch (err) {
      this.set('database', 'down', 'unreachable', (err as Error).message);
    } finally {
      this.probing = false;
    }
  }

  private set(name: DependencyName, state: 'ok' | 'down', detail: string, reason?: string): void {
    const before = this.states.get(name);
    if (before?.state === state) return;
    const next: DependencyState = { state, detail, since: this.clock.now(), ...(reason ? { reason } : {}) };
    this.states.set(name, next);
    if (name === 'database') this.bus.caches.setDatabaseDown(state === 'down');
    for (const listener of this.listeners) listener(name, next);
  }

  /** Called on every change of a dependency's state. */
  onChange(listener: (name: DependencyName, state: DependencyState) => void): void {
    this.listeners.push(listener);
  }

  dependencies(): Array<[DependencyName, DependencyState]> {
    return [...this.states];
  }

  /** From now on `/readyz` answers 503, so load balancers stop sending traffic before the node closes. */
  drain(): void {
    this.drainingSince ??= this.clock.now();
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  report(): ReadinessReport {
    let canSign = true;
    try {
      this.keys.signingKey();
    } catch {
      canSign = false;
    }
    const down = [...this.states.values()].some((s) => s.state === 'down');
    const status: ReadinessStatus = this.draining ? 'draining' : !canSign ? 'unavailable' : down ? 'degraded' : 'ready';
    const freshness = this.bus.caches.freshness();
    const view = (s: DependencyState) => ({ state: s.state, detail: s.detail, since: new Date(s.since).toISOString() });
    const database = this.states.get('database') as DependencyState;
    const redis = this.states.get('redis');
    return {
      status,
      httpStatus: status === 'ready' || status === 'degraded' ? 200 : 503,
      body: {
        status,
        database: { kind: this.database.kind, ...view(database) },
        ...(redis ? { redis: view(redis) } : {}),
        signing_key: canSign ? 'loaded' : 'none active',
        caches: { max_age_ms: freshness.maxAgeMs, revalidate: freshness.revalidate },
      },
    };
  }
}
