import type { Db } from './db.js';

export interface StoredRoute {
  id: number;
  prefix: string;
  upstream: string;
  scopes: string[];
  timeoutMs: number | null;
  /** The route's other options as declared (snake_case JSON), checked again when loaded. */
  options: Record<string, unknown>;
  createdAt: number;
}

type Row = { id: number; prefix: string; upstream: string; scopes: string; timeout_ms: number | null; options: string; created_at: number };
const toRoute = (r: Row): StoredRoute => ({
  id: Number(r.id),
  prefix: r.prefix,
  upstream: r.upstream,
  scopes: JSON.parse(r.scopes) as string[],
  timeoutMs: r.timeout_ms === null ? null : Number(r.timeout_ms),
  options: JSON.parse(r.options) as Record<string, unknown>,
  createdAt: Number(r.created_at),
});

/** Gateway routes declared through the operator API (those from PORTCULLIS_ROUTES live only in memory). */
export class GatewayRouteRepository {
  constructor(private readonly db: Db) {}

  /** Adds a route, or answers 'prefix-taken' (also when a concurrent request took the prefix first). */
  async create(input: Omit<StoredRoute, 'id'>): Promise<StoredRoute | 'prefix-taken'> {
    const row = await this.db
      .insertInto('gateway_routes')
      .values({
        prefix: input.prefix,
        upstream: input.upstream,
        scopes: JSON.stringify(input.scopes),
        timeout_ms: input.timeoutMs,
        options: JSON.stringify(input.options),
        created_at: input.createdAt,
      })
      .onConflict((oc) => oc.column('prefix').doNothing())
      .returningAll()
      .executeTakeFirst();
    return row ? toRoute(row) : 'prefix-taken';
  }

  async list(): Promise<StoredRoute[]> {
    return (await this.db.selectFrom('gateway_routes').selectAll().orderBy('id').execute()).map(toRoute);
  }

  async remove(id: number): Promise<StoredRoute | undefined> {
    const row = await this.db.deleteFrom('gateway_routes').where('id', '=', id).returningAll().executeTakeFirst();
    return row && toRoute(row);
  }
}
