import cluster, { type Worker } from 'node:cluster';
import { pino } from 'pino';
import { createServices, stopServices } from './app.js';
import type { Config } from './config.js';
import { aggregateWorkerMetrics } from './ops/metrics.js';
import { logDestination } from './ops/logging.js';

/**
 * PORTCULLIS_WORKERS=N: this process prepares the store once (migrations, the first signing key,
 * the operator token), then runs N workers that share the port; a worker that dies is replaced.
 * SIGTERM or SIGINT is passed to every worker, which drains (PORTCULLIS_DRAIN_SECONDS) before
 * exiting; SIGHUP too, and each worker re-reads PORTCULLIS_ROUTES. A scrape of /metrics on the
 * shared port answers every worker's metrics, aggregated here.
 */
export async function runPrimary(config: Config, printOnce: (firstStart: { adminToken?: string; masterKeyFile?: string }) => void): Promise<number> {
  const log = pino({ level: config.logLevel, ...logDestination(config.logFormat) });
  const prepared = await createServices(config);
  printOnce(prepared.firstStart);
  await stopServices(prepared);

  aggregateWorkerMetrics();
  let stopping = false;
  const fork = (): Worker => cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, 'worker died; starting a new one');
    setTimeout(fork, 1_000).unref();
  });
  for (let i = 0; i < config.workers; i++) fork();
  log.info({ workers: config.workers, pid: process.pid }, 'portcullis primary started its workers');

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping workers');
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      let left = workers.length;
      if (left === 0) resolve();
      for (const worker of workers) {
        worker.once('exit', () => {
          if (--left === 0) resolve();
        });
        worker.process.kill(signal);
      }
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Each worker re-reads PORTCULLIS_ROUTES itself.
    process.on('SIGHUP', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
    });
  });
  return 0;
}
