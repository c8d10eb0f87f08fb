import { type Clock, DAY_MS, utcDay } from '../domain/clock.js';
import { BatchedWrites, sum } from '../store/batched-writes.js';
import type { TokenCountRepository } from '../store/token-counts.js';

export const USAGE_DAYS = 30;

const keyOf = (applicationId: number, day: string) => `app\n${applicationId}\n${day}`;
const credentialKeyOf = (clientId: string, day: string) => `key\n${clientId}\n${day}`;

/**
 * Counts tokens issued per application, per key and per UTC day in memory, and adds them to the database in
 * batches on a timer (and at shutdown), so issuing a token never writes.
 */
export class TokenCounter {
  private readonly counts: BatchedWrites<string, number>;

  constructor(
    private readonly repository: TokenCountRepository,
    private readonly clock: Clock,
  ) {
    this.counts = new BatchedWrites(async (batch) => {
      const apps: { applicationId: number; day: string; count: number }[] = [];
      const keys: { clientId: string; day: string; count: number }[] = [];
      for (const [key, count] of batch) {
        const [kind, id = '', day = ''] = key.split('\n');
        if (kind === 'app') apps.push({ applicationId: Number(id), day, count });
        else keys.push({ clientId: id, day, count });
      }
      await repository.add(apps);
      await repository.addForKeys(keys);
    }, sum);
  }

  issued(applicationId: number, clientId?: string): void {
    const day = utcDay(this.clock.now());
    this.counts.add(keyOf(applicationId, day), 1);
    if (clientId !== undefined) this.counts.add(credentialKeyOf(clientId, day), 1);
  }

  /** Tokens issued with one key over the last `USAGE_DAYS` days, oldest first. */
  async perDayOfKey(clientId: string): Promise<{ day: string; tokens: number }[]> {
    await this.counts.flush().catch(() => {});
    const days = this.lastDays();
    const stored = new Map((await this.repository.keySince(clientId, days[0]!)).map((c) => [c.day, c.count]));
    return days.map((day) => ({ day, tokens: (stored.get(day) ?? 0) + (this.counts.pendingValue(credentialKeyOf(clientId, day)) ?? 0) }));
  }

  lastDays(): string[] {
    const now = this.clock.now();
    return Array.from({ length: USAGE_DAYS }, (_, i) => utcDay(now - (USAGE_DAYS - 1 - i) * DAY_MS));
  }

  flush(): Promise<void> {
    return this.counts.flush();
  }

  /** The last `USAGE_DAYS` days, oldest first, with zeros for days without tokens. */
  async perDay(applicationId: number): Promise<{ day: string; tokens: number }[]> {
    // Written first, so no count is in flight between memory and the table while reading.
    await this.counts.flush().catch(() => {});
    const days = this.lastDays();
    const stored = new Map((await this.repository.since(applicationId, days[0]!)).map((c) => [c.day, c.count]));
    return days.map((day) => ({ day, tokens: (stored.get(day) ?? 0) + (this.counts.pendingValue(keyOf(applicationId, day)) ?? 0) }));
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.counts.start(intervalMs, onError);
  }

  stop(): Promise<void> {
    return this.counts.stop();
  }
}
