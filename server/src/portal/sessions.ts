import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { RateLimitStore } from '../ratelimit/store.js';
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
export const ACCOUNT_FAILURE_LIMIT = 5;
export const IP_FAILURE_LIMIT = 30;

/**
 * Slows and limits sign-in failures per account and per IP address. Failures are counted in the
 * rate-limit store (shared by every node when Redis is configured); a key over its limit is
 * locked until its window ends. Each failure also waits a little longer than the one before.
 */
export class SignInThrottle {
  private readonly lockedUntil = new Map<string, number>();

  constructor(
    private readonly counters: RateLimitStore,
    private readonly clock: Clock,
    private readonly delayStepMs = 150,
  ) {}

  private keys(email: string, ip: string): [string, number][] {
    return [
      [`portal-signin:account:${sha256(email)}`, ACCOUNT_FAILURE_LIMIT],
      [`portal-signin:ip:${ip}`, IP_FAILURE_LIMIT],
    ];
  }

  /** Seconds until sign-in may be tried again for this account or address, or 0. */
  retryAfter(email: string, ip: string): number {
    const now = this.clock.now();
    let until = 0;
    for (const [key] of this.keys(email, ip)) {
      const locked = this.lockedUntil.get(key);
      if (locked === undefined) continue;
      if (locked <= now) this.lockedUntil.delete(key);
      else until = Math.max(until, locked);
    }
    return until === 0 ? 0 : Math.ceil((until - now) / 1000);
  }

  /** Counts a failure and waits before the caller answers. */
  async failed(email: string, ip: string): Promise<void> {
    let worst = 0;
    for (const [key, limit] of this.keys(email, ip)) {
      const hit = await this.counters.hit(key, WINDOW_MS, limit);
      if (hit.count >= limit) this.lockedUntil.set(key, hit.resetAt);
      worst = Math.max(worst, hit.count / limit);
      if (this.lockedUntil.size > 100_000) this.lockedUntil.clear();
    }
    const delay = Math.min(2_000, Math.round(worst * ACCOUNT_FAILURE_LIMIT * this.delayStepMs));
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
