// The token endpoint against the bare async signer (bare-server.js), interleaved: short rounds
// alternate between the two servers, both running the whole time, so a change in the machine's
// load touches both alike. Run by run.js (section `interleaved`) or alone: node bench/interleaved.js
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { FORM, startPortcullisClient, tokenBody } from './lib/portcullis.js';
import { killAll, machineCpuSeconds, peakRss, positiveIntEnv, processCpuSeconds, runLoad, SIGNING_THREADS, startServer } from './lib/proc.js';

export const INTERLEAVED_GOALS = { throughputVsBare: 0.95, p99VsBare: 1.2, rssMb: 110 };

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function interleavedTokenRun({ connections = 32, rounds = 8, roundS = 5, warmupS = 3, log = () => {} } = {}) {
  const portcullis = await startPortcullisClient();
  const bareId = `bench-${randomBytes(6).toString('hex')}`;
  const bareSecret = randomBytes(32).toString('base64url');
  let bare;
  try {
    bare = await startServer({
      name: 'bare',
      script: 'bench/bare-server.js',
      env: { BENCH_CLIENT_ID: bareId, BENCH_CLIENT_SECRET: bareSecret, UV_THREADPOOL_SIZE: String(SIGNING_THREADS) },
      readyPath: '/healthz',
    });
    const targets = {
      portcullis: { server: portcullis.server, body: tokenBody(portcullis.clientId, portcullis.clientSecret), runs: [] },
      bare: { server: bare, body: tokenBody(bareId, bareSecret), runs: [] },
    };
    const load = (t, duration) =>
      runLoad({ url: `${t.server.base}/oauth2/token`, method: 'POST', headers: { 'content-type': FORM }, body: t.body, connections, duration });
    for (const t of Object.values(targets)) await load(t, warmupS);
    log(`interleaved: ${rounds} rounds of ${roundS} s per server, ${connections} connections`);
    let other = 0;
    let measured = 0;
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ['portcullis', 'bare'] : ['bare', 'portcullis'];
      for (const name of order) {
        const t = targets[name];
        const machine0 = machineCpuSeconds();
        const server0 = processCpuSeconds(t.server.pid);
        const run = await load(t, roundS);
        other += Math.max(0, machineCpuSeconds() - machine0 - (processCpuSeconds(t.server.pid) - server0) - run.cpuSeconds);
        measured += run.duration;
        t.runs.push(run);
      }
    }
    const summary = (t) => ({
      rps: t.runs.reduce((n, r) => n + r.requests, 0) / t.runs.reduce((n, r) => n + r.duration, 0),
      latencyP50: median(t.runs.map((r) => r.latencyP50)),
      latencyP99: median(t.runs.map((r) => r.latencyP99)),
      roundP99s: t.runs.map((r) => r.latencyP99),
      non2xx: t.runs.reduce((n, r) => n + r.non2xx, 0),
      errors: t.runs.reduce((n, r) => n + r.errors, 0),
      peakRssMb: peakRss(t.server.pid).mb,
    });
    const p = summary(targets.portcullis);
    const b = summary(targets.bare);
    return {
      connections,
      rounds,
      roundS,
      portcullis: p,
      bare: b,
      otherCores: other / measured,
      ratios: { throughputVsBare: p.rps / b.rps, p99VsBare: p.latencyP99 / b.latencyP99 },
    };
  } finally {
    await bare?.stop();
    await portcullis.server.stop();
  }
}

export function interleavedLines(r) {
  const f = (n, d = 1) => n.toFixed(d);
  const mark = (ok) => (ok ? 'PASS' : 'MISS');
  return [
    `interleaved token runs (${r.rounds} x ${r.roundS} s each, ${r.connections} connections, ${SIGNING_THREADS} signing threads each; other processes used ${f(r.otherCores, 2)} cores on average)`,
    `  Portcullis ${f(r.portcullis.rps, 0)} req/s, p50 ${f(r.portcullis.latencyP50)} ms, p99 ${f(r.portcullis.latencyP99)} ms (rounds ${r.portcullis.roundP99s.join('/')}), peak RSS ${f(r.portcullis.peakRssMb)} MB, ${r.portcullis.non2xx} non-2xx, ${r.portcullis.errors} errors`,
    `  bare       ${f(r.bare.rps, 0)} req/s, p50 ${f(r.bare.latencyP50)} ms, p99 ${f(r.bare.latencyP99)} ms (rounds ${r.bare.roundP99s.join('/')}), peak RSS ${f(r.bare.peakRssMb)} MB, ${r.bare.non2xx} non-2xx, ${r.bare.errors} errors`,
    `  throughput Portcullis / bare ${f(r.ratios.throughputVsBare, 3)}x (>= ${INTERLEAVED_GOALS.throughputVsBare}) ${mark(r.ratios.throughputVsBare >= INTERLEAVED_GOALS.throughputVsBare)}`,
    `  p99 Portcullis / bare ${f(r.ratios.p99VsBare, 2)}x (<= ${INTERLEAVED_GOALS.p99VsBare}) ${mark(r.ratios.p99VsBare <= INTERLEAVED_GOALS.p99VsBare)}`,
    `  peak RSS ${f(r.portcullis.peakRssMb)} MB (<= ${INTERLEAVED_GOALS.rssMb}) ${mark(r.portcullis.peakRssMb <= INTERLEAVED_GOALS.rssMb)}`,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.on('exit', () => killAll());
  const result = await interleavedTokenRun({
    connections: positiveIntEnv('BENCH_CONNECTIONS', 32),
    rounds: positiveIntEnv('BENCH_ROUNDS', 8),
    roundS: positiveIntEnv('BENCH_ROUND_SECONDS', 5),
    warmupS: positiveIntEnv('BENCH_WARMUP', 3),
    log: (m) => process.stderr.write(`[bench] ${m}\n`),
  });
  console.log(interleavedLines(result).join('\n'));
}
