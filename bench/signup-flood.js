// Token latency while the portal is flooded with sign-ups: argon2id runs on its own threads, so
// the token endpoint's p50 should stay within 2x its quiet value. Run by run.js (section
// `signup-flood`) or alone: node bench/signup-flood.js
import { fileURLToPath } from 'node:url';
import { FORM, startPortcullisClient, tokenBody } from './lib/portcullis.js';
import { killAll, positiveIntEnv, runLoad } from './lib/proc.js';

export const FLOOD_GOAL = 2;

export async function signupFloodRun({ tokenConnections = 8, floodConnections = 16, durationS = 8, warmupS = 3, log = () => {} } = {}) {
  // The flood comes from one address: the per-address sign-up limit is off so every request
  // reaches argon2id, which is what this run measures.
  const { server, clientId, clientSecret } = await startPortcullisClient({ PORTCULLIS_SIGNUP_LIMIT_PER_IP: '0', PORTCULLIS_SIGNIN_LIMIT_PER_IP: '0' });
  try {
    const session = await fetch(`${server.base}/portal/api/session`, { signal: AbortSignal.timeout(5000) });
    const csrf = (await session.json()).csrf_token;
    const cookie = session.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const token = (duration) =>
      runLoad({
        url: `${server.base}/oauth2/token`,
        method: 'POST',
        headers: { 'content-type': FORM },
        body: tokenBody(clientId, clientSecret),
        connections: tokenConnections,
        duration,
      });
    await token(warmupS);
    log(`signup flood: token load alone for ${durationS} s`);
    const quiet = await token(durationS);
    log(`signup flood: token load with ${floodConnections} connections of sign-ups`);
    const flooding = runLoad({
      url: `${server.base}/portal/api/signup`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, cookie },
      body: JSON.stringify({ email: 'flood-[<id>]@example.com', password: 'a sturdy passphrase 42' }),
      idReplacement: true,
      connections: floodConnections,
      duration: durationS + 3,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const flooded = await token(durationS);
    const flood = await flooding;
    return { quiet, flooded, flood, ratioP50: flooded.latencyP50 / quiet.latencyP50 };
  } finally {
    await server.stop();
  }
}

export function floodLines(r) {
  const f = (n, d = 1) => n.toFixed(d);
  return [
    `token endpoint during a sign-up flood (token load ${r.quiet.connections} connections; flood ${r.flood.connections} connections, ${f(r.flood.rps, 1)} sign-ups/s answered, statuses ${JSON.stringify(r.flood.statusCodes)})`,
    `  quiet: ${f(r.quiet.rps, 0)} req/s, p50 ${f(r.quiet.latencyP50)} ms, p99 ${f(r.quiet.latencyP99)} ms; flooded: ${f(r.flooded.rps, 0)} req/s, p50 ${f(r.flooded.latencyP50)} ms, p99 ${f(r.flooded.latencyP99)} ms; token non-2xx ${r.quiet.non2xx + r.flooded.non2xx}`,
    `  p50 flooded / quiet ${f(r.ratioP50, 2)}x (<= ${FLOOD_GOAL}) ${r.ratioP50 <= FLOOD_GOAL ? 'PASS' : 'MISS'}`,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('exit', () => killAll());
  const result = await signupFloodRun({
    durationS: positiveIntEnv('BENCH_DURATION', 8),
    warmupS: positiveIntEnv('BENCH_WARMUP', 3),
    log: (m) => process.stderr.write(`[bench] ${m}\n`),
  });
  console.log(floodLines(result).join('\n'));
}
