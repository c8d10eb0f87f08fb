import { parseArgs } from 'node:util';
import { listenProblem, type NginxRoute, nginxConfig, nginxRouteProblems } from './gateway/nginx.js';

const USAGE = `Usage: portcullis nginx-config --listen HOST:PORT [options]

Prints a complete nginx configuration for the gateway routes of a running server (PORTCULLIS_ROUTES
and the operator API's), with nginx as the data plane and Portcullis as its decision point.
Run it with: nginx -p DIR -c FILE (nginx keeps its temporary files and the decision cache in DIR).

  --listen HOST:PORT          where nginx listens (required)
  --url URL                   the Portcullis server (default $PORTCULLIS_URL, else http://127.0.0.1:$PORT or :8080)
  --token TOKEN               the operator token (default $PORTCULLIS_ADMIN_TOKEN)
  --decision-cache-seconds N  how long nginx keeps a decision, 1 to 5 (default 3): a revocation holds within it
`;

/** `portcullis nginx-config`: reads the routes through the operator API and prints the configuration. */
export async function nginxConfigCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      'decision-cache-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const listen = values.listen;
  const problem = listen === undefined ? '--listen is required' : listenProblem(listen);
  if (problem !== undefined) {
    process.stderr.write(`portcullis: ${problem}\n\n${USAGE}`);
    return 2;
  }
  const cacheText = values['decision-cache-seconds'] ?? '3';
  const cacheSeconds = Number(cacheText);
  if (!/^[1-5]$/.test(cacheText)) {
    process.stderr.write('portcullis: --decision-cache-seconds must be a whole number from 1 to 5\n');
    return 2;
  }
  const base = (values.url ?? process.env.PORTCULLIS_URL ?? `http://127.0.0.1:${process.env.PORT || 8080}`).replace(/\/+$/, '');
  const token = values.token ?? process.env.PORTCULLIS_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write('portcullis: the operator token is needed to read the routes: set PORTCULLIS_ADMIN_TOKEN or pass --token\n');
    return 2;
  }
  let response: Response;
  try {
    response = await fetch(`${base}/admin/v1/gateway/routes`, { headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    process.stderr.write(`portcullis: cannot reach ${base}: ${(err as Error).cause ?? (err as Error).message}\n`);
    return 1;
  }
  if (!response.ok) {
    process.stderr.write(`portcullis: ${base} answered ${response.status} when asked for the gateway routes\n`);
    return 1;
  }
  const routes = ((await response.json()) as NginxRoute[]).map((r) => ({ prefix: r.prefix, upstream: r.upstream }));
  const problems = nginxRouteProblems(routes);
  if (problems.length > 0) {
    process.stderr.write(`portcullis: ${problems.join('\nportcullis: ')}\n`);
    return 1;
  }
  process.stdout.write(nginxConfig({ listen: listen as string, portcullis: base, routes, decisionCacheSeconds: cacheSeconds }));
  return 0;
}
