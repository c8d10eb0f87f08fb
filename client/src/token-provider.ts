import { setTimeout as delay } from 'node:timers/promises';
import { discover, type FetchLike } from './discovery.js';
import { InvalidClientError, TokenEndpointError } from './errors.js';

/** Options of {@link createTokenProvider}. Give `tokenUrl`, or `issuer` to discover it. */
export interface TokenProviderOptions {
  /** The token endpoint, e.g. `https://auth.example.com/oauth2/token`. */
  tokenUrl?: string | URL;
  /** The issuer; its token endpoint is read from its RFC 8414 metadata when `tokenUrl` is not given. */
  issuer?: string | URL;
  clientId: string;
  clientSecret: string;
  /** Scopes to ask for (space-separated or a list); by default the server grants all of the application's. */
  scope?: string | readonly string[];
  /**
   * The API the tokens are for (RFC 8707 `resource`): its identifier, as the operator registered
   * it. The token's `aud` is then that identifier, so it is refused by every other API. Without
   * it, tokens carry the issuer's default audience.
   */
  resource?: string;
  /** How the secret is sent: in the form body (the default, as the reference product documents) or HTTP Basic. */
  authMethod?: 'client_secret_post' | 'client_secret_basic';
  /** Renew this many seconds before the token expires (at most half its lifetime). Default 60. */
  renewBeforeSeconds?: number;
  /** Renew up to this many seconds earlier still, at random, so a fleet of clients does not renew at once. Default 30. */
  renewJitterSeconds?: number;
  /** Requests per token, the first included, on 429, 5xx or network errors. Default 4. */
  maxAttempts?: number;
  /** First backoff delay in milliseconds; it doubles per attempt, with full jitter. Default 200. */
  retryBaseDelayMs?: number;
  /** Longest wait between attempts; a `Retry-After` asking for more makes the provider give up. Default 20000. */
  retryMaxDelayMs?: number;
  /** Timeout of one request. Default 10000. */
  requestTimeoutMs?: number;
  /**
   * The most one token request may take, retries and waits included, in milliseconds: past it the
   * caller gets a {@link TokenEndpointError} `deadline_exceeded`. Default 10000.
   */
  deadlineMs?: number;
  /** The fetch to use; the global `fetch` by default. */
  fetch?: FetchLike;
  /** The clock, in milliseconds since the epoch; `Date.now` by default. For tests. */
  now?: () => number;
  /** Random numbers in [0, 1) for jitter; `Math.random` by default. For tests. */
  random?: () => number;
  /** Waits between attempts; a timer by default. For tests. */
  sleep?: (ms: number) => Promise<void>;
  /** The User-Agent header of token requests. */
  userAgent?: string;
}

/** A token with what the provider knows about it. */
export interface AccessToken {
  /** The access token itself, for `Authorization: Bearer …`. */
  value: string;
  /** The granted scopes, space-separated, when the server said. */
  scope: string | undefined;
  /** When it expires (ms since the epoch), counted from when the request was sent. */
  expiresAt: number;
}

/** Gets, caches and renews access tokens for one client. */
export interface TokenProvider {
  /** A valid access token: the cached one, or a new one when there is none or it has expired. */
  getToken(): Promise<string>;
  /** Like {@link TokenProvider.getToken}, with the token's scope and expiry. */
  getAccessToken(): Promise<AccessToken>;
  /**
   * A new token, because an API refused `rejected` (a 401). If the cached token already differs
   * from `rejected`, that one is returned without a request, so many callers refused at once
   * cause one renewal.
   */
  renew(rejected?: string): Promise<string>;
  /** Forgets the cached token (and a remembered `invalid_client`). */
  clear(): void;
}

interface Cached {
  token: AccessToken;
  /** From here on, callers still get this token and a renewal starts in the background. */
  renewAt: number;
  /** From here on, callers wait for a new token. */
  usableUntil: number;
}

/** Seconds or an HTTP date (RFC 9110 §10.2.3), as milliseconds from `now`. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const RETRYABLE = (status: number) => status === 429 || status >= 500;
const DEFAULT_LIFETIME_SECONDS = 300;

/**
 * A token provider for the client-credentials grant. It caches the token and renews it before it
 * expires (callers keep getting the cached token while the renewal runs), makes one request
 * however many callers wait at once, retries 429, 5xx and network errors with backoff (honouring
 * `Retry-After`), and fails with {@link InvalidClientError}, never retried, when the credentials
 * are refused.
 *
 * @example
 * ```ts
 * const tokens = createTokenProvider({ issuer: 'https://auth.example.com', clientId, clientSecret });
 * const response = await fetch(url, { headers: { authorization: `Bearer ${await tokens.getToken()}` } });
 * ```
 */
export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  if (!options.tokenUrl && !options.issuer) throw new TypeError('createTokenProvider needs tokenUrl or issuer');
  if (!options.clientId || !options.clientSecret) throw new TypeError('createTokenProvider needs clientId and clientSecret');
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const renewBeforeMs = (options.renewBeforeSeconds ?? 60) * 1000;
  const jitterMs = (options.renewJitterSeconds ?? 30) * 1000;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const baseDelayMs = options.retryBaseDelayMs ?? 200;
  const maxDelayMs = options.retryMaxDelayMs ?? 20_000;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const deadlineMs = options.deadlineMs ?? 10_000;
  const scope = typeof options.scope === 'string' ? options.scope : options.scope?.join(' ');

  let tokenUrl: Promise<string> | undefined = options.tokenUrl ? Promise.resolve(String(options.tokenUrl)) : undefined;
  let cached: Cached | undefined;
  let inflight: Promise<Cached> | undefined;
  let refused: InvalidClientError | undefined;
  /** No request before this time: a server's Retry-After, remembered across calls. */
  let quietUntil = 0;
  /** After a failed discovery, calls fail with it until this time, which doubles per failure (up to a minute). */
  let discoveryRetryAt = 0;
  let discoveryFailures = 0;
  let discoveryError: unknown;

  const resolveTokenUrl = (budgetMs: number): Promise<string> => {
    if (!tokenUrl && now() < discoveryRetryAt) return Promise.reject(discoveryError);
    tokenUrl ??= discover(options.issuer!, { fetch: doFetch, timeoutMs: Math.max(1, Math.min(timeoutMs, budgetMs)) }).then(
      (metadata) => {
        discoveryFailures = 0;
        return metadata.token_endpoint;
      },
      (err) => {
        tokenUrl = undefined;
        discoveryError = err;
        discoveryFailures++;
        discoveryRetryAt = now() + Math.min(60_000, 1000 * 2 ** (discoveryFailures - 1)) * (0.5 + random() / 2);
        throw err;
      },
    );
    return tokenUrl;
  };

  const requestInit = (): RequestInit => {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (options.userAgent) headers['user-agent'] = options.userAgent;
    if (options.authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: each part is form-encoded before the Basic encoding.
      const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
      headers.authorization = `Basic ${Buffer.from(`${enc(options.clientId)}:${enc(options.clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', options.clientId);
      form.set('client_secret', options.clientSecret);
    }
    if (scope) form.set('scope', scope);
    if (options.resource) form.set('resource', options.resource);
    return { method: 'POST', headers, body: form.toString(), redirect: 'error' };
  };

  const backoff = (attempt: number) => Math.round(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));

  const cache = (body: Record<string, unknown>, sentAt: number): Cached => {
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_LIFETIME_SECONDS) * 1000;
    const expiresAt = sentAt + lifetimeMs;
    const margin = Math.min(renewBeforeMs, lifetimeMs / 2);
    const jitter = random() * Math.min(jitterMs, margin / 2);
    return {
      token: { value: body.access_token as string, scope: typeof body.scope === 'string' ? body.scope : undefined, expiresAt },
      renewAt: expiresAt - margin - jitter,
      // Not sent in its last seconds: it could expire on the way.
      usableUntil: expiresAt - Math.min(5_000, lifetimeMs / 10),
    };
  };

  const requestToken = async (): Promise<Cached> => {
    const deadlineAt = now() + deadlineMs;
    // A real timer too, so a hanging answer is cut at the deadline whatever the injected clock says.
    const deadline = AbortSignal.timeout(deadlineMs);
    const pastDeadline = (attempts: number, cause?: unknown) =>
      new TokenEndpointError('deadline_exceeded', `no token within the deadline of ${deadlineMs} ms`, { attempts, ...(cause === undefined ? {} : { cause }) });
    const pause = async (ms: number, attempts: number) => {
      if (now() + ms > deadlineAt) throw pastDeadline(attempts);
      await sleep(ms);
    };
    const url = await resolveTokenUrl(deadlineAt - now());
    let retryAfterMs: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const wait = quietUntil - now();
      if (wait > 0) {
        if (wait > maxDelayMs) {
          throw new TokenEndpointError('retry_after_too_long', `the token endpoint asked to wait ${Math.ceil(wait / 1000)} s before asking again`, {
            attempts: attempt - 1,
            retryAfterMs: wait,
          });
        }
        await pause(wait, attempt - 1);
      }
      const sentAt = now();
      let failure: TokenEndpointError | undefined;
      let response: Response | undefined;
      try {
        response = await doFetch(url, { ...requestInit(), signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), deadline]) });
      } catch (err) {
        if (deadline.aborted) throw pastDeadline(attempt, err);
        failure = new TokenEndpointError('network_error', `the token request to ${url} failed: ${(err as Error).message}`, { attempts: attempt, cause: err });
      }
      if (response) {
        let body: Record<string, unknown> | undefined;
        try {
          const parsed: unknown = await response.json();
          if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
        } catch (err) {
          if (deadline.aborted) throw pastDeadline(attempt, err);
          // not JSON: judged by the status below
        }
        if (response.ok) {
          if (!body || typeof body.access_token !== 'string' || body.access_token === '' || String(body.token_type).toLowerCase() !== 'bearer') {
            throw new TokenEndpointError('invalid_response', 'the token endpoint answered 200 without a Bearer access_token', {
              status: response.status,
              attempts: attempt,
            });
          }
          return cache(body, sentAt);
        }
        const error = typeof body?.error === 'string' ? body.error : undefined;
        const description = typeof body?.error_description === 'string' ? body.error_description : undefined;
        if (error === 'invalid_client' || (response.status === 401 && error === undefined)) throw new InvalidClientError(response.status, description);
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now());
        if (retryAfterMs !== undefined) quietUntil = now() + retryAfterMs;
        failure = new TokenEndpointError(
          error ?? 'http_error',
          `the token endpoint answered HTTP ${response.status}${error ? ` ${error}` : ''}${description ? `: ${description}` : ''}`,
          { status: response.status, attempts: attempt, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
        );
        if (!RETRYABLE(response.status)) throw failure;
      }
      if (attempt >= maxAttempts) throw failure!;
      if (retryAfterMs === undefined) await pause(backoff(attempt), attempt);
      // With a Retry-After, the wait happens at the top of the loop (or the provider gives up there).
      retryAfterMs = undefined;
    }
  };

  /** One request at a time: every caller that needs a token while it runs shares its outcome. */
  const refresh = (): Promise<Cached> => {
    if (refused) return Promise.reject(refused);
    inflight ??= requestToken().then(
      (entry) => {
        inflight = undefined;
        cached = entry;
        return entry;
      },
      (err: unknown) => {
        inflight = undefined;
        if (err instanceof InvalidClientError) {
          refused = err;
          cached = undefined;
        } else if (cached) {
          // A failed early renewal: the cached token still serves; try again a little later.
          cached.renewAt = Math.min(cached.usableUntil, now() + Math.max(baseDelayMs, quietUntil - now()));
        }
        throw err;
      },
    );
    return inflight;
  };

  const getAccessToken = async (): Promise<AccessToken> => {
    if (refused) throw refused;
    const current = cached;
    const t = now();
    if (current && t < current.usableUntil) {
      if (t >= current.renewAt && !inflight) refresh().catch(() => {}); // its failure is kept for later callers
      return current.token;
    }
    return (await refresh()).token;
  };

  return {
    getAccessToken,
    async getToken() {
      return (await getAccessToken()).value;
    },
    async renew(rejected) {
      if (refused) throw refused;
      const current = cached;
      if (current && rejected !== undefined && current.token.value !== rejected && now() < current.usableUntil) return current.token.value;
      if (inflight) return (await inflight).token.value;
      if (current && current.token.value === rejected) cached = undefined;
      return (await refresh()).token.value;
    },
    clear() {
      cached = undefined;
      refused = undefined;
    },
  };
}
