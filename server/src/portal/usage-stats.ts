import type { Clock } from '../domain/clock.js';
import { BatchedWrites, sum } from '../store/batched-writes.js';
import type { TokenCountRepository } from '../store/token-counts.js';

export const USAGE_DAYS = 30;

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const keyOf = (applicationId: number, day: string) => `${applicationId}\n${day}`;

/**
 * Counts tokens issued per application and UTC day in memory, and adds them to the database in
 * batches on a timer (and at shutdown), so issuing a token never writes.
 */
export class TokenCounter {
  private readonly counts: BatchedWrites<string, number>;

  constructor(
    private readonly repository: TokenCountRepository,
    private readonly clock: Clock,
  ) {
    this.counts = new BatchedWrites(
      (batch) =>
        repository.add(
          [...batch].map(([key, count]) => {
            const [applicationId = '0', day = ''] = key.split('\n');
            return { applicationId: Number(applicationId), day, count };
          }),
        ),
      sum,
    );
  }

  issued(applicationId: number): void {
    this.counts.add(keyOf(applicationId, dayOf(this.clock.now())), 1);
  }

  flush(): Promise<void> {
    return this.counts.flush();
  }

  /** The last `USAGE_DAYS` days, oldest first, with zeros for days without tokens. */
  async perDay(applicationId: number): Promise<{ day: string; tokens: number }[]> {
    // Written first, so no count is in flight between memory and the table while reading.
    await this.counts.flush().catch(() => {});
    const now = this.clock.now();
    const days = Array.from({ length: USAGE_DAYS }, (_, i) => dayOf(now - (USAGE_DAYS - 1 - i) * 86_400_000));
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
