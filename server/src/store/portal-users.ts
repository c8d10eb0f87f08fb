import type { Db } from './db.js';

export interface PortalUser {
  id: number;
  email: string;
  passwordHash: string;
  createdAt: number;
  passwordChangedAt: number;
}

type Row = { id: number; email: string; password_hash: string; created_at: number; password_changed_at: number };
const toUser = (r: Row): PortalUser => ({
  id: Number(r.id),
  email: r.email,
  passwordHash: r.password_hash,
  createdAt: Number(r.created_at),
  passwordChangedAt: Number(r.password_changed_at),
});

/** People who sign in to the developer portal. */
export class PortalUserRepository {
  constructor(private readonly db: Db) {}

  /** Inserts a user, or answers 'taken' when the email is already registered. */
  async create(email: string, passwordHash: string, now: number): Promise<PortalUser | 'taken'> {
    const row = await this.db
      .insertInto('portal_users')
      .values({ email, password_hash: passwordHash, created_at: now, password_changed_at: now })
      .onConflict((oc) => oc.column('email').doNothing())
      .returningAll()
      .executeTakeFirst();
    return row ? toUser(row) : 'taken';
  }

  async get(id: number): Promise<PortalUser | undefined> {
    const row = await this.db.selectFrom('portal_users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  async byEmail(email: string): Promise<PortalUser | undefined> {
    const row = await this.db.selectFrom('portal_users').selectAll().where('email', '=', email).executeTakeFirst();
    return row && toUser(row);
  }

  async setPassword(id: number, passwordHash: string, now: number): Promise<void> {
    await this.db.updateTable('portal_users').set({ password_hash: passwordHash, password_changed_at: now }).where('id', '=', id).execute();
  }
}
