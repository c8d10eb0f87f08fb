import { existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `Usage: portcullis admin <resource> <action> [options]

  orgs create --name NAME                         create an organization
  orgs list
  apps create --org ID --name NAME [--description TEXT] [--scopes a,b]
  apps list --org ID
  credentials create --app ID --name NAME [--save FILE]
                                                  prints client_id and client_secret (shown once), or with
                                                  --save writes them to a new 0600 file as CLIENT_ID=… lines
  credentials list --app ID
  credentials rename --app ID --client-id ID --name NAME
  credentials delete --app ID --client-id ID [--immediately]
  keys list
  keys rotate [--activate-after SECONDS] [--force]
                                                  --force: sign sooner than verifiers' JWKS cache lifetime
  partners put --partner ID --name NAME [--require-token] [--rate-limit N]
                                                  create or replace a partner (the criteo-partner-id)
  partners list
  partners link --partner ID --app ID             let the application's dynamic tokens call the partner
  partners unlink --partner ID --app ID
  static-tokens create --partner ID --name NAME [--expires-at ISO-DATE]
                                                  prints the token (shown once)
  static-tokens list --partner ID
  static-tokens revoke --partner ID --id ID       stops the token at once
  routes list                                     the gateway routes (file and operator API)
  routes add --prefix /orders --upstream URL [--scopes a,b] [--rules JSON] [--rate-limit N]
             [--cors JSON] [--audience URI] [--timeout-ms N]
                                                  e.g. --rules '[{"methods":["GET"],"scopes":["orders:read"]}]'
  routes remove --id ID
  apis create --identifier URI --name NAME [--scopes a,b] [--self-service a,b]
                                                  register an API: tokens asked with resource=URI get aud=URI
  apis self-service --id API-ID --scopes a,b      the scopes portal apps may take themselves ("" for none;
                                                  --id default: the app's own scopes, tokens without resource)
  apis list
  apis delete --id ID
  apis grant --app ID --id API-ID [--scopes a,b]  let the application ask tokens for the API (all its scopes by default)
  apis revoke --app ID --id API-ID
  apis grants --app ID
  audit [--org ID] [--limit N]
  users show EMAIL                                a portal account: verified, disabled, operator
  users verify EMAIL                              mark its email address verified
  users reset EMAIL                               prints a single-use password-reset link (also mailed
                                                  when mail is configured); the password stays until used
  users disable EMAIL                             no more sign-ins; its sessions end at once
  users enable EMAIL
  operators grant EMAIL                           the account gets the operator console in the portal
  operators revoke EMAIL

Options for every command:
  --url URL      the server (default $PORTCULLIS_URL, else http://127.0.0.1:$PORT or :8080)
  --token TOKEN  the operator token (default $PORTCULLIS_ADMIN_TOKEN)
  --json         print the server's JSON answer
`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  name: { type: 'string' },
  org: { type: 'string' },
  app: { type: 'string' },
  'client-id': { type: 'string' },
  description: { type: 'string' },
  scopes: { type: 'string' },
  immediately: { type: 'boolean' },
  'activate-after': { type: 'string' },
  force: { type: 'boolean' },
  limit: { type: 'string' },
  save: { type: 'string' },
  partner: { type: 'string' },
  'require-token': { type: 'boolean' },
  'rate-limit': { type: 'string' },
  'expires-at': { type: 'string' },
  id: { type: 'string' },
  prefix: { type: 'string' },
  upstream: { type: 'string' },
  rules: { type: 'string' },
  cors: { type: 'string' },
  audience: { type: 'string' },
  'timeout-ms': { type: 'string' },
  identifier: { type: 'string' },
  'self-service': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function need(values: Values, name: 'name' | 'org' | 'app' | 'client-id' | 'partner' | 'id' | 'prefix' | 'upstream' | 'identifier'): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function jsonOption(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`--${name} must be JSON`);
  }
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
  show: (answer: any) => string;
}

const table = (rows: Record<string, unknown>[], columns: string[]): string =>
  rows.length === 0
    ? '(none)\n'
    : `${[columns, ...rows.map((r) => columns.map((c) => String(r[c] ?? '')))]
        .map((cells, _i, all) =>
          cells
            .map((cell, j) => cell.padEnd(Math.max(...all.map((r) => (r[j] ?? '').length))))
            .join('  ')
            .trimEnd(),
        )
        .join('\n')}\n`;

const scopeList = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const userLine = (u: any) =>
  `${u.email} (user ${u.id}): ${u.email_verified_at ? 'verified' : 'not verified'}${u.disabled_at ? ', disabled' : ''}${u.operator_since ? ', operator' : ''}\n`;

function plan(resource: string | undefined, action: string | undefined, v: Values, subject?: string): Call {
  const e = encodeURIComponent;
  const email = () => {
    if (!subject) throw new UsageError(`name the account: portcullis admin ${resource} ${action} EMAIL`);
    return subject;
  };
  switch (`${resource} ${action}`) {
    case 'users show':
      return { method: 'GET', path: `/portal-users?email=${e(email())}`, show: userLine };
    case 'users verify':
      return { method: 'POST', path: '/portal-users/verify', body: { email: email() }, show: userLine };
    case 'users reset':
      return {
        method: 'POST',
        path: '/portal-users/reset',
        body: { email: email() },
        show: (r) =>
          `password reset started for ${r.email}${r.mail === 'sent' ? ' (the link was mailed too)' : ' (no mail was sent)'}. Hand this single-use link to them; it expires in one hour:\n\n  ${r.reset_link}\n`,
      };
    case 'users disable':
      return { method: 'POST', path: '/portal-users/disable', body: { email: email() }, show: userLine };
    case 'users enable':
      return { method: 'POST', path: '/portal-users/enable', body: { email: email() }, show: userLine };
    case 'operators grant':
      return { method: 'POST', path: '/operators/grant', body: { email: email() }, show: userLine };
    case 'operators revoke':
      return { method: 'POST', path: '/operators/revoke', body: { email: email() }, show: userLine };
    case 'orgs create':
      return { method: 'POST', path: '/organizations', body: { name: need(v, 'name') }, show: (o) => `organization ${o.id} "${o.name}" created\n` };
    case 'orgs list':
      return { method: 'GET', path: '/organizations', show: (list) => table(list, ['id', 'name', 'created_at']) };
    case 'apps create': {
      const body: Record<string, unknown> = { name: need(v, 'name') };
      if (v.description !== undefined) body.description = v.description;
      if (v.scopes !== undefined)
        body.scopes = v.scopes
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      return {
        method: 'POST',
        path: `/organizations/${e(need(v, 'org'))}/applications`,
        body,
        show: (a) => `application ${a.id} "${a.name}" created in organization ${a.organization_id} (application_id ${a.id})\n`,
      };
    }
    case 'apps list':
      return { method: 'GET', path: `/organizations/${e(need(v, 'org'))}/applications`, show: (list) => table(list, ['id', 'name', 'scopes', 'created_at']) };
    case 'credentials create': {
      const file = v.save;
      if (file !== undefined && existsSync(file)) throw new UsageError(`${file} exists already; --save writes a new file`);
      return {
        method: 'POST',
        path: `/applications/${e(need(v, 'app'))}/credentials`,
        body: { name: need(v, 'name') },
        show: (c) => {
          if (file === undefined) {
            return `credential "${c.name}" created. Save the secret now: it is never shown again.\n\n  client_id:     ${c.client_id}\n  client_secret: ${c.client_secret}\n`;
          }
          // The secret goes to a file only this user can read, not to the terminal's scrollback.
          writeFileSync(file, `CLIENT_ID=${c.client_id}\nCLIENT_SECRET=${c.client_secret}\n`, { mode: 0o600, flag: 'wx' });
          return `credential "${c.name}" created: client_id ${c.client_id}; client_id and client_secret saved to ${file} (the secret is never shown again)\n`;
        },
      };
    }
    case 'credentials list':
      return {
        method: 'GET',
        path: `/applications/${e(need(v, 'app'))}/credentials`,
        show: (list) => table(list, ['client_id', 'name', 'status', 'created_at', 'last_used_at', 'deactivates_at']),
      };
    case 'credentials rename':
      return {
        method: 'PATCH',
        path: `/applications/${e(need(v, 'app'))}/credentials/${e(need(v, 'client-id'))}`,
        body: { name: need(v, 'name') },
        show: (c) => `credential ${c.client_id} renamed to "${c.name}"\n`,
      };
    case 'credentials delete':
      return {
        method: 'DELETE',
        path: `/applications/${e(need(v, 'app'))}/credentials/${e(need(v, 'client-id'))}${v.immediately ? '?immediately=true' : ''}`,
        show: (r) =>
          r.status === 'revoked'
            ? `credential ${r.client_id} revoked; tokens already issued from it no longer verify\n`
            : `credential ${r.client_id} deleted; it keeps working until ${r.deactivates_at}\n`,
      };
    case 'keys list':
      return { method: 'GET', path: '/keys', show: (list) => table(list, ['kid', 'alg', 'status', 'created_at', 'activates_at']) };
    case 'keys rotate': {
      const after = v['activate-after'];
      if (after !== undefined && !/^\d+$/.test(after)) throw new UsageError('--activate-after must be a whole number of seconds');
      return {
        method: 'POST',
        path: '/keys/rotate',
        body: { ...(after === undefined ? {} : { activate_after_seconds: Number(after) }), ...(v.force === true ? { force: true } : {}) },
        show: (k) =>
          `new ${k.alg} key ${k.kid}: published now, signs from ${k.activates_at}\n${(k.warnings ?? []).map((w: string) => `warning: ${w}\n`).join('')}`,
      };
    }
    case 'partners put': {
      const body: Record<string, unknown> = { name: need(v, 'name'), require_token: v['require-token'] === true };
      const limit = v['rate-limit'];
      if (limit !== undefined) {
        if (!/^\d+$/.test(limit)) throw new UsageError('--rate-limit must be a whole number of calls per minute');
        body.rate_limit_per_minute = Number(limit);
      }
      return {
        method: 'PUT',
        path: `/partners/${e(need(v, 'partner'))}`,
        body,
        show: (p) => `partner ${p.id} "${p.name}" saved; tokens ${p.require_token ? 'required' : 'optional'}\n`,
      };
    }
    case 'partners list':
      return {
        method: 'GET',
        path: '/partners',
        show: (list) =>
          table(
            list.map((p: any) => ({ ...p, application_ids: p.application_ids.join(',') })),
            ['id', 'name', 'require_token', 'rate_limit_per_minute', 'application_ids'],
          ),
      };
    case 'partners link':
      return {
        method: 'POST',
        path: `/partners/${e(need(v, 'partner'))}/applications`,
        body: { application_id: Number(need(v, 'app')) },
        show: (l) => `application ${l.application_id} linked to partner ${l.partner_id}\n`,
      };
    case 'partners unlink':
      return {
        method: 'DELETE',
        path: `/partners/${e(need(v, 'partner'))}/applications/${e(need(v, 'app'))}`,
        show: (l) => `application ${l.application_id} unlinked from partner ${l.partner_id}\n`,
      };
    case 'routes list':
      return {
        method: 'GET',
        path: '/gateway/routes',
        show: (list) =>
          table(
            list.map((r: any) => ({
              ...r,
              scopes: r.scopes.join(' '),
              rules: r.rules.map((x: any) => `${x.methods.join(',')}:${x.scopes.join(' ')}`).join('; '),
            })),
            ['id', 'source', 'prefix', 'upstream', 'scopes', 'rules', 'rate_limit_per_minute', 'audience'],
          ),
      };
    case 'routes add': {
      const body: Record<string, unknown> = { prefix: need(v, 'prefix'), upstream: need(v, 'upstream') };
      if (v.scopes !== undefined)
        body.scopes = v.scopes
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      if (v.rules !== undefined) body.rules = jsonOption(v.rules, 'rules');
      if (v.cors !== undefined) body.cors = jsonOption(v.cors, 'cors');
      if (v['rate-limit'] !== undefined) body.rate_limit_per_minute = Number(v['rate-limit']);
      if (v['timeout-ms'] !== undefined) body.timeout_ms = Number(v['timeout-ms']);
      if (v.audience !== undefined) body.audience = v.audience;
      return { method: 'POST', path: '/gateway/routes', body, show: (r) => `route ${r.id}: ${r.prefix} -> ${r.upstream}\n` };
    }
    case 'routes remove':
      return { method: 'DELETE', path: `/gateway/routes/${e(need(v, 'id'))}`, show: (r) => `route ${r.id} (${r.prefix}) removed\n` };
    case 'static-tokens create': {
      const body: Record<string, unknown> = { name: need(v, 'name') };
      if (v['expires-at'] !== undefined) body.expires_at = v['expires-at'];
      return {
        method: 'POST',
        path: `/partners/${e(need(v, 'partner'))}/static-tokens`,
        body,
        show: (t) => `static token ${t.id} "${t.name}" created for partner ${t.partner_id}. Hand it over now: it is never shown again.\n\n  ${t.token}\n`,
      };
    }
    case 'static-tokens list':
      return {
        method: 'GET',
        path: `/partners/${e(need(v, 'partner'))}/static-tokens`,
        show: (list) => table(list, ['id', 'name', 'status', 'created_at', 'expires_at', 'last_used_at']),
      };
    case 'static-tokens revoke':
      return {
        method: 'DELETE',
        path: `/partners/${e(need(v, 'partner'))}/static-tokens/${e(need(v, 'id'))}`,
        show: (t) => `static token ${t.id} revoked\n`,
      };
    case 'apis create':
      return {
        method: 'POST',
        path: '/apis',
        body: {
          identifier: need(v, 'identifier'),
          name: need(v, 'name'),
          ...(v.scopes !== undefined ? { scopes: scopeList(v.scopes) } : {}),
          ...(v['self-service'] !== undefined ? { self_service_scopes: scopeList(v['self-service']) } : {}),
        },
        show: (a) => `API ${a.id} "${a.name}" registered: tokens asked with resource=${a.identifier} carry it as aud\n`,
      };
    case 'apis self-service':
      if (v.scopes === undefined) throw new UsageError('apis self-service needs --scopes (a comma-separated list, "" for none)');
      if (v.id === 'default') {
        return {
          method: 'PATCH',
          path: '/default-audience',
          body: { self_service_scopes: scopeList(v.scopes) },
          show: (a) => `default audience ${a.audience}: portal apps may take ${a.self_service_scopes.join(' ') || '(no scopes)'}\n`,
        };
      }
      return {
        method: 'PATCH',
        path: `/apis/${e(need(v, 'id'))}`,
        body: { self_service_scopes: scopeList(v.scopes) },
        show: (a) => `API ${a.identifier}: portal apps may take ${a.self_service_scopes.join(' ') || '(no scopes)'}
`,
      };
    case 'apis list':
      return { method: 'GET', path: '/apis', show: (list) => table(list, ['id', 'identifier', 'name', 'scopes', 'self_service_scopes', 'created_at']) };
    case 'apis delete':
      return { method: 'DELETE', path: `/apis/${e(need(v, 'id'))}`, show: (a) => `API ${a.id} deleted\n` };
    case 'apis grant':
      return {
        method: 'PUT',
        path: `/applications/${e(need(v, 'app'))}/apis/${e(need(v, 'id'))}`,
        body: v.scopes !== undefined ? { scopes: scopeList(v.scopes) } : {},
        show: (g) => `application ${need(v, 'app')} granted API ${g.identifier} with scopes ${g.scopes.join(' ') || '(none)'}\n`,
      };
    case 'apis revoke':
      return { method: 'DELETE', path: `/applications/${e(need(v, 'app'))}/apis/${e(need(v, 'id'))}`, show: () => `grant revoked\n` };
    case 'apis grants':
      return { method: 'GET', path: `/applications/${e(need(v, 'app'))}/apis`, show: (list) => table(list, ['api_id', 'identifier', 'name', 'scopes']) };
    case 'audit undefined': {
      const query = new URLSearchParams();
      if (v.org) query.set('organization_id', v.org);
      if (v.limit) query.set('limit', v.limit);
      return {
        method: 'GET',
        path: `/audit-events${query.size ? `?${query}` : ''}`,
        show: (list) => table(list, ['occurred_at', 'actor', 'action', 'target_type', 'target_id', 'ip']),
      };
    }
    default:
      throw new UsageError(resource ? `unknown admin command "${[resource, action].filter(Boolean).join(' ')}"` : 'name a resource and an action');
  }
}

/** `portcullis admin …`: the operator API from the shell, against a running server. */
export async function adminCommand(args: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    process.stderr.write(`portcullis admin: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  let call: Call;
  try {
    call = plan(positionals[0], positionals[1], values, positionals[2]);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`portcullis admin: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const base = (values.url ?? process.env.PORTCULLIS_URL ?? `http://127.0.0.1:${process.env.PORT || 8080}`).replace(/\/+$/, '');
  const token = values.token ?? process.env.PORTCULLIS_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write('portcullis admin: no operator token: set PORTCULLIS_ADMIN_TOKEN or pass --token\n');
    return 2;
  }
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${base}/admin/v1${call.path}`, {
      method: call.method,
      headers,
      ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    process.stderr.write(
      `portcullis admin: cannot reach ${base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}\n`,
    );
    return 1;
  }
  const text = await response.text();
  let answer: any;
  try {
    answer = JSON.parse(text);
  } catch {
    process.stderr.write(`portcullis admin: ${response.status} from ${base}: the answer is not JSON\n`);
    return 1;
  }
  if (!response.ok) {
    const detail = answer?.errors?.[0]?.detail ?? text;
    process.stderr.write(values.json ? `${text}\n` : `portcullis admin: ${response.status}: ${detail}\n`);
    return 1;
  }
  try {
    process.stdout.write(values.json ? `${JSON.stringify(answer, null, 2)}\n` : call.show(answer));
  } catch (err) {
    const detail = (err as NodeJS.ErrnoException).code === 'EEXIST' ? 'the file exists already; choose a new name' : (err as Error).message;
    process.stderr.write(`portcullis admin: the request succeeded but its answer could not be saved: ${detail}\n`);
    if (answer?.client_secret) process.stderr.write(`client_id=${answer.client_id}\nclient_secret=${answer.client_secret}\n`);
    return 1;
  }
  return 0;
}
