import { readFileSync, statSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { VerifyOutcome } from '../access/verifier.js';
import type { ReadThroughCache } from '../directory/cache.js';
import type { AuthFailureReason } from '../directory/usage.js';
import type { Clock } from '../domain/clock.js';
import type { KeyRing } from '../keys/keyring.js';

/** What a token request ended in: `issued`, or the RFC 6749 error code (plus `rate_limited` for a 429). */
export const TOKEN_OUTCOMES = [
  'issued',
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
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
  private readonly tokenRequests: Counter<'outcome'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly verifications: Counter<'outcome'>;
  private readonly requestDuration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly rateLimited: Counter<'route'>;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.tokenRequests = new Counter({
      name: 'portcullis_token_requests_total',
      help: 'POST /oauth2/token answers: issued, or refused with the RFC 6749 error code (rate_limited for a 429)',
      labelNames: ['outcome'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'portcullis_client_authentication_failures_total',
      help: 'Failed client authentications (token, revocation and introspection endpoints) by reason',
      labelNames: ['reason'],
      registers,
    });
    this.verifications = new Counter({
      name: 'portcullis_token_verifications_total',
      help: 'Bearer (JWT) verifications by outcome: valid, or the reason the token was refused',
      labelNames: ['outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'portcullis_http_request_duration_seconds',
      help: 'Time from request to response, by route pattern and status class',
      labelNames: ['method', 'route', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.rateLimited = new Counter({
      name: 'portcullis_rate_limit_rejections_total',
      help: 'Requests refused with 429 by a rate limit, by route pattern',
      labelNames: ['route'],
      registers,
    });
    // Zeros from the start, so a rate() over the first refusal is not lost.
    for (const outcome of ['issued', 'invalid_client', 'invalid_request', 'rate_limited']) this.tokenRequests.inc({ outcome }, 0);
    for (const reason of ['unknown_client', 'bad_secret', 'deactivated']) this.authFailures.inc({ reason }, 0);
    this.verifications.inc({ outcome: 'valid' }, 0);
  }

  tokenRequest(outcome: TokenOutcome): void {
    this.tokenRequests.inc({ outcome });
  }

  authenticationFailed(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  verified(outcome: VerifyOutcome): void {
    this.verifications.inc({ outcome: outcome.ok ? 'valid' : outcome.reason });
  }

  /** One finished request: `route` is the matched pattern (or `unmatched`), never the URL. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.requestDuration.observe({ method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
    if (status === 429) this.rateLimited.inc({ route });
  }

  /** Hits, misses, entries and the hit ratio of the named read-through caches, read when scraped. */
  watchCaches(caches: Record<string, ReadThroughCache<unknown, unknown>>): void {
    const named = Object.entries(caches);
    const registers = [this.registry];
    new Counter({
      name: 'portcullis_cache_hits_total',
      help: 'Read-through cache hits (including remembered absences)',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of named) this.inc({ cache }, c.hits);
      },
    });
    new Counter({
      name: 'portcullis_cache_misses_total',
      help: 'Read-through cache misses (each one a store read, shared by concurrent callers)',
      labelNames: ['cache'],
      registers,
      collect() {
        this.reset();
        for (const [cache, c] of named) this.inc({ cache }, c.misses);
      },
    });
    new Gauge({
      name: 'portcullis_cache_hit_ratio',
      help: 'Hits / (hits + misses) since the process started (1 before any lookup)',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, c] of named) this.set({ cache }, c.hits + c.misses === 0 ? 1 : c.hits / (c.hits + c.misses));
      },
    });
    new Gauge({
      name: 'portcullis_cache_entries',
      help: 'Entries held by each read-through cache',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, c] of named) this.set({ cache }, c.size);
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
      collect() {
        const counts: Record<string, number> = { pending: 0, active: 0, retiring: 0, expired: 0 };
        for (const k of keys.list()) counts[k.status] = (counts[k.status] ?? 0) + 1;
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
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

  render(): Promise<string> {
    return this.registry.metrics();
  }
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
