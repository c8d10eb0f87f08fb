// Starts a Portcullis server (SQLite, temporary data dir) with one organization, application and
// credential, for the bench sections that need one of their own.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer } from './proc.js';

export async function startPortcullisClient(extraEnv = {}) {
  const cli = join(ROOT, process.env.BENCH_PORTCULLIS_CLI ?? 'server/bin/portcullis.cjs');
  if (!existsSync(cli)) throw new Error(`${cli} not found (run npm run build)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const adminToken = randomBytes(24).toString('base64url');
  let server;
  try {
    server = await startServer({
      name: 'portcullis',
      script: cli,
      args: ['serve'],
      env: {
        HOST: '127.0.0.1',
        PORTCULLIS_DATA_DIR: dataDir,
        PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'),
        PORTCULLIS_ADMIN_TOKEN: adminToken,
        PORTCULLIS_TOKEN_LIMIT_PER_CLIENT: '100000000',
        PORTCULLIS_TOKEN_LIMIT_PER_IP: '100000000',
        LOG_LEVEL: 'warn',
        ...extraEnv,
      },
      readyPath: '/healthz',
      ipc: false,
    });
    const admin = async (path, body) => {
      const res = await fetch(server.base + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const json = await res.json();
      if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const org = await admin('/admin/v1/organizations', { name: 'Bench' });
    const app = await admin(`/admin/v1/organizations/${org.id}/applications`, { name: 'bench-app' });
    const cred = await admin(`/admin/v1/applications/${app.id}/credentials`, { name: 'bench' });
    const stop = async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    };
    return { server: { ...server, stop }, clientId: cred.client_id, clientSecret: cred.client_secret };
  } catch (err) {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
}

export const FORM = 'application/x-www-form-urlencoded';

export const tokenBody = (clientId, clientSecret) =>
  new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString();
