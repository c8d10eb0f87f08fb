import http, { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

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
const agents = new Map<string, http.Agent>();

/**
 * The pool for a protocol and an upstream timeout. The agent sets the timeout on its sockets
 * (connecting, waiting, idle in the pool) once, instead of every request arming and disarming
 * one; routes share few distinct timeouts, so there are few pools.
 */
function agentFor(protocol: 'http:' | 'https:', timeoutMs: number): http.Agent {
  const key = protocol + timeoutMs;
  let agent = agents.get(key);
  if (agent === undefined) {
    const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const, timeout: timeoutMs };
    agent = protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

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

/** What the forwarding reads of a client request: its fields, and the client as the trusted-proxy rules see it. */
export interface ForwardedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: Socket | null;
  /** The client's address (the rightmost one no trusted proxy wrote). */
  readonly ip: string;
  readonly protocol: string;
  readonly host: string;
}

/** Fields never copied as they come: hop-by-hop, Portcullis's own, and those rewritten below (Cookie, Via). */
const NOT_COPIED = new Set([...HOP_BY_HOP, ...OWN_REQUEST_FIELDS, 'cookie', 'via']);

/** Header fields as node:http takes them flat (name, value, name, value…): no header object to build field by field. */
export type FlatHeaders = Array<string | string[]>;

/**
 * The headers sent upstream: the client's, minus hop-by-hop fields, Portcullis's own fields and
 * cookies, plus X-Forwarded-*; the caller adds the identity. `trustProxy`: whether the
 * X-Forwarded-For chain of the peer in front is kept.
 */
export function upstreamRequestHeaders(request: ForwardedRequest, upstreamHost: string, trustProxy: boolean): FlatHeaders {
  const incoming: IncomingHttpHeaders = request.headers;
  const named = connectionNamed(incoming.connection);
  const out: FlatHeaders = ['host', upstreamHost];
  for (const name in incoming) {
    if (NOT_COPIED.has(name)) continue;
    // x-portcullis-* (the identity is ours to say) and x-forwarded-* (rewritten below).
    if (name.charCodeAt(0) === 120 && (name.startsWith('x-portcullis-') || name.startsWith('x-forwarded-'))) continue;
    if (named.length > 0 && named.includes(name)) continue;
    out.push(name, incoming[name] as string | string[]);
  }
  if (incoming.cookie !== undefined) {
    const cookie = withoutOwnCookies(incoming.cookie);
    if (cookie !== undefined) out.push('cookie', cookie);
  }
  // X-Forwarded-* describe the client: a chain from a proxy is kept only when that proxy is trusted.
  const chain = trustProxy ? incoming['x-forwarded-for'] : undefined;
  const socketAddress = chain ? (request.socket?.remoteAddress ?? request.ip) : '';
  const via = incoming.via;
  out.push(
    'x-forwarded-for',
    chain ? `${chain}, ${socketAddress}` : request.ip,
    'x-forwarded-proto',
    request.protocol,
    'x-forwarded-host',
    request.host,
    'via',
    via ? `${via}, ${VIA}` : VIA,
  );
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

/** Who hears how an upstream call went. */
export interface UpstreamExchange {
  /** The upstream's answer arrived: the caller writes it. */
  answered(upstream: IncomingMessage): void;
  /** No answer arrived: the upstream could not be reached, failed, or took longer than the timeout. */
  failed(failure: UpstreamFailure, err: Error): void;
}

const kCall = Symbol('portcullis.upstreamCall');

/** The state of one upstream call, kept on its ClientRequest so the listeners are shared functions, not closures. */
class UpstreamCall {
  answered = false;
  timedOut = false;
  constructor(
    readonly exchange: UpstreamExchange,
    readonly timeoutMs: number,
  ) {}
}

type Outgoing = ClientRequest & { [kCall]: UpstreamCall };

function onUpstreamResponse(this: Outgoing, upstream: IncomingMessage): void {
  const call = this[kCall];
  call.answered = true;
  call.exchange.answered(upstream);
}

function onUpstreamTimeout(this: Outgoing): void {
  const call = this[kCall];
  call.timedOut = true;
  this.destroy(new Error(`no answer from the upstream within ${call.timeoutMs} ms`));
}

function onUpstreamError(this: Outgoing, err: Error): void {
  const call = this[kCall];
  if (!call.answered) call.exchange.failed(call.timedOut ? 'timeout' : 'unavailable', err);
}

/**
 * Sends the client's request `req` to the upstream and streams its body there; `exchange` hears
 * the answer or the failure. Returns the upstream request, for the caller to destroy when the client goes away.
 */
export function forward(
  req: IncomingMessage,
  target: UpstreamTarget,
  path: string,
  headers: FlatHeaders,
  timeoutMs: number,
  exchange: UpstreamExchange,
): ClientRequest {
  const outgoing = (target.protocol === 'https:' ? https : http).request({
    protocol: target.protocol,
    hostname: target.hostname,
    port: target.port,
    method: req.method,
    path,
    headers: headers as string[],
    agent: agentFor(target.protocol, timeoutMs),
    setHost: false,
  }) as Outgoing;
  outgoing[kCall] = new UpstreamCall(exchange, timeoutMs);
  // The agent's sockets carry the timeout; the request hears it as 'timeout'.
  outgoing.on('timeout', onUpstreamTimeout);
  outgoing.on('response', onUpstreamResponse);
  outgoing.on('error', onUpstreamError);
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (hasBody) req.pipe(outgoing);
  else outgoing.end();
  return outgoing;
}
