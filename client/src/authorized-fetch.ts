import type { FetchLike } from './discovery.js';
import type { TokenProvider } from './token-provider.js';

/** Options of {@link createAuthorizedFetch}. */
export interface AuthorizedFetchOptions {
  /** The fetch that calls the API; the global `fetch` by default. */
  fetch?: FetchLike;
}

/** Whether a body can be sent a second time: anything but a stream. */
function replayable(input: string | URL | Request, init: RequestInit | undefined): boolean {
  if (init?.body !== undefined && init.body !== null) return !(init.body instanceof ReadableStream);
  // A Request's own body is a stream that the first attempt consumes.
  if (input instanceof Request && init?.body === undefined) return input.body === null;
  return true;
}

/**
 * A `fetch` that sends `Authorization: Bearer <token>` from the provider. When the API answers
 * 401, it renews the token once and sends the request once more, provided the body can be sent
 * again (no body, a string, bytes, a Blob, FormData or URLSearchParams; not a stream, nor a
 * `Request` that carries its own body). A second 401 is returned to the caller as it is.
 *
 * @example
 * ```ts
 * const api = createAuthorizedFetch(createTokenProvider({ issuer, clientId, clientSecret }));
 * const response = await api('https://api.example.com/2026-01/retail-media/me');
 * ```
 */
export function createAuthorizedFetch(provider: Pick<TokenProvider, 'getToken' | 'renew'>, options: AuthorizedFetchOptions = {}): FetchLike {
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const send = (input: string | URL | Request, init: RequestInit | undefined, token: string) => {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set('authorization', `Bearer ${token}`);
    return doFetch(input, { ...init, headers });
  };

  return async (input, init) => {
    const token = await provider.getToken();
    const response = await send(input, init, token);
    if (response.status !== 401 || !replayable(input, init)) return response;
    await response.body?.cancel(); // frees the connection
    const renewed = await provider.renew(token);
    return send(input, init, renewed);
  };
}
