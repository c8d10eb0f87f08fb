import type { Db } from './db.js';

export type UserTokenPurpose = 'verify-email' | 'reset-password';

export interface PortalUserToken {
  /** SHA-256 of the link's token. */
  id: string;
  userId: number;
  purpose: UserTokenPurpose;
  email: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

type Row = { id: string; user_id: number; purpose: string; email: string; created_at: number; expires_at: number; used_at: number | null };
const toToken = (row: Row): PortalUserToken => ({
  id: row.id,
  userId: Number(row.user_id),
  purpose: row.purpose as UserTokenPurpose,
  email: row.email,
  createdAt: Number(row.created_at),
  expiresAt: Number(row.expires_at),
  usedAt: row.used_at === null ? null : Number(row.used_at),
});

/** Single-use tokens of mailed links (email verification, password reset), held as hashes. */
export class PortalUserTokenRepository {
  constructor(private readonly db: Db) {}

  async create(t: Omit<PortalUserToken, 'usedAt'>): Promise<void> {
    await this.db
      .insertInto('portal_user_tokens')
      .values({ id: t.id, user_id: t.userId, purpose: t.purpose, email: t.email, created_at: t.createdAt, expires_at: t.expiresAt })
      .execute();
  }

  /** The unused, unexpired token of `purpose`, without using it. */
  async peek(id: string, purpose: UserTokenPurpose, now: number): Promise<PortalUserToken | undefined> {
    const row = await this.db
      .selectFrom('portal_user_tokens')
      .selectAll()
      .where('id', '=', id)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row && toToken(row);
  }

  /**
   * Marks an unused, unexpired token of `purpose` used and returns it; undefined when there is
   * none. The update is the check, so two requests with one link cannot both succeed.
   */
  async use(id: string, purpose: UserTokenPurpose, now: number): Promise<PortalUserToken | undefined> {
    const result = await this.db
      .updateTable('portal_user_tokens')
      .set({ used_at: now })
      .where('id', '=', id)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    const row = await this.db.selectFrom('portal_user_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return toToken(row);
  }

  /** Ends every open link of a user for `purpose` (a new reset link replaces older ones). */
  async expireOpen(userId: number, purpose: UserTokenPurpose, now: number): Promise<void> {
    await this.db
      .updateTable('portal_user_tokens')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .execute();
  }

  /** Links sent to a user for `purpose` since `since`, for a per-account sending limit. */
  async countSince(userId: number, purpose: UserTokenPurpose, since: number): Promise<number> {
    const row = await this.db
      .selectFrom('portal_user_tokens')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('created_at', '>', since)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('portal_user_tokens').where('expires_at', '<=', now).execute();
  }
}
