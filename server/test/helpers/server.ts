import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import type { Clock } from '../../src/domain/clock.js';
import { type Db, isPostgres } from '../../src/store/db.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { createPostgresTestDatabase, currentDialect, type Dialect } from './dialects.js';
import { recordSecret, serverLog } from './secrets.js';

export const ADMIN_TOKEN = 'test-operator-token-0123456789';
export const MASTER_KEY = 'a'.repeat(64);
export const ISSUER_FOR_TESTS = 'http://portcullis.test';

export interface TestServer extends RunningServer {
  dataDir: string;
  /** The database this server runs on. */
  dialect: Dialect;
  /** Calls the operator API; the body is sent as JSON when given. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  /** A fresh organization, application and credential. */
  newCredential(app?: {
    name?: string;
    description?: string;
    scopes?: string[];
  }): Promise<{ orgId: number; appId: number; clientId: string; clientSecret: string }>;
  /** POST /oauth2/token with a form body built from `params`. */
  token(params: Record<string, string>, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  /** A token for the credential, asserting success. */
  accessToken(clientId: string, clientSecret: string): Promise<string>;
  me(token: string | undefined, path?: string): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'portcullis-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * A real server listening on a free loopback port, with a temporary data dir, on the dialect of
 * the running suite (see dialects.ts) unless `dialect`, `db` or DATABASE_URL says otherwise: on
 * SQLite the data dir's file, on PostgreSQL a fresh database dropped by `stop()`.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: { clock?: Clock; dataDir?: string; db?: Db; dialect?: Dialect; logLines?: Array<Record<string, any>> } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir();
  // A given `db` or DATABASE_URL wins over the suite's dialect.
  const fresh = (options.dialect ?? currentDialect()) === 'postgres' && !options.db && !env.DATABASE_URL;
  const database = fresh ? await createPostgresTestDatabase() : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_MASTER_KEY: MASTER_KEY,
    PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
    PORTCULLIS_ISSUER: ISSUER_FOR_TESTS,
    PORTCULLIS_KEY_PREPUBLISH: '0',
    // Token-endpoint limits are off unless a test turns them on: tests of other rules send many
    // requests, and failures, from one address within a minute.
    PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '0',
    PORTCULLIS_TOKEN_LIMIT_PER_IP: '0',
    PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT: '0',
    PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '0',
    PORTCULLIS_AUTH_FAILURE_LIMIT_PER_CLIENT_IP: '0',
    PORTCULLIS_SIGNUP_LIMIT_PER_IP: '0',
    PORTCULLIS_SIGNIN_LIMIT_PER_IP: '0',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database?.url ?? '',
    ...env,
  });
  // Under PORTCULLIS_TEST_LOG_DIR the server logs at trace level to a file, for the after-run secrets check.
  const log = serverLog();
  recordSecret(ADMIN_TOKEN, MASTER_KEY, env.PORTCULLIS_ADMIN_TOKEN, env.PORTCULLIS_MASTER_KEY, env.PORTCULLIS_METRICS_TOKEN);
  const server = await startServer(config, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.db ? { db: options.db } : {}),
    ...(log ? { logger: log.logger } : {}),
    // A test that reads the log gets its lines parsed in its array (instead of the trace file), at env's LOG_LEVEL or info.
    ...(options.logLines
      ? {
          logger: {
            level: env.LOG_LEVEL && env.LOG_LEVEL !== 'silent' ? env.LOG_LEVEL : 'info',
            stream: { write: (line: string) => options.logLines?.push(JSON.parse(line)) },
          },
        }
      : {}),
  }).catch(async (err: unknown) => {
    log?.close();
    await database?.drop();
    throw err;
  });
  const url = server.url;

  const call = async (method: string, target: string, init: RequestInit = {}) => {
    const response = await fetch(url + target, { method, ...init });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: body as any, headers: response.headers, text };
  };

  const admin: TestServer['admin'] = (method, target, body) =>
    call(method, `/admin/v1${target}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  const token: TestServer['token'] = (params, headers = {}) =>
    call('POST', '/oauth2/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(params).toString(),
    });

  return {
    ...server,
    dataDir,
    dialect: database || env.DATABASE_URL || (options.db && isPostgres(options.db)) ? 'postgres' : 'sqlite',
    admin,
    token,
    async newCredential(app = {}) {
      const org = await admin('POST', '/organizations', { name: 'Test Org' });
      const created = await admin('POST', `/organizations/${org.body.id}/applications`, {
        name: app.name ?? 'Test App',
        ...(app.description !== undefined ? { description: app.description } : {}),
        scopes: app.scopes ?? [],
      });
      const cred = await admin('POST', `/applications/${created.body.id}/credentials`, { name: 'test key' });
      for (const [what, res] of [
        ['organization', org],
        ['application', created],
        ['credential', cred],
      ] as const) {
        if (res.status !== 201) throw new Error(`${what} creation failed: ${res.status} ${JSON.stringify(res.body)}`);
      }
      return { orgId: org.body.id, appId: created.body.id, clientId: cred.body.client_id, clientSecret: cred.body.client_secret };
    },
    async accessToken(clientId, clientSecret) {
      const res = await token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
      if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.access_token as string;
    },
    me(bearer, target = '/me') {
      return call('GET', target, bearer === undefined ? {} : { headers: { authorization: `Bearer ${bearer}` } });
    },
    async stop() {
      await server.close();
      log?.close();
      await database?.drop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
