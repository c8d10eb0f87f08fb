// Hot paths, interleaved: GET /me, the delivery API (dynamic token, a two-product placement) and
// the beacon endpoint, in alternating rounds against one server so machine load drifts hit all
// three alike. Ratios are against /me from the same rounds. Run from bench/run.js.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { positiveIntEnv, runLoad } from './lib/proc.js';
import { fetchAccessToken, startRetailServer } from './lib/retail-server.js';

const ROUNDS = positiveIntEnv('BENCH_HOT_ROUNDS', 2);
const SECONDS = positiveIntEnv('BENCH_HOT_DURATION', 5);
const PARTNER = 900;

/** `start()`: a running Portcullis with the bench app (retail-media scope); `measure(opts, pid, seconds)`. */
export async function benchHotPaths({ start, measure, log }) {
  const handle = await start();
  try {
    return await hotPaths(handle, measure, log);
  } finally {
    await handle.server.stop();
  }
}

async function hotPaths(handle, measure, log) {
  const { server, admin, appId } = handle;
  const token = await fetchAccessToken(server.base, handle.clientId, handle.clientSecret);
  await admin(`/admin/v1/partners/${PARTNER}`, { name: 'hot paths', require_token: true }, 'PUT');
  await admin(
    `/admin/v1/partners/${PARTNER}/placements/viewHome/Top`,
    { format: 'sponsored_products', products: [1, 2].map((i) => ({ ProductId: `sku-${i}`, ProductName: `Product ${i}`, Price: '9.99' })) },
    'PUT',
  );
  await admin(`/admin/v1/partners/${PARTNER}/applications`, { application_id: appId });
  const auth = { authorization: `Bearer ${token}` };
  const delivery = `${server.base}/delivery/retailmedia?criteo-partner-id=${PARTNER}&retailer-visitor-id=123&customer-id=456&event-type=viewHome&page-id=viewHome_API_desktop`;
  const answer = await fetch(delivery, { headers: auth, signal: AbortSignal.timeout(5000) });
  if (answer.status !== 200) throw new Error(`hot paths: delivery answered ${answer.status}`);
  // Fresh beacons: 10 per response (page, placement and two products, each load/view/click but the page's).
  const paths = [];
  for (let i = 0; i < 500; i++) {
    const body = await (await fetch(delivery, { headers: auth, signal: AbortSignal.timeout(5000) })).json();
    const p = body.placements[0]['viewHome_API_desktop-Top'][0];
    for (const url of [
      body.onLoadBeacon,
      p.OnLoadBeacon,
      p.OnViewBeacon,
      p.OnClickBeacon,
      ...p.products.flatMap((x) => [x.OnLoadBeacon, x.OnViewBeacon, x.OnClickBeacon]),
    ]) {
      paths.push(new URL(url).pathname);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-hot-'));
  const pathsFile = join(dir, 'beacons.txt');
  writeFileSync(pathsFile, paths.join('\n'));
  try {
    return await interleaved(server, auth, delivery, paths, pathsFile, measure, log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function interleaved(server, auth, delivery, paths, pathsFile, measure, log) {
  const runs = {
    me: { url: `${server.base}/me`, headers: auth },
    delivery: { url: delivery, headers: auth },
    // The first pass over the list counts; later passes are replays (204, nothing counted).
    beacon: { url: server.base + paths[0], cycleFile: pathsFile },
  };
  const totals = Object.fromEntries(Object.keys(runs).map((k) => [k, { requests: 0, seconds: 0, non2xx: 0, errors: 0, p99: [] }]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [key, opts] of Object.entries(runs)) {
      log(`hot paths round ${round}/${ROUNDS}: ${key}, ${SECONDS} s`);
      const run = await measure(opts, server.pid, SECONDS);
      const t = totals[key];
      t.requests += run.requests;
      t.seconds += run.duration;
      t.non2xx += run.non2xx;
      t.errors += run.errors;
      t.p99.push(run.latencyP99);
    }
  }
  const rps = (k) => totals[k].requests / totals[k].seconds;
  return {
    rounds: ROUNDS,
    secondsPerRun: SECONDS,
    distinctBeacons: paths.length,
    rps: { me: rps('me'), delivery: rps('delivery'), beacon: rps('beacon') },
    deliveryVsMe: rps('delivery') / rps('me'),
    beaconVsMe: rps('beacon') / rps('me'),
    totals,
  };
}

export function hotPathLines(hot) {
  if (!hot) return [];
  if (hot.error) return [`Hot paths: FAILED: ${hot.error}`];
  const f = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  return [
    `Hot paths, interleaved (${hot.rounds} rounds x ${hot.secondsPerRun} s each):`,
    `  GET /me                                    ${f(hot.rps.me)} req/s`,
    `  delivery, dynamic token, 2 products        ${f(hot.rps.delivery)} req/s   ${f(hot.deliveryVsMe, 2)}x /me (goal >= 0.6)`,
    `  beacon (${hot.distinctBeacons} distinct, then replays)   ${f(hot.rps.beacon)} req/s   ${f(hot.beaconVsMe, 2)}x /me (goal >= 0.8)`,
    `  non-2xx/errors: ${Object.entries(hot.totals)
      .map(([k, t]) => `${k} ${t.non2xx}/${t.errors}`)
      .join(', ')}`,
  ];
}

// On its own: node bench/hot-paths.js (default log level, 32 connections).
if (import.meta.url === `file://${process.argv[1]}`) {
  const hot = await benchHotPaths({
    start: () => startRetailServer(),
    measure: async (opts, _pid, seconds) =>
      (await runLoad({ connections: 32, ...opts, duration: 1 })) && runLoad({ connections: 32, ...opts, duration: seconds }),
    log: (m) => process.stderr.write(`[hot] ${m}\n`),
  });
  console.log(hotPathLines(hot).join('\n'));
}
