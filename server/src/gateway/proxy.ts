import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { FastifyRequest } from 'fastify';

// RFC 9110 §7.6.1: connection-specific fields a proxy must not forward, plus the obsolete ones still seen.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
/**
 * Request fields that belong to Portcullis, never to an upstream: the bearer token, the portal's
 * CSRF header, and Expect (this server already answered the 100-continue; the body follows).
 */
const OWN_REQUEST_FIELDS = new Set(['authorization', 'x-csrf-token', 'expect', 'host']);
const VIA = '1.1 portcullis';
const OWN_COOKIE = 'portcullis_';

/** Keep-alive connection pools to upstreams, shared by every route. */
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' }),
};

/** Field names a Connection header lists (RFC 9110 §7.6.1), lower-cased. */
function connectionNamed(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text === 'keep-alive' || text === 'close') return [];
  return text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/** A Cookie header without the portal's own cookies, or undefined when none is left. */
export function withoutOwnCookies(cookie: string): string | undefined {
  if (!cookie.includes(OWN_COOKIE)) return cookie;
  const kept = cookie
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c !== '' && !c.toLowerCase().startsWith(OWN_COOKIE));
  return kept.length === 0 ? undefined : kept.join('; ');
}

const setsOwnCookie = (line: string) => line.trimStart().toLowerCase().startsWith(OWN_COOKIE);

/** What the upstream is told about the client, and who the caller is. */
export interface ForwardingContext {
  identity: Record<string, string>;
  trustProxy: boolean;
}

/** The headers sent upstream: the client's, minus hop-by-hop fields, Portcullis's own fields and cookies, plus identity and X-Forwarded-*. */
export function upstreamRequestHeaders(request: FastifyRequest, upstreamHost: string, context: ForwardingContext): OutgoingHttpHeaders {
  const incoming: IncomingHttpHeaders = request.headers;
  const named = connectionNamed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || OWN_REQUEST_FIELDS.has(name) || name.startsWith('x-portcullis-') || name.startsWith('x-forwarded-')) continue;
    if (named.length > 0 && named.includes(name)) continue;
    out[name] = incoming[name];
  }
  if (incoming.cookie !== undefined) {
    const cookie = withoutOwnCookies(incoming.cookie);
    if (cookie === undefined) delete out.cookie;
    else out.cookie = cookie;
  }
  Object.assign(out, context.identity);
  out.host = upstreamHost;
  // X-Forwarded-* describe the client: a chain from a proxy is kept only when that proxy is trusted.
  const socketAddress = request.socket.remoteAddress ?? request.ip;
  const chain = context.trustProxy ? incoming['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = chain ? `${chain}, ${socketAddress}` : request.ip;
  out['x-forwarded-proto'] = request.protocol;
  out['x-forwarded-host'] = request.host;
  const via = incoming.via;
  out.via = via ? `${via}, ${VIA}` : VIA;
  return out;
}

/** The upstream's headers for the client: hop-by-hop fields dropped, no cookie in the portal's names, everything else (CSP, X-Frame-Options) unchanged. */
export function clientResponseHeaders(upstream: IncomingMessage): OutgoingHttpHeaders {
  const incoming = upstream.headers;
  const named = connectionNamed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name)) continue;
    if (named.length > 0 && named.includes(name)) continue;
    out[name] = incoming[name];
  }
  const cookies = incoming['set-cookie'];
  if (cookies !== undefined) {
    const kept = cookies.filter((c) => !setsOwnCookie(c));
    if (kept.length === 0) delete out['set-cookie'];
    else out['set-cookie'] = kept;
  }
  const via = incoming.via;
  out.via = via ? `${via}, ${VIA}` : VIA;
  return out;
}

export interface UpstreamTarget {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** Host header value for the upstream (host[:port]). */
  host: string;
  /** The upstream URL's path without a trailing slash; the rest of the request path follows it. */
  basePath: string;
}

/** The parts of an upstream URL a request needs, computed once per route. */
export function upstreamTarget(upstream: string): UpstreamTarget {
  const url = new URL(upstream);
  const protocol = url.protocol as 'http:' | 'https:';
  return {
    protocol,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : protocol === 'https:' ? 443 : 80,
    host: url.host,
    basePath: url.pathname.replace(/\/$/, ''),
  };
}

export type UpstreamFailure = 'timeout' | 'unavailable';

/**
 * Sends the request to the upstream and streams the body both ways. `onResponse` gets the
 * upstream's answer (the caller writes it), `onFailure` a failure before any answer arrived.
 */
export function forward(
  request: FastifyRequest,
  target: UpstreamTarget,
  path: string,
  headers: OutgoingHttpHeaders,
  timeoutMs: number,
  onResponse: (upstream: IncomingMessage) => void,
  onFailure: (failure: UpstreamFailure, err: Error) => void,
): void {
  const req = request.raw;
  let answered = false;
  let timedOut = false;
  const outgoing = (target.protocol === 'https:' ? https : http).request({
    protocol: target.protocol,
    hostname: target.hostname,
    port: target.port,
    method: req.method,
    path,
    headers,
    agent: agents[target.protocol],
    setHost: false,
  });
  outgoing.setTimeout(timeoutMs, () => {
    timedOut = true;
    outgoing.destroy(new Error(`no answer from the upstream within ${timeoutMs} ms`));
  });
  outgoing.on('response', (upstream) => {
    answered = true;
    onResponse(upstream);
  });
  outgoing.on('error', (err) => {
    if (!answered) onFailure(timedOut ? 'timeout' : 'unavailable', err);
  });
  // A client that goes away stops the upstream request too.
  req.on('aborted', () => outgoing.destroy());
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (hasBody) req.pipe(outgoing);
  else outgoing.end();
}
