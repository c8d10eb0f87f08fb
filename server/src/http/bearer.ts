import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isStaticTokenShaped, type StaticTokenFailure, type StaticTokenVerifier } from '../access/static-tokens.js';
import type { BearerVerifier, VerifyFailure } from '../access/verifier.js';
import type { AccessClaims } from '../domain/claims.js';
import type { StaticToken } from '../store/static-tokens.js';

/** The one answer to every missing or bad token, as the reference product gives it. */
export const UNAUTHORIZED_BODY = '{"Status Message":"Unauthorized"}';

const INVALID_TOKEN_CHALLENGE = 'Bearer realm="portcullis", error="invalid_token"';

export function sendUnauthorized(reply: FastifyReply): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', INVALID_TOKEN_CHALLENGE)
    .header('cache-control', 'no-store')
    .type('application/json')
    .send(UNAUTHORIZED_BODY);
}

/** A refusal on a raw response (the gateway answers outside Fastify); `extra` adds fields such as CORS. */
function writeRefusal(res: ServerResponse, status: 401 | 403, challenge: string, body: string, extra: Record<string, string> | undefined): void {
  if (extra !== undefined) for (const name in extra) res.setHeader(name, extra[name] as string);
  res.writeHead(status, {
    'www-authenticate': challenge,
    'cache-control': 'no-store',
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** The same 401 on a raw response. */
export function writeUnauthorized(res: ServerResponse, extra?: Record<string, string>): void {
  writeRefusal(res, 401, INVALID_TOKEN_CHALLENGE, UNAUTHORIZED_BODY, extra);
}

const FORBIDDEN_BODY = '{"Status Message":"Forbidden"}';
const insufficientScopeChallenge = (needed: readonly string[]) => `Bearer realm="portcullis", error="insufficient_scope", scope="${needed.join(' ')}"`;

/** RFC 6750 §3.1: a valid token without the scopes the resource needs. */
export function sendInsufficientScope(reply: FastifyReply, needed: readonly string[]): FastifyReply {
  return reply
    .code(403)
    .header('www-authenticate', insufficientScopeChallenge(needed))
    .header('cache-control', 'no-store')
    .type('application/json')
    .send(FORBIDDEN_BODY);
}

/** The same 403 on a raw response. */
export function writeInsufficientScope(res: ServerResponse, needed: readonly string[], extra?: Record<string, string>): void {
  writeRefusal(res, 403, insufficientScopeChallenge(needed), FORBIDDEN_BODY, extra);
}

/** The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined;
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = header.slice(7).trim();
  return token === '' ? undefined : token;
}

/** Who a bearer token says is calling. */
export type Caller = { kind: 'application'; claims: AccessClaims } | { kind: 'static_token'; token: StaticToken };

/**
 * Why a request was refused, the same words in logs and metrics at every checkpoint: a JWT's
 * VerifyFailure, a static token's failure prefixed `static_`, or what the checkpoint itself refused.
 */
export type Refusal =
  | 'missing'
  | 'not_bearer'
  | VerifyFailure
  | `static_${StaticTokenFailure}`
  | 'static_token_not_accepted'
  | 'application_not_linked'
  | 'wrong_resource'
  | 'insufficient_scope';

/** The places a bearer token is checked, a fixed set so they can label metrics. */
export type Checkpoint = 'me' | 'delivery' | 'gateway' | 'decision';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller once the bearer step accepted its token, else null. */
    caller: Caller | null;
    /** Why the bearer step (or the checkpoint after it) refused this request, else null. */
    refusal: Refusal | null;
  }
}

/**
 * What the bearer step reads and writes on a request: a FastifyRequest is one, and so is the
 * gateway's own exchange, which serves proxied requests without Fastify.
 */
export interface BearerSubject {
  readonly headers: IncomingHttpHeaders;
  caller: Caller | null;
  refusal: Refusal | null;
  readonly log: { debug(fields: object, message: string): void };
}

export interface BearerOptions {
  /** Told every refusal (metrics count them); runs on the hot path, so it must be cheap. */
  onRefusal?: (checkpoint: Checkpoint, reason: Refusal) => void;
}

/**
 * The one bearer-authentication step of /me, the delivery API, the gateway and the decision
 * endpoint: it verifies a JWT (or, where the checkpoint accepts them, a static `pct_` token),
 * and records on the request either the caller or the reason it was refused.
 */
export class BearerAuthentication {
  constructor(
    private readonly verifier: BearerVerifier,
    private readonly staticTokens: StaticTokenVerifier,
    private readonly options: BearerOptions = {},
  ) {}

  /** Adds `request.caller` and `request.refusal` (null until the step runs) to every request. */
  static decorate(app: FastifyInstance): void {
    app.decorateRequest('caller', null);
    app.decorateRequest('refusal', null);
  }

  /**
   * The request's caller, or undefined with the reason recorded. `staticTokensOf` names the
   * partner whose static tokens this checkpoint accepts; without it a `pct_` token is refused.
   */
  async authenticate(request: BearerSubject, checkpoint: Checkpoint, staticTokensOf?: number): Promise<Caller | undefined> {
    const header = request.headers.authorization;
    if (header === undefined) return this.refuse(request, checkpoint, 'missing');
    const token = bearerToken(header);
    if (token === undefined) return this.refuse(request, checkpoint, 'not_bearer');
    if (isStaticTokenShaped(token)) {
      if (staticTokensOf === undefined) return this.refuse(request, checkpoint, 'static_token_not_accepted');
      const outcome = await this.staticTokens.verify(token, staticTokensOf);
      if (!outcome.ok) return this.refuse(request, checkpoint, `static_${outcome.reason}`);
      request.caller = { kind: 'static_token', token: outcome.token };
      return request.caller;
    }
    const outcome = await this.verifier.verify(token);
    if (!outcome.ok) return this.refuse(request, checkpoint, outcome.reason);
    request.caller = { kind: 'application', claims: outcome.claims };
    return request.caller;
  }

  /** The claims of a request with a valid JWT, or undefined with the reason recorded. */
  async application(request: BearerSubject, checkpoint: Checkpoint): Promise<AccessClaims | undefined> {
    const caller = await this.authenticate(request, checkpoint);
    return caller?.kind === 'application' ? caller.claims : undefined;
  }

  /** Records a refusal: by this step, or by the checkpoint once it knows the caller (a scope, a link). */
  refuse(request: BearerSubject, checkpoint: Checkpoint, reason: Refusal): undefined {
    request.refusal = reason;
    request.log.debug({ refusal: reason, checkpoint }, 'bearer token refused');
    this.options.onRefusal?.(checkpoint, reason);
    return undefined;
  }

  /** An onRequest hook that lets only requests with a valid JWT through, with `request.caller` set. */
  requireApplication(checkpoint: Checkpoint) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      if ((await this.application(request, checkpoint)) === undefined) return sendUnauthorized(reply);
    };
  }
}

/** Whether a token's space-separated `scope` claim grants every scope of `needed`, by whole names (no list is built: this runs per request). */
export function grantsScopes(scope: string | undefined, needed: readonly string[]): boolean {
  for (const wanted of needed) {
    if (!scope) return false;
    let at = scope.indexOf(wanted);
    let found = false;
    while (at !== -1) {
      const end = at + wanted.length;
      if ((at === 0 || scope.charCodeAt(at - 1) === 32) && (end === scope.length || scope.charCodeAt(end) === 32)) {
        found = true;
        break;
      }
      at = scope.indexOf(wanted, at + 1);
    }
    if (!found) return false;
  }
  return true;
}
