/** The claims of every access token (RFC 9068 plus the application's and organization's ids). */
export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope?: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  application_id: number;
  organization_id: number;
}
