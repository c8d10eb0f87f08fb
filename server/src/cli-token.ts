import { parseArgs } from 'node:util';

export const TOKEN_USAGE = `Usage: portcullis token [options]

Prints an access token for a credential (client credentials grant), and nothing else, for shell use:
  TOKEN=$(portcullis token --client-id "$CLIENT_ID")

Options (each falls back to the environment variable named):
  --client-id ID        PORTCULLIS_CLIENT_ID (or CLIENT_ID, as the saved credentials file names it)
  --client-secret S     PORTCULLIS_CLIENT_SECRET (or CLIENT_SECRET); prefer the environment, which
                        keeps the secret out of the shell history and the process list
  --url URL             PORTCULLIS_URL, the server's base URL (default http://127.0.0.1:8080)
  --issuer URL          find the token endpoint in the issuer's RFC 8414 metadata instead
  --scope "A B"         ask for these scopes only
`;

class TokenCommandError extends Error {}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

async function readJson(response: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body: unknown = await response.json();
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function tokenEndpoint(issuer: string): Promise<string> {
  const url = new URL(issuer);
  const metadataUrl = `${url.origin}/.well-known/oauth-authorization-server${trimSlash(url.pathname)}`;
  const response = await fetch(metadataUrl, { signal: AbortSignal.timeout(10_000) });
  const metadata = response.ok ? await readJson(response) : undefined;
  if (typeof metadata?.token_endpoint !== 'string') throw new TokenCommandError(`no token_endpoint in ${metadataUrl} (HTTP ${response.status})`);
  if (trimSlash(String(metadata.issuer)) !== trimSlash(issuer)) {
    throw new TokenCommandError(`${metadataUrl} belongs to the issuer ${JSON.stringify(metadata.issuer)}, not ${JSON.stringify(issuer)}`);
  }
  return metadata.token_endpoint;
}

async function token(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      url: { type: 'string' },
      issuer: { type: 'string' },
      scope: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const clientId = values['client-id'] ?? env.PORTCULLIS_CLIENT_ID ?? env.CLIENT_ID;
  const clientSecret = values['client-secret'] ?? env.PORTCULLIS_CLIENT_SECRET ?? env.CLIENT_SECRET;
  if (!clientId) throw new TokenCommandError('no client id: pass --client-id or set PORTCULLIS_CLIENT_ID');
  if (!clientSecret) throw new TokenCommandError('no client secret: set PORTCULLIS_CLIENT_SECRET or pass --client-secret');
  if (values.url !== undefined && values.issuer !== undefined) throw new TokenCommandError('pass --url or --issuer, not both');

  const base = values.issuer ?? values.url ?? env.PORTCULLIS_URL ?? 'http://127.0.0.1:8080';
  if (!URL.canParse(base)) throw new TokenCommandError(`not an absolute URL: ${JSON.stringify(base)}`);
  let endpoint = `${trimSlash(base)}/oauth2/token`;
  if (values.issuer) {
    try {
      endpoint = await tokenEndpoint(values.issuer);
    } catch (err) {
      if (err instanceof TokenCommandError) throw err;
      throw new TokenCommandError(`cannot read the issuer's metadata: ${(err as Error).message}`);
    }
  }

  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
  if (values.scope) form.set('scope', values.scope);
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TokenCommandError(`cannot reach ${endpoint}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const body = await readJson(response);
  if (response.ok && typeof body?.access_token === 'string') return body.access_token;
  const error = typeof body?.error === 'string' ? body.error : `HTTP ${response.status}`;
  const description = typeof body?.error_description === 'string' ? `: ${body.error_description}` : '';
  throw new TokenCommandError(`the token request failed: ${error}${description}`);
}

/** `portcullis token`: prints an access token on stdout; any failure is one line on stderr and exit code 1. */
export async function tokenCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(TOKEN_USAGE);
    return 0;
  }
  try {
    process.stdout.write(`${await token(args, env)}\n`);
    return 0;
  } catch (err) {
    const parseError = err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    if (!(err instanceof TokenCommandError) && !parseError) throw err;
    process.stderr.write(`portcullis token: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}
