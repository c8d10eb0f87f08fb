import type { Clock } from '../domain/clock.js';
import type { Store } from '../store/index.js';

export type AuthFailureReason = 'unknown_client' | 'bad_secret' | 'deactivated';

/**
 * Collects credential use and failed client authentications in memory and writes them in
 * batches, so the token endpoint does no write per request.
 */
export class UsageRecorder {
  private lastUsed = new Map<string, number>();
  private failures = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  used(clientId: string): void {
    this.lastUsed.set(clientId, this.clock.now());
  }

  /** Unknown client_ids are counted under "" so attacker-chosen strings are never stored. */
  failed(clientId: string | undefined, reason: AuthFailureReason): void {
    const key = `${reason === 'unknown_client' ? '' : (clientId ?? '')}\n${reason}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }

  /** Pending last-use time of a credential not yet written. */
  pendingLastUsed(clientId: string): number | undefined {
    return this.lastUsed.get(clientId);
  }

  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    const lastUsed = this.lastUsed;
    const failures = this.failures;
    this.lastUsed = new Map();
    this.failures = new Map();
    const day = new Date(this.clock.now()).toISOString().slice(0, 10);
    try {
      await this.store.credentials.recordLastUsed(lastUsed);
      await this.store.authFailures.add(
        [...failures].map(([key, count]) => {
          const [clientId = '', reason = ''] = key.split('\n');
          return { day, clientId, reason, count };
        }),
      );
    } catch (err) {
      // Put the batch back so the next flush retries it; newer values win.
      for (const [k, v] of lastUsed) if (!this.lastUsed.has(k)) this.lastUsed.set(k, v);
      for (const [k, v] of failures) this.failures.set(k, (this.failures.get(k) ?? 0) + v);
      throw err;
    }
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => this.flush().catch(onError), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
