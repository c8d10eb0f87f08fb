import { type Db, inTransaction } from './db.js';

export interface TokenCount {
  applicationId: number;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  count: number;
}

/** Tokens issued per application and day, added to in batches. */
export class TokenCountRepository {
  constructor(private readonly db: Db) {}

  async add(counts: TokenCount[]): Promise<void> {
    if (counts.length === 0) return;
    await inTransaction(this.db, async (trx) => {
      for (const c of counts) {
        await trx
          .insertInto('token_counts')
          .values({ application_id: c.applicationId, day: c.day, count: c.count })
          .onConflict((oc) => oc.columns(['application_id', 'day']).doUpdateSet((eb) => ({ count: eb('token_counts.count', '+', eb.ref('excluded.count')) })))
          .execute();
      }
    });
  }

  async since(applicationId: number, day: string): Promise<TokenCount[]> {
    const rows = await this.db
      .selectFrom('token_counts')
      .selectAll()
      .where('application_id', '=', applicationId)
      .where('day', '>=', day)
      .orderBy('day')
      .execute();
    return rows.map((r) => ({ applicationId: Number(r.application_id), day: r.day, count: Number(r.count) }));
  }
}
