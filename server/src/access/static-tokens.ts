import type { Bus } from '../bus/index.js';
import type { Clock } from '../domain/clock.js';
import { hashSecret, isWellFormedSecret, SECRET_PREFIX } from '../domain/secrets.js';
import { ReadThroughCache } from '../directory/cache.js';
import { BatchedWrites, latest } from '../store/batched-writes.js';
import type { StaticToken, StaticTokenRepository } from '../store/static-tokens.js';

export type StaticTokenFailure = 'malformed' | 'unknown' | 'revoked' | 'expired' | 'wrong_partner';

export type StaticTokenOutcome = { ok: true; token: StaticToken } | { ok: false; reason: StaticTokenFailure };

/** Whether a bearer token is meant as a static token (by its prefix), so it never reaches the JWT verifier. */
export const isStaticTokenShaped = (token: string): boolean => token.startsWith(SECRET_PREFIX.staticToken);

/** Whether a static token may be used now: not revoked, and not past its expiry. */
export function staticTokenUsable(token: Pick<StaticToken, 'revokedAt' | 'expiresAt'>, now: number): StaticTokenFailure | undefined {
  if (token.revokedAt !== null) return 'revoked';
  if (token.expiresAt !== null && token.expiresAt <= now) return 'expired';
  return undefined;
}

/**
 * Checks static tokens (`pct_…`) by their HMAC under the pepper. Tokens are cached in memory by
 * hash and dropped on a bus event when revoked; last use is collected in memory and written in
 * batches, so a verified call reads and writes nothing in the steady state.
 */
export class StaticTokenVerifier {
  readonly cache: ReadThroughCache<string, StaticToken>;
  private readonly lastUsed: BatchedWrites<number, number>;

  constructor(
    repository: StaticTokenRepository,
    bus: Bus,
    private readonly clock: Clock,
    private readonly pepper: Buffer,
  ) {
    this.lastUsed = new BatchedWrites((batch) => repository.recordLastUsed(batch), latest);
    this.cache = bus.caches.register(
      'static_tokens',
      new ReadThroughCache((hash: string) => repository.byHash(hash), clock, { negativeMs: 5_000, maxEntries: 100_000 }),
      { 'static-token.changed': (e) => ({ key: e.tokenHash }) },
    );
  }

  hash(token: string): string {
    return hashSecret(this.pepper, token);
  }

  /** A static token valid for this partner, or why not. */
  async verify(token: string, partnerId: number): Promise<StaticTokenOutcome> {
    // The checksum refuses typos and random strings before any lookup.
    if (!isWellFormedSecret(token, SECRET_PREFIX.staticToken)) return { ok: false, reason: 'malformed' };
    const found = await this.cache.get(this.hash(token));
    if (!found) return { ok: false, reason: 'unknown' };
    const now = this.clock.now();
    const unusable = staticTokenUsable(found, now);
    if (unusable) return { ok: false, reason: unusable };
    if (found.partnerId !== partnerId) return { ok: false, reason: 'wrong_partner' };
    this.lastUsed.add(found.id, now);
    return { ok: true, token: found };
  }

  pendingLastUsed(id: number): number | undefined {
    return this.lastUsed.pendingValue(id);
  }

  flush(): Promise<void> {
    return this.lastUsed.flush();
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.lastUsed.start(intervalMs, onError);
  }

  stop(): Promise<void> {
    return this.lastUsed.stop();
  }
}
