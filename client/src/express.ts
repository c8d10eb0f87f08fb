import type { NextFunction, Request, Response } from 'express';
import { TokenVerificationError } from './errors.js';
import { UNAUTHORIZED_BODY, UNAUTHORIZED_CHALLENGE } from './unauthorized.js';
import type { Verifier, VerifiedToken } from './verifier.js';

declare global {
  namespace Express {
    interface Request {
      /** The verified caller, set by {@link expressBearerAuth}. */
      portcullis?: VerifiedToken;
    }
  }
}

/**
 * Express middleware that lets through only requests with a valid bearer token and puts the
 * caller on `req.portcullis`. Any refusal is `401 {"Status Message":"Unauthorized"}`, as the
 * platform answers; other errors go to `next(err)`. Express is a peer dependency: this module
 * only uses its types.
 *
 * @example
 * ```ts
 * app.use('/api', expressBearerAuth(verifier));
 * app.get('/api/reports', expressBearerAuth(verifier, { requiredScopes: ['reports'] }), handler);
 * ```
 */
export function expressBearerAuth(verifier: Verifier, options: { requiredScopes?: readonly string[] } = {}) {
  return function portcullisBearerAuth(req: Request, res: Response, next: NextFunction): void {
    verifier.verifyAuthorization(req.headers.authorization, options).then(
      (identity) => {
        req.portcullis = identity;
        next();
      },
      (err: unknown) => {
        if (!(err instanceof TokenVerificationError)) return next(err);
        res
          .status(401)
          .set({ 'www-authenticate': UNAUTHORIZED_CHALLENGE, 'cache-control': 'no-store', 'content-type': 'application/json' })
          .send(UNAUTHORIZED_BODY);
      },
    );
  };
}
