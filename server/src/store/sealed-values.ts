import type { Db } from './db.js';

/** What a master-key rotation rewrites: every value sealed under the master key, with the context it is bound to. */
export interface SealedValues {
  /** The signing keys' sealed private keys, by kid (the kid is the sealing context). */
  signingKeys: Array<{ kid: string; sealed: string }>;
  /** Sealed settings rows, by key (the key is the sealing context). */
  settings: Array<{ key: string; sealed: string }>;
}

/**
 * Reads every sealed value, lets `reseal` compute the replacements and the settings to write with
 * them, and writes it all in one transaction: a node sees the store wholly before or wholly after.
 */
export async function resealAll(
  db: Db,
  settingKeys: string[],
  reseal: (values: SealedValues) => { signingKeys: SealedValues['signingKeys']; settings: Array<{ key: string; value: string }> },
): Promise<{ signingKeys: number }> {
  return db.transaction().execute(async (trx) => {
    const keys = await trx.selectFrom('signing_keys').select(['kid', 'private_key']).execute();
    const rows = settingKeys.length ? await trx.selectFrom('settings').select(['key', 'value']).where('key', 'in', settingKeys).execute() : [];
    const next = reseal({
      signingKeys: keys.map((k) => ({ kid: k.kid, sealed: k.private_key })),
      settings: rows.map((r) => ({ key: r.key, sealed: r.value })),
    });
    for (const k of next.signingKeys) await trx.updateTable('signing_keys').set({ private_key: k.sealed }).where('kid', '=', k.kid).execute();
    for (const s of next.settings) {
      await trx
        .insertInto('settings')
        .values(s)
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: s.value }))
        .execute();
    }
    return { signingKeys: next.signingKeys.length };
  });
}
