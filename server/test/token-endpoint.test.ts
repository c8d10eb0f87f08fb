// The token endpoint, POST /oauth2/token (RFC 6749 §4.4), and the RFC 8414 metadata, exercised
// over real HTTP against a real server on SQLite. Every error answer is checked against
// RFC 6749 §5.2: the status, the `error` code, and a JSON object with `error_description`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { crc32 } from 'node:zlib';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { isWellFormedSecret } from '../src/domain/secrets.js';
import { curlAvailable } from './helpers/curl.js';
import { type Res, request } from './helpers/http.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const FORM = 'application/x-www-form-urlencoded';
const ISSUER = 'http://portcullis.test';
const SDK_USER_AGENT = 'OpenAPI-Generator/2026.01.0.260622/python';

function tokenRequest(server: TestServer, params: string | Buffer, headers: Record<string, string> = { 'content-type': FORM }): Promise<Res> {
  return request(server.url, 'POST', '/oauth2/token', headers, params);
}

function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

/** An RFC 6749 §5.2 error answer: the status, the code, and a non-empty JSON object describing it. */
function assertOAuthError(res: Res, status: number, code: string): void {
  const context = `${res.status} ${res.text}`;
  assert.ok(res.status < 500, `never a 5xx: ${context}`);
  assert.equal(res.status, status, context);
  assert.match(String(res.headers['content-type']), /^application\/json/, context);
  assert.equal(typeof res.body, 'object', context);
  assert.ok(res.body !== null && !Array.isArray(res.body), context);
  assert.ok(Object.keys(res.body).length > 0, context);
  assert.equal(res.body.error, code, context);
  assert.equal(typeof res.body.error_description, 'string', context);
  assert.ok(res.body.error_description.length > 0, context);
}

function decodeJwtPart(token: string, index: 0 | 1): any {
  const part = token.split('.')[index];
  assert.ok(part, 'token has the segment');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function assertTokenSuccess(res: Res): string {
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.token_type, 'Bearer');
  assert.equal(res.body.expires_in, 900);
  assert.equal(typeof res.body.access_token, 'string');
  assert.equal(res.body.access_token.split('.').length, 3, 'a compact JWS has three segments');
  assert.match(String(res.headers['cache-control']), /no-store/);
  return res.body.access_token as string;
}

async function meStatus(server: TestServer, token: string, path = '/me'): Promise<Res> {
  return request(server.url, 'GET', path, { authorization: `Bearer ${token}` });
}

/** A client secret in the issued format (prefix, 32 random bytes, CRC-32 check) that was never issued. */
function neverIssuedSecret(): string {
  const body = `pcs_${randomBytes(32).toString('base64url')}`;
  const check = Buffer.alloc(4);
  check.writeUInt32BE(crc32(body));
  return body + check.toString('base64url').slice(0, 6);
}

function basic(clientId: string, clientSecret: string): string {
  // RFC 6749 §2.3.1: each part form-urlencoded, then base64 of "id:secret".
  const enc = (s: string) => new URLSearchParams({ x: s }).toString().slice(2);
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

function runCurl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  // curl honours proxy variables; a loopback request must not go through a proxy.
  const env = { ...process.env, NO_PROXY: '*', no_proxy: '*' };
  return new Promise((resolve, reject) => {
    execFile('curl', args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** Sends bytes on a fresh TCP connection and parses one HTTP/1.1 response (Content-Length or chunked). */
function rawHttp(base: string, bytes: Buffer): Promise<{ statusLine: string; status: number; headers: Record<string, string>; body: string }> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port) });
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (value: { statusLine: string; status: number; headers: Record<string, string>; body: string }) => {
      done = true;
      socket.destroy();
      resolve(value);
    };
    const tryParse = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = received.subarray(0, end).toString('latin1').split('\r\n');
      const statusLine = head[0] ?? '';
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(statusLine.split(' ')[1]);
      const rest = received.subarray(end + 4);
      if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (rest.length >= length) finish({ statusLine, status, headers, body: rest.subarray(0, length).toString('utf8') });
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const parts: Buffer[] = [];
        let at = 0;
        for (;;) {
          const lineEnd = rest.indexOf('\r\n', at);
          if (lineEnd === -1) return;
          const size = Number.parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
          if (size === 0) break;
          if (rest.length < lineEnd + 2 + size + 2) return;
          parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        finish({ statusLine, status, headers, body: Buffer.concat(parts).toString('utf8') });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      tryParse();
    });
    socket.on('error', (err) => {
      if (!done) reject(err);
    });
    socket.on('end', () => {
      if (!done) reject(new Error(`connection closed before a whole response: ${received.toString('latin1')}`));
    });
    socket.write(bytes);
  });
}

describe('POST /oauth2/token', () => {
  let server: TestServer;
  let cred: Awaited<ReturnType<TestServer['newCredential']>>;
  let scoped: Awaited<ReturnType<TestServer['newCredential']>>;

  before(async () => {
    server = await startTestServer();
    cred = await server.newCredential();
    scoped = await server.newCredential({ scopes: ['read', 'write', 'reports'] });
  });

  after(async () => {
    await server?.stop();
  });

  describe('success', () => {
    test('client_secret_post: 200 with a three-segment JWT, token_type Bearer, expires_in 900 and Cache-Control: no-store', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }));
      const token = assertTokenSuccess(res);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal((await meStatus(server, token)).status, 200);
    });

    test('client_secret_basic: Basic base64 of form-urlencoded client_id:client_secret gets a token', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), {
        'content-type': FORM,
        authorization: basic(cred.clientId, cred.clientSecret),
      });
      const token = assertTokenSuccess(res);
      assert.equal((await meStatus(server, token)).status, 200);
    });

    test('Content-Type: application/x-www-form-urlencoded; charset=UTF-8 is accepted', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {
        'content-type': `${FORM}; charset=UTF-8`,
      });
      assertTokenSuccess(res);
    });

    test('several tokens for the same credential are all valid at once', async () => {
      const params = form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
      const tokens: string[] = [];
      for (let i = 0; i < 4; i++) tokens.push(assertTokenSuccess(await tokenRequest(server, params)));
      assert.equal(new Set(tokens).size, tokens.length, 'each request gets a distinct token');
      for (const token of tokens) {
        const me = await meStatus(server, token);
        assert.equal(me.status, 200, me.text);
        assert.equal(me.body.data.attributes.applicationId, cred.appId);
      }
    });
  });

  describe('the reference request, byte for byte', () => {
    test('the curl command of the reference page gets a token that works on /me', async (t) => {
      if (!curlAvailable(t)) return;
      const { stdout } = await runCurl([
        '--location',
        '--request',
        'POST',
        `${server.url}/oauth2/token`,
        '--header',
        'Content-Type: application/x-www-form-urlencoded',
        '--data-urlencode',
        `client_id=${cred.clientId}`,
        '--data-urlencode',
        `client_secret=${cred.clientSecret}`,
        '--data-urlencode',
        'grant_type=client_credentials',
      ]);
      const body = JSON.parse(stdout);
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.expires_in, 900);
      assert.equal(body.access_token.split('.').length, 3);
      assert.ok(!('refresh_token' in body), 'curl is not an SDK: no refresh_token key');
      const me = await meStatus(server, body.access_token);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.data.attributes.applicationId, cred.appId);
    });

    test('the raw bytes curl sends over a TCP socket get a 200 token answer', async () => {
      const host = new URL(server.url).host;
      const body = `client_id=${cred.clientId}&client_secret=${cred.clientSecret}&grant_type=client_credentials`;
      const bytes = Buffer.from(
        'POST /oauth2/token HTTP/1.1\r\n' +
          `Host: ${host}\r\n` +
          'User-Agent: curl/7.88.1\r\n' +
          'Accept: */*\r\n' +
          'Content-Type: application/x-www-form-urlencoded\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          '\r\n' +
          body,
        'latin1',
      );
      const res = await rawHttp(server.url, bytes);
      assert.match(res.statusLine, /^HTTP\/1\.1 200 /);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.match(res.headers['cache-control'] ?? '', /no-store/);
      const json = JSON.parse(res.body);
      assert.equal(json.token_type, 'Bearer');
      assert.equal(json.expires_in, 900);
      assert.equal(json.access_token.split('.').length, 3);
      assert.equal((await meStatus(server, json.access_token)).status, 200);
    });
  });

  describe("Criteo's Python SDK request shape", () => {
    test('POST //oauth2/token with the SDK headers gets a token with refresh_token: null and an integer expires_in', async () => {
      const app = await server.newCredential({ name: 'SDK App', description: 'used by the python sdk' });
      const res = await request(
        server.url,
        'POST',
        '//oauth2/token',
        { accept: 'application/json', 'content-type': FORM, 'user-agent': SDK_USER_AGENT },
        form({ client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'client_credentials' }),
      );
      assert.equal(res.status, 200, res.text);
      assert.ok('refresh_token' in res.body, 'the SDK reads refresh_token and needs the key');
      assert.equal(res.body.refresh_token, null);
      assert.ok(Number.isInteger(res.body.expires_in));
      assert.equal(res.body.token_type, 'Bearer');

      const me = await request(server.url, 'GET', '/2026-01/retail-media/me', {
        accept: 'application/json',
        'content-type': 'application/json',
        authorization: `Bearer ${res.body.access_token}`,
        'user-agent': SDK_USER_AGENT,
      });
      assert.equal(me.status, 200, me.text);
      assert.deepEqual(me.body, {
        data: {
          type: 'Application',
          attributes: {
            applicationId: app.appId,
            organizationId: app.orgId,
            name: 'SDK App',
            description: 'used by the python sdk',
            criteoService: 'retail-media',
          },
        },
        errors: [],
        warnings: [],
      });
      assert.ok(Number.isInteger(me.body.data.attributes.applicationId));
      assert.ok(Number.isInteger(me.body.data.attributes.organizationId));
    });

    test('a non-SDK User-Agent gets no refresh_token key at all (strict RFC clients reject null)', async () => {
      for (const ua of [undefined, 'python-requests/2.32.3', 'curl/7.88.1', 'my-OpenAPI-Generator/1.0']) {
        const headers: Record<string, string> = { 'content-type': FORM, ...(ua ? { 'user-agent': ua } : {}) };
        const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), headers);
        assertTokenSuccess(res);
        assert.ok(!('refresh_token' in res.body), `User-Agent ${ua ?? '(none)'} got a refresh_token key`);
      }
    });
  });

  describe('the request must be a form', () => {
    test('a JSON body is invalid_request (400) naming the mandatory content type', async () => {
      const res = await tokenRequest(server, JSON.stringify({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {
        'content-type': 'application/json',
      });
      assertOAuthError(res, 400, 'invalid_request');
      assert.match(res.body.error_description, /application\/x-www-form-urlencoded/);
    });

    test('a body without a Content-Type header is invalid_request (400)', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {});
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('no body at all is invalid_request (400), with or without the form Content-Type', async () => {
      assertOAuthError(await request(server.url, 'POST', '/oauth2/token', {}), 400, 'invalid_request');
      assertOAuthError(await request(server.url, 'POST', '/oauth2/token', { 'content-type': FORM }), 400, 'invalid_request');
    });

    test('text/plain is invalid_request (400)', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {
        'content-type': 'text/plain',
      });
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('a body over 16 KiB is refused with 413 invalid_request', async () => {
      const base = form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
      const res = await tokenRequest(server, `${base}&padding=${'a'.repeat(16 * 1024)}`);
      assertOAuthError(res, 413, 'invalid_request');
    });
  });

  describe('parameters', () => {
    test('grant_type sent twice is invalid_request', async () => {
      const res = await tokenRequest(
        server,
        `grant_type=client_credentials&grant_type=client_credentials&client_id=${cred.clientId}&client_secret=${cred.clientSecret}`,
      );
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('client_id sent twice is invalid_request', async () => {
      const res = await tokenRequest(
        server,
        `grant_type=client_credentials&client_id=${cred.clientId}&client_id=${cred.clientId}&client_secret=${cred.clientSecret}`,
      );
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('an unknown grant_type is unsupported_grant_type (400)', async () => {
      for (const grantType of ['password', 'authorization_code', 'refresh_token', 'CLIENT_CREDENTIALS']) {
        const res = await tokenRequest(server, form({ grant_type: grantType, client_id: cred.clientId, client_secret: cred.clientSecret }));
        assertOAuthError(res, 400, 'unsupported_grant_type');
      }
    });

    test('a missing grant_type is invalid_request (400)', async () => {
      const res = await tokenRequest(server, form({ client_id: cred.clientId, client_secret: cred.clientSecret }));
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('raw non-UTF-8 bytes (0xff) in the body are invalid_request', async () => {
      const body = Buffer.concat([
        Buffer.from(`grant_type=client_credentials&client_id=${cred.clientId}&client_secret=${cred.clientSecret}&scope=`),
        Buffer.from([0xff, 0xfe, 0xff]),
      ]);
      assertOAuthError(await tokenRequest(server, body), 400, 'invalid_request');
    });

    test('a percent-escape that is not UTF-8 (%C3%28) is invalid_request', async () => {
      const res = await tokenRequest(server, `grant_type=client_credentials&client_id=${cred.clientId}&client_secret=${cred.clientSecret}&scope=%C3%28`);
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('a malformed percent-escape (%ZZ) is invalid_request', async () => {
      const res = await tokenRequest(server, `grant_type=client_credentials&client_id=${cred.clientId}&client_secret=${cred.clientSecret}%ZZ`);
      assertOAuthError(res, 400, 'invalid_request');
    });
  });

  describe('client authentication', () => {
    test('a missing client_id is invalid_client (401)', async () => {
      assertOAuthError(await tokenRequest(server, form({ grant_type: 'client_credentials', client_secret: cred.clientSecret })), 401, 'invalid_client');
    });

    test('a missing client_secret is invalid_client (401)', async () => {
      assertOAuthError(await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId })), 401, 'invalid_client');
    });

    test('a wrong secret is invalid_client (401)', async () => {
      const other = await server.newCredential();
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: other.clientSecret }));
      assertOAuthError(res, 401, 'invalid_client');
      const tampered = `${cred.clientSecret.slice(0, -1)}${cred.clientSecret.endsWith('A') ? 'B' : 'A'}`;
      assertOAuthError(
        await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: tampered })),
        401,
        'invalid_client',
      );
    });

    test('an unknown client_id is invalid_client (401)', async () => {
      const res = await tokenRequest(
        server,
        form({ grant_type: 'client_credentials', client_id: randomBytes(16).toString('hex'), client_secret: cred.clientSecret }),
      );
      assertOAuthError(res, 401, 'invalid_client');
    });

    test('a well-formed but never-issued secret is invalid_client (401)', async () => {
      // zlib's CRC-32 and Buffer's base64url are the oracle for the server's own checksum.
      for (let i = 0; i < 500; i++) {
        const other = neverIssuedSecret();
        assert.ok(isWellFormedSecret(other, 'pcs_'), `the checksum of ${other} is recognised`);
        const last = other.at(-1) === 'A' ? 'B' : 'A';
        assert.ok(!isWellFormedSecret(other.slice(0, -1) + last, 'pcs_'), 'a changed checksum is not');
      }
      const secret = neverIssuedSecret();
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: secret }));
      assertOAuthError(res, 401, 'invalid_client');
    });

    test('client_id=None&client_secret=None (the Python SDK without credentials) is invalid_client (401)', async () => {
      const res = await tokenRequest(server, 'client_id=None&client_secret=None&grant_type=client_credentials', {
        accept: 'application/json',
        'content-type': FORM,
        'user-agent': SDK_USER_AGENT,
      });
      assertOAuthError(res, 401, 'invalid_client');
    });

    test('a Basic header that is not base64 is invalid_client (401) with WWW-Authenticate', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), { 'content-type': FORM, authorization: 'Basic not*base64!' });
      assertOAuthError(res, 401, 'invalid_client');
      assert.match(String(res.headers['www-authenticate']), /^Basic /);
    });

    test('a Basic header without a colon is invalid_client (401) with WWW-Authenticate', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), {
        'content-type': FORM,
        authorization: `Basic ${Buffer.from(`${cred.clientId}${cred.clientSecret}`).toString('base64')}`,
      });
      assertOAuthError(res, 401, 'invalid_client');
      assert.match(String(res.headers['www-authenticate']), /^Basic /);
    });

    test('a bare "Basic" header with no credentials is invalid_client (401) with WWW-Authenticate (RFC 6749 §5.2)', async () => {
      for (const authorization of ['Basic', 'Basic ', 'basic']) {
        const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), {
          'content-type': FORM,
          authorization,
        });
        assertOAuthError(res, 401, 'invalid_client');
        assert.match(String(res.headers['www-authenticate']), /^Basic /i, `Authorization: ${JSON.stringify(authorization)} got no Basic challenge`);
      }
    });

    test('a Basic header with a wrong secret is invalid_client (401) with WWW-Authenticate', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), {
        'content-type': FORM,
        authorization: basic(cred.clientId, neverIssuedSecret()),
      });
      assertOAuthError(res, 401, 'invalid_client');
      assert.match(String(res.headers['www-authenticate']), /^Basic /);
    });

    test('credentials both in the Basic header and in the body are invalid_request', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {
        'content-type': FORM,
        authorization: basic(cred.clientId, cred.clientSecret),
      });
      assertOAuthError(res, 400, 'invalid_request');
    });

    test('a Bearer Authorization header on the token endpoint is invalid_client (401)', async () => {
      const token = await server.accessToken(cred.clientId, cred.clientSecret);
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials' }), { 'content-type': FORM, authorization: `Bearer ${token}` });
      assertOAuthError(res, 401, 'invalid_client');
      const withBody = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }), {
        'content-type': FORM,
        authorization: `Bearer ${token}`,
      });
      assert.ok(withBody.status < 500 && withBody.status !== 200, `a Bearer header must not authenticate a token request: ${withBody.status}`);
    });

    test('a credential deleted with a grace period still gets tokens', async () => {
      const doomed = await server.newCredential();
      const del = await server.admin('DELETE', `/applications/${doomed.appId}/credentials/${doomed.clientId}`);
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.equal(del.body.status, 'deactivating');
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: doomed.clientId, client_secret: doomed.clientSecret }));
      const token = assertTokenSuccess(res);
      assert.equal((await meStatus(server, token)).status, 200);
    });
  });

  describe('scope', () => {
    test('a requested subset of the application scopes is granted exactly, in the response and the token', async () => {
      const res = await tokenRequest(
        server,
        form({ grant_type: 'client_credentials', client_id: scoped.clientId, client_secret: scoped.clientSecret, scope: 'write read' }),
      );
      const token = assertTokenSuccess(res);
      assert.equal(res.body.scope, 'write read');
      assert.equal(decodeJwtPart(token, 1).scope, 'write read');

      const one = await tokenRequest(
        server,
        form({ grant_type: 'client_credentials', client_id: scoped.clientId, client_secret: scoped.clientSecret, scope: 'reports' }),
      );
      const oneToken = assertTokenSuccess(one);
      assert.equal(one.body.scope, 'reports');
      assert.equal(decodeJwtPart(oneToken, 1).scope, 'reports');
    });

    test('omitting scope grants all of the application scopes', async () => {
      const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: scoped.clientId, client_secret: scoped.clientSecret }));
      const token = assertTokenSuccess(res);
      assert.deepEqual(res.body.scope.split(' ').sort(), ['read', 'reports', 'write']);
      assert.deepEqual(decodeJwtPart(token, 1).scope.split(' ').sort(), ['read', 'reports', 'write']);
    });

    test('an unknown scope is invalid_scope (400)', async () => {
      const res = await tokenRequest(
        server,
        form({ grant_type: 'client_credentials', client_id: scoped.clientId, client_secret: scoped.clientSecret, scope: 'read admin' }),
      );
      assertOAuthError(res, 400, 'invalid_scope');
      const none = await tokenRequest(
        server,
        form({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, scope: 'read' }),
      );
      assertOAuthError(none, 400, 'invalid_scope');
    });
  });

  describe('failed authentications are counted', () => {
    test('bad secrets are counted per client_id as bad_secret; unknown clients under null as unknown_client', async () => {
      const target = await server.newCredential();
      const count = (rows: any[], clientId: string | null, reason: string) =>
        rows.filter((r) => r.client_id === clientId && r.reason === reason).reduce((sum, r) => sum + r.count, 0);
      const beforeRows = await server.admin('GET', '/auth-failures');
      assert.equal(beforeRows.status, 200, JSON.stringify(beforeRows.body));
      const unknownBefore = count(beforeRows.body, null, 'unknown_client');

      const badSecrets = 3;
      for (let i = 0; i < badSecrets; i++) {
        const res = await tokenRequest(server, form({ grant_type: 'client_credentials', client_id: target.clientId, client_secret: neverIssuedSecret() }));
        assertOAuthError(res, 401, 'invalid_client');
      }
      const unknowns = 2;
      for (let i = 0; i < unknowns; i++) {
        const res = await tokenRequest(
          server,
          form({ grant_type: 'client_credentials', client_id: randomBytes(16).toString('hex'), client_secret: neverIssuedSecret() }),
        );
        assertOAuthError(res, 401, 'invalid_client');
      }

      const rows = await server.admin('GET', '/auth-failures');
      assert.equal(rows.status, 200, JSON.stringify(rows.body));
      assert.ok(Array.isArray(rows.body));
      assert.ok(count(rows.body, target.clientId, 'bad_secret') >= badSecrets, JSON.stringify(rows.body));
      assert.ok(count(rows.body, null, 'unknown_client') >= unknownBefore + unknowns, JSON.stringify(rows.body));
      assert.ok(!rows.body.some((r: any) => r.reason === 'unknown_client' && r.client_id !== null), 'attacker-chosen client ids are never stored');
    });
  });

  describe('GET /.well-known/oauth-authorization-server', () => {
    test('RFC 8414 metadata names the configured issuer, its token endpoint, JWKS, grant type and auth methods', async () => {
      const res = await request(server.url, 'GET', '/.well-known/oauth-authorization-server');
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal(res.body.issuer, ISSUER);
      assert.equal(res.body.token_endpoint, `${ISSUER}/oauth2/token`);
      assert.equal(res.body.jwks_uri, `${ISSUER}/.well-known/jwks.json`);
      assert.ok(res.body.grant_types_supported.includes('client_credentials'));
      assert.ok(res.body.token_endpoint_auth_methods_supported.includes('client_secret_post'));
      assert.ok(res.body.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    });
  });
});
