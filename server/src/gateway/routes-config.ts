import { readFileSync } from 'node:fs';
import { scopeProblem } from '../domain/names.js';

/** Scopes a token needs for some methods of a route. */
export interface MethodRule {
  methods: string[];
  scopes: string[];
}

/** How the gateway answers browsers' cross-origin requests (preflights are answered before authentication). */
export interface CorsSettings {
  /** Allowed origins (scheme://host[:port]), or ["*"]. */
  origins: string[];
  /** Request headers a preflight may ask for (Authorization is always allowed). */
  headers: string[];
  /** Response headers scripts may read. */
  exposeHeaders: string[];
  credentials: boolean;
  maxAgeSeconds: number;
}

/** The options of a route beyond where it goes, as stored with an operator-API route. */
export interface RouteOptions {
  /** Per-method scopes; a method no rule names needs the route's `scopes`. */
  rules: MethodRule[];
  /** Calls per minute per application on this route; the application's or the server's default when null. */
  rateLimitPerMinute: number | null;
  cors: CorsSettings | null;
  /** The token's `aud` must name this resource (RFC 8707) when set. */
  audience: string | null;
}

/** An upstream route: requests under `prefix` go to `upstream` plus the rest of the path. */
export interface RouteSpec extends RouteOptions {
  prefix: string;
  upstream: string;
  scopes: string[];
  /** How long to wait for the upstream's response headers, and between body chunks; the default when null. */
  timeoutMs: number | null;
}

export const ROUTE_FIELDS = ['prefix', 'upstream', 'scopes', 'timeout_ms', 'rules', 'rate_limit_per_minute', 'cors', 'audience'];
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;

/** The scopes a request with this method needs on this route. */
export function requiredScopes(route: Pick<RouteSpec, 'rules' | 'scopes'>, method: string): string[] {
  for (const rule of route.rules) if (rule.methods.includes(method)) return rule.scopes;
  return route.scopes;
}

function checkRules(raw: unknown): { problem: string } | { rules: MethodRule[] } {
  if (raw === undefined || raw === null) return { rules: [] };
  if (!Array.isArray(raw) || raw.length > 20) return { problem: 'rules must be an array of at most 20 {"methods": [...], "scopes": [...]}' };
  const rules: MethodRule[] = [];
  const seen = new Set<string>();
  for (const [i, r] of raw.entries()) {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return { problem: `rules[${i}] must be an object with methods and scopes` };
    const rule = r as Record<string, unknown>;
    const extra = Object.keys(rule).find((k) => k !== 'methods' && k !== 'scopes');
    if (extra !== undefined) return { problem: `rules[${i}]: unknown field ${JSON.stringify(extra.slice(0, 50))}; allowed: methods, scopes` };
    const methods = rule.methods;
    if (!Array.isArray(methods) || methods.length === 0 || methods.some((m) => typeof m !== 'string' || !METHODS.includes(m))) {
      return { problem: `rules[${i}].methods must be a non-empty array of ${METHODS.join(', ')}` };
    }
    for (const m of methods as string[]) {
      if (seen.has(m)) return { problem: `rules[${i}]: method ${m} is named by an earlier rule` };
      seen.add(m);
    }
    const scopes = rule.scopes ?? [];
    const problem = scopeProblem(scopes);
    if (problem) return { problem: `rules[${i}]: ${problem}` };
    rules.push({ methods: methods as string[], scopes: scopes as string[] });
  }
  return { rules };
}

function stringList(value: unknown, field: string, pattern: RegExp, max: number): { problem: string } | { list: string[] } {
  if (value === undefined) return { list: [] };
  if (!Array.isArray(value) || value.length > max || value.some((v) => typeof v !== 'string' || !pattern.test(v))) {
    return { problem: `${field} must be an array of at most ${max} valid entries` };
  }
  return { list: value as string[] };
}

function checkCors(raw: unknown): { problem: string } | { cors: CorsSettings | null } {
  if (raw === undefined || raw === null) return { cors: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { problem: 'cors must be an object with origins' };
  const c = raw as Record<string, unknown>;
  const allowed = ['origins', 'headers', 'expose_headers', 'credentials', 'max_age_seconds'];
  const extra = Object.keys(c).find((k) => !allowed.includes(k));
  if (extra !== undefined) return { problem: `cors: unknown field ${JSON.stringify(extra.slice(0, 50))}; allowed: ${allowed.join(', ')}` };
  const origins = c.origins;
  const wildcard = Array.isArray(origins) && origins.length === 1 && origins[0] === '*';
  if (!Array.isArray(origins) || origins.length === 0 || origins.length > 50 || (!wildcard && origins.some((o) => typeof o !== 'string' || !ORIGIN.test(o)))) {
    return { problem: 'cors.origins must be ["*"] or an array of origins such as https://app.example.com (at most 50)' };
  }
  const headers = stringList(c.headers, 'cors.headers', HEADER_NAME, 50);
  if ('problem' in headers) return headers;
  const exposed = stringList(c.expose_headers, 'cors.expose_headers', HEADER_NAME, 50);
  if ('problem' in exposed) return exposed;
  const credentials = c.credentials ?? false;
  if (typeof credentials !== 'boolean') return { problem: 'cors.credentials must be true or false' };
  if (credentials && wildcard) return { problem: 'cors.credentials needs explicit origins, not "*" (the Fetch standard refuses the pair)' };
  const maxAge = c.max_age_seconds ?? 600;
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0 || maxAge > 86_400) return { problem: 'cors.max_age_seconds must be 0 to 86400' };
  return { cors: { origins: origins as string[], headers: headers.list, exposeHeaders: exposed.list, credentials, maxAgeSeconds: maxAge } };
}

/** The problem with a route's options, or the clean options. */
export function checkRouteOptions(r: Record<string, unknown>): { problem: string } | { options: RouteOptions } {
  const rules = checkRules(r.rules);
  if ('problem' in rules) return rules;
  const limit = r.rate_limit_per_minute ?? null;
  if (limit !== null && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1_000_000)) {
    return { problem: 'rate_limit_per_minute must be a whole number from 1 to 1000000' };
  }
  const cors = checkCors(r.cors);
  if ('problem' in cors) return cors;
  const audience = r.audience ?? null;
  if (audience !== null && (typeof audience !== 'string' || audience.length === 0 || audience.length > 500 || /[\s"\\]/.test(audience))) {
    return { problem: 'audience must be the resource identifier tokens are issued for, such as https://orders.example.com (RFC 8707)' };
  }
  return { options: { rules: rules.rules, rateLimitPerMinute: limit as number | null, cors: cors.cors, audience: audience as string | null } };
}

/** The options as stored and shown (snake_case, as declared). */
export function routeOptionsView(o: RouteOptions) {
  return {
    rules: o.rules,
    rate_limit_per_minute: o.rateLimitPerMinute,
    cors:
      o.cors === null
        ? null
        : {
            origins: o.cors.origins,
            headers: o.cors.headers,
            expose_headers: o.cors.exposeHeaders,
            credentials: o.cors.credentials,
            max_age_seconds: o.cors.maxAgeSeconds,
          },
    audience: o.audience,
  };
}

const PREFIX = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/;
/** Paths the server answers itself: a route may not shadow them. */
export const RESERVED_PREFIXES = ['/admin', '/oauth2', '/.well-known', '/delivery', '/me', '/healthz', '/readyz', '/metrics', '/portal', '/decision'];
export const MAX_TIMEOUT_MS = 600_000;

/** The problem with a route declaration, or the clean route. */
export function checkRoute(raw: unknown): { problem: string } | { route: RouteSpec } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { problem: 'a route must be an object with prefix, upstream and scopes' };
  const r = raw as Record<string, unknown>;
  const unknown = Object.keys(r).find((k) => !ROUTE_FIELDS.includes(k));
  if (unknown !== undefined) return { problem: `unknown field ${JSON.stringify(unknown.slice(0, 50))}; allowed: ${ROUTE_FIELDS.join(', ')}` };
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
  const options = checkRouteOptions(r);
  if ('problem' in options) return options;
  return {
    route: {
      prefix,
      upstream: `${upstream.origin}${upstream.pathname.replace(/\/+$/, '')}`,
      scopes: scopes as string[],
      timeoutMs: timeout as number | null,
      ...options.options,
    },
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
