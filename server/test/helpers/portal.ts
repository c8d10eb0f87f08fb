import { ADMIN_TOKEN } from './server.js';

/** A browser-like client of the portal API: keeps cookies, reads the CSRF token and sends it. */
export class PortalClient {
  private readonly cookies = new Map<string, string>();
  csrf = '';

  /** `headers` go with every call: a browser's user-agent, or X-Forwarded-For to act from an address behind a trusted proxy. */
  constructor(
    readonly baseUrl: string,
    readonly headers: Record<string, string> = {},
  ) {}

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  async call(method: string, path: string, body?: unknown, options: { csrf?: string | null } = {}) {
    const headers: Record<string, string> = { ...this.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/json';
    const csrf = options.csrf === undefined ? this.csrf : options.csrf;
    if (csrf) headers['x-csrf-token'] = csrf;
    const response = await fetch(`${this.baseUrl}/portal/api${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await response.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    if (parsed && typeof parsed === 'object' && typeof parsed.csrf_token === 'string') this.csrf = parsed.csrf_token;
    return { status: response.status, body: parsed, headers: response.headers };
  }

  /** Loads the page's session (as the web UI does first), which hands out the CSRF token. */
  session() {
    return this.call('GET', '/session');
  }

  /** Signs up; unless `verified` is false, an operator then verifies the address (as `portcullis admin users verify`). */
  async signUp(email: string, password = 'a sturdy passphrase 42', { verified = true } = {}) {
    await this.session();
    const res = await this.call('POST', '/signup', { email, password });
    if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${JSON.stringify(res.body)}`);
    if (verified) await this.operator('POST', '/portal-users/verify', { email });
    return res.body.user as { id: number; email: string; email_verified: boolean };
  }

  /** Calls the operator API of the same server with the test operator token. */
  async operator(method: string, path: string, body?: unknown) {
    const response = await fetch(`${this.baseUrl}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const parsed: any = await response.json().catch(() => undefined);
    if (!response.ok) throw new Error(`operator ${method} ${path} failed: ${response.status} ${JSON.stringify(parsed)}`);
    return parsed;
  }

  async signIn(email: string, password = 'a sturdy passphrase 42') {
    await this.session();
    return this.call('POST', '/signin', { email, password });
  }

  async createOrg(name = 'Acme') {
    const res = await this.call('POST', '/orgs', { name });
    if (res.status !== 201) throw new Error(`organization failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: number; name: string };
  }

  async createApp(orgId: number, name = 'Shop') {
    const res = await this.call('POST', `/orgs/${orgId}/apps`, { name });
    if (res.status !== 201) throw new Error(`app failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: number; name: string; scopes: string[] };
  }

  async createKey(orgId: number, appId: number, name = 'Production Credentials') {
    const res = await this.call('POST', `/orgs/${orgId}/apps/${appId}/credentials`, { name });
    if (res.status !== 201) throw new Error(`key failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { client_id: string; client_secret: string; name: string };
  }
}
