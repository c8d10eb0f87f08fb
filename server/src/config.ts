import { scopeProblem } from './domain/names.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { type RouteSpec, readRouteFile } from './gateway/routes-config.js';
import { parseTrustedProxies, type TrustedProxies } from './http/client-address.js';

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';

/** Everything the server reads from its environment, validated once at start. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** The master key given by the operator; when absent one is generated in the data dir. */
  masterKey: Buffer | undefined;
  /** During a master-key rotation, the other key this node accepts (see README, "Rotating the master key"). */
  previousMasterKey: Buffer | undefined;
  /** Whether a start applies pending migrations (PORTCULLIS_MIGRATE_ON_START); off when `portcullis migrate` is a deploy step. */
  migrateOnStart: boolean;
  /** The operator API token given by the operator; when absent one is generated at first start. */
  adminToken: string | undefined;
  issuer: string;
  audience: string;
  tokenTtlSeconds: number;
  deactivationGraceSeconds: number;
  signingAlg: SigningAlg;
  keyRotationDays: number;
  /** How long a new key is published in JWKS before it signs. */
  keyPrepublishSeconds: number;
  clockSkewSeconds: number;
  logLevel: string;
  /** The share of successful requests that get a log line (refusals and errors always do). */
  logSample: number;
  /** LOG_FORMAT: auto (pretty on a terminal, JSON otherwise), json or pretty. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** PostgreSQL connection string; when absent the embedded SQLite file in the data dir is used. */
  databaseUrl: string | undefined;
  /** Redis connection string; when absent events stay in-process. */
  redisUrl: string | undefined;
  /** Worker processes on this host (node:cluster); more than one needs PostgreSQL and Redis. */
  workers: number;
  /**
   * Token endpoint limits per minute; 0 turns one off. Failed client authentications are refused
   * per address and per (client, address); failures of one client from everywhere only raise an alert.
   */
  tokenLimits: { perClient: number; perIp: number; failuresPerIp: number; failuresPerClientIp: number; failureAlertPerClient: number };
  /** Connection timeouts (ms) and the per-process connection cap, so silent sockets cannot exhaust file descriptors. */
  connections: { idleTimeoutMs: number; headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; max: number };
  /** The portal's password hashing pool and its per-address limits. */
  portalLimits: { passwordWorkers: number; passwordQueue: number; signupsPerIpPerHour: number; signinsPerIpPerMinute: number };
  /** When set, GET /metrics needs it as a bearer token; otherwise only direct loopback callers may read metrics. */
  metricsToken: string | undefined;
  /** Which peers may set the client address through X-Forwarded-For (for IP limits and audit). */
  trustProxy: TrustedProxies;
  /** Calls per minute per application (delivery API and gateway) unless a partner or application sets its own. */
  rateLimitPerMinute: number;
  /** Gateway routes from the PORTCULLIS_ROUTES file (the operator API adds more at run time). */
  routes: RouteSpec[];
  /** The PORTCULLIS_ROUTES file, re-read on SIGHUP. */
  routesFile: string | undefined;
  /** How long the gateway waits for an upstream's headers, and between body chunks. */
  gatewayTimeoutMs: number;
  /** The scopes an application created in the portal gets (an operator still links it to a partner). */
  portalAppScopes: string[];
  /** After SIGTERM: seconds of answering 503 on /readyz while still serving, before closing. */
  drainSeconds: number;
  /** The portal's mail server (smtp: or smtps: URL); when absent no email is sent and the portal says so. */
  smtpUrl: string | undefined;
  /** The From address of the portal's email. */
  mailFrom: string;
  /** How long audit events and per-day usage counters are kept before the hourly prune deletes them. */
  retention: { auditDays: number; usageDays: number };
}

/** A bad setting: the message names the variable and is the one line printed before exiting. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const ALGS: SigningAlg[] = ['RS256', 'ES256', 'EdDSA'];

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Accepts 32 bytes as 64 hex characters or as base64/base64url. */
export function parseMasterKey(raw: string, name = 'PORTCULLIS_MASTER_KEY'): Buffer {
  const text = raw.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  if (key?.length !== 32) {
    throw new ConfigError(`${name} must be 32 bytes written as 64 hex characters or base64 (generate one with: openssl rand -hex 32)`);
  }
  return key;
}

/**
 * A key from NAME, or from the file NAME_FILE names (a mounted Kubernetes Secret, a systemd
 * credential), which keeps it out of the process environment. Never both.
 */
function secretKey(env: Env, name: string): Buffer | undefined {
  const file = env[`${name}_FILE`]?.trim();
  if (file && env[name]) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
  if (!file) return env[name] ? parseMasterKey(env[name], name) : undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}_FILE: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseMasterKey(text, `${name}_FILE (${file})`);
}

function url(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an absolute URL such as https://auth.example.com, got "${raw}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http or https URL, got "${raw}"`);
  }
  if (parsed.search || parsed.hash) throw new ConfigError(`${name} must not have a query or fragment, got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST?.trim() || '127.0.0.1';
  if (host !== 'localhost' && isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new ConfigError(`HOST must be an IP address or host name, got "${host}"`);
  }
  const dataDir = path.resolve(env.PORTCULLIS_DATA_DIR?.trim() || './data');
  const masterKey = secretKey(env, 'PORTCULLIS_MASTER_KEY');
  const previousMasterKey = secretKey(env, 'PORTCULLIS_PREVIOUS_MASTER_KEY');
  const adminToken = env.PORTCULLIS_ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && (adminToken.length < 16 || !/^[\x21-\x7e]+$/.test(adminToken))) {
    throw new ConfigError('PORTCULLIS_ADMIN_TOKEN must be at least 16 printable characters without spaces');
  }
  const metricsToken = env.PORTCULLIS_METRICS_TOKEN;
  if (metricsToken !== undefined && metricsToken !== '' && (metricsToken.length < 16 || !/^[\x21-\x7e]+$/.test(metricsToken))) {
    throw new ConfigError('PORTCULLIS_METRICS_TOKEN must be at least 16 printable characters without spaces');
  }
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host;
  const issuer = url(env, 'PORTCULLIS_ISSUER', `http://${shownHost}:${port}`);
  const audience = env.PORTCULLIS_AUDIENCE?.trim() || issuer;
  const signingAlg = (env.PORTCULLIS_SIGNING_ALG?.trim() || 'RS256') as SigningAlg;
  if (!ALGS.includes(signingAlg)) {
    throw new ConfigError(`PORTCULLIS_SIGNING_ALG must be one of ${ALGS.join(', ')}, got "${signingAlg}"`);
  }
  const routesFile = env.PORTCULLIS_ROUTES?.trim();
  let routes: RouteSpec[] = [];
  if (routesFile) {
    try {
      routes = readRouteFile(routesFile);
    } catch (err) {
      throw new ConfigError(`PORTCULLIS_ROUTES: ${(err as Error).message}`);
    }
  }
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const logFormat = (env.LOG_FORMAT?.trim() || 'auto') as Config['logFormat'];
  if (!['auto', 'json', 'pretty'].includes(logFormat)) throw new ConfigError(`LOG_FORMAT must be auto, json or pretty, got "${logFormat}"`);
  const databaseUrl = serviceUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:'], 'postgres://user:password@host:5432/portcullis');
  const redisUrl = serviceUrl(env, 'REDIS_URL', ['redis:', 'rediss:'], 'redis://host:6379');
  const workers = integer(env, 'PORTCULLIS_WORKERS', 1, 1, 256);
  const smtpUrl = serviceUrl(env, 'PORTCULLIS_SMTP_URL', ['smtp:', 'smtps:'], 'smtps://user:password@mail.example.com:465');
  const mailFrom = env.PORTCULLIS_MAIL_FROM?.trim() || `Portcullis <no-reply@${new URL(issuer).hostname}>`;
  if (mailFrom.length > 300 || /[\r\n]/.test(mailFrom) || !/@[^\s@>]+/.test(mailFrom)) {
    throw new ConfigError('PORTCULLIS_MAIL_FROM must be an address such as "Portcullis <no-reply@example.com>"');
  }
  if (workers > 1 && (!databaseUrl || !redisUrl)) {
    throw new ConfigError(
      `PORTCULLIS_WORKERS=${workers} needs DATABASE_URL (PostgreSQL) and REDIS_URL: the embedded SQLite store and in-process events cannot be shared by several processes; use PORTCULLIS_WORKERS=1`,
    );
  }
  return {
    port,
    host,
    dataDir,
    masterKey,
    previousMasterKey,
    migrateOnStart: flag(env, 'PORTCULLIS_MIGRATE_ON_START', true),
    adminToken: adminToken || undefined,
    metricsToken: metricsToken || undefined,
    issuer,
    audience,
    tokenTtlSeconds: integer(env, 'PORTCULLIS_TOKEN_TTL', 900, 1, 86_400),
    deactivationGraceSeconds: integer(env, 'PORTCULLIS_DEACTIVATION_GRACE', 900, 0, 30 * 86_400),
    signingAlg,
    keyRotationDays: integer(env, 'PORTCULLIS_KEY_ROTATION_DAYS', 30, 0, 3650),
    keyPrepublishSeconds: integer(env, 'PORTCULLIS_KEY_PREPUBLISH', 600, 0, 7 * 86_400),
    clockSkewSeconds: integer(env, 'PORTCULLIS_CLOCK_SKEW', 60, 0, 600),
    logLevel,
    logSample: fraction(env, 'PORTCULLIS_LOG_SAMPLE', 1),
    logFormat,
    databaseUrl,
    redisUrl,
    workers,
    smtpUrl,
    mailFrom,
    rateLimitPerMinute: integer(env, 'PORTCULLIS_RATE_LIMIT', 250, 1, 1_000_000),
    routes,
    routesFile: routesFile || undefined,
    gatewayTimeoutMs: integer(env, 'PORTCULLIS_GATEWAY_TIMEOUT_MS', 30_000, 1, 600_000),
    portalAppScopes: scopeList(env, 'PORTCULLIS_PORTAL_APP_SCOPES', ['retail-media']),
    drainSeconds: integer(env, 'PORTCULLIS_DRAIN_SECONDS', 5, 0, 300),
    tokenLimits: {
      perClient: integer(env, 'PORTCULLIS_TOKEN_LIMIT_PER_CLIENT', 1200, 0, 100_000_000),
      perIp: integer(env, 'PORTCULLIS_TOKEN_LIMIT_PER_IP', 6000, 0, 100_000_000),
      failuresPerIp: integer(env, 'PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP', 60, 0, 1_000_000),
      failuresPerClientIp: integer(env, 'PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT_IP', 10, 0, 1_000_000),
      failureAlertPerClient: integer(env, 'PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT', 30, 0, 1_000_000),
    },
    connections: {
      idleTimeoutMs: seconds(env, 'PORTCULLIS_IDLE_TIMEOUT', 60),
      headersTimeoutMs: seconds(env, 'PORTCULLIS_HEADERS_TIMEOUT', 60),
      requestTimeoutMs: seconds(env, 'PORTCULLIS_REQUEST_TIMEOUT', 60),
      keepAliveTimeoutMs: seconds(env, 'PORTCULLIS_KEEPALIVE_TIMEOUT', 60),
      max: integer(env, 'PORTCULLIS_MAX_CONNECTIONS', 10_000, 1, 1_000_000),
    },
    portalLimits: {
      passwordWorkers: integer(env, 'PORTCULLIS_PASSWORD_WORKERS', 1, 1, 64),
      passwordQueue: integer(env, 'PORTCULLIS_PASSWORD_QUEUE', 32, 1, 100_000),
      signupsPerIpPerHour: integer(env, 'PORTCULLIS_SIGNUP_LIMIT_PER_IP', 20, 0, 1_000_000),
      signinsPerIpPerMinute: integer(env, 'PORTCULLIS_SIGNIN_LIMIT_PER_IP', 30, 0, 1_000_000),
    },
    trustProxy: trustedProxies(env.PORTCULLIS_TRUST_PROXY),
    retention: {
      auditDays: integer(env, 'PORTCULLIS_AUDIT_RETENTION_DAYS', 365, 1, 36_500),
      // The portal charts the last 30 days, so usage counters are kept at least that long.
      usageDays: integer(env, 'PORTCULLIS_USAGE_RETENTION_DAYS', 90, 31, 36_500),
    },
  };
}

/** A comma-separated list of scopes (empty for none), each a valid RFC 6749 scope-token. */
function scopeList(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const scopes = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const problem = scopeProblem(scopes);
  if (problem) throw new ConfigError(`${name}: ${problem}`);
  return scopes;
}

function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^(0|1|0?\.\d+|1\.0+)$/.test(raw) || !(value >= 0 && value <= 1))
    throw new ConfigError(`${name} must be a number from 0 to 1 (such as 0.01), got "${raw}"`);
  return value;
}

/** A duration in whole seconds, returned in milliseconds. */
function seconds(env: Env, name: string, fallback: number): number {
  return integer(env, name, fallback, 1, 3_600) * 1000;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const text = env[name]?.trim().toLowerCase();
  if (!text) return fallback;
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw new ConfigError(`${name} must be true or false, got "${env[name]}"`);
}

function trustedProxies(raw: string | undefined): TrustedProxies {
  try {
    return parseTrustedProxies(raw);
  } catch (err) {
    throw new ConfigError(`PORTCULLIS_TRUST_PROXY ${(err as Error).message}`);
  }
}

/** A connection URL with one of the given schemes; the message never repeats it, since it may hold a password. */
function serviceUrl(env: Env, name: string, schemes: string[], example: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL such as ${example}`);
  }
  if (!schemes.includes(parsed.protocol)) throw new ConfigError(`${name} must start with ${schemes.map((s) => `${s}//`).join(' or ')}`);
  return raw;
}
