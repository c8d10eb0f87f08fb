import { type Clock, DAY_MS, utcDay } from '../domain/clock.js';
import type { Db } from './db.js';

export interface RetentionPolicy {
  /** Audit events older than this many days are deleted. */
  auditDays: number;
  /** Per-day counters (tokens issued, failed authentications) older than this many days are deleted. */
  usageDays: number;
}

export interface PruneResult {
  auditEvents: number;
  tokenCounts: number;
  authFailures: number;
  portalSessions: number;
  invitations: number;
}

// Rows go in slices, so a long backlog never holds SQLite's single writer (or a PostgreSQL lock)
// for long, and requests writing in between are not starved.
const SLICE = 1_000;

/**
 * Keeps the tables that grow with time bounded: audit events and usage counters past their
 * retention, portal sessions and invitations past their expiry. Every node may run it; a row is
 * deleted once, whoever gets there first.
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly policy: RetentionPolicy,
  ) {}

  async prune(): Promise<PruneResult> {
    const now = this.clock.now();
    const auditBefore = now - this.policy.auditDays * DAY_MS;
    const dayBefore = utcDay(now - this.policy.usageDays * DAY_MS);
    return {
      auditEvents: await this.inSlices((db) =>
        db.deleteFrom('audit_events').where('id', 'in', db.selectFrom('audit_events').select('id').where('occurred_at', '<', auditBefore).limit(SLICE)),
      ),
      tokenCounts: await this.inSlices((db) => db.deleteFrom('token_counts').where('day', '<', dayBefore)),
      authFailures: await this.inSlices((db) => db.deleteFrom('auth_failures').where('day', '<', dayBefore)),
      portalSessions: await this.inSlices((db) => db.deleteFrom('portal_sessions').where('expires_at', '<=', now)),
      invitations: await this.inSlices((db) =>
        db
          .deleteFrom('invitations')
          .where('accepted_at', 'is', null)
          .where('expires_at', '<=', now - this.policy.usageDays * DAY_MS),
      ),
    };
  }

  /** Runs a delete until it removes fewer rows than a slice (statements without a limit finish in one go). */
  private async inSlices(statement: (db: Db) => { executeTakeFirst(): Promise<{ numDeletedRows: bigint }> }): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = Number((await statement(this.db).executeTakeFirst()).numDeletedRows);
      total += deleted;
      if (deleted < SLICE) return total;
    }
  }

  /** Prunes once soon after start, then every `intervalMs`. */
  start(intervalMs: number, onError: (err: unknown) => void, firstAfterMs = 60_000): void {
    const run = () => this.prune().catch(onError);
    this.timer = setTimeout(() => {
      run();
      this.timer = setInterval(run, intervalMs);
      this.timer.unref();
    }, firstAfterMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
