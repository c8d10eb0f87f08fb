import cluster from 'node:cluster';
import { readFileSync, statSync } from 'node:fs';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { VerifyOutcome } from '../access/verifier.js';
import type { CacheRegistry } from '../bus/caches.js';
import type { Checkpoint, Refusal } from '../http/bearer.js';
import type { AuthFailureReason } from '../directory/usage.js';
import type { Clock } from '../domain/clock.js';
import type { KeyRing } from '../keys/keyring.js';
import { type Db, poolOf } from '../store/db.js';
import { type HistogramSeries, RequestHistogram } from './histogram.js';
import type { Readiness } from './readiness.js';

/** What a token request ended in: `issued`, or the RFC 6749 error code (plus `rate_limited` for a 429). */
export const TOKEN_OUTCOMES = [
  'issued',
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'rate_limited',
  'temporarily_unavailable',
  'server_error',
  'other',
] as const;
export type TokenOutcome = (typeof TOKEN_OUTCOMES)[number];

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The Prometheus metrics of one server, in a registry of its own so several servers in one
 * process (tests) do not collide. Every label takes values from a fixed set or from route
 * patterns, never from client ids or raw URLs; gauges are computed when scraped, so the hot
 * path only increments counters.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Token answers by outcome, and bearer verifications by outcome: counted per request, read by prom-client when scraped. */
  private readonly tokenRequests: (outcome: string) => void;
  private readonly authFailures: Counter<'reason'>;
  private readonly verifications: (outcome: string) => void;
  private readonly refusals: Counter<'checkpoint' | 'reason'>;
  private readonly requestDuration: RequestHistogram;
  /** requestDuration's series by route, method and status class (status / 100), looked up without building a key. */
  private readonly durationSeries = new Map<string, Map<string, HistogramSeries[]>>();
  private readonly rateLimited: Counter<'route'>;
  private readonly writeFailures: Counter<'batch'>;
  private readonly failureSpikes: Counter;
  private readonly aborts: Counter<'route'>;
  private readonly dropped: Counter;
  private readonly passwordsRefused: Counter;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (cluster.isWorker) {
      // The primary asks every worker for its metrics (prom-client's listener) and aggregates them.
      AggregatorRegistry.setRegistries(this.registry);
      new AggregatorRegistry();
    }
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Zeros from the start, so a rate() over the first refusal is not lost.
    this.tokenRequests = tally(
      'portcullis_token_requests_total',
      'POST /oauth2/token answers: issued, or refused with the RFC 6749 error code (rate_limited for a 429)',
      'outcome',
      ['issued', 'invalid_client', 'invalid_request', 'rate_limited'],
      registers,
    );
    this.authFailures = new Counter({
      name: 'portcullis_client_authentication_failures_total',
      help: 'Failed client authentications (token, revocation and introspection endpoints) by reason',
      labelNames: ['reason'],
      registers,
    });
    this.verifications = tally(
      'portcullis_token_verifications_total',
      'Bearer (JWT) verifications by outcome: valid, or the reason the token was refused',
      'outcome',
      ['valid'],
      registers,
    );
    this.refusals = new Counter({
      name: 'portcullis_bearer_refusals_total',
      help: 'Requests refused by the bearer step (JWT or static token) or by the checkpoint after it, by checkpoint and reason',
      labelNames: ['checkpoint', 'reason'],
      registers,
    });
    this.requestDuration = new RequestHistogram(
      'portcullis_http_request_duration_seconds',
      'Time from request to response, by route pattern and status class',
      ['method', 'route', 'status_class'],
      LATENCY_BUCKETS,
      registers,
    );
    this.rateLimited = new Counter({
      name: 'portcullis_rate_limit_rejections_total',
      help: 'Requests refused with 429 by a rate limit, by route pattern',
      labelNames: ['route'],
      registers,
    });
    this.writeFailures = new Counter({
      name: 'portcullis_background_write_failures_total',
      help: 'Batched background writes (usage, counts, beacons, pruning) that failed and were kept for the next attempt',
      labelNames: ['batch'],
      registers,
    });
    for (const batch of ['credential_usage', 'static_token_usage', 'beacon_counts', 'token_counts', 'revoked_token_prune', 'retention_prune'])
      this.writeFailures.inc({ batch }, 0);
    this.failureSpikes = new Counter({
      name: 'portcullis_client_authentication_failure_spikes_total',
      help: 'Times one client_id crossed PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT failures in a minute (at most one a minute per client; each is also an audit event)',
      registers,
    });
    this.aborts = new Counter({
      name: 'portcullis_client_aborts_total',
      help: 'Requests the client abandoned before they were read or answered, by route pattern',
      labelNames: ['route'],
      registers,
    });
    this.dropped = new Counter({
      name: 'portcullis_connections_dropped_total',
      help: 'Connections closed at once because the process held PORTCULLIS_MAX_CONNECTIONS',
      registers,
    });
    this.passwordsRefused = new Counter({
      name: 'portcullis_password_hashing_rejections_total',
      help: 'Portal requests answered 503 because the password hashing queue was full',
      registers,
    });
    // Zeros from the start, so a rate() over the first refusal is not lost.
    for (const reason of ['unknown_client', 'bad_secret', 'deactivated']) this.authFailures.inc({ reason }, 0);
  }

  tokenRequest(outcome: TokenOutcome): void {
    this.tokenRequests(outcome);
  }

  failureSpike(): void {
    this.failureSpikes.inc();
  }

  clientAborted(route: string): void {
    this.aborts.inc({ route });
  }

  connectionDropped(): void {
    this.dropped.inc();
  }

  passwordHashingRefused(): void {
    this.passwordsRefused.inc();
  }

  authenticationFailed(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  verified(outcome: VerifyOutcome): void {
    this.verifications(outcome.ok ? 'valid' : outcome.reason);
  }

  backgroundWriteFailed(batch: string): void {
    this.writeFailures.inc({ batch });
  }

  bearerRefused(checkpoint: Checkpoint, reason: Refusal): void {
    this.refusals.inc({ checkpoint, reason });
  }

  /** One finished request: `route` is the matched pattern (or `unmatched`), never the URL. */
  request(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.durationSeries.get(route);
    if (!byMethod) {
      byMethod = new Map();
      this.durationSeries.set(route, byMethod);
    }
    let byClass = byMethod.get(method);
    if (!byClass) {
      byClass = [];
      byMethod.set(method, byClass);
    }
    const statusClass = Math.floor(status / 100);
    let series = byClass[statusClass];
    if (!series) {
      series = this.requestDuration.seriesOf([method, route, `${statusClass}xx`]);
      byClass[statusClass] = series;
    }
    series.observe(seconds);
    if (status === 429) this.rateLimited.inc({ route });
  }

  /** Hits, misses, entries and the hit ratio of every registered cache, read when scraped. */
  watchCaches(registry: CacheRegistry): void {
    const named = () => registry.list().map(({ name, cache }) => [name, cache.stats()] as const);
    const registers = [this.registry];
    new Counter({
      name: 'portcullis_cache_hits_total',
      help: 'Read-through cache hits (including remembered absences)',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of named()) this.inc({ cache }, c.hits);
      },
    });
    new Counter({
      name: 'portcullis_cache_misses_total',
      help: 'Cache misses: store reads (shared by concurrent callers); for whole-table caches, reloads',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of named()) this.inc({ cache }, c.misses);
      },
    });
    new Gauge({
      name: 'portcullis_cache_hit_ratio',
      help: 'Hits / (hits + misses) of keyed caches since the process started (1 before any lookup)',
      labelNames: ['cache'],
      registers,
      aggregator: 'average',
      collect() {
        for (const [cache, c] of named()) if (c.kind === 'keyed') this.set({ cache }, c.hits + c.misses === 0 ? 1 : c.hits / (c.hits + c.misses));
      },
    });
    new Gauge({
      name: 'portcullis_cache_entries',
      help: 'Entries held by each read-through cache',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, c] of named()) this.set({ cache }, c.entries);
      },
    });
  }

  /** The signing key's age (alert when it outgrows the rotation period) and the keys by status. */
  watchKeys(keys: KeyRing, clock: Clock): void {
    const registers = [this.registry];
    new Gauge({
      name: 'portcullis_signing_key_age_seconds',
      help: 'Seconds since the key that signs new tokens was created',
      registers,
      aggregator: 'max',
      collect() {
        const active = keys.list().find((k) => k.status === 'active');
        this.set(active ? Math.max(0, (clock.now() - active.createdAt) / 1000) : 0);
      },
    });
    new Gauge({
      name: 'portcullis_signing_keys',
      help: 'Signing keys by status (pending, active, retiring, expired)',
      labelNames: ['status'],
      registers,
      aggregator: 'max',
      collect() {
        const counts: Record<string, number> = { pending: 0, active: 0, retiring: 0, expired: 0 };
        for (const k of keys.list()) counts[k.status] = (counts[k.status] ?? 0) + 1;
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
  }

  /** Each dependency's state (1 reachable, 0 not) and, on PostgreSQL, the connection pool. */
  watchDependencies(readiness: Readiness, db: Db): void {
    const registers = [this.registry];
    new Gauge({
      name: 'portcullis_dependency_up',
      help: 'Whether a dependency is reachable (1) or not (0): database, redis',
      labelNames: ['dependency'],
      registers,
      aggregator: 'min',
      collect() {
        for (const [dependency, state] of readiness.dependencies()) this.set({ dependency }, state.state === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'portcullis_draining',
      help: '1 once the process has been asked to stop and /readyz answers 503',
      registers,
      aggregator: 'max',
      collect() {
        this.set(readiness.draining ? 1 : 0);
      },
    });
    const pool = poolOf(db);
    if (!pool) return;
    new Gauge({
      name: 'portcullis_db_pool_connections',
      help: 'PostgreSQL pool: connections open (total), idle, and requests waiting for one',
      labelNames: ['state'],
      registers,
      collect() {
        this.set({ state: 'total' }, pool.totalCount);
        this.set({ state: 'idle' }, pool.idleCount);
        this.set({ state: 'waiting' }, pool.waitingCount);
      },
    });
  }

  /**
   * Entries of the in-process tables that grow with traffic rather than with the data (rate-limit
   * keys, verified tokens, beacon sightings): each is bounded, and a slope here names the holder.
   */
  watchEntries(tables: Record<string, () => number>): void {
    new Gauge({
      name: 'portcullis_in_memory_entries',
      help: 'Entries held in memory by table: rate_limit_keys, verified_tokens, beacon_sightings',
      labelNames: ['table'],
      registers: [this.registry],
      collect() {
        for (const [table, size] of Object.entries(tables)) this.set({ table }, size());
      },
    });
  }

  /**
   * Memory beyond the V8 heap that prom-client's defaults already show: anonymous against
   * file-backed resident memory (Linux), array buffers, and the SQLite files' sizes, so an
   * operator can alert on a slope of the kind that grows.
   */
  watchMemory(sqliteFile: string | undefined): void {
    const registers = [this.registry];
    new Gauge({
      name: 'portcullis_process_memory_bytes',
      help: 'Resident memory of this process by kind: anonymous (heaps, caches) and file-backed (code, mapped files), from /proc on Linux',
      labelNames: ['kind'],
      registers,
      collect() {
        const resident = residentMemory();
        if (resident) for (const [kind, bytes] of Object.entries(resident)) this.set({ kind }, bytes);
      },
    });
    new Gauge({
      name: 'portcullis_process_array_buffers_bytes',
      help: 'Memory held by ArrayBuffers and Buffers (part of external memory)',
      registers,
      collect() {
        this.set(process.memoryUsage().arrayBuffers);
      },
    });
    if (!sqliteFile) return;
    new Gauge({
      name: 'portcullis_database_file_bytes',
      help: 'Size of the embedded SQLite database and its write-ahead log',
      labelNames: ['file'],
      registers,
      collect() {
        for (const [file, suffix] of [
          ['database', ''],
          ['wal', '-wal'],
        ] as const) {
          try {
            this.set({ file }, statSync(sqliteFile + suffix).size);
          } catch {
            this.set({ file }, 0);
          }
        }
      },
    });
  }

  contentType(): string {
    return this.registry.contentType;
  }

  /** This process's metrics; in a cluster worker, every worker's, aggregated by the primary. */
  render(): Promise<string> {
    if (cluster.isWorker && process.send) return fromPrimary().catch(() => this.registry.metrics());
    return this.registry.metrics();
  }
}

const ASK = 'portcullis:metrics-request';
const ANSWER = 'portcullis:metrics-answer';
let asked = 0;

/** Asks the primary for every worker's metrics, aggregated (one series per metric and label set). */
function fromPrimary(): Promise<string> {
  const id = ++asked;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('the primary did not answer')), 5_000);
    const onMessage = (message: { type?: string; id?: number; text?: string; error?: string }) => {
      if (message?.type !== ANSWER || message.id !== id) return;
      finish(message.error ? new Error(message.error) : undefined, message.text);
    };
    const finish = (err: Error | undefined, text?: string) => {
      clearTimeout(timer);
      process.off('message', onMessage);
      if (err) reject(err);
      else resolve(text ?? '');
    };
    process.on('message', onMessage);
    process.send?.({ type: ASK, id });
  });
}

/** In the primary of PORTCULLIS_WORKERS: answers a worker's scrape with every worker's metrics aggregated. */
export function aggregateWorkerMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== ASK) return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: ANSWER, id: message.id, text }),
      (err: Error) => worker.send({ type: ANSWER, id: message.id, error: err.message }),
    );
  });
}

/** Anonymous and file-backed resident bytes from /proc/self/status, or undefined off Linux. */
function residentMemory(): { anonymous: number; file: number } | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { anonymous: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}

/**
 * A counter with one label for a per-request path: the returned function counts one call for a
 * label value in a Map (no labels object to validate and hash per call); prom-client reads the
 * totals when scraped. `zeros` are shown from the start.
 */
function tally(name: string, help: string, label: string, zeros: readonly string[], registers: Registry[]): (value: string) => void {
  const counts = new Map<string, number>(zeros.map((value) => [value, 0]));
  new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect() {
      this.reset();
      for (const [value, n] of counts) this.inc({ [label]: value }, n);
    },
  });
  return (value) => {
    counts.set(value, (counts.get(value) ?? 0) + 1);
  };
}
