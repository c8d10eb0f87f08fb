import type { NextFunction, Request, Response } from 'express';
import { TokenVerificationError } from './errors.js';
import { refusalFor } from './unauthorized.js';
import { checkScopes, type Verifier, type VerifiedToken } from './verifier.js';

declare global {
  namespace Express {
    interface Request {
      /** The verified caller, set by {@link expressBearerAuth}. */
      portcullis?: VerifiedToken;
    }
  }
}

/** Options of {@link expressBearerAuth} and {@link requireScopes}. */
export interface ExpressAuthOptions {
  /** Scopes this route needs; a valid token without them gets 403 `insufficient_scope`. */
  requiredScopes?: readonly string[];
  /** Told why each request was refused (the `reason` and `status` are on the error); for logs and metrics. Must not throw. */
  onRefused?: (error: TokenVerificationError, req: Request) => void;
}

function refuse(res: Response, req: Request, error: TokenVerificationError, options: ExpressAuthOptions): void {
  options.onRefused?.(error, req);
  const answer = refusalFor(error);
  res.status(answer.status).set(answer.headers).send(answer.body);
}

/**
 * Express middleware that lets through only requests with a valid bearer token and puts the
 * caller on `req.portcullis`. It answers as the platform does: 401
 * `{"Status Message":"Unauthorized"}` for a missing, bad, expired or revoked token, 403
 * `insufficient_scope` for a valid token without a required scope, and 503 with `Retry-After`
 * when the verifier cannot reach its issuer. Other errors go to `next(err)`. Express is a peer
 * dependency: this module only uses its types.
 *
 * @example
 * ```ts
 * app.use('/api', expressBearerAuth(verifier, { onRefused: (err) => log.info({ reason: err.reason }, 'refused') }));
 * app.get('/api/reports', requireScopes('reports'), handler);
 * ```
 */
export function expressBearerAuth(verifier: Verifier, options: ExpressAuthOptions = {}) {
  const perCall = options.requiredScopes ? { requiredScopes: options.requiredScopes } : {};
  return function portcullisBearerAuth(req: Request, res: Response, next: NextFunction): void {
    verifier.verifyAuthorization(req.headers.authorization, perCall).then(
      (identity) => {
        req.portcullis = identity;
        next();
      },
      (err: unknown) => {
        if (!(err instanceof TokenVerificationError)) return next(err);
        refuse(res, req, err, options);
      },
    );
  };
}

/**
 * Middleware that needs `scopes` of the caller that {@link expressBearerAuth} already verified
 * (no second verification): 403 `insufficient_scope` without them, 401 when no caller was verified.
 */
export function requireScopes(...scopes: string[]) {
  return function portcullisRequireScopes(req: Request, res: Response, next: NextFunction): void {
    const identity = req.portcullis;
    try {
      if (!identity) throw new TokenVerificationError('missing', 'no verified caller: expressBearerAuth must run first');
      checkScopes(identity, scopes);
    } catch (err) {
      refuse(res, req, err as TokenVerificationError, {});
      return;
    }
    next();
  };
}
