// Load generator, run as its own process so it never shares an event loop with
// the server under test. Takes autocannon options as JSON in env BENCH_LOAD_OPTS
// and prints a compact JSON summary on stdout.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const opts = JSON.parse(process.env.BENCH_LOAD_OPTS ?? '{}');
if (process.send) process.on('disconnect', () => process.exit(1));

// `cycleFile`: the requests cycle through its lines, one per request, as the path, the body or the
// bearer token (`cycle`): distinct beacon URLs, credentials or tokens. With `amount`, each line once.
const { cycleFile, cycle = 'path', ...rest } = opts;
const items = cycleFile ? readFileSync(cycleFile, 'utf8').split('\n').filter(Boolean) : undefined;
let next = 0;
const vary = (req, item) =>
  cycle === 'body'
    ? { ...req, body: item }
    : cycle === 'bearer'
      ? { ...req, headers: { ...req.headers, authorization: `Bearer ${item}` } }
      : { ...req, path: item };
const requests = items?.length ? [{ setupRequest: (req) => vary(req, items[next++ % items.length]) }] : undefined;

const cpuStart = process.cpuUsage();
const r = await autocannon({ ...rest, ...(requests ? { requests } : {}), timeout: opts.timeout ?? 10 });
const cpu = process.cpuUsage(cpuStart);
const summary = {
  url: opts.url,
  connections: r.connections,
  duration: r.duration,
  requests: r.requests.total,
  rps: r.requests.mean,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  latencyP50: r.latency.p50,
  latencyP99: r.latency.p99,
  latencyMax: r.latency.max,
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
};
// Exit explicitly: the IPC channel to the orchestrator would keep us alive.
process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(0));
