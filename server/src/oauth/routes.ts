import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { OAuthError } from '../domain/errors.js';
import type { KeyRing } from '../keys/keyring.js';
import { isStoreUnavailable } from '../store/db.js';
import { mediaType, parseBasic, parseForm } from './form.js';
import type { TokenIssuer } from './tokens.js';

export const TOKEN_BODY_LIMIT = 16 * 1024;
const FORM = 'application/x-www-form-urlencoded';

// Criteo's generated SDKs read `refresh_token` from every token response and fail without the
// key; RFC 6749 §4.4.3 says a client-credentials response should carry none, and strict
// clients reject a null one. So the null key goes only to those SDKs, known by their User-Agent.
const NEEDS_REFRESH_TOKEN_KEY = /^OpenAPI-Generator\//;

function sendOAuthError(reply: FastifyReply, err: OAuthError, headerUsed: boolean): FastifyReply {
  reply.code(err.status).header('cache-control', 'no-store').header('pragma', 'no-cache');
  // RFC 6749 §5.2: a client that tried the Authorization header is told which scheme to use.
  if (err.status === 401 && headerUsed) reply.header('www-authenticate', 'Basic realm="portcullis", charset="UTF-8"');
  return reply.send({ error: err.code, error_description: err.description });
}

export interface OAuthRouteOptions {
  issuer: string;
  issuerTokens: TokenIssuer;
  keys: KeyRing;
  jwksMaxAgeSeconds: number;
}

/** POST /oauth2/token (RFC 6749 §4.4), JWKS and RFC 8414 metadata. */
export async function oauthRoutes(app: FastifyInstance, opts: OAuthRouteOptions): Promise<void> {
  const { issuerTokens: tokens, keys, issuer } = opts;

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

  app.post('/oauth2/token', async (request, reply) => {
    const authorization = request.headers.authorization;
    const basicUsed = authorization !== undefined && /^basic(\s|$)/i.test(authorization);
    try {
      if (mediaType(request.headers['content-type']) !== FORM) {
        throw new OAuthError('invalid_request', `Content-Type: ${FORM} is mandatory for token requests`);
      }
      const params = parseForm((request.body as Buffer | undefined) ?? Buffer.alloc(0));
      const grantType = params.get('grant_type');
      if (grantType === undefined || grantType === '') throw new OAuthError('invalid_request', 'grant_type is required; use grant_type=client_credentials');
      if (grantType !== 'client_credentials') {
        throw new OAuthError('unsupported_grant_type', 'only grant_type=client_credentials is supported');
      }

      let clientId = params.get('client_id');
      let clientSecret = params.get('client_secret');
      if (authorization !== undefined) {
        if (!basicUsed) throw new OAuthError('invalid_client', 'the Authorization header of a token request must use the Basic scheme', 401);
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

      const auth = await tokens.authenticate(clientId, clientSecret);
      if (!auth.ok) throw new OAuthError('invalid_client', 'client authentication failed');
      const scope = tokens.grantedScope(auth.application, params.get('scope'));
      const issued = await tokens.issue(auth.credential, auth.application, scope);

      const body: Record<string, unknown> = { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn };
      if (issued.scope) body.scope = issued.scope;
      if (NEEDS_REFRESH_TOKEN_KEY.test(request.headers['user-agent'] ?? '')) body.refresh_token = null;
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
    } catch (err) {
      // Any client that tried the Authorization header is told to use Basic (RFC 6749 §5.2).
      if (err instanceof OAuthError) return sendOAuthError(reply, err, authorization !== undefined);
      throw err;
    }
  });

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    return reply.type('application/jwk-set+json').header('cache-control', `public, max-age=${opts.jwksMaxAgeSeconds}`).send(keys.jwks());
  });

  const metadata = JSON.stringify({
    issuer,
    token_endpoint: `${issuer}/oauth2/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    response_types_supported: [],
  });
  app.get('/.well-known/oauth-authorization-server', async (_request, reply) => {
    return reply.type('application/json').header('cache-control', 'public, max-age=3600').send(metadata);
  });
}
