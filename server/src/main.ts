import type { FastifyInstance } from 'fastify';
import { buildApp, createServices, type ServiceOptions, type Services, startBackground, stopServices } from './app.js';
import type { Config } from './config.js';

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
  /**
   * Stops the way a load balancer expects: /readyz answers 503 at once, requests are still
   * served for `drainSeconds` so the balancer can notice, then the server closes.
   */
  shutdown(drainSeconds: number): Promise<void>;
}

/**
 * Builds the services and the app, listens, and starts background work. `close` stops accepting,
 * lets in-flight requests finish, writes pending usage and closes the store.
 */
export async function startServer(config: Config, options: ServiceOptions & { logger?: boolean | object } = {}): Promise<RunningServer> {
  const services = await createServices(config, options);
  const app = buildApp(services, options.logger ?? false);
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await stopServices(services);
    throw err;
  }
  startBackground(services, app);
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // A keep-alive connection busy when closing starts goes idle once its response is sent, and
      // would then hold the exit for keepAliveTimeout (72 s): keep closing idle connections until done.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
      }
      await stopServices(services);
    })();
    return closing;
  };
  let endDrain: (() => void) | undefined;
  return {
    app,
    services,
    url: `http://${host}:${port}`,
    close,
    async shutdown(drainSeconds) {
      services.readiness.drain();
      if (endDrain || drainSeconds <= 0) {
        endDrain?.(); // a second signal ends the wait
        return close();
      }
      await new Promise<void>((resolve) => {
        endDrain = resolve;
        setTimeout(resolve, drainSeconds * 1000);
      });
      return close();
    },
  };
}
