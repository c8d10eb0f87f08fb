import { OAuthError } from '../domain/errors.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { ApiRegistry } from '../apis/service.js';
import { type ClientAuthenticator, RateLimitedError } from './client-auth.js';
import { mediaType, parseForm } from '../http/form.js';
import { GRANTS, type Grant, grantParameters } from './grants/index.js';
import { decideTarget, type Target } from './resource.js';
import type { IssuedToken, TokenIssuer } from './tokens.js';

const FORM = 'application/x-www-form-urlencoded';

/** What the HTTP layer hands the endpoint: nothing of Fastify, so each step can be called on its own. */
export interface TokenRequest {
  contentType: string | undefined;
  body: Buffer | undefined;
  authorization: string | undefined;
  ip: string;
}

/** Every step's answer: its result, or the RFC 6749 error that ends the request. */
export type Step<T> = ({ ok: true } & T) | { ok: false; error: OAuthError };

export type TokenEndpointOutcome = { ok: true; issued: IssuedToken } | { ok: false; error: OAuthError; basic: boolean };

/** Parse: the content type must be a form, and the body is parsed strictly (UTF-8, no repeated parameter). */
export function parseFormRequest(contentType: string | undefined, body: Buffer | undefined, what: string): Step<{ params: Map<string, string> }> {
  if (mediaType(contentType) !== FORM) return { ok: false, error: new OAuthError('invalid_request', `Content-Type: ${FORM} is mandatory for ${what}`) };
  try {
    return { ok: true, params: parseForm(body ?? Buffer.alloc(0)) };
  } catch (err) {
    if (err instanceof OAuthError) return { ok: false, error: err };
    throw err;
  }
}

/** Grant type: the registered grant named by grant_type. */
export function selectGrant(params: Map<string, string>): Step<{ grant: Grant }> {
  const grantType = params.get('grant_type');
  if (grantType === undefined || grantType === '') {
    return { ok: false, error: new OAuthError('invalid_request', 'grant_type is required; use grant_type=client_credentials') };
  }
  const grant = GRANTS.get(grantType);
  if (!grant) return { ok: false, error: new OAuthError('unsupported_grant_type', `grant_type must be one of: ${[...GRANTS.keys()].join(', ')}`) };
  return { ok: true, grant };
}

/** Counts a request against a per-minute quota; over it, a 429 with Retry-After. */
export function withinQuota(limiter: RateLimiter, key: string, perMinute: number, what: string): Step<object> {
  if (perMinute <= 0) return { ok: true };
  const outcome = limiter.take(key, perMinute);
  if (outcome.allowed) return { ok: true };
  return { ok: false, error: new RateLimitedError(outcome, limiter.retryAfter(outcome), what) };
}

/** A request without `resource`: decideTarget's own answer for it, made once. */
const NO_RESOURCE: Step<{ target: Target }> = Object.freeze({ ok: true, target: Object.freeze(decideTarget(undefined, [])) });

/**
 * Target: RFC 8707's `resource`, decided against the API grants of the client's application.
 * Without `resource` (most requests) the answer needs no lookup and is given at once, not as a promise.
 */
export function selectTarget(
  apis: Pick<ApiRegistry, 'grantsOf'> | undefined,
  applicationId: number,
  params: Map<string, string>,
): Step<{ target: Target }> | Promise<Step<{ target: Target }>> {
  const resource = params.get('resource');
  return resource === undefined ? NO_RESOURCE : targetOf(apis, applicationId, resource);
}

async function targetOf(apis: Pick<ApiRegistry, 'grantsOf'> | undefined, applicationId: number, resource: string): Promise<Step<{ target: Target }>> {
  try {
    return { ok: true, target: decideTarget(resource, apis ? await apis.grantsOf(applicationId) : []) };
  } catch (err) {
    if (err instanceof OAuthError) return { ok: false, error: err };
    throw err;
  }
}

export interface TokenEndpointOptions {
  clients: ClientAuthenticator;
  tokens: TokenIssuer;
  limiter: RateLimiter;
  limits: { perClient: number; perIp: number };
  /** APIs with their own audience; without it, `resource` names no API and is refused. */
  apis?: Pick<ApiRegistry, 'grantsOf'>;
}

/**
 * POST /oauth2/token as named steps, as node-oidc-provider lays out an endpoint: parse → grant
 * type → address quota → client authentication → client quota → target (RFC 8707) → grant →
 * issue. Each step answers a value; the first refusal is the request's outcome.
 */
export function tokenEndpoint(opts: TokenEndpointOptions): (request: TokenRequest) => Promise<TokenEndpointOutcome> {
  const { clients, tokens, limiter, limits, apis } = opts;
  return async (request) => {
    const basic = request.authorization !== undefined;
    const parsed = parseFormRequest(request.contentType, request.body, 'token requests');
    if (!parsed.ok) return { ...parsed, basic };
    const selected = selectGrant(parsed.params);
    if (!selected.ok) return { ...selected, basic };
    const byAddress = withinQuota(limiter, `token:ip:${request.ip}`, limits.perIp, 'too many token requests from this address');
    if (!byAddress.ok) return { ...byAddress, basic };
    const client = await clients.authenticate(request.authorization, parsed.params, request.ip);
    if (!client.ok) return client;
    const byClient = withinQuota(limiter, `token:client:${client.credential.clientId}`, limits.perClient, 'too many token requests for this client');
    if (!byClient.ok) return { ...byClient, basic };
    let targeted = selectTarget(apis, client.application.id, parsed.params);
    if (targeted instanceof Promise) targeted = await targeted;
    if (!targeted.ok) return { ...targeted, basic };
    const { target } = targeted;
    const allowedScopes = target.scopes ?? client.application.scopes;
    const granted = selected.grant.handle({ ...client, allowedScopes }, grantParameters(selected.grant, parsed.params));
    if (!granted.ok) return { ...granted, basic };
    return { ok: true, issued: await tokens.issue(client.credential, client.application, granted.scope, target.audience) };
  };
}
