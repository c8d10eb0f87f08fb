// A Portcullis for the delivery benchmarks: fresh data dir, an organization with an application
// (retail-media scope) and a credential. Used by profile.js and hot-paths.js run on their own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer } from './proc.js';

/** `nodeFlags` go before the script (Node refuses --cpu-prof in NODE_OPTIONS). */
export async function startRetailServer({ env = {}, nodeFlags = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-retail-'));
  const adminToken = randomBytes(24).toString('base64url');
  const cli = join(ROOT, 'server/bin/portcullis.cjs');
  const server = await startServer({
    name: 'portcullis',
    script: nodeFlags.length ? nodeFlags[0] : cli,
    args: nodeFlags.length ? [...nodeFlags.slice(1), cli, 'serve'] : ['serve'],
    env: {
      HOST: '127.0.0.1',
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'),
      PORTCULLIS_ADMIN_TOKEN: adminToken,
      PORTCULLIS_RATE_LIMIT: '1000000',
      ...env,
    },
    readyPath: '/healthz',
    ipc: false,
  });
  const stop = server.stop.bind(server);
  server.stop = async () => {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const admin = async (path, body, method = 'POST') => {
    const res = await fetch(server.base + path, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  try {
    const org = await admin('/admin/v1/organizations', { name: 'Bench' });
    const app = await admin(`/admin/v1/organizations/${org.id}/applications`, { name: 'bench', scopes: ['retail-media'] });
    const cred = await admin(`/admin/v1/applications/${app.id}/credentials`, { name: 'bench' });
    return { server, admin, dataDir, appId: app.id, clientId: cred.client_id, clientSecret: cred.client_secret };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

export async function fetchAccessToken(base, clientId, clientSecret) {
  const res = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}
