import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { accessRoutes } from './access/routes.js';
import { StaticTokenVerifier } from './access/static-tokens.js';
import { TokenDenylist } from './access/denylist.js';
import { BearerVerifier } from './access/verifier.js';
import { AdminAuth } from './admin/auth.js';
import { sendFrameworkError, useApiErrors } from './admin/http.js';
import { adminRoutes } from './admin/routes.js';
import { type Bus, LocalBus } from './bus/index.js';
import type { Config } from './config.js';
import { ConfigError } from './config.js';
import type { ReadThroughCache } from './directory/cache.js';
import { Directory } from './directory/service.js';
import { UsageRecorder } from './directory/usage.js';
import { type Clock, systemClock } from './domain/clock.js';
import { KeyRing } from './keys/keyring.js';
import { deriveKeys, resolveMasterKey } from './keys/master.js';
import { gatewayAdminRoutes, gatewayRoutes } from './gateway/routes.js';
import { GatewayRoutes } from './gateway/service.js';
import { oauthRoutes } from './oauth/routes.js';
import { Metrics } from './ops/metrics.js';
import { useOperations } from './ops/routes.js';
import { TokenIssuer } from './oauth/tokens.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimitStore } from './ratelimit/redis.js';
import { MemoryRateLimitStore, type RateLimitStore } from './ratelimit/store.js';
import { retailMediaAdminRoutes } from './retailmedia/admin-routes.js';
import { Beacons } from './retailmedia/beacons.js';
import { deliveryRoutes } from './retailmedia/routes.js';
import { RetailMedia } from './retailmedia/service.js';
import { RedisBus } from './bus/redis.js';
import { type Db, isPostgres, openPostgres, openSqlite, SQLITE_FILE, withLock } from './store/db.js';
import { Retention } from './store/retention.js';
import { createStore, type Store } from './store/index.js';
import { migrateToLatest, pendingMigrations } from './store/migrations.js';
import { Accounts } from './portal/accounts.js';
import { LogMailer, type Mailer } from './portal/mail.js';
import { Members } from './portal/members.js';
import { portalRoutes } from './portal/routes.js';
import { Portal } from './portal/service.js';
import { Sessions, SignInThrottle } from './portal/sessions.js';
import { dashboardRoutes, useSecurityHeaders } from './portal/ui.js';
import { TokenCounter } from './portal/usage-stats.js';

const MASTER_KEY_CHECK = 'master_key_check';

/** Everything a server process holds; tests build it the same way the CLI does. */
export interface Services {
  config: Config;
  clock: Clock;
  store: Store;
  bus: Bus;
  keys: KeyRing;
  directory: Directory;
  usage: UsageRecorder;
  tokens: TokenIssuer;
  verifier: BearerVerifier;
  denylist: TokenDenylist;
  adminAuth: AdminAuth;
  staticTokens: StaticTokenVerifier;
  retail: RetailMedia;
  beacons: Beacons;
  rateLimits: RateLimitStore;
  limiter: RateLimiter;
  gateway: GatewayRoutes;
  /** Deletes audit events, usage counters, sessions and invitations past their retention. */
  retention: Retention;
  /** Prometheus metrics of this server (its own registry), served at GET /metrics. */
  metrics: Metrics;
  /** The developer portal: accounts, sessions, organizations' members, apps and credentials. */
  portal: { portal: Portal; accounts: Accounts; sessions: Sessions; tokenCounts: TokenCounter; mailer: Mailer };
  /** Set when this start created the master key file or the admin token: the caller tells the operator once. */
  firstStart: { masterKeyFile?: string; adminToken?: string };
}

export interface ServiceOptions {
  clock?: Clock;
  /** A database to use instead of the SQLite file in the data dir. */
  db?: Db;
}

export async function createServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const master = resolveMasterKey(config.masterKey, config.dataDir);
  const derived = deriveKeys(master.key);
  const db = options.db ?? openDatabase(config);
  try {
    await migrateToLatest(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const store = createStore(db);

  const check = await store.settings.get(MASTER_KEY_CHECK);
  if (check === undefined) await store.settings.set(MASTER_KEY_CHECK, derived.check);
  else if (check !== derived.check) {
    await db.destroy();
    throw new ConfigError(
      master.file
        ? `${master.file} is not the master key this data was created with; set PORTCULLIS_MASTER_KEY to the original key`
        : 'PORTCULLIS_MASTER_KEY is not the master key this data was created with',
    );
  }

  let directory: Directory | undefined;
  const bus: Bus = config.redisUrl ? new RedisBus(config.redisUrl, (status) => directory?.eventsDown(status.state === 'down')) : new LocalBus();
  const usage = new UsageRecorder(store, clock);
  const metrics = new Metrics();
  usage.onFailure((reason) => metrics.authenticationFailed(reason));
  directory = new Directory(store, bus, clock, derived.pepper, usage, config.deactivationGraceSeconds);
  if (bus instanceof RedisBus) {
    directory.eventsDown(true);
    await bus.start();
    directory.eventsDown(bus.status().state === 'down');
  }
  const keys = new KeyRing(
    store.signingKeys,
    store.audit,
    derived.sealKey,
    clock,
    {
      alg: config.signingAlg,
      tokenLifetimeSeconds: config.tokenTtlSeconds + config.clockSkewSeconds,
      prepublishSeconds: config.keyPrepublishSeconds,
      rotationDays: config.keyRotationDays,
      lock: (name, fn) => withLock(db, name, fn),
    },
    bus,
  );
  await keys.ensureKey();
  const tokens = new TokenIssuer(directory, keys, usage, clock, derived.pepper, {
    issuer: config.issuer,
    audience: config.audience,
    ttlSeconds: config.tokenTtlSeconds,
  });
  const denylist = new TokenDenylist(store.revokedTokens, bus, clock);
  await denylist.load();
  const verifier = new BearerVerifier(keys, directory, denylist, clock, {
    issuer: config.issuer,
    audience: config.audience,
    clockSkewSeconds: config.clockSkewSeconds,
    onOutcome: (outcome) => metrics.verified(outcome),
  });
  // Under a lock, so nodes starting together on an empty store agree on one generated token.
  const admin = await withLock(db, 'first-start', () => AdminAuth.open(store.settings, derived.pepper, config.adminToken));
  const firstStart: Services['firstStart'] = {};
  if (master.generated && master.file) firstStart.masterKeyFile = master.file;
  if (admin.generated) firstStart.adminToken = admin.generated;
  const staticTokens = new StaticTokenVerifier(store.staticTokens, bus, clock, derived.pepper);
  const retail = new RetailMedia(store, bus, clock, directory, staticTokens);
  const beacons = new Beacons(derived.pepper, config.issuer, store.placements, clock);
  const rateLimits: RateLimitStore = config.redisUrl ? new RedisRateLimitStore(config.redisUrl, clock) : new MemoryRateLimitStore(clock);
  const limiter = new RateLimiter(rateLimits, () => clock.now());
  const gateway = new GatewayRoutes(config.routes, store, bus, clock);
  metrics.watchKeys(keys, clock);
  metrics.watchMemory(isPostgres(db) ? undefined : path.join(config.dataDir, SQLITE_FILE));
  metrics.watchCaches({
    credentials: directory.credentials,
    applications: directory.applications,
    static_tokens: staticTokens.cache,
    partners: retail.partners,
    placements: retail.catalogue,
    application_rate_limits: retail.applicationLimits,
  } as Record<string, ReadThroughCache<unknown, unknown>>);
  const tokenCounts = new TokenCounter(store.tokenCounts, clock);
  usage.onUse((_clientId, applicationId) => tokenCounts.issued(applicationId));
  const mailer = new LogMailer();
  const sessions = new Sessions(store.portalSessions, clock);
  const accounts = new Accounts(store.portalUsers, new SignInThrottle(rateLimits, clock), clock);
  const portal = new Portal(store, directory, new Members(store, clock, mailer), tokenCounts);
  return {
    config,
    clock,
    store,
    bus,
    keys,
    directory,
    usage,
    tokens,
    verifier,
    denylist,
    adminAuth: admin.auth,
    staticTokens,
    retail,
    beacons,
    rateLimits,
    limiter,
    gateway,
    retention: new Retention(db, clock, config.retention),
    metrics,
    portal: { portal, accounts, sessions, tokenCounts, mailer },
    firstStart,
  };
}

/** The configured database: PostgreSQL when DATABASE_URL is set, else the SQLite file in the data dir. */
export function openDatabase(config: Config, onError: (err: Error) => void = () => {}): Db {
  return config.databaseUrl ? openPostgres(config.databaseUrl, { onError }) : openSqlite(config.dataDir);
}

/**
 * What a request log line says of the request: no query string (the delivery API's carries
 * shoppers' ids) and no invitation token (it is the secret of an invitation link).
 */
function requestForLog(request: FastifyRequest) {
  const path = (request.url.split('?')[0] ?? '').replace(/\/invitations\/(?!\d+(\/|$))[^/]+/, '/invitations/…');
  return { method: request.method, url: path, host: request.host, remoteAddress: request.ip };
}

export function buildApp(services: Services, logger: boolean | object = false): FastifyInstance {
  const { config } = services;
  const app = Fastify({
    logger:
      logger === false
        ? false
        : {
            level: config.logLevel,
            redact: ['req.headers.authorization', 'req.headers.cookie'],
            serializers: { req: requestForLog },
            ...(logger === true ? {} : logger),
          },
    genReqId: () => randomUUID(),
    bodyLimit: 64 * 1024,
    routerOptions: { ignoreDuplicateSlashes: true, ignoreTrailingSlash: true, maxParamLength: 200 },
    return503OnClosing: true,
    frameworkErrors: sendFrameworkError,
    trustProxy: config.trustProxy,
  });
  useOperations(app, { metrics: services.metrics, metricsToken: config.metricsToken, issuer: config.issuer });
  useApiErrors(app);
  useSecurityHeaders(app);
  if (services.portal.mailer instanceof LogMailer) services.portal.mailer.log = (fields, message) => app.log.info(fields, message);

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready means the database answers with every migration applied. Redis being down degrades the
  // node (short cache lifetimes) without taking it out of the load balancer.
  app.get('/readyz', async (_request, reply) => {
    const database = await pendingMigrations(services.store.db).then(
      (pending) => (pending.length === 0 ? { state: 'ok' } : { state: 'down', detail: `migrations pending: ${pending.join(', ')}` }),
      () => ({ state: 'down', detail: 'unreachable' }),
    );
    const events = services.bus.status();
    const ready = database.state === 'ok';
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({
        status: !ready ? 'unavailable' : events.state === 'ok' ? 'ready' : 'degraded',
        database: { kind: services.config.databaseUrl ? 'postgresql' : 'sqlite', ...database },
        ...(services.config.redisUrl ? { redis: events } : {}),
      });
  });

  app.register(oauthRoutes, {
    issuer: config.issuer,
    issuerTokens: services.tokens,
    keys: services.keys,
    verifier: services.verifier,
    denylist: services.denylist,
    limiter: services.limiter,
    limits: config.tokenLimits,
    jwksMaxAgeSeconds: Math.min(300, config.keyPrepublishSeconds),
  });
  app.register(accessRoutes, { verifier: services.verifier, directory: services.directory });
  app.register(adminRoutes, {
    prefix: '/admin/v1',
    auth: services.adminAuth,
    directory: services.directory,
    keys: services.keys,
    store: services.store,
    usage: services.usage,
    clock: services.clock,
  });
  app.register(retailMediaAdminRoutes, {
    prefix: '/admin/v1',
    auth: services.adminAuth,
    retail: services.retail,
    beacons: services.beacons,
    store: services.store,
  });
  app.register(gatewayAdminRoutes, { prefix: '/admin/v1', auth: services.adminAuth, routes: services.gateway });
  app.register(deliveryRoutes, {
    retail: services.retail,
    staticTokens: services.staticTokens,
    verifier: services.verifier,
    beacons: services.beacons,
    limiter: services.limiter,
    defaultRateLimit: config.rateLimitPerMinute,
  });
  app.register(gatewayRoutes, {
    routes: services.gateway,
    verifier: services.verifier,
    limiter: services.limiter,
    retail: services.retail,
    defaultRateLimit: config.rateLimitPerMinute,
    defaultTimeoutMs: config.gatewayTimeoutMs,
  });
  app.register(portalRoutes, { prefix: '/portal/api', ...services.portal, baseUrl: config.issuer, graceSeconds: config.deactivationGraceSeconds });
  app.register(dashboardRoutes);
  return app;
}

/** Starts the background work of a serving process: batched writes and scheduled key rotation. */
export function startBackground(services: Services, app: FastifyInstance): void {
  services.usage.start(5_000, (err) => app.log.error({ err }, 'could not record credential usage'));
  services.staticTokens.start(5_000, (err) => app.log.error({ err }, 'could not record static-token usage'));
  services.beacons.start(5_000, (err) => app.log.error({ err }, 'could not record beacon counts'));
  services.portal.tokenCounts.start(5_000, (err) => app.log.error({ err }, 'could not record token counts'));
  services.keys.startSchedule((err) => app.log.error({ err }, 'scheduled key rotation failed'));
  services.denylist.start(60_000, (err) => app.log.error({ err }, 'could not prune revoked tokens'));
  services.retention.start(3_600_000, (err) => app.log.error({ err }, 'could not prune old audit events, usage counters or sessions'));
  services.keys.rotateIfDue().catch((err: unknown) => app.log.error({ err }, 'scheduled key rotation failed'));
}

/** Stops background work, writes what is pending, and closes the store. */
export async function stopServices(services: Services): Promise<void> {
  services.keys.stop();
  services.denylist.stop();
  services.retention.stop();
  await services.usage.stop().catch(() => {});
  await services.staticTokens.stop().catch(() => {});
  await services.beacons.stop().catch(() => {});
  await services.portal.tokenCounts.stop().catch(() => {});
  await services.rateLimits.close();
  await services.bus.close();
  await services.store.db.destroy();
}
