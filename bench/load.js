// Load generator, run as its own process so it never shares an event loop with
// the server under test. Takes autocannon options as JSON in env BENCH_LOAD_OPTS
// and prints a compact JSON summary on stdout.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const opts = JSON.parse(process.env.BENCH_LOAD_OPTS ?? '{}');
if (process.send) process.on('disconnect', () => process.exit(1));

// `pathsFile`: the requests cycle through its paths, one a line (e.g. distinct beacon URLs).
const { pathsFile, ...rest } = opts;
const paths = pathsFile ? readFileSync(pathsFile, 'utf8').split('\n').filter(Boolean) : undefined;
let next = 0;
const requests = paths?.length ? [{ setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length] }) }] : undefined;

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
