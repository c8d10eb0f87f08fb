import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { PortalSession, PortalSessionRepository } from '../store/portal-sessions.js';

export const SESSION_COOKIE = 'portcullis_session';
/** The anonymous visitor's CSRF token (double submit) before there is a session. */
export const PRESESSION_COOKIE = 'portcullis_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SESSION_LIFETIME_MS = 7 * 86_400_000;
const IDLE_MS = 24 * 3_600_000;
const TOUCH_EVERY_MS = 5 * 60_000;

export const randomToken = (): string => randomBytes(32).toString('base64url');
export const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Server-side sessions: the cookie holds a random token, the database its hash and the session's CSRF token. */
export class Sessions {
  constructor(
    private readonly repository: PortalSessionRepository,
    private readonly clock: Clock,
  ) {}

  /** A new session (sign-up, sign-in, password change); the caller ends the old one. */
  async create(userId: number, seen: { ip?: string; userAgent?: string } = {}): Promise<{ token: string; session: PortalSession }> {
    const token = randomToken();
    const now = this.clock.now();
    const session: PortalSession = {
      id: sha256(token),
      userId,
      csrfToken: randomToken(),
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + SESSION_LIFETIME_MS,
      ip: seen.ip ?? null,
      userAgent: seen.userAgent?.slice(0, 300) ?? null,
    };
    await this.repository.create(session);
    return { token, session };
  }

  /** The live session of a cookie token, or undefined when it is unknown, expired or idle too long. */
  async find(token: string | undefined): Promise<PortalSession | undefined> {
    if (!token || token.length > 100) return undefined;
    const session = await this.repository.get(sha256(token));
    if (!session) return undefined;
    const now = this.clock.now();
    if (session.expiresAt <= now || session.lastSeenAt + IDLE_MS <= now) {
      await this.repository.delete(session.id);
      return undefined;
    }
    if (now - session.lastSeenAt > TOUCH_EVERY_MS) await this.repository.touch(session.id, now);
    return session;
  }

  /** The user's live sessions, most recently used first. */
  list(userId: number): Promise<PortalSession[]> {
    return this.repository.ofUser(userId, this.clock.now());
  }

  end(session: PortalSession): Promise<void> {
    return this.repository.delete(session.id);
  }

  endOthers(userId: number, keep?: string): Promise<void> {
    return this.repository.deleteForUser(userId, keep);
  }

  get maxAgeSeconds(): number {
    return SESSION_LIFETIME_MS / 1000;
  }
}

const WINDOW_MS = 15 * 60_000;
const HOUR_MS = 60 * 60_000;
/** Failed sign-ins for one account from one address in a sliding 15 minutes; then that pair waits. */
export const ACCOUNT_ADDRESS_FAILURE_LIMIT = 5;
/** Failed sign-ins from one address, whatever the account, in a sliding 15 minutes; then that address waits. */
export const ADDRESS_FAILURE_LIMIT = 30;

export interface PortalLimits {
  /** Sign-in attempts a minute from one address, successful or not (each costs an argon2id verification). */
  signinsPerIpPerMinute: number;
  /** Sign-ups an hour from one address. */
  signupsPerIpPerHour: number;
}

/**
 * Limits portal sign-in and sign-up per address, and slows failures down. Failures are counted
 * per (account, address) and per address in sliding windows in the rate-limit store (shared by
 * every node when Redis is configured), never per account alone: an email address is no secret,
 * so a lock per account would let anyone lock its owner out. Each failure waits longer than the
 * one before, up to 2 s.
 */
export class SignInThrottle {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly limits: PortalLimits,
    private readonly delayStepMs = 150,
  ) {}

  private pairKey(email: string, ip: string): string {
    return `portal-signin:account-ip:${sha256(email)}:${ip}`;
  }

  /** Counts a sign-in attempt; a 429 with Retry-After when this address or this (account, address) may not try now. */
  attempt(email: string, ip: string): void {
    const refusal =
      this.limiter.over(this.pairKey(email, ip), WINDOW_MS, ACCOUNT_ADDRESS_FAILURE_LIMIT) ??
      this.limiter.over(`portal-signin:ip:${ip}`, WINDOW_MS, ADDRESS_FAILURE_LIMIT) ??
      (this.limits.signinsPerIpPerMinute > 0 ? this.limiter.over(`portal-signin-attempts:ip:${ip}`, 60_000, this.limits.signinsPerIpPerMinute) : undefined);
    if (refusal) {
      const wait = this.limiter.retryAfter(refusal);
      throw ApiError.tooMany('too-many-attempts', `too many sign-in attempts from this address; try again in ${describeWait(wait)}`, wait);
    }
    if (this.limits.signinsPerIpPerMinute > 0) this.limiter.count(`portal-signin-attempts:ip:${ip}`, 60_000);
  }

  /** Counts a failure and waits before the caller answers, longer after each failure. */
  async failed(email: string, ip: string): Promise<void> {
    const pair = this.limiter.count(this.pairKey(email, ip), WINDOW_MS);
    const address = this.limiter.count(`portal-signin:ip:${ip}`, WINDOW_MS);
    const failures = Math.max(pair, (address * ACCOUNT_ADDRESS_FAILURE_LIMIT) / ADDRESS_FAILURE_LIMIT);
    const delay = Math.min(2_000, Math.round(failures * this.delayStepMs));
    await new Promise((resolve) => setTimeout(resolve, delay));
  }

  /** A 429 with Retry-After past this address's sign-ups for the hour. */
  signUp(ip: string): void {
    if (this.limits.signupsPerIpPerHour <= 0) return;
    const refusal = this.limiter.over(`portal-signup:ip:${ip}`, HOUR_MS, this.limits.signupsPerIpPerHour);
    if (refusal) {
      const wait = this.limiter.retryAfter(refusal);
      throw ApiError.tooMany('too-many-signups', `too many accounts created from this address; try again in ${describeWait(wait)}`, wait);
    }
    this.limiter.count(`portal-signup:ip:${ip}`, HOUR_MS);
  }
}

function describeWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}
