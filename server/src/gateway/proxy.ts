import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';

// undici is loaded with the first upstream pool, not at start: a node that proxies nothing (most
// token servers) does not carry its ~1 MB of source and the heap it compiles to.
const require = createRequire(import.meta.url);
let PoolClass: typeof Pool | undefined;

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

/**
 * Response fields node:http keeps once when an upstream repeats them (the first wins); others
 * repeated are joined with ", " and Set-Cookie stays a list, as an IncomingMessage has them.
 */
const SINGLE_VALUED = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * The upstream's headers (undici's raw list: name, value, name, value…) for the client: hop-by-hop
 * fields dropped, no cookie in the portal's names, everything else (CSP, X-Frame-Options) unchanged.
 */
export function clientResponseHeaders(raw: readonly Buffer[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  let connection: string | undefined;
  let cookies: string[] | undefined;
  let via: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1').toLowerCase();
    const value = (raw[i + 1] as Buffer).toString('latin1');
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      continue;
    }
    if (name === 'set-cookie') {
      if (setsOwnCookie(value)) continue;
      if (cookies === undefined) cookies = [value];
      else cookies.push(value);
      continue;
    }
    if (name === 'via') {
      via = via === undefined ? value : `${via}, ${value}`;
      continue;
    }
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (!SINGLE_VALUED.has(name)) out[name] = `${seen}, ${value}`;
  }
  if (cookies !== undefined) out['set-cookie'] = cookies;
  if (connection !== undefined) for (const name of connectionNamed(connection)) delete out[name];
  out.via = via ? `${via}, ${VIA}` : VIA;
  return out;
}

export interface UpstreamTarget {
  /** The upstream's scheme, host and port: which pool of connections serves it. */
  origin: string;
  /** Host header value for the upstream (host[:port]). */
  host: string;
  /** The upstream URL's path without a trailing slash; the rest of the request path follows it. */
  basePath: string;
}

/** The parts of an upstream URL a request needs, computed once per route. */
export function upstreamTarget(upstream: string): UpstreamTarget {
  const url = new URL(upstream);
  return {
    origin: url.origin,
    host: url.host,
    basePath: url.pathname.replace(/\/$/, ''),
  };
}

export type UpstreamFailure = 'timeout' | 'unavailable';

/** Who hears how an upstream call went. */
export interface UpstreamExchange {
  /**
   * The upstream's status and headers arrived (hop-by-hop fields and the portal's cookies already
   * dropped): the caller writes them and says whether the body is still wanted (false when the
   * client has gone); the body then streams to the client's response.
   */
  answered(status: number, headers: OutgoingHttpHeaders): boolean;
  /** No answer arrived: the upstream could not be reached, failed, or took longer than the timeout. */
  failed(failure: UpstreamFailure, err: Error): void;
  /** The answer broke off mid-body (the upstream failed, or went silent for longer than the timeout). */
  broke(err: Error): void;
}

/** undici's codes for a connection, an answer's head or its body that took longer than the timeout. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Told to undici when the client has gone, so the call is dropped (never reported: nobody is left to tell). */
class ClientGone extends Error {}

/**
 * One upstream call, as undici's dispatch handler: the answer's head goes to the exchange, its body
 * straight to the client's response, with the response's backpressure pausing the upstream.
 */
export class UpstreamCall implements Dispatcher.DispatchHandlers {
  private abort: ((err?: Error) => void) | undefined = undefined;
  private resume: (() => void) | undefined = undefined;
  private answeredHead = false;
  private cancelled = false;
  /** Whether the whole answer arrived. */
  complete = false;

  constructor(
    private readonly exchange: UpstreamExchange,
    private readonly res: ServerResponse,
  ) {}

  /** The client has gone: the call is dropped, its connection to the upstream closed unless the answer is complete. */
  cancel(): void {
    if (this.complete || this.cancelled) return;
    this.cancelled = true;
    this.abort?.(new ClientGone('the client went away'));
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelled) abort(new ClientGone('the client went away'));
    else this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // informational (100 Continue, 103): the final answer follows
    this.answeredHead = true;
    this.resume = resume;
    if (this.exchange.answered(status, clientResponseHeaders(raw))) return true;
    this.cancel();
    return false;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resume as () => void);
    return false;
  }

  onComplete(): void {
    this.complete = true;
    this.res.end();
  }

  onError(err: Error): void {
    if (this.cancelled) return;
    if (this.answeredHead) this.exchange.broke(err);
    else this.exchange.failed(TIMEOUTS.has((err as { code?: string }).code as string) ? 'timeout' : 'unavailable', err);
  }
}

/** Keep-alive connection pools to upstreams, one per origin and timeout, shared by every route. */
const pools = new Map<string, Pool>();

/**
 * The pool for an upstream and a timeout: the timeout bounds connecting, waiting for the answer's
 * head and each wait between pieces of its body. Idle connections are kept as long as the
 * upstream's Keep-Alive says (4 s when it says nothing).
 */
function poolFor(target: UpstreamTarget, timeoutMs: number): Pool {
  const key = `${target.origin} ${timeoutMs}`;
  let pool = pools.get(key);
  if (pool === undefined) {
    PoolClass ??= (require('undici') as typeof import('undici')).Pool;
    pool = new PoolClass(target.origin, { connections: 256, connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    pools.set(key, pool);
  }
  return pool;
}

/**
 * The client's request body for undici, which may stop reading it (the upstream answered early or
 * failed) but never destroys it: the client still gets its answer, and what it sends after that is
 * read and dropped, so it can finish sending and its connection serves its next request.
 */
async function* requestBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  } finally {
    if (!req.complete) req.resume();
  }
}

/**
 * Sends the client's request `req` to the upstream and streams its body there; `exchange` hears
 * the answer's head or the failure, and the answer's body streams to `res`. Returns the call, for
 * the caller to cancel when the client goes away.
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  target: UpstreamTarget,
  path: string,
  headers: FlatHeaders,
  timeoutMs: number,
  exchange: UpstreamExchange,
): UpstreamCall {
  const call = new UpstreamCall(exchange, res);
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  poolFor(target, timeoutMs).dispatch(
    {
      method: req.method as Dispatcher.HttpMethod,
      path: path.charCodeAt(0) === 47 ? path : `/${path}`,
      headers: headers as string[],
      body: hasBody ? (requestBody(req) as unknown as Readable) : null,
    },
    call,
  );
  return call;
}
