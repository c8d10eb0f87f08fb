/**
 * `@portcullis/client`: what API users and API owners install.
 *
 * - {@link createTokenProvider}: get, cache and renew client-credentials tokens.
 * - {@link createAuthorizedFetch}: a `fetch` that sends them and renews once on a 401.
 * - {@link createVerifier}: check Portcullis tokens in your own service; the Fastify and Express
 *   middleware are in `@portcullis/client/fastify` and `@portcullis/client/express`.
 *
 * @packageDocumentation
 */
export { type AuthorizedFetchOptions, createAuthorizedFetch } from './authorized-fetch.js';
export { type AuthorizationServerMetadata, discover, type FetchLike, metadataUrl } from './discovery.js';
export { DiscoveryError, InvalidClientError, PortcullisError, TokenEndpointError, TokenVerificationError, type VerificationFailure } from './errors.js';
export { type AccessToken, createTokenProvider, parseRetryAfter, type TokenProvider, type TokenProviderOptions } from './token-provider.js';
export { UNAUTHORIZED_BODY, UNAUTHORIZED_CHALLENGE } from './unauthorized.js';
export { type AccessTokenClaims, bearerToken, createVerifier, type VerifiedToken, type Verifier, type VerifierOptions } from './verifier.js';
