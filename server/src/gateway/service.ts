import type { Bus } from '../bus/index.js';
import { WholeTableCache } from '../directory/cache.js';
import type { Actor } from '../directory/service.js';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import type { StoredRoute } from '../store/gateway-routes.js';
import type { Store } from '../store/index.js';
import { checkRoute, checkRouteOptions, type RouteSpec, routeOptionsView } from './routes-config.js';

export interface GatewayRoute extends RouteSpec {
  /** null for a route from the PORTCULLIS_ROUTES file, which the operator API cannot change. */
  id: number | null;
  source: 'file' | 'api';
}

/** The routing table: file routes and operator-API routes, in memory, longest prefix first. */
export class GatewayRoutes {
  private table: GatewayRoute[] = [];
  private readonly cache: WholeTableCache;

  constructor(
    private fileRoutes: RouteSpec[],
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly clock: Clock,
    onReloadError: (err: unknown) => void = () => {},
  ) {
    this.table = this.sorted(fileRoutes.map((r) => ({ ...r, id: null, source: 'file' as const })));
    this.cache = bus.caches.register(
      'gateway_routes',
      new WholeTableCache(
        () => this.load(),
        () => this.table.length,
        onReloadError,
      ),
      {
        'gateway-routes.changed': () => 'all',
      },
    );
  }

  private sorted(routes: GatewayRoute[]): GatewayRoute[] {
    return routes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** Reads the operator API's routes again (one reload at a time). */
  reload(): Promise<void> {
    return this.cache.reload();
  }

  private async load(): Promise<void> {
    const stored = await this.store.gatewayRoutes.list();
    const file = this.fileRoutes.map((r) => ({ ...r, id: null, source: 'file' as const }));
    const api = stored.filter((s) => !this.fileRoutes.some((f) => f.prefix === s.prefix)).map((s) => this.fromStore(s));
    this.table = this.sorted([...file, ...api]);
  }

  private fromStore(stored: StoredRoute): GatewayRoute {
    const checked = checkRouteOptions(stored.options);
    // Stored options were checked when written; a row that fails now (edited by hand) gets the safe defaults of no options.
    const options = 'options' in checked ? checked.options : { rules: [], rateLimitPerMinute: null, cors: null, audience: null };
    return { id: stored.id, source: 'api', prefix: stored.prefix, upstream: stored.upstream, scopes: stored.scopes, timeoutMs: stored.timeoutMs, ...options };
  }

  /** Replaces the PORTCULLIS_ROUTES routes (SIGHUP): the file's routes are the truth for their prefixes, as at start. */
  async replaceFileRoutes(routes: RouteSpec[]): Promise<void> {
    this.fileRoutes = routes;
    await this.reload();
  }

  /** The route whose prefix is the path or a whole-segment start of it. */
  match(path: string): GatewayRoute | undefined {
    for (const route of this.table) {
      if (path.startsWith(route.prefix) && (path.length === route.prefix.length || path.charCodeAt(route.prefix.length) === 47)) return route;
    }
    return undefined;
  }

  get size(): number {
    return this.table.length;
  }

  list(): GatewayRoute[] {
    return [...this.table].sort((a, b) => a.prefix.localeCompare(b.prefix));
  }

  async create(body: Record<string, unknown>, who: Actor): Promise<GatewayRoute> {
    const checked = checkRoute(body);
    if ('problem' in checked) throw ApiError.validation('invalid-route', checked.problem);
    const { route } = checked;
    if (this.fileRoutes.some((r) => r.prefix === route.prefix))
      throw ApiError.conflict('prefix-taken', `prefix ${route.prefix} is declared in PORTCULLIS_ROUTES`);
    const created = await this.store.transaction(async (tx) => {
      const row = await tx.gatewayRoutes.create({
        prefix: route.prefix,
        upstream: route.upstream,
        scopes: route.scopes,
        timeoutMs: route.timeoutMs,
        options: routeOptionsView(route),
        createdAt: this.clock.now(),
      });
      if (row === 'prefix-taken') throw ApiError.conflict('prefix-taken', `a route with prefix ${route.prefix} exists already; delete it first`);
      await this.audit(tx, who, 'gateway_route.created', row.id, {
        prefix: route.prefix,
        upstream: route.upstream,
        scopes: route.scopes,
        timeout_ms: route.timeoutMs,
        ...routeOptionsView(route),
      });
      return row;
    });
    await this.bus.publish({ type: 'gateway-routes.changed' });
    await this.reload();
    return { ...route, id: created.id, source: 'api' };
  }

  async remove(id: number, who: Actor): Promise<GatewayRoute> {
    const removed = await this.store.transaction(async (tx) => {
      const row = await tx.gatewayRoutes.remove(id);
      if (!row) throw ApiError.notFound(`gateway route ${id}`);
      await this.audit(tx, who, 'gateway_route.deleted', id, { prefix: row.prefix, upstream: row.upstream });
      return row;
    });
    await this.bus.publish({ type: 'gateway-routes.changed' });
    await this.reload();
    return this.fromStore(removed);
  }

  /** Records a change in the transaction `tx` that makes it, so neither exists without the other. */
  private audit(tx: Store, who: Actor, action: string, id: number, details: Record<string, unknown>) {
    return tx.audit.recordChange(this.clock.now(), who, action, { type: 'gateway_route', id }, null, details);
  }
}
