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
