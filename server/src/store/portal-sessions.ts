import type { Db } from './db.js';

export interface PortalSession {
  /** SHA-256 of the cookie's token. */
  id: string;
  userId: number;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  /** Where and with what browser the session signed in, for the account's list of sessions. */
  ip: string | null;
  userAgent: string | null;
}

type Row = {
  id: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
};
const toSession = (r: Row): PortalSession => ({
  id: r.id,
  userId: Number(r.user_id),
  csrfToken: r.csrf_token,
  createdAt: Number(r.created_at),
  lastSeenAt: Number(r.last_seen_at),
  expiresAt: Number(r.expires_at),
  ip: r.ip,
  userAgent: r.user_agent,
});

/** Server-side sessions of portal users. */
export class PortalSessionRepository {
  constructor(private readonly db: Db) {}

  async create(s: PortalSession): Promise<void> {
    await this.db
      .insertInto('portal_sessions')
      .values({
        id: s.id,
        user_id: s.userId,
        csrf_token: s.csrfToken,
        created_at: s.createdAt,
        last_seen_at: s.lastSeenAt,
        expires_at: s.expiresAt,
        ip: s.ip,
        user_agent: s.userAgent,
      })
      .execute();
  }

  async get(id: string): Promise<PortalSession | undefined> {
    const row = await this.db.selectFrom('portal_sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toSession(row);
  }

  /** A user's sessions that have not expired, most recently used first. */
  async ofUser(userId: number, now: number): Promise<PortalSession[]> {
    const rows = await this.db
      .selectFrom('portal_sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .orderBy('last_seen_at', 'desc')
      .execute();
    return rows.map(toSession);
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.updateTable('portal_sessions').set({ last_seen_at: now }).where('id', '=', id).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('portal_sessions').where('id', '=', id).execute();
  }

  /** Ends every session of a user but `keep` (after a password change). */
  async deleteForUser(userId: number, keep?: string): Promise<void> {
    let q = this.db.deleteFrom('portal_sessions').where('user_id', '=', userId);
    if (keep !== undefined) q = q.where('id', '!=', keep);
    await q.execute();
  }

  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('portal_sessions').where('expires_at', '<=', now).execute();
  }
}
