import { CacheRegistry } from './caches.js';

/**
 * What nodes share. A mutation publishes an event after it commits; the event layer's cache
 * registry (`caches`) routes it to every cache that declared it. The embedded default delivers
 * in-process and synchronously; RedisBus delivers to every node through Redis.
 */
export type BusEvent =
  | { type: 'credential.changed'; clientId: string }
  | { type: 'application.changed'; applicationId: number }
  | { type: 'keys.changed' }
  | { type: 'token.revoked'; jti: string; expiresAt: number }
  // Retail media and gateway (partner settings, links and catalogue; static tokens by hash; routes).
  | { type: 'partner.changed'; partnerId: number }
  | { type: 'static-token.changed'; tokenHash: string }
  | { type: 'gateway-routes.changed' }
  // A node whose events could not reach Redis for a while tells every node to drop its caches.
  | { type: 'caches.resync' };

/**
 * Delivered to this node's listeners only, when it may have missed events (its link to Redis
 * came back): caches drop everything and reload.
 */
export type ResyncEvent = { type: 'resync' };

export type BusListener = (event: BusEvent | ResyncEvent) => void;

export interface BusStatus {
  /** `ok`, or `down` while events from other nodes cannot arrive. */
  state: 'ok' | 'down';
  detail: string;
}

export interface Bus {
  /** Every read-through cache of this node, registered with the events that invalidate it. */
  readonly caches: CacheRegistry;
  publish(event: BusEvent): Promise<void>;
  /** For listeners other than caches (caches register with `caches` instead). */
  subscribe(listener: BusListener): () => void;
  status(): BusStatus;
  /** Called with the new status whenever it changes. */
  onStatusChange(listener: (status: BusStatus) => void): void;
  close(): Promise<void>;
}

export class LocalBus implements Bus {
  readonly caches = new CacheRegistry();
  private readonly listeners = new Set<BusListener>();

  async publish(event: BusEvent): Promise<void> {
    this.caches.deliver(event);
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): BusStatus {
    return { state: 'ok', detail: 'in-process' };
  }

  onStatusChange(): void {}

  async close(): Promise<void> {
    this.listeners.clear();
    this.caches.stop();
  }
}
