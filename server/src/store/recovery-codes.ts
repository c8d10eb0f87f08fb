import type { Db } from './db.js';

/** Recovery codes of portal accounts' second factor, held as hashes. */
export class RecoveryCodeRepository {
  constructor(private readonly db: Db) {}

  /** Replaces every code of the user with new ones. */
  async replace(userId: number, hashes: string[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('portal_recovery_codes').where('user_id', '=', userId).execute();
      if (hashes.length > 0)
        await tx
          .insertInto('portal_recovery_codes')
          .values(hashes.map((code_hash) => ({ user_id: userId, code_hash })))
          .execute();
    });
  }

  /** Uses an unused code; false when there is none (the update is the check, so a code works once). */
  async use(userId: number, hash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('portal_recovery_codes')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('code_hash', '=', hash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async unused(userId: number): Promise<number> {
    const row = await this.db
      .selectFrom('portal_recovery_codes')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
