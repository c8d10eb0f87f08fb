// Starts a Portcullis server (temporary data dir, random master key and admin token) for the bench
// sections that need one of their own; each caller brings its own limits and log settings.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer } from './proc.js';

/**
 * The Node flags Portcullis runs with: those on the first line of its launcher
 * (`#!/usr/bin/env -S node --flag…`), so the bench measures the command people run;
 * BENCH_PORTCULLIS_NODE_ARGS replaces them (empty: none) to weigh a flag.
 */
export function portcullisNodeArgs(cli) {
  const own = process.env.BENCH_PORTCULLIS_NODE_ARGS;
  if (own !== undefined) return own.split(' ').filter(Boolean);
  const shebang = readFileSync(cli, 'utf8').split('\n', 1)[0];
  return /^#!\/usr\/bin\/env -S node( |$)/.test(shebang) ? shebang.split(' ').slice(3).filter(Boolean) : [];
}

/**
 * `env` is added to the base settings (and may override them); `dataDir` is created when not given
 * and removed by `server.stop()` either way. `admin(method, path, body, status)` calls the operator
 * API and throws unless the answer is `status` (any 2xx when omitted); it resolves the JSON body.
 */
export async function startPortcullis({ name = 'portcullis', env = {}, dataDir, nodeArgs = [] } = {}) {
  const cli = join(ROOT, process.env.BENCH_PORTCULLIS_CLI ?? 'server/bin/portcullis.cjs');
  if (!existsSync(cli)) throw new Error(`${cli} not found (run npm run build)`);
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  const adminToken = randomBytes(24).toString('base64url');
  let started;
  try {
    started = await startServer({
      name,
      script: cli,
      args: ['serve'],
      env: {
        HOST: '127.0.0.1',
        PORTCULLIS_DATA_DIR: dir,
        PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'),
        PORTCULLIS_ADMIN_TOKEN: adminToken,
        ...env,
      },
      nodeArgs: [...portcullisNodeArgs(cli), ...nodeArgs],
      readyPath: '/healthz',
      ipc: false,
    });
  } catch (err) {
    removeDir();
    throw err;
  }
  const server = {
    ...started,
    stop: async () => {
      await started.stop();
      removeDir();
    },
  };
  const admin = async (method, path, body, status) => {
    const res = await fetch(server.base + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (status === undefined ? !res.ok : res.status !== status) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  };
  return { server, adminToken, dataDir: dir, admin };
}

/** One organization, application (with `scopes` when given) and credential through the operator API. */
export async function createClient(admin, scopes) {
  const org = await admin('POST', '/admin/v1/organizations', { name: 'Bench' }, 201);
  const app = await admin('POST', `/admin/v1/organizations/${org.id}/applications`, { name: 'bench-app', ...(scopes ? { scopes } : {}) }, 201);
  const cred = await admin('POST', `/admin/v1/applications/${app.id}/credentials`, { name: 'bench' }, 201);
  return { appId: app.id, clientId: cred.client_id, clientSecret: cred.client_secret };
}

/** A fresh PostgreSQL database beside the one `baseUrl` names: its URL, and `drop()` (rejects on failure). */
export async function createBenchDatabase(baseUrl) {
  const { default: pg } = await import('pg');
  const name = `portcullis_bench_${randomBytes(4).toString('hex')}`;
  const adminDb = async (statement) => {
    const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await adminDb(`create database ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => adminDb(`drop database if exists ${name} with (force)`) };
}

export async function startPortcullisClient(extraEnv = {}) {
  const { server, admin } = await startPortcullis({
    env: {
      PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
      PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
      LOG_LEVEL: 'warn',
      ...extraEnv,
    },
  });
  try {
    const { clientId, clientSecret } = await createClient(admin);
    return { server, clientId, clientSecret };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

export const FORM = 'application/x-www-form-urlencoded';

export const tokenBody = (clientId, clientSecret) =>
  new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString();
