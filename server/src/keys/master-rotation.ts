import { type Config, ConfigError } from '../config.js';
import { type Db, withLock } from '../store/db.js';
import { resealAll } from '../store/sealed-values.js';
import type { SettingsRepository } from '../store/settings.js';
import { type DerivedKeys, deriveKeys, seal, unseal } from './master.js';

/** The check value of the master key the store is sealed under; it names which key is current. */
export const MASTER_KEY_CHECK = 'master_key_check';
/**
 * The secret-hash key (pepper), sealed under the current master key. Absent until the first
 * rotation: until then the pepper is derived from the master key itself, as at first start. Stored
 * hashes are never recomputed (the secrets are not stored), so rotation carries the pepper along.
 */
export const SECRET_HASH_KEY = 'secret_hash_key';

/** Seals with the store's current master key and opens values sealed under any accepted one. */
export class Sealer {
  constructor(
    private readonly accepted: DerivedKeys[],
    private readonly settings: SettingsRepository,
  ) {}

  /** Read at each use (keys are sealed rarely), so a node keeps sealing under the current key after a rotation. */
  async seal(plaintext: Buffer, context: string): Promise<string> {
    const check = await this.settings.get(MASTER_KEY_CHECK);
    const key = this.accepted.find((k) => k.check === check) ?? this.accepted[0];
    if (!key) throw new Error('no master key');
    return seal(key.sealKey, plaintext, context);
  }

  /** AES-GCM refuses a wrong key, so trying each accepted key in turn is safe. */
  unseal(sealed: string, context: string): Buffer {
    let failure: unknown;
    for (const key of this.accepted) {
      try {
        return unseal(key.sealKey, sealed, context);
      } catch (err) {
        failure = err;
      }
    }
    // Names the value, never a key: during a rotation the fix is PORTCULLIS_PREVIOUS_MASTER_KEY.
    throw new Error(
      `the sealed value "${context}" is under a master key this node does not hold (${failure instanceof Error ? failure.message : 'unknown'}); during a master-key rotation give it PORTCULLIS_PREVIOUS_MASTER_KEY`,
    );
  }
}

export interface MasterKeys {
  pepper: Buffer;
  sealer: Sealer;
}

/**
 * At start: finds which of the node's keys (PORTCULLIS_MASTER_KEY, then
 * PORTCULLIS_PREVIOUS_MASTER_KEY) the store is sealed under, and opens the pepper. The first start
 * records the first key's check. No match is a ConfigError, one line.
 */
export async function openMasterKeys(settings: SettingsRepository, keys: Buffer[], wrongKeyMessage: string): Promise<MasterKeys> {
  const accepted = keys.map(deriveKeys);
  const first = accepted[0];
  if (!first) throw new ConfigError('no master key is configured');
  let check = await settings.get(MASTER_KEY_CHECK);
  if (check === undefined) {
    await settings.set(MASTER_KEY_CHECK, first.check);
    check = first.check;
  }
  const current = accepted.find((k) => k.check === check);
  if (!current) throw new ConfigError(wrongKeyMessage);
  const sealedPepper = await settings.get(SECRET_HASH_KEY);
  let pepper = current.pepper;
  if (sealedPepper !== undefined) {
    try {
      pepper = unseal(current.sealKey, sealedPepper, SECRET_HASH_KEY);
    } catch {
      throw new ConfigError(`the stored ${SECRET_HASH_KEY} cannot be opened with the current master key; the store is damaged`);
    }
  }
  return { pepper, sealer: new Sealer(accepted, settings) };
}

export type RotationOutcome = { state: 'rotated'; signingKeys: number } | { state: 'already-rotated' };

/**
 * Re-seals the signing keys and the secret-hash key under `next` and makes `next` the current
 * key, in one transaction, under the lock key generation takes, so no node seals a new signing
 * key under the old master key meanwhile. Client secrets, static tokens and the operator token
 * keep their hashes: the pepper is carried over, not changed.
 */
export async function rotateMasterKey(db: Db, settings: SettingsRepository, currentKey: Buffer, nextKey: Buffer): Promise<RotationOutcome> {
  const current = deriveKeys(currentKey);
  const next = deriveKeys(nextKey);
  if (current.check === next.check) throw new ConfigError('the new master key is the same as the current one');
  return withLock(db, 'key-rotation', async () => {
    const check = await settings.get(MASTER_KEY_CHECK);
    if (check === next.check) return { state: 'already-rotated' } as const;
    if (check !== current.check) throw new ConfigError('the current master key is not the one this store is sealed with; nothing was changed');
    const { signingKeys } = await resealAll(db, [SECRET_HASH_KEY], (values) => {
      const sealedPepper = values.settings.find((s) => s.key === SECRET_HASH_KEY)?.sealed;
      const pepper = sealedPepper === undefined ? current.pepper : unseal(current.sealKey, sealedPepper, SECRET_HASH_KEY);
      return {
        signingKeys: values.signingKeys.map((k) => ({ kid: k.kid, sealed: seal(next.sealKey, unseal(current.sealKey, k.sealed, k.kid), k.kid) })),
        settings: [
          { key: SECRET_HASH_KEY, value: seal(next.sealKey, pepper, SECRET_HASH_KEY) },
          { key: MASTER_KEY_CHECK, value: next.check },
        ],
      };
    });
    return { state: 'rotated', signingKeys } as const;
  });
}

/** The keys a node accepts: its own, then during a rotation PORTCULLIS_PREVIOUS_MASTER_KEY. */
export function acceptedMasterKeys(config: Config, key: Buffer): Buffer[] {
  return config.previousMasterKey ? [key, config.previousMasterKey] : [key];
}

export function wrongMasterKeyMessage(file: string | undefined, generated = false): string {
  if (generated) return 'this store is sealed under a master key: set PORTCULLIS_MASTER_KEY (or _FILE) to it, or put it in the data dir as master.key';
  return file
    ? `${file} is not the master key this data is sealed with; set PORTCULLIS_MASTER_KEY to that key`
    : 'PORTCULLIS_MASTER_KEY is not the master key this data is sealed with (nor is PORTCULLIS_PREVIOUS_MASTER_KEY, if set)';
}
