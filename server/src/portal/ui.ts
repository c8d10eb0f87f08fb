import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../domain/errors.js';

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

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** One built file and the compressed copies the build wrote beside it. */
interface BuiltFile {
  type: string;
  /** Hashed names under assets/ never change: browsers may keep them for a year. */
  immutable: boolean;
  encodings: { coding: 'br' | 'gzip' | 'identity'; file: string; size: number }[];
}

/** Every file the UI build made, by URL path, except index.html (the pages below answer with it). */
export function builtFiles(dir: string): Map<string, BuiltFile> {
  const files = new Map<string, BuiltFile>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile() && !/\.(br|gz)$/.test(entry.name) && !entry.name.startsWith('index.html')) {
        const url = `/${path.relative(dir, file).split(path.sep).join('/')}`;
        // Each file becomes a route: a name the router would read as a parameter or wildcard is left
        // out, and so are hidden files and folders (a build's manifest, say).
        if (!/^[\w./-]+$/.test(url) || url.includes('/.')) continue;
        const encodings: BuiltFile['encodings'] = [];
        for (const [coding, suffix] of [
          ['br', '.br'],
          ['gzip', '.gz'],
        ] as const) {
          const copy = statSync(file + suffix, { throwIfNoEntry: false });
          if (copy) encodings.push({ coding, file: file + suffix, size: copy.size });
        }
        encodings.push({ coding: 'identity', file, size: statSync(file).size });
        const type = CONTENT_TYPES[path.extname(entry.name).toLowerCase()] ?? 'application/octet-stream';
        files.set(url, { type, immutable: url.startsWith('/assets/'), encodings });
      }
    }
  };
  walk(dir);
  return files;
}

/** The content codings an Accept-Encoding header allows (RFC 9110 §12.5.3): named with q > 0, or by `*`. */
export function acceptedCodings(header: string | undefined): Set<string> {
  const accepted = new Set<string>();
  const refused = new Set<string>();
  let any = false;
  for (const part of (header ?? '').split(',')) {
    const [coding = '', ...params] = part.toLowerCase().split(';');
    const name = coding.trim();
    if (name === '') continue;
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    const ok = q === undefined || Number(q) > 0;
    if (name === '*') any = ok;
    else (ok ? accepted : refused).add(name === 'x-gzip' ? 'gzip' : name);
  }
  if (any) for (const coding of ['br', 'gzip']) if (!refused.has(coding)) accepted.add(coding);
  return accepted;
}

/**
 * Serves the web UI at `/`: the built files (the compressed copy the browser accepts, else the
 * file), and index.html for the page paths the single-page app routes itself (sign-in,
 * organizations, invitation links). The files are listed once at start; each has its own route,
 * so any other path keeps its API's answer (and its 404).
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
  for (const [url, built] of builtFiles(dir)) {
    app.get(url, async (request: FastifyRequest, reply: FastifyReply) => {
      const accepted = acceptedCodings(request.headers['accept-encoding']);
      const chosen = built.encodings.find((e) => e.coding === 'identity' || accepted.has(e.coding)) as BuiltFile['encodings'][number];
      // Opened before any header is set: a file removed since start (the UI rebuilt in place) is a
      // plain 404, not a broken stream.
      const handle = await open(chosen.file, 'r').catch(() => undefined);
      if (!handle) throw ApiError.notFound(url);
      reply
        .type(built.type)
        .header('content-length', chosen.size)
        .header('vary', 'accept-encoding')
        .header('cache-control', built.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      if (chosen.coding !== 'identity') reply.header('content-encoding', chosen.coding);
      return reply.send(handle.createReadStream());
    });
  }
  const page = (reply: FastifyReply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index);
  // Only the single-page app's own paths: every other path keeps its API's answer (and its 404).
  for (const url of DASHBOARD_PAGES) app.get(url, async (_request, reply) => page(reply));
}
