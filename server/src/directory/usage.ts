import { type Clock, utcDay } from '../domain/clock.js';
import { BatchedWrites, latest, sum } from '../store/batched-writes.js';
import type { Store } from '../store/index.js';

export type AuthFailureReason = 'unknown_client' | 'bad_secret' | 'deactivated';

/**
 * Collects credential use and failed client authentications in memory and writes them in
 * batches, so the token endpoint does no write per request.
 */
export class UsageRecorder {
  private readonly lastUsed: BatchedWrites<string, number>;
  private readonly failures: BatchedWrites<string, number>;

  constructor(
    store: Store,
    private readonly clock: Clock,
  ) {
    this.lastUsed = new BatchedWrites((batch) => store.credentials.recordLastUsed(batch), latest);
    this.failures = new BatchedWrites((batch) => {
      const day = utcDay(this.clock.now());
      return store.authFailures.add(
        [...batch].map(([key, count]) => {
          const [clientId = '', reason = ''] = key.split('\n');
          return { day, clientId, reason, count };
        }),
      );
    }, sum);
  }

  private readonly useListeners: ((clientId: string, applicationId: number) => void)[] = [];

  used(clientId: string, applicationId?: number): void {
    this.lastUsed.add(clientId, this.clock.now());
    if (applicationId !== undefined) for (const listener of this.useListeners) listener(clientId, applicationId);
  }

  /** Called in memory on every use (the portal counts tokens per application and day). */
  onUse(listener: (clientId: string, applicationId: number) => void): void {
    this.useListeners.push(listener);
  }

  private readonly failureListeners: ((reason: AuthFailureReason) => void)[] = [];

  /** Unknown client_ids are counted under "" so attacker-chosen strings are never stored. */
  failed(clientId: string | undefined, reason: AuthFailureReason): void {
    this.failures.add(`${reason === 'unknown_client' ? '' : (clientId ?? '')}\n${reason}`, 1);
    for (const listener of this.failureListeners) listener(reason);
  }

  /** Called in memory on every failed client authentication (metrics count them by reason). */
  onFailure(listener: (reason: AuthFailureReason) => void): void {
    this.failureListeners.push(listener);
  }

  /** Pending last-use time of a credential not yet written. */
  pendingLastUsed(clientId: string): number | undefined {
    return this.lastUsed.pendingValue(clientId);
  }

  async flush(): Promise<void> {
    await Promise.all([this.lastUsed.flush(), this.failures.flush()]);
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.lastUsed.start(intervalMs, onError);
    this.failures.start(intervalMs, onError);
  }

  async stop(): Promise<void> {
    await Promise.all([this.lastUsed.stop(), this.failures.stop()]);
  }
}
