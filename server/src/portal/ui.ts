import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** The built web UI: dashboard/dist beside the server package. */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../dashboard/dist');

/** The single-page app's own paths, answered with index.html. */
export const DASHBOARD_PAGES = [
  '/',
  '/signin',
  '/signup',
  '/forgot-password',
  '/reset-password',
  '/verify-email',
  '/account',
  '/orgs/*',
  '/invitations/*',
  '/operator',
  '/operator/*',
];

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/** Security headers on the portal's answers (pages, assets, its JSON API); never on other APIs or proxied upstream answers. */
export function useSecurityHeaders(app: FastifyInstance): void {
  // A callback hook, not an async one: it runs on every portal answer.
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.headers(SECURITY_HEADERS);
    done(null, payload);
  });
}

/**
 * Serves the web UI at `/`: the built files, and index.html for the page paths the single-page
 * app routes itself (sign-in, organizations, invitation links).
 */
export async function dashboardRoutes(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  const dir = opts.dir ?? DASHBOARD_DIR;
  const indexFile = path.join(dir, 'index.html');
  useSecurityHeaders(app);
  if (!existsSync(indexFile)) {
    app.log.warn({ dir }, 'the web UI is not built (npm run build); / is not served');
    return;
  }
  const index = readFileSync(indexFile);
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    index: false,
    decorateReply: false,
    globIgnore: ['index.html', 'index.html.*'],
    // The build writes .br and .gz beside each asset; the one the browser accepts is sent.
    preCompressed: true,
    setHeaders: (reply, file) => {
      if (file.includes(`${path.sep}assets${path.sep}`)) reply.header('cache-control', 'public, max-age=31536000, immutable');
    },
  });
  const page = (reply: import('fastify').FastifyReply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index);
  // Only the single-page app's own paths: every other path keeps its API's answer (and its 404).
  for (const url of DASHBOARD_PAGES) app.get(url, async (_request, reply) => page(reply));
}
