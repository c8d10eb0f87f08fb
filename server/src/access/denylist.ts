import type { Bus } from '../bus/index.js';
import { WholeTableCache } from '../directory/cache.js';
import type { Clock } from '../domain/clock.js';
import type { RevokedTokenRepository } from '../store/revoked-tokens.js';

/**
 * Access tokens revoked one by one (RFC 7009), by jti, each kept only until its own expiry.
 * Every node holds the live entries in memory, so a check is one map lookup. The list is a
 * registered cache: reloaded on a `token.revoked` event and on the registry's freshness period
 * (every second while Redis is away), so a revocation reaches every node with or without events.
 */
export class TokenDenylist {
  private readonly revoked = new Map<string, number>(); // jti → expiry (ms)
  private readonly cache: WholeTableCache;
  private timer: NodeJS.Timeout | undefined;
  /** Grows on every change, so readers of {@link entries} know when to read again. */
  version = 0;

  constructor(
    private readonly repository: RevokedTokenRepository,
    private readonly bus: Bus,
    private readonly clock: Clock,
  ) {
    this.cache = bus.caches.register(
      'revoked_tokens',
      new WholeTableCache(
        () => this.read(),
        () => this.revoked.size,
      ),
      {
        'token.revoked': () => 'all',
      },
    );
  }

  /** Reads the live entries now (at start, and whenever the registry says so). */
  load(): Promise<void> {
    return this.cache.reload();
  }

  private async read(): Promise<void> {
    for (const { jti, expiresAt } of await this.repository.live(this.clock.now())) this.revoked.set(jti, expiresAt);
    this.version++;
  }

  /** The revoked jtis with their tokens' expiry (ms), for the revocation feed. */
  entries(): IterableIterator<[string, number]> {
    return this.revoked.entries();
  }

  has(jti: string): boolean {
    return this.revoked.has(jti);
  }

  /** Revokes a token until `expiresAt`; written first, so a restart or another node keeps it revoked. */
  async revoke(jti: string, expiresAt: number): Promise<void> {
    await this.repository.add(jti, expiresAt);
    this.revoked.set(jti, expiresAt);
    this.version++;
    await this.bus.publish({ type: 'token.revoked', jti, expiresAt });
  }

  /** Forgets entries whose tokens have expired anyway, here and in the store. */
  async prune(): Promise<void> {
    const now = this.clock.now();
    for (const [jti, expiresAt] of this.revoked) if (expiresAt <= now) this.revoked.delete(jti);
    this.version++;
    await this.repository.prune(now);
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => this.prune().catch(onError), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
