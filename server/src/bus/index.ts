/**
 * What nodes share. Caches subscribe to invalidation events; a mutation publishes one after it
 * commits. The embedded default delivers in-process and synchronously; the fleet issue adds a
 * Redis implementation of the same interface.
 */
export type BusEvent =
  | { type: 'credential.changed'; clientId: string }
  | { type: 'application.changed'; applicationId: number }
  | { type: 'keys.changed' }
  | { type: 'token.revoked'; jti: string; expiresAt: number }
  // Retail media and gateway (partner settings, links and catalogue; static tokens by hash; routes).
  | { type: 'partner.changed'; partnerId: number }
  | { type: 'static-token.changed'; tokenHash: string }
  | { type: 'gateway-routes.changed' };

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
  publish(event: BusEvent): Promise<void>;
  subscribe(listener: BusListener): () => void;
  status(): BusStatus;
  close(): Promise<void>;
}

export class LocalBus implements Bus {
  private readonly listeners = new Set<BusListener>();

  async publish(event: BusEvent): Promise<void> {
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): BusStatus {
    return { state: 'ok', detail: 'in-process' };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
