import { TokenVerificationError } from './errors.js';
import type { FetchLike } from './discovery.js';

/** Options of the revocation feed a verifier follows (`revocations` in {@link VerifierOptions}). */
export interface RevocationOptions {
  /** The feed's address; by default the issuer metadata's `revocations_uri` (Portcullis serves it at `/oauth2/revocations`). */
  uri?: string;
  /** How often the feed is polled, in seconds. Default 5, so a revoked token is refused within about 5 s. */
  intervalSeconds?: number;
  /**
   * When the feed could not be read for this many seconds, tokens are refused with 503
   * (`revocations_unavailable`) rather than accepted without knowing. Default 30.
   */
  maxStalenessSeconds?: number;
}

interface FeedDocument {
  tokens?: Array<{ jti?: unknown; exp?: unknown }>;
  credentials?: Array<{ client_id?: unknown; revoked_at?: unknown; exp?: unknown }>;
}

const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * The issuer's revocation feed, polled in the background with If-None-Match (a 304 costs the
 * issuer a string comparison). Entries are merged, never replaced, and kept until their expiry
 * plus the verifier's clock tolerance, so a token the verifier would still accept stays refused.
 */
export class RevocationFeed {
  private readonly tokens = new Map<string, number>(); // jti → until (ms)
  private readonly credentials = new Map<string, { revokedAt: number; until: number }>(); // client_id → seconds / ms
  private etag: string | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  private lastError: unknown;
  private loading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  private readonly maxStaleMs: number;

  constructor(
    private readonly options: {
      uri: () => Promise<string | undefined>;
      intervalSeconds: number;
      maxStalenessSeconds: number;
      toleranceMs: number;
      timeoutMs: number;
      fetch: FetchLike;
      now: () => number;
    },
  ) {
    this.intervalMs = options.intervalSeconds * 1000;
    this.maxStaleMs = options.maxStalenessSeconds * 1000;
  }

  /** Resolves when the list is recent enough to decide; throws `revocations_unavailable` when it is not and cannot be read. */
  ready(): Promise<void> | undefined {
    if (this.options.now() - this.fetchedAt <= this.maxStaleMs) return undefined; // the common case: no promise, no await
    return this.catchUp();
  }

  private async catchUp(): Promise<void> {
    this.startPolling();
    // After a failure, requests fail at once for a second instead of each asking the issuer again.
    if (this.options.now() - this.failedAt >= Math.min(1000, this.intervalMs) || this.loading) await this.poll().catch(() => {});
    if (this.options.now() - this.fetchedAt > this.maxStaleMs) {
      const detail = this.lastError instanceof Error ? this.lastError.message : String(this.lastError);
      throw new TokenVerificationError('revocations_unavailable', `the revocation feed could not be read: ${detail}`, { cause: this.lastError });
    }
  }

  private startPolling(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll().catch(() => {}), this.intervalMs);
    this.timer.unref(); // a verifier never keeps a process alive
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the token with these claims was revoked. */
  revoked(jti: unknown, clientId: string, issuedAt: number): boolean {
    if (typeof jti === 'string' && this.tokens.has(jti)) return true;
    const credential = this.credentials.get(clientId);
    return credential !== undefined && issuedAt <= credential.revokedAt;
  }

  poll(): Promise<void> {
    this.loading ??= this.read().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async read(): Promise<void> {
    try {
      const uri = await this.options.uri();
      if (uri === undefined) {
        // The issuer publishes no feed (not a Portcullis server): nothing to follow.
        this.fetchedAt = Number.POSITIVE_INFINITY;
        this.stop();
        return;
      }
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.etag) headers['if-none-match'] = this.etag;
      const response = await this.options.fetch(uri, { headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
      const readAt = this.options.now();
      if (response.status === 304) {
        await response.body?.cancel();
        this.fetchedAt = readAt;
        this.prune(readAt);
        return;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`${uri} answered HTTP ${response.status}`);
      }
      const document = (await response.json()) as FeedDocument;
      if (typeof document !== 'object' || document === null || !Array.isArray(document.tokens) || !Array.isArray(document.credentials)) {
        throw new Error(`${uri} is not a revocation feed`);
      }
      const tolerance = this.options.toleranceMs;
      for (const { jti, exp } of document.tokens) {
        if (typeof jti !== 'string' || !isSeconds(exp) || this.tokens.has(jti)) continue;
        this.tokens.set(jti, exp * 1000 + tolerance);
      }
      for (const { client_id, revoked_at, exp } of document.credentials) {
        if (typeof client_id !== 'string' || !isSeconds(revoked_at) || !isSeconds(exp)) continue;
        if (this.credentials.get(client_id)?.revokedAt === revoked_at) continue;
        this.credentials.set(client_id, { revokedAt: revoked_at, until: exp * 1000 + tolerance });
      }
      this.etag = response.headers.get('etag') ?? undefined;
      this.fetchedAt = readAt;
      this.prune(readAt);
    } catch (err) {
      this.failedAt = this.options.now();
      this.lastError = err;
      throw err;
    }
  }

  private prune(now: number): void {
    for (const [jti, until] of this.tokens) if (until <= now) this.tokens.delete(jti);
    for (const [clientId, { until }] of this.credentials) if (until <= now) this.credentials.delete(clientId);
  }
}
