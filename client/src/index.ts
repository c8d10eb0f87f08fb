/**
 * `@portcullis/client`: what API users and API owners install.
 *
 * - {@link createTokenProvider}: get, cache and renew client-credentials tokens.
 * - {@link createAuthorizedFetch}: a `fetch` that sends them and renews once on a 401 (never on a 403).
 * - {@link createVerifier}: check Portcullis tokens in your own service; the Fastify and Express
 *   middleware are in `@portcullis/client/fastify` and `@portcullis/client/express`.
 *
 * @packageDocumentation
 */
export { type AuthorizedFetchOptions, createAuthorizedFetch } from './authorized-fetch.js';
export { type AuthorizationServerMetadata, discover, type FetchLike, metadataUrl } from './discovery.js';
export { DiscoveryError, InvalidClientError, PortcullisError, TokenEndpointError, TokenVerificationError, type VerificationFailure } from './errors.js';
export { type AccessToken, createTokenProvider, parseRetryAfter, type TokenProvider, type TokenProviderOptions } from './token-provider.js';
export type { RevocationOptions } from './revocations.js';
export {
  FORBIDDEN_BODY,
  type Refusal,
  refusalFor,
  UNAUTHORIZED_BODY,
  UNAUTHORIZED_CHALLENGE,
  UNAVAILABLE_BODY,
} from './unauthorized.js';
export {
  type AccessTokenClaims,
  bearerToken,
  checkScopes,
  createVerifier,
  type VerifiedToken,
  type Verifier,
  type VerifierOptions,
  type VerifyOptions,
} from './verifier.js';
