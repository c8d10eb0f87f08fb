import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import { matchTotp, newRecoveryCodes, newTotpSecret, normalRecoveryCode, otpauthUri, base32 } from '../domain/totp.js';
import { seal, unseal } from '../keys/master.js';
import type { PortalUser, PortalUserRepository } from '../store/portal-users.js';
import type { RecoveryCodeRepository } from '../store/recovery-codes.js';
import { sha256 } from './sessions.js';

const wrongCode = () =>
  new ApiError(
    400,
    'validation',
    'wrong-code',
    'The request is not valid',
    'the code is wrong or was used already; enter the current 6-digit code from your app',
  );

/** A second factor for portal accounts: TOTP (RFC 6238) with single-use recovery codes. */
export class SecondFactor {
  constructor(
    private readonly users: PortalUserRepository,
    private readonly codes: RecoveryCodeRepository,
    private readonly sealKey: Buffer,
    private readonly clock: Clock,
    private readonly issuerName: string,
  ) {}

  private secretOf(user: PortalUser): Buffer | undefined {
    return user.totpSecret === null ? undefined : unseal(this.sealKey, user.totpSecret, `totp:${user.id}`);
  }

  /** A new secret for the authenticator app; the second factor is on only once a code from it is confirmed. */
  async begin(user: PortalUser): Promise<{ secret: string; otpauth_uri: string }> {
    if (user.totpEnabledAt !== null)
      throw ApiError.conflict('second-factor-on', 'two-factor authentication is already on; turn it off first to use another app');
    const secret = newTotpSecret();
    await this.users.setTotp(user.id, seal(this.sealKey, secret, `totp:${user.id}`), null);
    return { secret: base32(secret), otpauth_uri: otpauthUri(secret, user.email, this.issuerName) };
  }

  /** Turns the second factor on with a first code from the app; answers the recovery codes, shown once. */
  async enable(user: PortalUser, code: unknown): Promise<string[]> {
    if (user.totpEnabledAt !== null) throw ApiError.conflict('second-factor-on', 'two-factor authentication is already on');
    const secret = this.secretOf(user);
    if (!secret) throw ApiError.conflict('second-factor-not-started', 'start the setup first: the page shows a key for your authenticator app');
    const step = typeof code === 'string' ? matchTotp(secret, code, this.clock.now()) : undefined;
    if (step === undefined) throw wrongCode();
    await this.users.setTotp(user.id, user.totpSecret, this.clock.now());
    await this.users.useTotpStep(user.id, step);
    const recovery = newRecoveryCodes();
    await this.codes.replace(
      user.id,
      recovery.map((c) => sha256(normalRecoveryCode(c))),
    );
    return recovery;
  }

  /** Whether a code (from the app, or a recovery code) is right for a user with the second factor on; each code works once. */
  async check(user: PortalUser, code: string): Promise<boolean> {
    const secret = this.secretOf(user);
    if (!secret || user.totpEnabledAt === null || code.length > 40) return false;
    const step = matchTotp(secret, code, this.clock.now(), user.totpLastStep ?? -1);
    if (step !== undefined) return this.users.useTotpStep(user.id, step);
    const normal = normalRecoveryCode(code);
    return /^[a-z0-9]{12}$/.test(normal) && this.codes.use(user.id, sha256(normal), this.clock.now());
  }

  /** Turns the second factor off, with a current code or a recovery code. */
  async disable(user: PortalUser, code: unknown): Promise<void> {
    if (user.totpEnabledAt === null) throw ApiError.conflict('second-factor-off', 'two-factor authentication is not on');
    if (typeof code !== 'string' || !(await this.check(user, code))) throw wrongCode();
    await this.users.setTotp(user.id, null, null);
    await this.codes.replace(user.id, []);
  }

  unusedRecoveryCodes(userId: number): Promise<number> {
    return this.codes.unused(userId);
  }
}
