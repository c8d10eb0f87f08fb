/** The portal API as the pages use it: JSON, the session cookie, the CSRF token, errors as sentences. */

export type Role = 'owner' | 'admin' | 'developer';
export interface User {
  id: number;
  email: string;
  email_verified: boolean;
  operator: boolean;
  second_factor: boolean;
}
export interface Session {
  user: User | null;
  csrf_token: string;
  deactivation_grace_seconds: number;
  /** Whether the server can send mail; without it the pages say that no mail was sent. */
  mail_delivers: boolean;
  /** The token endpoint, for the quickstart. */
  token_url: string;
}
export interface Org {
  id: number;
  name: string;
  created_at: string;
  role: Role;
  second_factor_required?: boolean;
}
export interface App {
  id: number;
  organization_id: number;
  name: string;
  description: string;
  created_at: string;
}
export interface Key {
  client_id: string;
  name: string;
  status: 'active' | 'deactivating';
  created_at: string;
  last_used_at: string | null;
  deactivates_at?: string;
}
export interface NewKey extends Key {
  client_secret: string;
}
export interface Member {
  user_id: number;
  email: string;
  role: Role;
  joined_at: string;
}
export interface Invitation {
  id: number;
  email: string;
  role: Role;
  created_at: string;
  expires_at: string;
  link?: string;
  mail?: 'sent' | 'not-sent';
}
export interface AuditEvent {
  id: number;
  occurred_at: string;
  actor: string;
  ip: string | null;
  action: string;
  target_type: string;
  target_id: string;
  target_name?: string | null;
  details: Record<string, unknown>;
}

/** An API error, with the server's explanation as a sentence for the page. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const sentence = (text: string) => {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
};

let csrfToken = '';
let onSignedOut: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(`/portal/api${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiProblem(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (response.status === 204) return undefined as T;
  let data: any;
  try {
    data = await response.json();
  } catch {
    data = undefined;
  }
  if (response.ok) {
    if (data && typeof data.csrf_token === 'string') csrfToken = data.csrf_token;
    return data as T;
  }
  const error = data?.errors?.[0];
  const code: string = typeof error?.code === 'string' ? error.code : 'unknown';
  // The session ended or changed elsewhere: reload it (and a fresh CSRF token) so the next try works.
  if (code === 'not-signed-in' || code === 'csrf-token-invalid') onSignedOut();
  const message =
    typeof error?.detail === 'string'
      ? sentence(error.detail)
      : response.status >= 500
        ? 'Something went wrong on the server. Please try again in a moment.'
        : `The request failed (HTTP ${response.status}).`;
  throw new ApiProblem(response.status, code, message);
}

export const messageOf = (err: unknown): string =>
  err instanceof ApiProblem ? err.message : 'Something unexpected went wrong. Please reload the page and try again.';

/** "1 key", "2 keys": a count with its noun in the right number. */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export const formatDate = (iso: string | null | undefined): string =>
  iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : 'Never';
