// CPU profile of one hot path under load: starts Portcullis with --cpu-prof, loads one route with
// autocannon (its own process), stops the server and prints the functions with the most self time.
//   node bench/profile.js [delivery|me|beacon]   (PROFILE_DURATION seconds, default 8)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { positiveIntEnv, ROOT, runLoad } from './lib/proc.js';
import { fetchAccessToken, startRetailServer } from './lib/retail-server.js';

const WHAT = process.argv[2] ?? 'delivery';
const DURATION = positiveIntEnv('PROFILE_DURATION', 8);
const TOP = positiveIntEnv('PROFILE_TOP', 25);

const profDir = mkdtempSync(join(tmpdir(), 'portcullis-profile-'));
const handle = await startRetailServer({ nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
const { server, admin } = handle;
try {
  await admin('/admin/v1/partners/1', { name: 'partner 1', require_token: true }, 'PUT');
  await admin(
    '/admin/v1/partners/1/placements/viewHome/Top',
    { format: 'sponsored_products', products: [1, 2].map((i) => ({ ProductId: `sku-${i}`, ProductName: `Product ${i}`, Price: '9.99' })) },
    'PUT',
  );
  await admin('/admin/v1/partners/1/applications', { application_id: handle.appId });
  const token = await fetchAccessToken(server.base, handle.clientId, handle.clientSecret);
  const headers = { authorization: `Bearer ${token}` };
  const delivery = `${server.base}/delivery/retailmedia?criteo-partner-id=1&retailer-visitor-id=123&customer-id=456&event-type=viewHome&page-id=viewHome_API_desktop`;
  let url = delivery;
  if (WHAT === 'me') url = `${server.base}/me`;
  if (WHAT === 'beacon') {
    const body = await (await fetch(delivery, { headers })).json();
    url = server.base + new URL(body.placements[0]['viewHome_API_desktop-Top'][0].products[0].OnClickBeacon).pathname;
  }
  const run = await runLoad({ url, headers, connections: 32, duration: DURATION });
  process.stderr.write(`[profile] ${WHAT}: ${Math.round(run.rps)} req/s, ${run.non2xx} non-2xx, ${run.errors} errors\n`);
} finally {
  await server.stop();
}

// Self time per function (name, file, line), summed over the profile's nodes.
const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('no .cpuprofile written (did the server exit cleanly?)');
const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
const self = new Map();
let total = 0;
for (const node of profile.nodes) {
  const t = dt.get(node.id) ?? 0;
  total += t;
  const f = node.callFrame;
  const where = f.url ? `${relative(ROOT, f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'} ${where}`;
  self.set(key, (self.get(key) ?? 0) + t);
}
// Inclusive time per function of the server's own code (and Fastify's), counted once per stack.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const inclusive = new Map();
const ownKey = (f) =>
  f.url.includes('/server/dist/') || f.url.includes('/fastify/') || f.url.includes('/pino/')
    ? `${f.functionName || '(anonymous)'} ${relative(ROOT, f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}`
    : undefined;
// Each node's subtree time goes to the first frame of each key on its stack.
const subtree = new Map();
const sizeOf = (node) => {
  let t = dt.get(node.id) ?? 0;
  for (const child of node.children ?? []) t += sizeOf(byId.get(child));
  subtree.set(node.id, t);
  return t;
};
sizeOf(profile.nodes[0]);
const climb = (node, seen) => {
  const key = ownKey(node.callFrame);
  const fresh = key !== undefined && !seen.has(key);
  if (fresh) {
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + (subtree.get(node.id) ?? 0));
  }
  for (const child of node.children ?? []) climb(byId.get(child), seen);
  if (fresh) seen.delete(key);
};
climb(profile.nodes[0], new Set());
if (process.env.PROFILE_INCLUSIVE === '1') {
  console.log('inclusive time (server code, fastify, pino):');
  for (const [key, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${key}`);
}
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
console.log(`top ${TOP} by self time (${WHAT}, ${(total / 1e6).toFixed(1)} s sampled):`);
for (const [key, t] of rows) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${key}`);
rmSync(profDir, { recursive: true, force: true });
