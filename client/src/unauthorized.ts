/** The body of every refusal, the same as the Portcullis platform's own. */
export const UNAUTHORIZED_BODY = '{"Status Message":"Unauthorized"}';

/** The challenge sent with it (RFC 6750 §3). */
export const UNAUTHORIZED_CHALLENGE = 'Bearer realm="portcullis", error="invalid_token"';
