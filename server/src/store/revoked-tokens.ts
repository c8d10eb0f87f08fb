import type { Db } from './db.js';

/** Access tokens revoked before their expiry (RFC 7009), kept only until they would have expired. */
export class RevokedTokenRepository {
  constructor(private readonly db: Db) {}

  async add(jti: string, expiresAt: number): Promise<void> {
    await this.db
      .insertInto('revoked_tokens')
      .values({ jti, expires_at: expiresAt })
      .onConflict((oc) => oc.column('jti').doNothing())
      .execute();
  }

  async live(now: number): Promise<Array<{ jti: string; expiresAt: number }>> {
    const rows = await this.db.selectFrom('revoked_tokens').selectAll().where('expires_at', '>', now).execute();
    return rows.map((r) => ({ jti: r.jti, expiresAt: Number(r.expires_at) }));
  }

  async prune(now: number): Promise<void> {
    await this.db.deleteFrom('revoked_tokens').where('expires_at', '<=', now).execute();
  }
}
