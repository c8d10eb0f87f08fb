import { DiscoveryError } from './errors.js';

/** The fields of RFC 8414 authorization server metadata this package uses. */
export interface AuthorizationServerMetadata {
  issuer: string;
  token_endpoint: string;
  jwks_uri?: string;
  [field: string]: unknown;
}

/** The function used for HTTP requests: the global `fetch` or one with the same signature. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

const trimSlash = (value: string) => value.replace(/\/+$/, '');

/**
 * Where an issuer's metadata lives (RFC 8414 §3): the well-known segment goes between the host
 * and the issuer's path, so `https://a.example/tenant` → `https://a.example/.well-known/oauth-authorization-server/tenant`.
 */
export function metadataUrl(issuer: string | URL): string {
  const url = new URL(issuer);
  const path = trimSlash(url.pathname);
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

/**
 * Reads an issuer's RFC 8414 metadata and checks that it names that issuer (§3.3), so a
 * misconfigured or hostile server cannot hand out another issuer's endpoints.
 */
export async function discover(issuer: string | URL, options: { fetch?: FetchLike; timeoutMs?: number } = {}): Promise<AuthorizationServerMetadata> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const url = metadataUrl(issuer);
  let response: Response;
  try {
    response = await doFetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
  } catch (err) {
    throw new DiscoveryError(`could not fetch ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new DiscoveryError(`${url} answered HTTP ${response.status}`);
  }
  let metadata: Partial<AuthorizationServerMetadata>;
  try {
    metadata = (await response.json()) as Partial<AuthorizationServerMetadata>;
  } catch (err) {
    throw new DiscoveryError(`${url} did not answer JSON`, { cause: err });
  }
  if (typeof metadata !== 'object' || metadata === null || typeof metadata.issuer !== 'string') {
    throw new DiscoveryError(`${url} has no issuer`);
  }
  if (trimSlash(metadata.issuer) !== trimSlash(String(issuer))) {
    throw new DiscoveryError(`${url} names the issuer ${JSON.stringify(metadata.issuer)}, not ${JSON.stringify(String(issuer))}`);
  }
  if (typeof metadata.token_endpoint !== 'string') throw new DiscoveryError(`${url} has no token_endpoint`);
  if (metadata.jwks_uri !== undefined && typeof metadata.jwks_uri !== 'string') throw new DiscoveryError(`${url} has a jwks_uri that is not a string`);
  return metadata as AuthorizationServerMetadata;
}
