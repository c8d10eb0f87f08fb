import { ApiError } from '../domain/errors.js';
import { problem } from '../http/errors.js';
import type { Clock } from '../domain/clock.js';
import type { PortalUserTokenRepository, UserTokenPurpose } from '../store/portal-user-tokens.js';
import type { PortalUser, PortalUserRepository } from '../store/portal-users.js';
import type { PortalSessionRepository } from '../store/portal-sessions.js';
import type { AuditRepository } from '../store/audit.js';
import type { Mailer, MailOutcome } from './mail.js';
import type { PasswordPool } from './password-pool.js';
import { checkNewPassword, PASSWORD_MAX } from './passwords.js';
import { randomToken, type SignInThrottle, sha256 } from './sessions.js';

const VERIFY_LIFETIME_MS = 48 * 3_600_000;
const RESET_LIFETIME_MS = 3_600_000;
/** Links of one kind mailed to one account per hour, so the portal cannot be used to flood a mailbox. */
const LINKS_PER_HOUR = 5;

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

/** Creating keys and joining organizations need a proven address. */
export const emailNotVerified = () =>
  new ApiError(
    403,
    'authorization',
    'email-not-verified',
    'Email address not verified',
    'verify your email address first: open the link we mailed you, or send a new one from your account page',
  );

const linkNotValid = (what: string) =>
  new ApiError(
    400,
    'validation',
    'link-not-valid',
    'Link not valid',
    `this ${what} link is not valid: it was used already, has expired, or was replaced by a newer one`,
  );

const accountDisabled = () =>
  new ApiError(403, 'authorization', 'account-disabled', 'Account disabled', 'this account has been disabled by an operator; contact your operator');

const badCredentials = () => problem('invalidCredentials', 'the email address or the password is wrong');

/** Sign-up, sign-in and password changes of portal users. */
export class Accounts {
  constructor(
    private readonly users: PortalUserRepository,
    private readonly passwords: PasswordPool,
    private readonly throttle: SignInThrottle,
    private readonly clock: Clock,
    private readonly links: { tokens: PortalUserTokenRepository; sessions: PortalSessionRepository; audit: AuditRepository; mailer: Mailer; portalUrl: string },
  ) {}

  // Verified against when the email is unknown, so the answer takes as long as for a wrong password.
  private dummyHash: Promise<string> | undefined;

  /** A new account; `verified` when the person came by an invitation link sent to this very address. */
  async signUp(input: { email: unknown; password: unknown }, ip: string, verified = false): Promise<PortalUser> {
    const email = checkEmail(input.email);
    const password = checkNewPassword(input.password, email);
    this.throttle.signUp(ip);
    const created = await this.users.create(email, await this.passwords.hash(password), this.clock.now(), verified);
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
    if (user.disabledAt !== null) throw accountDisabled();
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

  /**
   * Audits a sign-in, a failed one, or one refused while locked, for an existing account (an
   * unknown address has no account to file it under); organizations see their members' events.
   */
  async recordSignIn(emailInput: unknown, outcome: 'user.signed_in' | 'user.sign_in_failed' | 'user.sign_in_locked', ip: string): Promise<void> {
    if (typeof emailInput !== 'string' || emailInput.length > 1000) return;
    const user = await this.users.byEmail(emailInput.trim().toLowerCase());
    if (!user) return;
    const actor = outcome === 'user.signed_in' ? `user:${user.id}` : 'anonymous';
    await this.links.audit.recordChange(this.clock.now(), { actor, ip }, outcome, { type: 'user', id: user.id }, null, { email: user.email });
  }

  /** A wrong second-factor code counts as a failed sign-in, so codes cannot be guessed faster than passwords. */
  secondFactorFailed(email: string, ip: string): Promise<void> {
    return this.throttle.failed(email, ip);
  }

  user(id: number): Promise<PortalUser | undefined> {
    return this.users.get(id);
  }

  /** Whether mailed links reach people; without a mail server the portal says no mail was sent. */
  get mailDelivers(): boolean {
    return this.links.mailer.delivers;
  }

  /** A single-use link of `purpose` for the user; the page at `path` reads the token from the fragment, so it never reaches a server log. */
  async issueLink(user: PortalUser, purpose: UserTokenPurpose): Promise<string> {
    const now = this.clock.now();
    if ((await this.links.tokens.countSince(user.id, purpose, now - 3_600_000)) >= LINKS_PER_HOUR) {
      throw new ApiError(429, 'quota', 'too-many-links', 'Too many emails', 'too many links were sent to this address in the last hour; try again later');
    }
    // A new link replaces the older ones: only the latest mail works.
    await this.links.tokens.expireOpen(user.id, purpose, now);
    const token = randomToken();
    await this.links.tokens.create({
      id: sha256(token),
      userId: user.id,
      purpose,
      email: user.email,
      createdAt: now,
      expiresAt: now + (purpose === 'verify-email' ? VERIFY_LIFETIME_MS : RESET_LIFETIME_MS),
    });
    const page = purpose === 'verify-email' ? 'verify-email' : 'reset-password';
    return `${this.links.portalUrl}/${page}#token=${token}`;
  }

  /** Tells the account holder of a sign-in from a browser or address none of their sessions used. */
  async notifySignIn(user: PortalUser, ip: string, userAgent: string): Promise<MailOutcome> {
    return this.links.mailer.send({
      to: user.email,
      subject: 'New sign-in to your Portcullis account',
      text: `Your Portcullis account ${user.email} was signed in to at ${new Date(this.clock.now()).toISOString()}\nfrom address ${ip}\nwith ${userAgent.slice(0, 200) || 'an unknown browser'}.\n\nIf this was you, there is nothing to do. If not, reset your password at once from the sign-in page: that signs out every session.`,
    });
  }

  /** Mails a verification link to the user's address. */
  async sendVerification(user: PortalUser): Promise<MailOutcome> {
    if (user.emailVerifiedAt !== null) return 'not-sent';
    const link = await this.issueLink(user, 'verify-email');
    return this.links.mailer.send({
      to: user.email,
      subject: 'Verify your email address for Portcullis',
      text: `Welcome to Portcullis.\n\nOpen this link to verify ${user.email}:\n${link}\n\nThe link works once and expires in 48 hours. If you did not create an account, ignore this email.`,
    });
  }

  /** Proves the address the link was sent to; the account may then create keys and accept invitations. */
  async verifyEmail(token: unknown): Promise<PortalUser> {
    const used = await this.useLink(token, 'verify-email', 'verification');
    const user = await this.users.get(used.userId);
    if (!user || !(await this.users.markVerified(user.id, used.email, this.clock.now()))) throw linkNotValid('verification');
    return { ...user, emailVerifiedAt: this.clock.now() };
  }

  /**
   * Mails a reset link when the address has an account; the answer is the same either way, so
   * the form does not tell who has an account.
   */
  async requestPasswordReset(emailInput: unknown): Promise<void> {
    const email = checkEmail(emailInput);
    const user = await this.users.byEmail(email);
    if (!user || user.disabledAt !== null) return;
    let link: string;
    try {
      link = await this.issueLink(user, 'reset-password');
    } catch (err) {
      // Over the hourly limit: answer as usual rather than say the address has an account.
      if (err instanceof ApiError && err.status === 429) return;
      throw err;
    }
    await this.links.mailer.send({
      to: user.email,
      subject: 'Reset your Portcullis password',
      text: `Someone asked to reset the password of ${user.email} on Portcullis.\n\nOpen this link to choose a new password:\n${link}\n\nThe link works once and expires in one hour. Setting a new password signs out every session of the account. If you did not ask for this, ignore this email: your password stays as it is.`,
    });
  }

  /** Sets a new password from a reset link, proves the address, and ends every session of the account. */
  async resetPassword(token: unknown, newPassword: unknown): Promise<PortalUser> {
    if (typeof token !== 'string' || token === '' || token.length > 100) throw linkNotValid('password reset');
    const tokenHash = sha256(token);
    // Check the password before using up the link, so a too-short password can be corrected.
    const pending = await this.links.tokens.peek(tokenHash, 'reset-password', this.clock.now());
    if (!pending) throw linkNotValid('password reset');
    const password = checkNewPassword(newPassword, pending.email, 'new_password');
    const used = await this.useLink(token, 'reset-password', 'password reset');
    const user = await this.users.get(used.userId);
    if (!user || user.email !== used.email || user.disabledAt !== null) throw linkNotValid('password reset');
    const now = this.clock.now();
    await this.users.setPassword(user.id, await this.passwords.hash(password), now);
    await this.users.markVerified(user.id, used.email, now);
    await this.links.sessions.deleteForUser(user.id);
    return user;
  }

  private async useLink(token: unknown, purpose: UserTokenPurpose, what: string) {
    if (typeof token !== 'string' || token === '' || token.length > 100) throw linkNotValid(what);
    const used = await this.links.tokens.use(sha256(token), purpose, this.clock.now());
    if (!used) throw linkNotValid(what);
    return used;
  }

  /** The account with this address, else a 404 naming it. */
  private async byEmailOrNotFound(emailInput: unknown): Promise<PortalUser> {
    const email = checkEmail(emailInput);
    const user = await this.users.byEmail(email);
    if (!user) throw ApiError.notFound(`portal user ${email}`);
    return user;
  }

  private record(who: { actor: string; ip: string | null }, action: string, user: PortalUser, details: Record<string, unknown> = {}) {
    return this.links.audit.recordChange(this.clock.now(), who, action, { type: 'user', id: user.id }, null, { email: user.email, ...details });
  }

  /** What the operator API shows of an account. */
  static view(u: PortalUser) {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      id: u.id,
      email: u.email,
      created_at: iso(u.createdAt),
      email_verified_at: iso(u.emailVerifiedAt),
      disabled_at: iso(u.disabledAt),
      operator_since: iso(u.operatorSince),
    };
  }

  async find(emailInput: unknown): Promise<PortalUser> {
    return this.byEmailOrNotFound(emailInput);
  }

  /** An operator vouches for the address (the person could not receive mail). */
  async verifyByOperator(emailInput: unknown, who: { actor: string; ip: string | null }): Promise<PortalUser> {
    const user = await this.byEmailOrNotFound(emailInput);
    if (user.emailVerifiedAt === null) {
      await this.users.markVerified(user.id, user.email, this.clock.now());
      await this.record(who, 'user.verified', user);
    }
    return (await this.users.get(user.id))!;
  }

  /** A reset link for an operator to hand over (and mailed too when mail works); the password stays until it is used. */
  async resetByOperator(emailInput: unknown, who: { actor: string; ip: string | null }): Promise<{ user: PortalUser; link: string; mail: MailOutcome }> {
    const user = await this.byEmailOrNotFound(emailInput);
    if (user.disabledAt !== null) throw ApiError.conflict('account-disabled', `${user.email} is disabled; enable it first`);
    const link = await this.issueLink(user, 'reset-password');
    const mail = await this.links.mailer.send({
      to: user.email,
      subject: 'Reset your Portcullis password',
      text: `An operator started a password reset for ${user.email} on Portcullis.\n\nOpen this link to choose a new password:\n${link}\n\nThe link works once and expires in one hour. Setting a new password signs out every session of the account.`,
    });
    await this.record(who, 'user.password_reset_started', user);
    return { user, link, mail };
  }

  /** Disables (or enables) an account: a disabled one cannot sign in and its sessions end at once. */
  async setDisabled(emailInput: unknown, disabled: boolean, who: { actor: string; ip: string | null }): Promise<PortalUser> {
    const user = await this.byEmailOrNotFound(emailInput);
    if ((user.disabledAt !== null) !== disabled) {
      await this.users.setDisabled(user.id, disabled ? this.clock.now() : null);
      if (disabled) await this.links.sessions.deleteForUser(user.id);
      await this.record(who, disabled ? 'user.disabled' : 'user.enabled', user);
    }
    return (await this.users.get(user.id))!;
  }

  /** Grants (or takes back) the operator role: the operator console in the portal. */
  async setOperator(emailInput: unknown, operator: boolean, who: { actor: string; ip: string | null }): Promise<PortalUser> {
    const user = await this.byEmailOrNotFound(emailInput);
    if ((user.operatorSince !== null) !== operator) {
      await this.users.setOperator(user.id, operator ? this.clock.now() : null);
      await this.record(who, operator ? 'operator.granted' : 'operator.revoked', user);
    }
    return (await this.users.get(user.id))!;
  }
}
