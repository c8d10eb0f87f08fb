import path from 'node:path';
import type { Config } from '../config.js';
import { SQLITE_FILE } from './db.js';

/**
 * Why a node cannot start, in one line naming the dependency and its address (never a password).
 * `exitCode` 78 (EX_CONFIG) when a restart cannot help, so a supervisor can stop retrying; 69
 * (EX_UNAVAILABLE) when a dependency is away and a later restart may find it.
 */
export class StartError extends Error {
  override name = 'StartError';
  constructor(
    message: string,
    readonly exitCode: 1 | 69 | 78 = 1,
  ) {
    super(message);
  }
}

/** "PostgreSQL at host:port/database" or "SQLite at /path", for messages: no user name, no password. */
export function describeDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  if (!config.databaseUrl) return `SQLite at ${path.join(config.dataDir, SQLITE_FILE)}`;
  try {
    const url = new URL(config.databaseUrl);
    return `PostgreSQL at ${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname.length > 1 ? url.pathname : ''}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}

/** The short reason of a connection failure: its code (ECONNREFUSED, 28P01 …) and message, one line. */
export function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: unknown[] };
  // A host with several addresses fails with an AggregateError whose message is empty.
  const inner = (!e?.message && Array.isArray(e?.errors) ? e.errors[0] : e) as NodeJS.ErrnoException | undefined;
  const message = (inner?.message ?? String(err)).split('\n')[0] ?? '';
  return inner?.code && !message.includes(inner.code) ? `${inner.code}: ${message}` : message;
}
