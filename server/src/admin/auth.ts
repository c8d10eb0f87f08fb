import { timingSafeEqual } from 'node:crypto';
import { generateSecret, hashSecret, SECRET_PREFIX } from '../domain/secrets.js';
import type { SettingsRepository } from '../store/settings.js';

const ADMIN_TOKEN_HASH = 'admin_token_hash';

/** The operator API's bearer token, held only as its hash. */
export class AdminAuth {
  private constructor(
    private readonly pepper: Buffer,
    private readonly hash: Buffer,
  ) {}

  /**
   * Uses PORTCULLIS_ADMIN_TOKEN when given; otherwise the stored hash, and at first start a
   * generated token whose hash is stored and which is returned once for printing.
   */
  static async open(settings: SettingsRepository, pepper: Buffer, given: string | undefined): Promise<{ auth: AdminAuth; generated?: string }> {
    if (given) return { auth: new AdminAuth(pepper, Buffer.from(hashSecret(pepper, given), 'hex')) };
    const stored = await settings.get(ADMIN_TOKEN_HASH);
    if (stored) return { auth: new AdminAuth(pepper, Buffer.from(stored, 'hex')) };
    const token = generateSecret(SECRET_PREFIX.adminToken);
    await settings.set(ADMIN_TOKEN_HASH, hashSecret(pepper, token));
    return { auth: new AdminAuth(pepper, Buffer.from(hashSecret(pepper, token), 'hex')), generated: token };
  }

  /** Replaces the stored token (the `reset-admin-token` command); returns the new one. */
  static async reset(settings: SettingsRepository, pepper: Buffer): Promise<string> {
    const token = generateSecret(SECRET_PREFIX.adminToken);
    await settings.set(ADMIN_TOKEN_HASH, hashSecret(pepper, token));
    return token;
  }

  check(authorization: string | undefined): boolean {
    if (!authorization || !/^bearer /i.test(authorization)) return false;
    const presented = Buffer.from(hashSecret(this.pepper, authorization.slice(7).trim()), 'hex');
    return timingSafeEqual(presented, this.hash);
  }
}
