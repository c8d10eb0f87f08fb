import type { Db } from './db.js';

export interface PortalUser {
  id: number;
  email: string;
  passwordHash: string;
  createdAt: number;
  passwordChangedAt: number;
  emailVerifiedAt: number | null;
  disabledAt: number | null;
  operatorSince: number | null;
  totpSecret: string | null;
  totpEnabledAt: number | null;
  totpLastStep: number | null;
}

type Row = {
  id: number;
  email: string;
  password_hash: string;
  created_at: number;
  password_changed_at: number;
  email_verified_at: number | null;
  disabled_at: number | null;
  operator_since: number | null;
  totp_secret: string | null;
  totp_enabled_at: number | null;
  totp_last_step: number | null;
};
const orNull = (v: number | null) => (v === null ? null : Number(v));
const toUser = (r: Row): PortalUser => ({
  id: Number(r.id),
  email: r.email,
  passwordHash: r.password_hash,
  createdAt: Number(r.created_at),
  passwordChangedAt: Number(r.password_changed_at),
  emailVerifiedAt: orNull(r.email_verified_at),
  disabledAt: orNull(r.disabled_at),
  operatorSince: orNull(r.operator_since),
  totpSecret: r.totp_secret,
  totpEnabledAt: orNull(r.totp_enabled_at),
  totpLastStep: orNull(r.totp_last_step),
});

/** People who sign in to the developer portal. */
export class PortalUserRepository {
  constructor(private readonly db: Db) {}

  /** Inserts a user, or answers 'taken' when the email is already registered. */
  async create(email: string, passwordHash: string, now: number, verified = false): Promise<PortalUser | 'taken'> {
    const row = await this.db
      .insertInto('portal_users')
      .values({ email, password_hash: passwordHash, created_at: now, password_changed_at: now, email_verified_at: verified ? now : null })
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

  /** Marks the address verified, only while it is still `email` (a link proves the address it went to). */
  async markVerified(id: number, email: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('portal_users').set({ email_verified_at: now }).where('id', '=', id).where('email', '=', email).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async setDisabled(id: number, at: number | null): Promise<void> {
    await this.db.updateTable('portal_users').set({ disabled_at: at }).where('id', '=', id).execute();
  }

  async setOperator(id: number, since: number | null): Promise<void> {
    await this.db.updateTable('portal_users').set({ operator_since: since }).where('id', '=', id).execute();
  }

  /** Stores a sealed TOTP secret (setup) or clears the second factor (null). */
  async setTotp(id: number, sealedSecret: string | null, enabledAt: number | null): Promise<void> {
    await this.db
      .updateTable('portal_users')
      .set({ totp_secret: sealedSecret, totp_enabled_at: enabledAt, totp_last_step: null })
      .where('id', '=', id)
      .execute();
  }

  /** Records the time step of an accepted code, only if it is later than the last one: false means a replay. */
  async useTotpStep(id: number, step: number): Promise<boolean> {
    const result = await this.db
      .updateTable('portal_users')
      .set({ totp_last_step: step })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }
}
