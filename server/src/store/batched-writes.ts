/**
 * Values collected in memory on the hot path and written to the store in one batch per
 * interval (and at shutdown), so no request writes on its own. A failed write puts its batch
 * back, merged with what arrived meanwhile, for the next flush to retry.
 */
export class BatchedWrites<K, V> {
  private pending = new Map<K, V>();
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (batch: Map<K, V>) => Promise<void>,
    /** Combines an older value with a newer one for the same key (latest time, summed counts…). */
    private readonly merge: (older: V, newer: V) => V,
  ) {}

  add(key: K, value: V): void {
    const current = this.pending.get(key);
    this.pending.set(key, current === undefined ? value : this.merge(current, value));
  }

  /** The value waiting to be written for a key, if any. */
  pendingValue(key: K): V | undefined {
    return this.pending.get(key);
  }

  /** Writes what is pending; flushes run one after another. */
  flush(): Promise<void> {
    this.flushing = this.flushing.catch(() => {}).then(() => this.writePending());
    return this.flushing;
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.write(batch);
    } catch (err) {
      for (const [key, value] of batch) {
        const newer = this.pending.get(key);
        this.pending.set(key, newer === undefined ? value : this.merge(value, newer));
      }
      throw err;
    }
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => this.flush().catch(onError), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

export const latest = (a: number, b: number): number => Math.max(a, b);
export const sum = (a: number, b: number): number => a + b;
