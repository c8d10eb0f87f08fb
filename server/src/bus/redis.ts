import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CacheRegistry } from './caches.js';
import { loadRedis } from './redis-client.js';
import type { BusEvent, BusListener } from './events.js';
import type { Bus, BusStatus } from './index.js';

// ioredis is loaded on first use, so a server without REDIS_URL does not carry it in memory.

const CHANNEL = 'portcullis:events';
/** Events that could not be published are kept (at most this many) and sent when Redis returns. */
const OUTBOX_LIMIT = 1_000;

export interface RedisBusOptions {
  /** How long `start` waits for Redis before going on without it. */
  startWaitMs?: number;
}

/**
 * Events shared by every node through Redis pub/sub. A node's own events reach its caches at
 * once, without waiting on Redis, and Redis is told for the others. While the subscription is
 * down the node keeps serving and its cache registry applies the degraded freshness rule; when
 * it returns every cache resyncs, since events may have been missed. Events this node could not
 * publish meanwhile are sent when Redis is back (or, past OUTBOX_LIMIT, a resync of every node).
 */
export class RedisBus implements Bus {
  readonly caches = new CacheRegistry();
  private readonly listeners = new Set<BusListener>();
  private readonly statusListeners: Array<(status: BusStatus) => void> = [];
  private readonly origin = randomUUID();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private outbox: BusEvent[] = [];
  private outboxOverflowed = false;
  private up = false;
  private everUp = false;
  private closed = false;

  constructor(
    url: string,
    private readonly options: RedisBusOptions = {},
  ) {
    const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000);
    // Commands fail at once while disconnected instead of queueing without bound.
    this.publisher = new (loadRedis())(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, connectTimeout: 2_000 });
    this.subscriber = new (loadRedis())(url, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy, connectTimeout: 2_000 });
    for (const client of [this.publisher, this.subscriber]) client.on('error', () => {}); // state is tracked below
    this.subscriber.on('message', (_channel: string, message: string) => this.receive(message));
    this.subscriber.on('ready', () => this.setUp(true));
    this.subscriber.on('close', () => this.setUp(false));
    this.publisher.on('ready', () => void this.flushOutbox());
    // Until the subscription is confirmed, events from other nodes may be missed.
    this.caches.setEventsDown(true);
  }

  /**
   * Connects and subscribes, waiting at most `startWaitMs` (default 2 s) or until the first attempt
   * fails: a Redis that is down at start is not fatal. ioredis keeps reconnecting in the background; returns whether it is up.
   */
  async start(): Promise<boolean> {
    this.publisher.connect().catch(() => {});
    this.subscriber.connect().catch(() => {});
    // Queued until connected, and ioredis subscribes again by itself after every reconnect.
    this.subscriber.subscribe(CHANNEL).catch(() => {});
    // Until it is up, its first connection attempt fails (refused at once, or after connectTimeout), or the wait ends.
    let failed = false;
    const onClose = () => {
      failed = true;
    };
    this.subscriber.once('close', onClose);
    const deadline = Date.now() + (this.options.startWaitMs ?? 2_000);
    while (!this.up && !failed && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    this.subscriber.off('close', onClose);
    return this.up;
  }

  private setUp(up: boolean): void {
    if (this.closed || up === this.up) return;
    this.up = up;
    this.caches.setEventsDown(!up);
    if (up && this.everUp) this.deliver({ type: 'resync' });
    this.everUp ||= up;
    const status = this.status();
    for (const listener of this.statusListeners) listener(status);
  }

  private receive(message: string): void {
    let parsed: { origin?: string; event?: BusEvent };
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (parsed.origin === this.origin || typeof parsed.event?.type !== 'string') return;
    this.deliver(parsed.event);
  }

  private deliver(event: BusEvent | { type: 'resync' }): void {
    this.caches.deliver(event);
    for (const listener of this.listeners) listener(event);
  }

  private send(event: BusEvent): Promise<unknown> {
    return this.publisher.publish(CHANNEL, JSON.stringify({ origin: this.origin, event }));
  }

  async publish(event: BusEvent): Promise<void> {
    this.deliver(event);
    try {
      await this.send(event);
    } catch {
      // Other nodes miss it for now: their degraded freshness bounds how long they serve the old
      // value, and it is sent again when Redis returns, for nodes that never lost their link.
      if (this.outbox.length < OUTBOX_LIMIT) this.outbox.push(event);
      else this.outboxOverflowed = true;
    }
  }

  private async flushOutbox(): Promise<void> {
    const pending = this.outboxOverflowed ? [{ type: 'caches.resync' } as BusEvent] : this.outbox;
    this.outbox = [];
    this.outboxOverflowed = false;
    for (const event of pending) {
      try {
        await this.send(event);
      } catch {
        this.outbox.push(event);
      }
    }
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatusChange(listener: (status: BusStatus) => void): void {
    this.statusListeners.push(listener);
  }

  status(): BusStatus {
    return this.up ? { state: 'ok', detail: 'redis' } : { state: 'down', detail: 'redis unreachable: caches re-read from the database every second' };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.caches.stop();
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
