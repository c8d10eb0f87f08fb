import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../domain/errors.js';
import type { TokenDenylist } from '../access/denylist.js';
import type { BearerVerifier } from '../access/verifier.js';
import type { KeyRing } from '../keys/keyring.js';
import { clientAborted } from '../http/errors.js';
import { bodyTooLarge, failureAnswer, TOKEN_BODY_LIMIT, issuedAnswer, type OAuthAnswer, oauthErrorAnswer } from './answers.js';
import type { ClientAuthenticator } from './client-auth.js';
import { parseFormRequest, type TokenEndpointOutcome, type TokenRequest } from './token.js';

/** Writes an answer through Fastify; the outcome is recorded on the request for the metrics. */
function send(request: FastifyRequest, reply: FastifyReply, answer: OAuthAnswer): FastifyReply {
  request.tokenOutcome = answer.outcome;
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

const sendOAuthError = (request: FastifyRequest, reply: FastifyReply, err: OAuthError, basic: boolean) => send(request, reply, oauthErrorAnswer(err, basic));

export interface OAuthRouteOptions {
  issuer: string;
  /** POST /oauth2/token's steps (oauth/token.ts). */
  tokenEndpoint: (request: TokenRequest) => Promise<TokenEndpointOutcome>;
  clients: ClientAuthenticator;
  keys: KeyRing;
  verifier: BearerVerifier;
  denylist: TokenDenylist;
  jwksMaxAgeSeconds: number;
}

const tokenRequest = (request: FastifyRequest): TokenRequest => ({
  contentType: request.headers['content-type'],
  body: request.body as Buffer | undefined,
  authorization: request.headers.authorization,
  ip: request.ip,
});

/** POST /oauth2/token (RFC 6749 §4.4), /oauth2/revoke (RFC 7009), /oauth2/introspect (RFC 7662), JWKS and RFC 8414 metadata. */
export async function oauthRoutes(app: FastifyInstance, opts: OAuthRouteOptions): Promise<void> {
  const { keys, issuer, clients } = opts;

  // Every body reaches the handler as bytes, so the handler decides what a wrong content type means.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: TOKEN_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const basic = request.headers.authorization !== undefined;
    if (err instanceof OAuthError) return sendOAuthError(request, reply, err, basic);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(request, reply, bodyTooLarge(basic));
    if (clientAborted(request)) {
      // Nobody is left to answer; onRequestAbort (ops/routes.ts) counts it.
      request.log.debug({ err: err.message }, 'the client went away while sending its request');
      return reply.code(499).send();
    }
    if (err.statusCode && err.statusCode < 500) {
      return sendOAuthError(request, reply, new OAuthError('invalid_request', 'the request could not be read'), basic);
    }
    const failure = failureAnswer(err, basic);
    request.log[failure.level]({ err }, failure.message);
    return send(request, reply, failure.answer);
  });

  // The usual spelling is answered on the raw listener (token-lane.ts); this route answers the
  // others Fastify's router accepts (a trailing slash, doubled slashes) with the same steps.
  app.post('/oauth2/token', async (request, reply) => {
    const outcome = await opts.tokenEndpoint(tokenRequest(request));
    return send(request, reply, outcome.ok ? issuedAnswer(outcome.issued, request.headers['user-agent']) : oauthErrorAnswer(outcome.error, outcome.basic));
  });

  /**
   * The steps revocation and introspection share with the token endpoint: parse, then client
   * authentication with its limits; then `handle` with the client's id and the parameters.
   */
  const clientEndpoint =
    (what: string, handle: (reply: FastifyReply, clientId: string, params: Map<string, string>) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const basic = request.headers.authorization !== undefined;
      const parsed = parseFormRequest(request.headers['content-type'], request.body as Buffer | undefined, what);
      if (!parsed.ok) return sendOAuthError(request, reply, parsed.error, basic);
      const client = await clients.authenticate(request.headers.authorization, parsed.params, request.ip);
      if (!client.ok) return sendOAuthError(request, reply, client.error, client.basic);
      const token = parsed.params.get('token');
      if (token === undefined || token === '') return sendOAuthError(request, reply, new OAuthError('invalid_request', 'token is required'), basic);
      return handle(reply, client.credential.clientId, parsed.params);
    };

  /** The claims of a token this client may see: a valid access token issued to it, else undefined. */
  async function ownToken(clientId: string, params: Map<string, string>) {
    const outcome = await opts.verifier.verify(params.get('token') ?? '', { anyAudience: true });
    return outcome.ok && outcome.claims.client_id === clientId ? outcome.claims : undefined;
  }

  // RFC 7009. The answer is 200 whatever the token was, so it tells nothing about other clients' tokens.
  app.post(
    '/oauth2/revoke',
    clientEndpoint('revocation requests', async (reply, clientId, params) => {
      const claims = await ownToken(clientId, params);
      if (claims) await opts.denylist.revoke(claims.jti, claims.exp * 1000);
      return reply.header('cache-control', 'no-store').send({});
    }),
  );

  // RFC 7662, for the client's own tokens; any other token is simply not active.
  app.post(
    '/oauth2/introspect',
    clientEndpoint('introspection requests', async (reply, clientId, params) => {
      const claims = await ownToken(clientId, params);
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
