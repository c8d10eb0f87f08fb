import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Bus, BusEvent, BusListener, BusStatus } from './index.js';

// ioredis is loaded on first use, so a server without REDIS_URL does not carry it in memory.
const loadRedis = (): typeof Redis => (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;

const CHANNEL = 'portcullis:events';

/**
 * Events shared by every node through Redis pub/sub. A node's own events reach its listeners at
 * once, without waiting on Redis, and Redis is told for the others. While the subscription is
 * down the node keeps serving (callers shorten their cache lifetimes through `onStateChange`),
 * and when it returns its listeners get a `resync`, since events may have been missed.
 */
export class RedisBus implements Bus {
  private readonly listeners = new Set<BusListener>();
  private readonly origin = randomUUID();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private up = false;
  private everUp = false;
  private closed = false;

  constructor(
    url: string,
    private readonly onStateChange: (status: BusStatus) => void = () => {},
  ) {
    const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000);
    // Commands fail at once while disconnected instead of queueing without bound.
    this.publisher = new (loadRedis())(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, connectTimeout: 2_000 });
    this.subscriber = new (loadRedis())(url, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy, connectTimeout: 2_000 });
    for (const client of [this.publisher, this.subscriber]) client.on('error', () => {}); // state is tracked below
    this.subscriber.on('message', (_channel: string, message: string) => this.receive(message));
    this.subscriber.on('ready', () => this.setUp(true));
    this.subscriber.on('close', () => this.setUp(false));
  }

  /** Connects and subscribes; a Redis that is down at start is not fatal, only reported. */
  async start(): Promise<void> {
    await Promise.allSettled([this.publisher.connect(), this.subscriber.connect()]);
    // ioredis re-subscribes by itself after a reconnect.
    await this.subscriber.subscribe(CHANNEL).catch(() => {});
  }

  private setUp(up: boolean): void {
    if (this.closed || up === this.up) return;
    this.up = up;
    if (up && this.everUp) this.deliver({ type: 'resync' });
    this.everUp ||= up;
    this.onStateChange(this.status());
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
    for (const listener of this.listeners) listener(event);
  }

  async publish(event: BusEvent): Promise<void> {
    this.deliver(event);
    try {
      await this.publisher.publish(CHANNEL, JSON.stringify({ origin: this.origin, event }));
    } catch {
      // Other nodes miss this one; their short cache lifetime while Redis is down, and the
      // resync when it returns, bound how long they serve the old value.
    }
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): BusStatus {
    return this.up ? { state: 'ok', detail: 'redis' } : { state: 'down', detail: 'redis unreachable: serving from the database with short cache lifetimes' };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
