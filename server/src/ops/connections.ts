import type { Server } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import type { Metrics } from './metrics.js';

const LOG_EVERY_MS = 60_000;

/** How often Node checks headers and request timeouts: often enough that a short timeout is kept to within a second or so. */
export function connectionsCheckingInterval(connections: Config['connections']): number {
  return Math.max(250, Math.min(30_000, Math.floor(Math.min(connections.headersTimeoutMs, connections.requestTimeoutMs) / 4)));
}

/**
 * Caps this process's open connections (beyond the cap Node closes new ones at once, so file
 * descriptors stay for the connections being served) and says so in one log line a minute at
 * most, with how many were dropped since the last one.
 */
export function capConnections(server: Server, connections: Config['connections'], log: FastifyBaseLogger, metrics: Metrics): void {
  server.maxConnections = connections.max;
  server.headersTimeout = connections.headersTimeoutMs;
  let dropped = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    metrics.connectionDropped();
    dropped++;
    const now = Date.now();
    if (now - loggedAt < LOG_EVERY_MS) return;
    log.warn(
      { max_connections: connections.max, dropped },
      `connection cap reached: this process holds PORTCULLIS_MAX_CONNECTIONS (${connections.max}) connections and closes new ones at once`,
    );
    loggedAt = now;
    dropped = 0;
  });
}
