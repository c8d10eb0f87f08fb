import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { revocationFeed } from './access/revocation-feed.js';
import { RevocationList } from './access/revocation-list.js';
import { StaticTokenVerifier } from './access/static-tokens.js';
import { TokenDenylist } from './access/denylist.js';
import { BearerVerifier } from './access/verifier.js';
import { AdminAuth } from './admin/auth.js';
import { apiAdminRoutes } from './admin/api-routes.js';
import { Idempotency, useIdempotency } from './admin/idempotency.js';
import { adminRoutes, operatorApi } from './admin/routes.js';
import { accessRoutes } from './access/routes.js';
import { ApiRegistry } from './apis/service.js';
import { BearerAuthentication } from './http/bearer.js';
import { sendFrameworkError, useApiErrors } from './http/errors.js';
import { attachLanes, laneServer } from './http/lanes.js';
import { RequestLog, requestForLog } from './http/request-log.js';
import { lazySchemaCompilers } from './http/schema-compilers.js';
import { type Bus, LocalBus } from './bus/index.js';
import { type Config, ConfigError } from './config.js';
import { Directory } from './directory/service.js';
import { UsageRecorder } from './directory/usage.js';
import { type Clock, systemClock } from './domain/clock.js';
import { jwksMaxAgeSeconds, KeyRing } from './keys/keyring.js';
import { derive, resolveMasterKey } from './keys/master.js';
import { acceptedMasterKeys, type MasterKeys, openMasterKeys, wrongMasterKeyMessage } from './keys/master-rotation.js';
import { decisionRoutes } from './gateway/decision.js';
import { attachGateway, Gateway, gatewayAdminRoutes } from './gateway/routes.js';
import { GatewayRoutes } from './gateway/service.js';
import { auditFailureSpikes, ClientAuthenticator } from './oauth/client-auth.js';
import { oauthRoutes } from './oauth/routes.js';
import { tokenEndpoint } from './oauth/token.js';
import { TokenLane } from './oauth/token-lane.js';
import { Metrics } from './ops/metrics.js';
import { capConnections, connectionsCheckingInterval } from './ops/connections.js';
import { useOperations } from './ops/routes.js';
import { ClientAddresses, fastifyTrustProxy, trustWarning } from './http/client-address.js';
import { TokenIssuer } from './oauth/tokens.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimitStore } from './ratelimit/redis.js';
import { MemoryRateLimitStore, type RateLimitStore } from './ratelimit/store.js';
import { retailMediaAdminRoutes } from './retailmedia/admin-routes.js';
import { MemoryBeaconLedger, RedisBeaconLedger } from './retailmedia/beacon-ledger.js';
import { Beacons } from './retailmedia/beacons.js';
import { deliveryRoutes } from './retailmedia/routes.js';
import { RetailMedia } from './retailmedia/service.js';
import { RedisBus } from './bus/redis.js';
import { type Db, isPostgres, openPostgres, openSqlite, SQLITE_FILE, withLock } from './store/db.js';
import { Retention } from './store/retention.js';
import { createStore, type Store } from './store/index.js';
import { prepareSchema } from './store/compatibility.js';
import { describeDatabase, reasonOf, StartError } from './store/start-errors.js';
import { Readiness } from './ops/readiness.js';
import { Accounts } from './portal/accounts.js';
import { PasswordPool } from './portal/password-pool.js';
import { ARGON2_OPTIONS } from './portal/passwords.js';
import { portalAdminRoutes } from './portal/admin-routes.js';
import { LogMailer, type Mailer, SmtpMailer } from './portal/mail.js';
import { Members } from './portal/members.js';
import { portalRoutes } from './portal/routes.js';
import { SecondFactor } from './portal/second-factor.js';
import { Portal } from './portal/service.js';
import { Sessions, SignInThrottle } from './portal/sessions.js';
import { dashboardRoutes } from './portal/ui.js';
import { TokenCounter } from './portal/usage-stats.js';

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
  /** Client authentication with its failure limits, shared by the token, revocation and introspection endpoints. */
  clients: ClientAuthenticator;
  verifier: BearerVerifier;
  /** The one bearer-authentication step of /me, the delivery API, the gateway and the decision endpoint. */
  bearer: BearerAuthentication;
  denylist: TokenDenylist;
  adminAuth: AdminAuth;
  staticTokens: StaticTokenVerifier;
  retail: RetailMedia;
  beacons: Beacons;
  rateLimits: RateLimitStore;
  limiter: RateLimiter;
  gateway: GatewayRoutes;
  /** Idempotency-Key of operator POSTs: first answers kept sealed for 24 hours. */
  idempotency: Idempotency;
  /** APIs with their own audience (RFC 8707 resource indicators) and the applications granted them. */
  apis: ApiRegistry;
  /** Deletes audit events, usage counters, sessions and invitations past their retention. */
  retention: Retention;
  /** Prometheus metrics of this server (its own registry), served at GET /metrics. */
  metrics: Metrics;
  /** Dependencies' states, draining, and the answer of GET /readyz. */
  readiness: Readiness;
  /** The developer portal: accounts, sessions, organizations' members, apps and credentials. */
  portal: {
    portal: Portal;
    accounts: Accounts;
    sessions: Sessions;
    secondFactor: SecondFactor;
    tokenCounts: TokenCounter;
    mailer: Mailer;
    passwords: PasswordPool;
  };
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
  const db = options.db ?? openDatabase(config);
  try {
    await reachDatabase(db, config);
    await prepareSchema(db, config, { migrate: config.migrateOnStart });
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const store = createStore(db);

  let masterKeys: MasterKeys;
  try {
    masterKeys = await openMasterKeys(store.settings, acceptedMasterKeys(config, master.key), wrongMasterKeyMessage(master.file, master.generated));
  } catch (err) {
    await db.destroy();
    // A key generated just now for a store (a restored one) sealed under another would mislead the next start.
    if (err instanceof ConfigError && master.generated && master.file) rmSync(master.file, { force: true });
    throw err;
  }
  const { pepper } = masterKeys;

  const bus: Bus = config.redisUrl ? new RedisBus(config.redisUrl) : new LocalBus();
  // Bounded: a Redis that is down at start leaves the node in degraded mode, reconnecting in the background.
  if (bus instanceof RedisBus) await bus.start();
  const usage = new UsageRecorder(store, clock);
  const metrics = new Metrics();
  usage.onFailure((reason) => metrics.authenticationFailed(reason));
  const directory = new Directory(store, bus, clock, pepper, usage, config.deactivationGraceSeconds);
  const keys = new KeyRing(
    store.signingKeys,
    store.audit,
    masterKeys.sealer,
    clock,
    {
      alg: config.signingAlg,
      tokenLifetimeSeconds: config.tokenTtlSeconds + config.clockSkewSeconds,
      prepublishSeconds: config.keyPrepublishSeconds,
      jwksMaxAgeSeconds: jwksMaxAgeSeconds(config.keyPrepublishSeconds),
      rotationDays: config.keyRotationDays,
      lock: (name, fn) => withLock(db, name, fn),
    },
    bus,
  );
  await keys.ensureKey();
  const tokens = new TokenIssuer(directory, keys, usage, clock, pepper, {
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
  const admin = await withLock(db, 'first-start', () => AdminAuth.open(store.settings, pepper, config.adminToken));
  const firstStart: Services['firstStart'] = {};
  if (master.generated && master.file) firstStart.masterKeyFile = master.file;
  if (admin.generated) firstStart.adminToken = admin.generated;
  const staticTokens = new StaticTokenVerifier(store.staticTokens, bus, clock, pepper);
  const bearer = new BearerAuthentication(verifier, staticTokens, { onRefusal: (checkpoint, reason) => metrics.bearerRefused(checkpoint, reason) });
  const retail = new RetailMedia(store, bus, clock, directory, staticTokens);
  const beaconLedger = config.redisUrl ? new RedisBeaconLedger(config.redisUrl, clock) : new MemoryBeaconLedger(clock);
  const beacons = new Beacons(pepper, config.issuer, store.placements, clock, beaconLedger);
  const rateLimits: RateLimitStore = config.redisUrl ? new RedisRateLimitStore(config.redisUrl, clock) : new MemoryRateLimitStore(clock);
  const limiter = new RateLimiter(rateLimits, () => clock.now());
  const gateway = new GatewayRoutes(config.routes, store, bus, clock);
  const clients = new ClientAuthenticator(tokens, limiter, config.tokenLimits, clock);
  clients.onFailureSpike(() => metrics.failureSpike());
  clients.onFailureSpike(
    auditFailureSpikes(
      store.audit,
      async (applicationId) => (await directory.applications.get(applicationId))?.organizationId,
      clock,
      () => {}, // an audit write that fails (database down) must not fail the token request; the metric still counts
    ),
  );
  metrics.watchKeys(keys, clock);
  metrics.watchCaches(bus.caches);
  metrics.watchEntries({
    rate_limit_keys: () => rateLimits.size,
    verified_tokens: () => verifier.cachedTokens,
    ...(beaconLedger instanceof MemoryBeaconLedger ? { beacon_sightings: () => beaconLedger.size } : {}),
  });
  metrics.watchMemory(isPostgres(db) ? undefined : path.join(config.dataDir, SQLITE_FILE));
  const readiness = new Readiness({ db, kind: isPostgres(db) ? 'postgresql' : 'sqlite' }, bus, config.redisUrl !== undefined, keys, clock);
  metrics.watchDependencies(readiness, db);
  const tokenCounts = new TokenCounter(store.tokenCounts, clock);
  usage.onUse((clientId, applicationId) => tokenCounts.issued(applicationId, clientId));
  const mailer = config.smtpUrl ? new SmtpMailer(config.smtpUrl, config.mailFrom) : new LogMailer();
  const sessions = new Sessions(store.portalSessions, clock);
  const passwords = new PasswordPool(
    { workers: config.portalLimits.passwordWorkers, queueLimit: config.portalLimits.passwordQueue, onRefused: () => metrics.passwordHashingRefused() },
    ARGON2_OPTIONS,
  );
  const accounts = new Accounts(store.portalUsers, passwords, new SignInThrottle(limiter, config.portalLimits), clock, {
    tokens: store.portalUserTokens,
    sessions: store.portalSessions,
    audit: store.audit,
    mailer,
    portalUrl: config.issuer,
  });
  const apis = new ApiRegistry(store, bus, clock, config.audience);
  const portal = new Portal(store, directory, new Members(store, clock, mailer), tokenCounts, mailer, usage, apis, config.portalAppScopes);
  // Sealed under a key derived from the pepper, which a master-key rotation keeps.
  const secondFactor = new SecondFactor(
    store.portalUsers,
    store.recoveryCodes,
    derive(pepper, 'totp-seal'),
    clock,
    `Portcullis ${new URL(config.issuer).host}`,
  );
  return {
    config,
    clock,
    store,
    bus,
    keys,
    directory,
    usage,
    tokens,
    clients,
    verifier,
    bearer,
    denylist,
    adminAuth: admin.auth,
    staticTokens,
    retail,
    beacons,
    rateLimits,
    limiter,
    gateway,
    idempotency: new Idempotency(store.idempotencyKeys, pepper, clock),
    apis,
    retention: new Retention(db, clock, config.retention),
    metrics,
    readiness,
    portal: { portal, accounts, sessions, secondFactor, tokenCounts, mailer, passwords },
    firstStart,
  };
}

const START_ATTEMPTS = 3;

/**
 * A node cannot start without PostgreSQL (its signing keys, migrations and operator token are
 * there): a few attempts a second apart, then one clear error instead of a hang or a stack.
 */
async function reachDatabase(db: Db, config: Config): Promise<void> {
  if (!isPostgres(db)) return;
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`select 1`.execute(db);
      return;
    } catch (err) {
      if (attempt >= START_ATTEMPTS) {
        throw new StartError(
          `cannot reach ${describeDatabase(config)} after ${START_ATTEMPTS} attempts: ${reasonOf(err)}; a node cannot start without it, since the signing keys are there`,
          69,
        );
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/** The configured database: PostgreSQL when DATABASE_URL is set, else the SQLite file in the data dir. */
export function openDatabase(config: Config, onError: (err: Error) => void = () => {}): Db {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, { onError });
  try {
    return openSqlite(config.dataDir);
  } catch (err) {
    throw new StartError(`cannot open ${describeDatabase(config)}: ${reasonOf(err)}`);
  }
}

export function buildApp(services: Services, logger: boolean | object = false): FastifyInstance {
  const { config } = services;
  const requestLog = new RequestLog(config.logSample);
  const addresses = new ClientAddresses(config.trustProxy);
  const token = tokenEndpoint({
    clients: services.clients,
    tokens: services.tokens,
    limiter: services.limiter,
    limits: config.tokenLimits,
    apis: services.apis,
  });
  // The hot paths are served on the raw request listener, before Fastify (http/lanes.ts): the
  // gateway's routes (gateway/routes.ts), then POST /oauth2/token (oauth/token-lane.ts).
  const gateway = new Gateway({
    routes: services.gateway,
    bearer: services.bearer,
    limiter: services.limiter,
    retail: services.retail,
    metrics: services.metrics,
    requestLog,
    clients: addresses,
    defaultRateLimit: config.rateLimitPerMinute,
    defaultTimeoutMs: config.gatewayTimeoutMs,
  });
  const lanes = [gateway, new TokenLane({ tokenEndpoint: token, clients: addresses, metrics: services.metrics, requestLog })];
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
    schemaController: { compilersFactory: lazySchemaCompilers },
    // One line per request (http/request-log.ts) instead of Fastify's two.
    logController: requestLog,
    bodyLimit: 64 * 1024,
    routerOptions: { ignoreDuplicateSlashes: true, ignoreTrailingSlash: true, maxParamLength: 512 },
    return503OnClosing: true,
    frameworkErrors: sendFrameworkError,
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // A silent or slow connection is closed (nginx's defaults): idle sockets, unfinished headers or bodies, idle keep-alive.
    connectionTimeout: config.connections.idleTimeoutMs,
    requestTimeout: config.connections.requestTimeoutMs,
    keepAliveTimeout: config.connections.keepAliveTimeoutMs,
    http: { connectionsCheckingInterval: connectionsCheckingInterval(config.connections) },
    serverFactory: (handler, options) => laneServer(lanes, handler, options),
  });
  attachLanes(app, lanes);
  attachGateway(app, gateway);
  capConnections(app.server, config.connections, app.log, services.metrics);
  const warning = trustWarning(config.trustProxy);
  if (warning) app.log.warn(warning);
  useOperations(app, { metrics: services.metrics, metricsToken: config.metricsToken, issuer: config.issuer });
  useApiErrors(app);
  useIdempotency(app, services.idempotency);
  BearerAuthentication.decorate(app);
  const mailer = services.portal.mailer;
  if (mailer instanceof LogMailer) mailer.log = (fields, message) => app.log.info(fields, message);
  if (mailer instanceof SmtpMailer) mailer.log = (fields, message) => app.log.warn(fields, message);

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready while the node can serve, even from its caches with a dependency away (`degraded`);
  // 503 only when it cannot sign or is draining. The body names each dependency's state.
  app.get('/readyz', async (_request, reply) => {
    const report = services.readiness.report();
    return reply.code(report.httpStatus).header('cache-control', 'no-store').send(report.body);
  });

  app.register(oauthRoutes, {
    issuer: config.issuer,
    tokenEndpoint: token,
    clients: services.clients,
    keys: services.keys,
    verifier: services.verifier,
    denylist: services.denylist,
    jwksMaxAgeSeconds: jwksMaxAgeSeconds(config.keyPrepublishSeconds),
  });
  app.register(revocationFeed, {
    list: new RevocationList(services.denylist, services.store.credentials, services.bus, services.clock, {
      issuer: config.issuer,
      // Tokens issued just before a revocation live a full lifetime; verifiers may allow their skew on top.
      horizonMs: (config.tokenTtlSeconds + config.clockSkewSeconds + 60) * 1000,
    }),
  });
  app.register(accessRoutes, { bearer: services.bearer, directory: services.directory });
  app.register(operatorApi, {
    prefix: '/admin/v1',
    auth: services.adminAuth,
    features: [
      (scope) =>
        adminRoutes(scope, {
          directory: services.directory,
          keys: services.keys,
          store: services.store,
          usage: services.usage,
          clock: services.clock,
        }),
      (scope) => retailMediaAdminRoutes(scope, { retail: services.retail, beacons: services.beacons, store: services.store }),
      (scope) => gatewayAdminRoutes(scope, { routes: services.gateway }),
      (scope) => apiAdminRoutes(scope, { apis: services.apis }),
      (scope) => portalAdminRoutes(scope, { accounts: services.portal.accounts }),
    ],
  });
  app.register(deliveryRoutes, {
    retail: services.retail,
    bearer: services.bearer,
    beacons: services.beacons,
    limiter: services.limiter,
    defaultRateLimit: config.rateLimitPerMinute,
  });
  app.register(decisionRoutes, { routes: services.gateway, bearer: services.bearer });
  app.register(portalRoutes, {
    prefix: '/portal/api',
    ...services.portal,
    baseUrl: config.issuer,
    graceSeconds: config.deactivationGraceSeconds,
    operator: { directory: services.directory, retail: services.retail, gateway: services.gateway, keys: services.keys, apis: services.apis },
  });
  app.register(dashboardRoutes);
  return app;
}

/** Starts the background work of a serving process: batched writes, scheduled key rotation, dependency probes. */
export function startBackground(services: Services, app: FastifyInstance): void {
  const { metrics, readiness } = services;
  const failed = (batch: string, message: string) => (err: unknown) => {
    metrics.backgroundWriteFailed(batch);
    app.log.error({ err }, message);
  };
  services.usage.start(5_000, failed('credential_usage', 'could not record credential usage'));
  services.staticTokens.start(5_000, failed('static_token_usage', 'could not record static-token usage'));
  services.beacons.start(5_000, failed('beacon_counts', 'could not record beacon counts'));
  services.portal.tokenCounts.start(5_000, failed('token_counts', 'could not record token counts'));
  services.keys.startSchedule((err, task) =>
    app.log.error({ err }, task === 'reload' ? 'could not reload the signing keys from the store' : 'scheduled key rotation failed'),
  );
  services.denylist.start(60_000, failed('revoked_token_prune', 'could not prune revoked tokens'));
  services.retention.start(3_600_000, failed('retention_prune', 'could not prune old audit events, usage counters or sessions'));
  services.keys.rotateIfDue().catch((err: unknown) => app.log.error({ err }, 'scheduled key rotation failed'));
  const say = (name: string, state: { state: string; detail: string; reason?: string }, atStart = false) => {
    const what = name === 'database' ? 'PostgreSQL' : 'Redis';
    if (state.state === 'down') {
      const effect = name === 'database' ? 'serving from caches; requests that need the database get 503' : 'caches re-read from the database every second';
      app.log.warn(
        { dependency: name, detail: state.detail },
        `${what} is unreachable${atStart ? ' at start' : ''}: ${effect}; reconnecting in the background`,
      );
    } else app.log.info({ dependency: name }, `${what} is reachable again`);
  };
  for (const [name, state] of readiness.dependencies()) if (state.state === 'down') say(name, state, true);
  readiness.onChange((name, state) => say(name, state));
  readiness.start();
}

/** Stops background work, writes what is pending, and closes the store. */
export async function stopServices(services: Services): Promise<void> {
  services.readiness.stop();
  services.keys.stop();
  services.denylist.stop();
  services.retention.stop();
  await services.usage.stop().catch(() => {});
  await services.staticTokens.stop().catch(() => {});
  await services.beacons.stop().catch(() => {});
  await services.portal.tokenCounts.stop().catch(() => {});
  await services.portal.passwords.close();
  if (services.portal.mailer instanceof SmtpMailer) services.portal.mailer.close();
  await services.rateLimits.close();
  await services.bus.close();
  await services.store.db.destroy();
}
