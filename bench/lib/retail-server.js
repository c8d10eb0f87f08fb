// A Portcullis for the delivery benchmarks: fresh data dir, an organization with an application
// (retail-media scope) and a credential. Used by profile.js and hot-paths.js run on their own.
import { createClient, startPortcullis } from './portcullis.js';

/** `nodeFlags` go before the script (Node refuses --cpu-prof in NODE_OPTIONS). */
export async function startRetailServer({ env = {}, nodeFlags = [] } = {}) {
  const started = await startPortcullis({ env: { PORTCULLIS_RATE_LIMIT: '1000000', ...env }, nodeArgs: nodeFlags });
  const { server, dataDir } = started;
  const admin = (path, body, method = 'POST') => started.admin(method, path, body);
  try {
    const { appId, clientId, clientSecret } = await createClient(started.admin, ['retail-media']);
    return { server, admin, dataDir, appId, clientId, clientSecret };
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
