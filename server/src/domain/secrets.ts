import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Machine-made secrets: a prefix that secret scanners can match, 32 random bytes, and a
 * CRC-32 checksum so a mistyped or truncated secret is refused before any lookup.
 * They carry 256 bits of entropy, so a keyed fast hash (HMAC-SHA-256 under the server's
 * pepper) is as safe as a slow password hash and costs microseconds per token request.
 */
export const SECRET_PREFIX = {
  clientSecret: 'pcs_',
  staticToken: 'pct_',
  adminToken: 'pca_',
} as const;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const BODY_LENGTH = 43; // 32 bytes in base64url
const CHECK_LENGTH = 6; // CRC-32 in base64url

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The body's CRC-32 as base64url of its 4 big-endian bytes, without padding (6 characters). */
function checksum(body: string): string {
  const crc = crc32(body);
  let text = '';
  for (let shift = 26; shift >= 2; shift -= 6) text += BASE64URL[(crc >>> shift) & 63];
  return text + BASE64URL[(crc & 3) << 4];
}

export function generateSecret(prefix: string): string {
  const body = prefix + randomBytes(32).toString('base64url');
  return body + checksum(body);
}

/** True when the text has the given prefix, the right length and a matching checksum. */
export function isWellFormedSecret(text: string, prefix: string): boolean {
  if (text.length !== prefix.length + BODY_LENGTH + CHECK_LENGTH || !text.startsWith(prefix)) return false;
  const body = text.slice(0, -CHECK_LENGTH);
  return checksum(body) === text.slice(-CHECK_LENGTH);
}

/** The stored form of a secret: HMAC-SHA-256 under the pepper, hex. */
export function hashSecret(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret against its stored hash. */
export function secretMatches(pepper: Buffer, secret: string, storedHash: string): boolean {
  const presented = createHmac('sha256', pepper).update(secret).digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

/** client_ids are public identifiers: 32 lowercase hex characters. */
export function generateClientId(): string {
  return randomBytes(16).toString('hex');
}

export const CLIENT_ID_PATTERN = /^[0-9a-f]{32}$/;
