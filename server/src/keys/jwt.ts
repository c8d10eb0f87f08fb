import { type KeyObject, sign, verify } from 'node:crypto';
import type { SigningAlg } from '../config.js';

/** How node:crypto signs and verifies for each JWS algorithm we issue (RFC 7518, RFC 8037). */
export interface AlgorithmParams {
  hash: string | null;
  dsaEncoding?: 'ieee-p1363';
}

export const ALGORITHMS: Record<SigningAlg, AlgorithmParams> = {
  RS256: { hash: 'sha256' },
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
  EdDSA: { hash: null },
};

export const TOKEN_TYPE = 'at+jwt'; // RFC 9068 §2.1

export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Signs on the libuv thread pool (the callback form), so signing never blocks the event loop. */
export function signCompact(encodedHeader: string, claims: object, alg: SigningAlg, privateKey: KeyObject): Promise<string> {
  const input = `${encodedHeader}.${encodeSegment(claims)}`;
  const params = ALGORITHMS[alg];
  const key = params.dsaEncoding ? { key: privateKey, dsaEncoding: params.dsaEncoding } : privateKey;
  return new Promise((resolve, reject) => {
    // Both segments are base64url, so the input is ASCII and latin1 is its exact byte encoding.
    sign(params.hash, Buffer.from(input, 'latin1'), key, (err, signature) => {
      if (err) reject(err);
      else resolve(`${input}.${signature.toString('base64url')}`);
    });
  });
}

export function verifySignature(signingInput: string, signature: Buffer, alg: SigningAlg, publicKey: KeyObject): boolean {
  const params = ALGORITHMS[alg];
  const key = params.dsaEncoding ? { key: publicKey, dsaEncoding: params.dsaEncoding } : publicKey;
  try {
    return verify(params.hash, Buffer.from(signingInput), key, signature);
  } catch {
    return false;
  }
}
