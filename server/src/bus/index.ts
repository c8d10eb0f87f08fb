import { CacheRegistry } from './caches.js';
import type { BusEvent, BusListener } from './events.js';

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
