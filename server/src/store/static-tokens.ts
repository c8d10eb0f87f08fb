import { type Db, inTransaction } from './db.js';

export interface StaticToken {
  id: number;
  partnerId: number;
  name: string;
  tokenHash: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

type Row = {
  id: number;
  partner_id: number;
  name: string;
  token_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
};
const num = (v: number | null): number | null => (v === null ? null : Number(v));
const toStaticToken = (r: Row): StaticToken => ({
  id: Number(r.id),
  partnerId: Number(r.partner_id),
  name: r.name,
  tokenHash: r.token_hash,
  createdAt: Number(r.created_at),
  expiresAt: num(r.expires_at),
  lastUsedAt: num(r.last_used_at),
  revokedAt: num(r.revoked_at),
});

export class StaticTokenRepository {
  constructor(private readonly db: Db) {}

  async create(input: { partnerId: number; name: string; tokenHash: string; createdAt: number; expiresAt: number | null }): Promise<StaticToken> {
    const row = await this.db
      .insertInto('static_tokens')
      .values({ partner_id: input.partnerId, name: input.name, token_hash: input.tokenHash, created_at: input.createdAt, expires_at: input.expiresAt })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toStaticToken(row);
  }

  async byHash(tokenHash: string): Promise<StaticToken | undefined> {
    const row = await this.db.selectFrom('static_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row && toStaticToken(row);
  }

  async get(id: number): Promise<StaticToken | undefined> {
    const row = await this.db.selectFrom('static_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toStaticToken(row);
  }

  /** A partner's tokens that are not revoked, oldest first (expired ones included, marked by the caller). */
  /** A page in id order: at most `limit` unrevoked tokens of the partner after the id `after`. */
  async listByPartner(partnerId: number, limit = 1000, after = 0): Promise<StaticToken[]> {
    const rows = await this.db
      .selectFrom('static_tokens')
      .selectAll()
      .where('partner_id', '=', partnerId)
      .where('revoked_at', 'is', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toStaticToken);
  }

  async revoke(id: number, now: number): Promise<StaticToken | undefined> {
    const row = await this.db
      .updateTable('static_tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return row && toStaticToken(row);
  }

  async recordLastUsed(batch: Map<number, number>): Promise<void> {
    if (batch.size === 0) return;
    await inTransaction(this.db, async (trx) => {
      for (const [id, at] of batch) {
        await trx
          .updateTable('static_tokens')
          .set({ last_used_at: at })
          .where('id', '=', id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute();
      }
    });
  }
}
