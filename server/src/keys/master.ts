import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseMasterKey } from '../config.js';

export const MASTER_KEY_FILE = 'master.key';

/** Keys derived from the master key, one per purpose, so no key serves two uses. */
export interface DerivedKeys {
  /** HMAC key for client secrets, static tokens and the admin token. */
  pepper: Buffer;
  /** AES-256-GCM key sealing signing keys at rest. */
  sealKey: Buffer;
  /** A value stored at first start to detect a different master key later. */
  check: string;
}

/** A key for one purpose, derived by HKDF from a root key (the master key, or the pepper for values a master-key rotation must keep). */
export function derive(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `portcullis/${purpose}/v1`, 32));
}

export function deriveKeys(master: Buffer): DerivedKeys {
  return {
    pepper: derive(master, 'secret-hash'),
    sealKey: derive(master, 'signing-key-seal'),
    check: createHmac('sha256', derive(master, 'master-key-check')).update('portcullis').digest('hex'),
  };
}

/**
 * The operator's PORTCULLIS_MASTER_KEY when given; otherwise the key file in the data dir,
 * created with 0600 permissions on first start. `generated` tells the caller to warn.
 */
export function resolveMasterKey(given: Buffer | undefined, dataDir: string): { key: Buffer; generated: boolean; file?: string } {
  if (given) return { key: given, generated: false };
  const file = path.join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    try {
      return { key: parseMasterKey(readFileSync(file, 'utf8'), file), generated: false, file };
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`${file} cannot be read: ${(err as Error).message}`);
    }
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return { key, generated: true, file };
}

/** Seals a secret with AES-256-GCM; `context` is bound as associated data (the key's kid). */
export function seal(sealKey: Buffer, plaintext: Buffer, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
  cipher.setAAD(Buffer.from(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function unseal(sealKey: Buffer, sealed: string, context: string): Buffer {
  const [version, iv, tag, ciphertext] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('sealed value has an unknown format');
  const decipher = createDecipheriv('aes-256-gcm', sealKey, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
}
