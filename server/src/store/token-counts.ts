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

  /** Adds tokens issued per key and day. */
  async addForKeys(counts: { clientId: string; day: string; count: number }[]): Promise<void> {
    if (counts.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const c of counts) {
        await trx
          .insertInto('credential_token_counts')
          .values({ client_id: c.clientId, day: c.day, count: c.count })
          .onConflict((oc) =>
            oc.columns(['client_id', 'day']).doUpdateSet((eb) => ({ count: eb('credential_token_counts.count', '+', eb.ref('excluded.count')) })),
          )
          .execute();
      }
    });
  }

  async keySince(clientId: string, day: string): Promise<{ day: string; count: number }[]> {
    const rows = await this.db
      .selectFrom('credential_token_counts')
      .select(['day', 'count'])
      .where('client_id', '=', clientId)
      .where('day', '>=', day)
      .orderBy('day')
      .execute();
    return rows.map((r) => ({ day: r.day, count: Number(r.count) }));
  }
}
