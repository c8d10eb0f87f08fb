import type { Db } from './db.js';

export interface IdempotencyRecord {
  principal: string;
  key: string;
  requestHash: string;
  /** null while the first request is in progress. */
  status: number | null;
  /** Sealed by the caller; this repository never sees the answer in the clear. */
  response: string | null;
  createdAt: number;
}

type Row = { principal: string; key: string; request_hash: string; status: number | null; response: string | null; created_at: number };
const toRecord = (r: Row): IdempotencyRecord => ({
  principal: r.principal,
  key: r.key,
  requestHash: r.request_hash,
  status: r.status === null ? null : Number(r.status),
  response: r.response,
  createdAt: Number(r.created_at),
});

/** Idempotency keys of operator requests: claimed before the request runs, completed with its answer. */
export class IdempotencyKeyRepository {
  constructor(private readonly db: Db) {}

  /**
   * Claims a key for a request about to run; when it is taken already, answers the record that
   * holds it. Atomic: of concurrent claims of one key, exactly one wins.
   */
  async claim(principal: string, key: string, requestHash: string, now: number): Promise<'claimed' | IdempotencyRecord> {
    const inserted = await this.db
      .insertInto('idempotency_keys')
      .values({ principal, key, request_hash: requestHash, status: null, response: null, created_at: now })
      .onConflict((oc) => oc.columns(['principal', 'key']).doNothing())
      .returning('key')
      .executeTakeFirst();
    if (inserted) return 'claimed';
    const row = await this.db.selectFrom('idempotency_keys').selectAll().where('principal', '=', principal).where('key', '=', key).executeTakeFirst();
    // Released between the two statements: the caller may claim again.
    return row ? toRecord(row) : this.claim(principal, key, requestHash, now);
  }

  async complete(principal: string, key: string, status: number, response: string): Promise<void> {
    await this.db.updateTable('idempotency_keys').set({ status, response }).where('principal', '=', principal).where('key', '=', key).execute();
  }

  /** Forgets a key (its request failed on the server's side, or it expired), so it can be used again. */
  async release(principal: string, key: string, createdAt?: number): Promise<void> {
    let q = this.db.deleteFrom('idempotency_keys').where('principal', '=', principal).where('key', '=', key);
    if (createdAt !== undefined) q = q.where('created_at', '=', createdAt);
    await q.execute();
  }

  /** Deletes the keys created before `before`; returns how many. */
  async prune(before: number): Promise<number> {
    const result = await this.db.deleteFrom('idempotency_keys').where('created_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
