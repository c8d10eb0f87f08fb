// The "no secret in any log" check of a full test run (see scripts/test.ts). When
// PORTCULLIS_TEST_LOG_DIR is set, every in-process test server logs at trace level to a file of
// its own in that directory, spawned servers leave their output there, and every secret a test
// sends or receives over fetch is appended to secrets.txt; after the run, no line of any log may
// contain any of them. Without the variable nothing here does anything.
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';

export const LOG_DIR = process.env.PORTCULLIS_TEST_LOG_DIR || undefined;

const seen = new Set<string>();
// Shorter values (ids, names, deliberately bad inputs) could match innocent log text, and so could
// repetitive ones ('x'.repeat(300) as a refused password, also sent elsewhere as a query value).
const MIN_SECRET_LENGTH = 12;
const MAX_SECRET_LENGTH = 8192;
const MIN_DISTINCT_CHARS = 6;

/** Remembers secrets for the after-run check; safe to call with anything (non-secrets are ignored by length). */
export function recordSecret(...values: unknown[]): void {
  if (!LOG_DIR) return;
  const fresh = values.filter(
    (v): v is string =>
      typeof v === 'string' &&
      v.length >= MIN_SECRET_LENGTH &&
      v.length <= MAX_SECRET_LENGTH &&
      !/[\r\n]/.test(v) &&
      !seen.has(v) &&
      new Set(v).size >= MIN_DISTINCT_CHARS,
  );
  if (fresh.length === 0) return;
  for (const v of fresh) seen.add(v);
  appendFileSync(path.join(LOG_DIR, 'secrets.txt'), `${fresh.join('\n')}\n`);
}

let servers = 0;

/** A trace-level pino destination file for one in-process server, or undefined (silent) without LOG_DIR. */
export function serverLog(): { logger: { level: string; stream: ReturnType<typeof pino.destination> }; close(): void } | undefined {
  if (!LOG_DIR) return undefined;
  const stream = pino.destination({ dest: path.join(LOG_DIR, `server-${process.pid}-${++servers}.log`), sync: true, mkdir: true });
  return { logger: { level: 'trace', stream }, close: () => stream.end() };
}

let processes = 0;

/** Keeps a spawned server's output (stdout and stderr) for the check. */
export function keepProcessOutput(output: string): void {
  if (!LOG_DIR) return;
  writeFileSync(path.join(LOG_DIR, `process-${process.pid}-${++processes}.log`), output);
  // The first start prints the generated operator token on stdout, by design: it is a secret for the logs.
  for (const match of output.matchAll(/export PORTCULLIS_ADMIN_TOKEN=(\S+)/g)) recordSecret(match[1]);
}

const SECRET_FIELDS = new Set(['client_secret', 'access_token', 'refresh_token', 'token', 'csrf_token', 'password', 'current_password', 'new_password']);
const SECRET_COOKIES = /^(portcullis_session|portcullis_csrf)=([^;]*)/;

function walk(value: unknown, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'string' && SECRET_FIELDS.has(key)) recordSecret(v);
    // An invitation link carries its secret token as the last path segment.
    else if (typeof v === 'string' && key === 'link') recordSecret(/\/invitations\/([^/?#]+)$/.exec(v)?.[1]);
    else walk(v, depth + 1);
  }
}

function fromBody(body: string): void {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      walk(JSON.parse(trimmed));
    } catch {
      // not JSON
    }
    return;
  }
  if (!trimmed.includes('=')) return;
  for (const [key, v] of new URLSearchParams(trimmed)) if (SECRET_FIELDS.has(key)) recordSecret(v);
}

function fromAuthorization(header: string | null | undefined): void {
  if (!header) return;
  const [scheme, credentials = ''] = header.split(' ', 2);
  if (/^bearer$/i.test(scheme ?? '')) recordSecret(credentials.trim());
  else if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    recordSecret(decodeURIComponent(decoded.slice(decoded.indexOf(':') + 1)));
  }
}

/** Wraps the global fetch once: request bodies and Authorization headers, response JSON and session cookies. */
function watchFetch(): void {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    try {
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      fromAuthorization(headers.get('authorization'));
      if (typeof init?.body === 'string') fromBody(init.body);
      else if (init?.body instanceof URLSearchParams) fromBody(init.body.toString());
    } catch {
      // recording must never change what the test does
    }
    const response = await original(input, init);
    try {
      for (const cookie of response.headers.getSetCookie()) recordSecret(SECRET_COOKIES.exec(cookie)?.[2]);
      if (/json/.test(response.headers.get('content-type') ?? '') && response.body !== null) {
        // Read a copy without waiting for it, so streaming tests are not held up.
        response
          .clone()
          .text()
          .then(fromBody, () => {});
      }
    } catch {
      // as above
    }
    return response;
  };
}

if (LOG_DIR) watchFetch();
