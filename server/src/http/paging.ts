import type { FastifyReply } from 'fastify';
import { pathId } from './json-body.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** `?limit=&cursor=` of a list route: at most MAX_PAGE items after the cursor (the last id of the previous page). */
export function pageQuery(query: unknown): { limit: number; after: number } {
  const q = (query ?? {}) as { limit?: unknown; cursor?: unknown };
  const limit = q.limit === undefined ? DEFAULT_PAGE : Math.min(pathId(String(q.limit), 'limit'), MAX_PAGE);
  const after = q.cursor === undefined ? 0 : pathId(String(q.cursor), 'cursor');
  return { limit, after };
}

/** A full page may have a next one: its cursor goes in `X-Next-Cursor`, the body stays the plain array. */
export function sendPage<T extends { id: number }>(reply: FastifyReply, items: T[], page: { limit: number }): T[] {
  const last = items.at(-1);
  if (items.length === page.limit && last) reply.header('x-next-cursor', String(last.id));
  return items;
}
