import { readFileSync } from 'node:fs';
import { scopeProblem } from '../domain/names.js';

/** An upstream route: requests under `prefix` go to `upstream` plus the rest of the path. */
export interface RouteSpec {
  prefix: string;
  upstream: string;
  scopes: string[];
  /** How long to wait for the upstream's response headers, and between body chunks; the default when null. */
  timeoutMs: number | null;
}

const PREFIX = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/;
/** Paths the server answers itself: a route may not shadow them. */
export const RESERVED_PREFIXES = ['/admin', '/oauth2', '/.well-known', '/delivery', '/me', '/healthz', '/readyz', '/metrics', '/portal'];
export const MAX_TIMEOUT_MS = 600_000;

/** The problem with a route declaration, or the clean route. */
export function checkRoute(raw: unknown): { problem: string } | { route: RouteSpec } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { problem: 'a route must be an object with prefix, upstream and scopes' };
  const r = raw as Record<string, unknown>;
  const unknown = Object.keys(r).find((k) => !['prefix', 'upstream', 'scopes', 'timeout_ms'].includes(k));
  if (unknown !== undefined) return { problem: `unknown field ${JSON.stringify(unknown.slice(0, 50))}; allowed: prefix, upstream, scopes, timeout_ms` };
  const prefix = r.prefix;
  if (typeof prefix !== 'string' || prefix.length > 200 || !PREFIX.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')) {
    return { problem: 'prefix must be a path such as /orders (segments of URL path characters, no trailing slash, no . or ..)' };
  }
  const reserved = RESERVED_PREFIXES.find((p) => prefix === p || prefix.startsWith(`${p}/`) || p.startsWith(`${prefix}/`));
  if (reserved) return { problem: `prefix ${prefix} overlaps ${reserved}, which the server answers itself` };
  let upstream: URL;
  try {
    upstream = new URL(String(r.upstream));
  } catch {
    return { problem: 'upstream must be an absolute http or https URL, such as http://127.0.0.1:9000/api' };
  }
  if (typeof r.upstream !== 'string' || (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')) {
    return { problem: 'upstream must be an absolute http or https URL, such as http://127.0.0.1:9000/api' };
  }
  if (upstream.search || upstream.hash || upstream.username || upstream.password) return { problem: 'upstream must not have a query, fragment or credentials' };
  const scopes = r.scopes ?? [];
  const problem = scopeProblem(scopes);
  if (problem) return { problem };
  const timeout = r.timeout_ms ?? null;
  if (timeout !== null && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS)) {
    return { problem: `timeout_ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}` };
  }
  return {
    route: { prefix, upstream: `${upstream.origin}${upstream.pathname.replace(/\/+$/, '')}`, scopes: scopes as string[], timeoutMs: timeout as number | null },
  };
}

/** Reads the PORTCULLIS_ROUTES file: a JSON array of routes (or {"routes":[…]}). Throws a message naming what is wrong. */
export function readRouteFile(file: string): RouteSpec[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code ? `cannot read ${file}: ${code}` : `${file} is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { routes?: unknown } | null)?.routes;
  if (!Array.isArray(list)) throw new Error(`${file} must hold a JSON array of routes, or {"routes": [...]}`);
  const routes: RouteSpec[] = [];
  for (const [i, raw] of list.entries()) {
    const checked = checkRoute(raw);
    if ('problem' in checked) throw new Error(`route ${i} in ${file}: ${checked.problem}`);
    if (routes.some((r) => r.prefix === checked.route.prefix)) throw new Error(`route ${i} in ${file}: prefix ${checked.route.prefix} is declared twice`);
    routes.push(checked.route);
  }
  return routes;
}
