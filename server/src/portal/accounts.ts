import { ApiError } from '../domain/errors.js';
import { problem } from '../http/errors.js';
import type { Clock } from '../domain/clock.js';
import type { PortalUser, PortalUserRepository } from '../store/portal-users.js';
import type { PasswordPool } from './password-pool.js';
import { checkNewPassword, PASSWORD_MAX } from './passwords.js';
import type { SignInThrottle } from './sessions.js';

const EMAIL_MAX = 254;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** A trimmed, lower-cased email address, else a 400 saying what is wrong. */
export function checkEmail(value: unknown, field = 'email'): string {
  if (typeof value !== 'string' || value.trim() === '') throw ApiError.validation(`invalid-${field}`, `${field} is required`);
  const email = value.trim().toLowerCase();
  if (email.length > EMAIL_MAX) throw ApiError.validation(`invalid-${field}`, `${field} must be at most ${EMAIL_MAX} characters`);
  if (!EMAIL.test(email)) throw ApiError.validation(`invalid-${field}`, `${field} must be an email address such as name@example.com`);
  return email;
}

const badCredentials = () => problem('invalidCredentials', 'the email address or the password is wrong');

/** Sign-up, sign-in and password changes of portal users. */
export class Accounts {
  constructor(
    private readonly users: PortalUserRepository,
    private readonly passwords: PasswordPool,
    private readonly throttle: SignInThrottle,
    private readonly clock: Clock,
  ) {}

  // Verified against when the email is unknown, so the answer takes as long as for a wrong password.
  private dummyHash: Promise<string> | undefined;

  async signUp(input: { email: unknown; password: unknown }, ip: string): Promise<PortalUser> {
    const email = checkEmail(input.email);
    const password = checkNewPassword(input.password, email);
    this.throttle.signUp(ip);
    const created = await this.users.create(email, await this.passwords.hash(password), this.clock.now());
    if (created === 'taken') {
      throw ApiError.conflict('email-taken', 'an account with this email address already exists; sign in instead');
    }
    return created;
  }

  /** The same answer, after the same work, for an unknown email as for a wrong password. */
  async signIn(input: { email: unknown; password: unknown }, ip: string): Promise<PortalUser> {
    if (typeof input.email !== 'string' || typeof input.password !== 'string' || input.email.trim() === '' || input.password === '') {
      throw ApiError.validation('missing-credentials', 'enter your email address and your password');
    }
    if (input.email.length > 1000 || input.password.length > PASSWORD_MAX * 4) throw badCredentials();
    const email = input.email.trim().toLowerCase();
    this.throttle.attempt(email, ip);
    const user = await this.users.byEmail(email);
    const ok = await this.passwords.verify(user?.passwordHash ?? (await this.dummy()), input.password);
    if (!user || !ok) {
      await this.throttle.failed(email, ip);
      throw badCredentials();
    }
    return user;
  }

  async changePassword(userId: number, input: { current_password: unknown; new_password: unknown }): Promise<void> {
    const user = await this.users.get(userId);
    if (!user) throw badCredentials();
    if (typeof input.current_password !== 'string' || !(await this.passwords.verify(user.passwordHash, input.current_password))) {
      throw problem('wrongCurrentPassword', 'the current password is wrong');
    }
    const password = checkNewPassword(input.new_password, user.email, 'new_password');
    if (password === input.current_password) throw ApiError.validation('same-password', 'the new password must differ from the current one');
    await this.users.setPassword(userId, await this.passwords.hash(password), this.clock.now());
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= this.passwords.hash('not-a-real-password-but-as-slow-to-check');
    // A refusal (queue full) must not stick: the next caller tries again.
    this.dummyHash.catch(() => {
      this.dummyHash = undefined;
    });
    return this.dummyHash;
  }

  user(id: number): Promise<PortalUser | undefined> {
    return this.users.get(id);
  }
}
