import { type Db, inTransaction } from './db.js';

export interface AuthFailureCount {
  day: string;
  clientId: string;
  reason: string;
  count: number;
}

/** Failed client authentications, counted per day, client_id and reason rather than stored one by one. */
export class AuthFailureRepository {
  constructor(private readonly db: Db) {}

  async add(counts: AuthFailureCount[]): Promise<void> {
    if (counts.length === 0) return;
    await inTransaction(this.db, async (trx) => {
      for (const c of counts) {
        await trx
          .insertInto('auth_failures')
          .values({ day: c.day, client_id: c.clientId, reason: c.reason, count: c.count })
          .onConflict((oc) =>
            oc.columns(['day', 'client_id', 'reason']).doUpdateSet((eb) => ({ count: eb('auth_failures.count', '+', eb.ref('excluded.count')) })),
          )
          .execute();
      }
    });
  }

  async since(day: string): Promise<AuthFailureCount[]> {
    const rows = await this.db.selectFrom('auth_failures').selectAll().where('day', '>=', day).orderBy('day', 'desc').orderBy('count', 'desc').execute();
    return rows.map((r) => ({ day: r.day, clientId: r.client_id, reason: r.reason, count: Number(r.count) }));
  }
}
