/**
 * What nodes share. Caches subscribe to invalidation events; a mutation publishes one after it
 * commits. The embedded default delivers in-process and synchronously; the fleet issue adds a
 * Redis implementation of the same interface.
 */
export type BusEvent = { type: 'credential.changed'; clientId: string } | { type: 'application.changed'; applicationId: number } | { type: 'keys.changed' };

export type BusListener = (event: BusEvent) => void;

export interface Bus {
  publish(event: BusEvent): Promise<void>;
  subscribe(listener: BusListener): () => void;
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

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
