import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../domain/errors.js';
import type { TokenDenylist } from '../access/denylist.js';
import type { BearerVerifier } from '../access/verifier.js';
import type { ApiRegistry } from '../apis/service.js';
import type { Config } from '../config.js';
import type { KeyRing } from '../keys/keyring.js';
import type { RateLimiter, RateLimitOutcome } from '../ratelimit/limiter.js';
import { isStoreUnavailable } from '../store/db.js';
import { mediaType, parseBasic, parseForm } from './form.js';
import { decideTarget } from './resource.js';
import type { TokenIssuer } from './tokens.js';

export const TOKEN_BODY_LIMIT = 16 * 1024;
const FORM = 'application/x-www-form-urlencoded';

// Criteo's generated SDKs read `refresh_token` from every token response and fail without the
// key; RFC 6749 §4.4.3 says a client-credentials response should carry none, and strict
// clients reject a null one. So the null key goes only to those SDKs, known by their User-Agent.
const NEEDS_REFRESH_TOKEN_KEY = /^OpenAPI-Generator\//;

/** Too many requests: RFC 6749's error shape with the status and headers of RFC 6585. */
class RateLimitedError extends OAuthError {
  constructor(
    readonly outcome: RateLimitOutcome,
    readonly retryAfter: number,
    what: string,
  ) {
    super('temporarily_unavailable', `${what}; retry after ${retryAfter} seconds`, 429);
  }
}

function sendOAuthError(reply: FastifyReply, err: OAuthError, headerUsed: boolean): FastifyReply {
  if (err instanceof RateLimitedError) {
    reply
      .header('retry-after', err.retryAfter)
      .header('x-ratelimit-limit', err.outcome.limit)
      .header('x-ratelimit-remaining', 0)
      .header('x-ratelimit-reset', Math.ceil(err.outcome.resetAt / 1000));
  }
  reply.code(err.status).header('cache-control', 'no-store').header('pragma', 'no-cache');
  // RFC 6749 §5.2: a client that tried the Authorization header is told which scheme to use.
  if (err.status === 401 && headerUsed) reply.header('www-authenticate', 'Basic realm="portcullis", charset="UTF-8"');
  return reply.send({ error: err.code, error_description: err.description });
}

export interface OAuthRouteOptions {
  issuer: string;
  issuerTokens: TokenIssuer;
  keys: KeyRing;
  verifier: BearerVerifier;
  denylist: TokenDenylist;
  limiter: RateLimiter;
  limits: Config['tokenLimits'];
  jwksMaxAgeSeconds: number;
  /** The APIs applications are granted, for RFC 8707 `resource`. */
  apis?: Pick<ApiRegistry, 'grantsOf'>;
}

/** POST /oauth2/token (RFC 6749 §4.4), /oauth2/revoke (RFC 7009), /oauth2/introspect (RFC 7662), JWKS and RFC 8414 metadata. */
export async function oauthRoutes(app: FastifyInstance, opts: OAuthRouteOptions): Promise<void> {
  const { issuerTokens: tokens, keys, issuer, limiter, limits } = opts;

  // Every body reaches the handler as bytes, so the handler decides what a wrong content type means.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: TOKEN_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof OAuthError) return sendOAuthError(reply, err, false);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendOAuthError(reply, new OAuthError('invalid_request', `the request body is larger than ${TOKEN_BODY_LIMIT} bytes`, 413), false);
    }
    if (err.statusCode && err.statusCode < 500) {
      return sendOAuthError(reply, new OAuthError('invalid_request', 'the request could not be read'), false);
    }
    if (isStoreUnavailable(err)) {
      request.log.warn({ err }, 'token endpoint: database unreachable');
      reply.header('retry-after', '5');
      return sendOAuthError(reply, new OAuthError('temporarily_unavailable', 'the credential store is unreachable; try again in a few seconds', 503), false);
    }
    request.log.error({ err }, 'token endpoint failed');
    return sendOAuthError(reply, new OAuthError('server_error', 'the server could not issue a token; try again'), false);
  });

  /**
   * A form-encoded OAuth endpoint: the content type is checked and the body parsed strictly
   * before `handle` runs, and every OAuthError it throws becomes an RFC 6749 §5.2 answer.
   */
  const formEndpoint =
    (what: string, handle: (request: FastifyRequest, reply: FastifyReply, params: Map<string, string>) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        if (mediaType(request.headers['content-type']) !== FORM) {
          throw new OAuthError('invalid_request', `Content-Type: ${FORM} is mandatory for ${what}`);
        }
        return await handle(request, reply, parseForm((request.body as Buffer | undefined) ?? Buffer.alloc(0)));
      } catch (err) {
        // Any client that tried the Authorization header is told to use Basic (RFC 6749 §5.2).
        if (err instanceof OAuthError) return sendOAuthError(reply, err, request.headers.authorization !== undefined);
        throw err;
      }
    };

  /** client_secret_basic or client_secret_post (one of them, RFC 6749 §2.3.1), checked. */
  async function authenticatedClient(request: FastifyRequest, params: Map<string, string>) {
    const authorization = request.headers.authorization;
    let clientId = params.get('client_id');
    let clientSecret = params.get('client_secret');
    if (authorization !== undefined) {
      if (!/^basic(\s|$)/i.test(authorization)) {
        throw new OAuthError('invalid_client', 'the Authorization header of this request must use the Basic scheme', 401);
      }
      if (clientSecret !== undefined) {
        throw new OAuthError('invalid_request', 'send the client secret either in the Authorization header or in the body, not both');
      }
      const basic = parseBasic(authorization);
      if (clientId !== undefined && clientId !== basic.clientId) {
        throw new OAuthError('invalid_request', 'client_id in the body differs from the one in the Authorization header');
      }
      clientId = basic.clientId;
      clientSecret = basic.clientSecret;
    }
    if (!clientId || !clientSecret) {
      throw new OAuthError('invalid_client', 'client authentication is required: send client_id and client_secret');
    }
    // Brute force is slowed per source address and per client_id: past the limit of failures
    // in a minute, further attempts are refused before the secret is even checked.
    const ip = request.ip;
    const [byIp, byClient] = await Promise.all([
      limits.failuresPerIp > 0 ? limiter.exhausted(`auth-failures:ip:${ip}`, limits.failuresPerIp) : undefined,
      limits.failuresPerClient > 0 ? limiter.exhausted(`auth-failures:client:${clientId}`, limits.failuresPerClient) : undefined,
    ]);
    const blocked = byIp ?? byClient;
    if (blocked) throw tooMany(blocked, 'too many failed client authentications');
    const auth = await tokens.authenticate(clientId, clientSecret);
    if (!auth.ok) {
      await Promise.all([
        limits.failuresPerIp > 0 && limiter.take(`auth-failures:ip:${ip}`, limits.failuresPerIp),
        // Only ids that could exist get a counter of their own, so made-up ids cannot fill the store.
        limits.failuresPerClient > 0 && auth.reason !== 'unknown_client' && limiter.take(`auth-failures:client:${clientId}`, limits.failuresPerClient),
      ]);
      throw new OAuthError('invalid_client', 'client authentication failed');
    }
    return auth;
  }

  /** A 429 in the RFC 6749 error shape, with Retry-After and the x-ratelimit headers. */
  function tooMany(outcome: RateLimitOutcome, what: string): OAuthError {
    return new RateLimitedError(outcome, limiter.retryAfter(outcome), what);
  }

  /** Counts a request against a per-minute limit; over it, a 429. */
  async function countAgainst(key: string, perMinute: number, what: string): Promise<void> {
    if (perMinute <= 0) return;
    const outcome = await limiter.take(key, perMinute);
    if (!outcome.allowed) throw tooMany(outcome, what);
  }

  app.post(
    '/oauth2/token',
    formEndpoint('token requests', async (request, reply, params) => {
      const grantType = params.get('grant_type');
      if (grantType === undefined || grantType === '') throw new OAuthError('invalid_request', 'grant_type is required; use grant_type=client_credentials');
      if (grantType !== 'client_credentials') {
        throw new OAuthError('unsupported_grant_type', 'only grant_type=client_credentials is supported');
      }
      await countAgainst(`token:ip:${request.ip}`, limits.perIp, 'too many token requests from this address');
      const auth = await authenticatedClient(request, params);
      await countAgainst(`token:client:${auth.credential.clientId}`, limits.perClient, 'too many token requests for this client');
      const resource = params.get('resource');
      const target = decideTarget(resource, resource !== undefined && opts.apis ? await opts.apis.grantsOf(auth.application.id) : []);
      const scope = tokens.grantedScope(auth.application, params.get('scope'), target.scopes);
      const issued = await tokens.issue(auth.credential, auth.application, scope, target.audience);

      const body: Record<string, unknown> = { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn };
      if (issued.scope) body.scope = issued.scope;
      if (NEEDS_REFRESH_TOKEN_KEY.test(request.headers['user-agent'] ?? '')) body.refresh_token = null;
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
    }),
  );

  /** The claims of a token this client may see: a valid access token issued to it, else undefined. */
  async function ownToken(clientId: string, params: Map<string, string>) {
    const token = params.get('token');
    if (token === undefined || token === '') throw new OAuthError('invalid_request', 'token is required');
    const outcome = await opts.verifier.verify(token, { anyAudience: true });
    return outcome.ok && outcome.claims.client_id === clientId ? outcome.claims : undefined;
  }

  // RFC 7009. The answer is 200 whatever the token was, so it tells nothing about other clients' tokens.
  app.post(
    '/oauth2/revoke',
    formEndpoint('revocation requests', async (request, reply, params) => {
      const auth = await authenticatedClient(request, params);
      const claims = await ownToken(auth.credential.clientId, params);
      if (claims) await opts.denylist.revoke(claims.jti, claims.exp * 1000);
      return reply.header('cache-control', 'no-store').send({});
    }),
  );

  // RFC 7662, for the client's own tokens; any other token is simply not active.
  app.post(
    '/oauth2/introspect',
    formEndpoint('introspection requests', async (request, reply, params) => {
      const auth = await authenticatedClient(request, params);
      const claims = await ownToken(auth.credential.clientId, params);
      return reply.header('cache-control', 'no-store').send(claims ? { active: true, token_type: 'Bearer', ...claims } : { active: false });
    }),
  );

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    return reply.type('application/jwk-set+json').header('cache-control', `public, max-age=${opts.jwksMaxAgeSeconds}`).send(keys.jwks());
  });

  const metadata = JSON.stringify({
    issuer,
    token_endpoint: `${issuer}/oauth2/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    revocation_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    introspection_endpoint: `${issuer}/oauth2/introspect`,
    introspection_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    revocations_uri: `${issuer}/oauth2/revocations`, // Portcullis: the revocation feed resource servers poll
    response_types_supported: [],
  });
  app.get('/.well-known/oauth-authorization-server', async (_request, reply) => {
    return reply.type('application/json').header('cache-control', 'public, max-age=3600').send(metadata);
  });
}
