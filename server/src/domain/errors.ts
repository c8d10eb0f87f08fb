/**
 * Errors as values with their HTTP status and a safe message, so no handler builds an error
 * body by hand. OAuth errors (RFC 6749 §5.2) are rendered by the token endpoint, API errors in
 * the reference product's `{"errors":[…]}` shape by the operator API.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'server_error'
  | 'temporarily_unavailable';

export class OAuthError extends Error {
  override name = 'OAuthError';
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly status = code === 'invalid_client' ? 401 : code === 'server_error' ? 500 : 400,
  ) {
    super(description);
  }
}

/** The `type` values the reference product's clients accept (their CommonProblem enum). */
export type ApiErrorType = 'validation' | 'authentication' | 'authorization' | 'availability' | 'quota' | 'access-control' | 'unknown';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string,
    readonly title: string,
    readonly detail: string = title,
    /** Seconds, sent as Retry-After (a 429 or a 503 the caller should retry). */
    readonly retryAfter?: number,
  ) {
    super(detail);
  }

  static tooMany(code: string, detail: string, retryAfter: number): ApiError {
    return new ApiError(429, 'quota', code, 'Too many attempts', detail, retryAfter);
  }

  static validation(code: string, detail: string): ApiError {
    return new ApiError(400, 'validation', code, 'The request is not valid', detail);
  }
  static notFound(what: string): ApiError {
    return new ApiError(404, 'validation', 'not-found', 'Not found', `${what} was not found`);
  }
  static conflict(code: string, detail: string): ApiError {
    return new ApiError(409, 'validation', code, 'Conflict', detail);
  }
}
