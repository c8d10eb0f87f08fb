import type { FastifyInstance } from 'fastify';
import { buildApp, createServices, type ServiceOptions, type Services, startBackground, stopServices } from './app.js';
import type { Config } from './config.js';

export interface RunningServer {
  app: FastifyInstance;
  services: Services;
  url: string;
  close(): Promise<void>;
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
  return {
    app,
    services,
    url: `http://${host}:${port}`,
    close() {
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
    },
  };
}
