// Property-based hostile input (fast-check): generated bodies, headers, query strings and tokens
// thrown at the token endpoint, /me, the delivery API and the operator API over raw TCP, so odd
// bytes, repeated headers and odd framings reach the server as sent. Every answer must be under
// 500, arrive within a bounded time, and have the documented shape; the server must stay up.
// fast-check prints the seed and the shrunk counterexample of any failure.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import fc from 'fast-check';
import { ADMIN_TOKEN, startTestServer, type TestServer } from './helpers/server.js';
import { fieldValue, type RawRequest, type RawResponse, rawRequest } from './helpers/raw-http.js';

// The failing assertion goes into the report next to the seed and the shrunk counterexample.
fc.configureGlobal({ includeErrorInReport: true });

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';
const REQUEST_BOUND_MS = 5_000;

const tried: Record<string, number> = { 'token endpoint': 0, '/me': 0, delivery: 0, 'operator API': 0, 'any route': 0 };
let headerTooLarge = 0;
const statuses: Record<string, Record<number, number>> = {};

after(() => {
  const total = Object.values(tried).reduce((a, b) => a + b, 0);
  const each = Object.entries(tried)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  process.stdout.write(`# hostile inputs tried: ${total} (${each}); refused by the HTTP layer with 431: ${headerTooLarge}\n`);
  process.stdout.write(`# statuses seen: ${JSON.stringify(statuses)}\n`);
});

async function send(server: TestServer, what: string, req: RawRequest): Promise<RawResponse> {
  tried[what] = (tried[what] ?? 0) + 1;
  const res = await rawRequest(server.url, { timeoutMs: REQUEST_BOUND_MS, ...req });
  assert.ok(res.status >= 100 && res.status < 500, `${what}: status ${res.status} ${res.text.slice(0, 300)}`);
  if (res.status === 431) headerTooLarge++;
  const seen = statuses[what] ?? {};
  seen[res.status] = (seen[res.status] ?? 0) + 1;
  statuses[what] = seen;
  return res;
}

async function assertAlive(server: TestServer): Promise<void> {
  const res = await rawRequest(server.url, { method: 'GET', target: '/healthz' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { status: 'ok' });
}

/** The operator API's error shape: {"errors":[{traceId,type,code,title,detail}]}, all strings. */
function assertApiErrors(res: RawResponse, what: string): void {
  const body = res.json as any;
  assert.ok(body && Array.isArray(body.errors) && body.errors.length === 1, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
  const [e] = body.errors;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'detail', 'title', 'traceId', 'type'], `${what}: ${res.text.slice(0, 300)}`);
  for (const k of Object.keys(e)) assert.equal(typeof e[k], 'string', `${what}: ${k}`);
}

function assertExactUnauthorized(res: RawResponse, what: string): void {
  assert.equal(res.status, 401, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.equal(res.text, UNAUTHORIZED, what);
}

// ---- generators shared by the suites ----------------------------------------------------------

const buf = (s: string) => Buffer.from(s, 'utf8');

/** One piece of a form-encoded name or value: plain, validly or invalidly escaped, raw bytes, or huge. */
const formPiece = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 24 }).map(buf) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => buf(encodeURIComponent(s))) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom('%', '%G0', '%2', '%zz', '%FF', '%C3%28', '%ED%A0%80', '%F4%90%80%80', '%00', '+', '%2B', '%25', '&', '=', '==', '%26%3D')
      .map(buf),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map(buf) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => Buffer.alloc(n, 'x')) },
);
const formText = fc.array(formPiece, { maxLength: 3 }).map((parts) => Buffer.concat(parts));

/** A form body from pairs (names may repeat), or the occasional stream of arbitrary bytes. */
function formBody(knownNames: string[], nearValues: string[]) {
  const name = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...knownNames).map(buf) }, { weight: 1, arbitrary: formText });
  const value = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...nearValues).map((v) => buf(encodeURIComponent(v))) }, { weight: 2, arbitrary: formText });
  const pair = fc.tuple(name, fc.option(value, { nil: undefined })).map(([n, v]) => (v === undefined ? n : Buffer.concat([n, buf('='), v])));
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(pair, { maxLength: 8 }).map((pairs) => Buffer.concat(pairs.flatMap((p, i) => (i === 0 ? [p] : [buf('&'), p])))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.integer({ min: 16 * 1024 - 8, max: 24 * 1024 }).map((n) => Buffer.alloc(n, 'a')) },
  );
}

const FORM = 'application/x-www-form-urlencoded';
const contentType = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      FORM,
      `${FORM}; charset=utf-8`,
      `${FORM};charset=ISO-8859-1`,
      'APPLICATION/X-WWW-FORM-URLENCODED',
      ` ${FORM} `,
      `${FORM},application/json`,
      'application/json',
      'text/plain',
      'multipart/form-data; boundary=xyz',
      'application/x-www-form-urlencoded-extra',
      '*/*',
      ';',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map(fieldValue) },
);

const base64url = fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b).toString('base64url'));
const jsonSegment = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
  fc
    .record(
      {
        alg: fc.constantFrom('RS256', 'none', 'HS256', 'ES256', 'EdDSA', 'rs256', ''),
        typ: fc.constantFrom('at+jwt', 'JWT', ''),
        kid: fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('../../etc/passwd', "' OR 1=1 --", '\u0000', 'x'.repeat(500))),
        jku: fc.webUrl(),
        exp: fc.oneof(fc.integer(), fc.double(), fc.string()),
      },
      { requiredKeys: [] },
    )
    .map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  base64url,
);
/** Random strings with JWT's three-segment shape, some with a JSON header and payload. */
const jwtShaped = fc
  .tuple(jsonSegment, jsonSegment, fc.oneof(base64url, fc.constant('')), fc.constantFrom('.', '..', '.'))
  .map(([h, p, s, dot]) => `${h}${dot}${p}.${s}`);

// ---- the token endpoint --------------------------------------------------------------------------

describe('hostile input: POST /oauth2/token', () => {
  let server: TestServer;
  let cred: { clientId: string; clientSecret: string };

  before(async () => {
    server = await startTestServer();
    cred = await server.newCredential({ scopes: ['read'] });
  });
  after(() => server?.stop());

  test('generated bodies, content types and Authorization headers never get a 5xx; every 4xx is a JSON {error} answer', async () => {
    const names = ['grant_type', 'client_id', 'client_secret', 'scope', 'grant_type', 'client_assertion'];
    const near = ['client_credentials', cred.clientId, cred.clientSecret, 'read', 'read write', 'password', '', cred.clientId.slice(0, -1)];
    const basicOf = (id: Buffer, secret: Buffer) => `Basic ${Buffer.concat([id, buf(':'), secret]).toString('base64')}`;
    const authorization = fc.option(
      fc.oneof(
        fc.constant(basicOf(buf(cred.clientId), buf(cred.clientSecret))),
        fc.uint8Array({ maxLength: 80 }).map((b) => `Basic ${Buffer.from(b).toString('base64')}`),
        fc.tuple(fc.oneof(fc.constant(buf(cred.clientId)), formText), fc.oneof(fc.constant(buf(cred.clientSecret)), formText)).map(([i, s]) => basicOf(i, s)),
        fc
          .tuple(fc.constantFrom('Basic', 'basic', 'BASIC', 'Basic  ', 'Bearer', 'Digest', ''), fc.string({ unit: 'binary-ascii', maxLength: 80 }))
          .map(([s, v]) => `${s} ${v}`),
        jwtShaped.map((t) => `Bearer ${t}`),
        fc.uint8Array({ maxLength: 100 }).map(fieldValue),
      ),
      { nil: undefined, freq: 2 },
    );
    const framing = fc.constantFrom<RawRequest['framing']>('length', 'length', 'length', 'chunked');
    /** A body one or two steps from a good request: the right parameters, some replaced or extended. */
    const nearValidBody = fc
      .tuple(
        fc.oneof({ weight: 3, arbitrary: fc.constant(buf(cred.clientSecret)) }, { weight: 1, arbitrary: formText }),
        fc.option(formText, { nil: undefined }),
        fc.option(fc.tuple(formText, formText), { nil: undefined }),
        fc.boolean(),
      )
      .map(([secret, scope, extra, withId]) => {
        const pairs = [buf('grant_type=client_credentials')];
        if (withId) pairs.push(buf(`client_id=${cred.clientId}`), Buffer.concat([buf('client_secret='), secret]));
        if (scope !== undefined) pairs.push(Buffer.concat([buf('scope='), scope]));
        if (extra !== undefined) pairs.push(Buffer.concat([extra[0], buf('='), extra[1]]));
        return Buffer.concat(pairs.flatMap((p, i) => (i === 0 ? [p] : [buf('&'), p])));
      });
    const body = fc.oneof({ weight: 1, arbitrary: formBody(names, near) }, { weight: 1, arbitrary: nearValidBody });
    const type = fc.option(fc.oneof({ weight: 2, arbitrary: fc.constant(FORM) }, { weight: 1, arbitrary: contentType }), { nil: undefined, freq: 10 });

    await fc.assert(
      fc.asyncProperty(body, type, authorization, framing, async (body, type, auth, how) => {
        const headers: [string, string | Buffer][] = [];
        if (type !== undefined) headers.push(['Content-Type', type]);
        if (auth !== undefined) headers.push(['Authorization', typeof auth === 'string' ? fieldValue(buf(auth)) : auth]);
        const res = await send(server, 'token endpoint', { method: 'POST', target: '/oauth2/token', headers, body, framing: how });
        // Node refuses header sections over 16 KiB before any route runs.
        if (res.status === 431) return assert.ok((auth?.length ?? 0) > 8192);
        const json = res.json as any;
        assert.ok(json && typeof json === 'object' && !Array.isArray(json), `not a JSON object: ${res.status} ${res.text.slice(0, 200)}`);
        if (res.status === 200) {
          assert.equal(typeof json.access_token, 'string');
          assert.equal(json.token_type, 'Bearer');
        } else {
          assert.ok(res.status >= 400, `status ${res.status}`);
          assert.equal(typeof json.error, 'string', res.text.slice(0, 200));
          assert.match(json.error, /^[a-z_]+$/);
          if (json.error_description !== undefined) assert.equal(typeof json.error_description, 'string');
          assert.equal(res.headers['cache-control'], 'no-store');
        }
      }),
      { numRuns: 1000 },
    );
    await assertAlive(server);
  });

  test('the real credential still gets a token after the barrage', async () => {
    assert.equal(typeof (await server.accessToken(cred.clientId, cred.clientSecret)), 'string');
  });
});

// ---- /me --------------------------------------------------------------------------------------------

describe('hostile input: GET /me and /{version}/{service}/me', () => {
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startTestServer();
    const cred = await server.newCredential();
    token = await server.accessToken(cred.clientId, cred.clientSecret);
  });
  after(() => server?.stop());

  /**
   * Whether `value` carries the real token: its signing input unchanged and a signature that
   * decodes to the same bytes (base64url's unused low bits in the last character are ignored).
   */
  const carriesRealToken = (value: string): boolean => {
    const cut = token.lastIndexOf('.');
    const at = value.indexOf(token.slice(0, cut + 1));
    if (at === -1) return false;
    const signature = value.slice(at + cut + 1).trim();
    return /^[A-Za-z0-9_-]+$/.test(signature) && Buffer.from(signature, 'base64url').equals(Buffer.from(token.slice(cut + 1), 'base64url'));
  };

  test('generated Authorization headers get exactly 401 {"Status Message":"Unauthorized"} unless they carry the real token', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.= \t+/';
    /** The real token with a few random edits: replace, delete, insert, truncate. */
    const mutated = fc
      .array(fc.tuple(fc.constantFrom('replace', 'delete', 'insert', 'truncate'), fc.nat(), fc.constantFrom(...alphabet)), { minLength: 1, maxLength: 3 })
      .map((edits) => {
        let t = token;
        for (const [op, n, c] of edits) {
          const i = n % (t.length + 1);
          if (op === 'replace') t = t.slice(0, i) + c + t.slice(i + 1);
          else if (op === 'delete') t = t.slice(0, i) + t.slice(i + 1);
          else if (op === 'insert') t = t.slice(0, i) + c + t.slice(i);
          else t = t.slice(0, i);
        }
        return t;
      });
    const credential = fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom(token, ` ${token} `, `${token}\t`) },
      { weight: 3, arbitrary: jwtShaped },
      { weight: 3, arbitrary: mutated },
      { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 200 }) },
      { weight: 1, arbitrary: fc.integer({ min: 8_000, max: 12_000 }).map((n) => `${token}${'A'.repeat(n)}`) },
    );
    const scheme = fc.constantFrom('Bearer ', 'bearer ', 'BEARER ', 'Bearer  ', 'Bearer\t', 'Basic ', 'Token ', '', 'Bearer');
    const header = fc.tuple(scheme, credential).map(([s, c]) => fieldValue(buf(`${s}${c}`)));
    const path = fc.constantFrom('/me', '/2026-01/retail-media/me', '/preview/a-b/me', '/me/', '//me');

    await fc.assert(
      fc.asyncProperty(fc.array(header, { maxLength: 2 }), path, async (values, target) => {
        const res = await send(server, '/me', { method: 'GET', target, headers: values.map((v) => ['Authorization', v] as [string, Buffer]) });
        // Node keeps the first of repeated Authorization headers; the value considered is that one.
        const considered = values[0]?.toString('latin1').trim();
        // Node refuses header sections over 16 KiB before any route runs (the token is then far over 8 KiB).
        if (res.status === 431) return assert.ok(values.reduce((n, v) => n + v.length, 0) > 8192);
        if (res.status === 200) {
          assert.ok(considered !== undefined && carriesRealToken(considered), `accepted without the real token: ${considered?.slice(0, 120)}`);
          assert.equal((res.json as any).data.type, 'Application');
        } else {
          assertExactUnauthorized(res, `Authorization ${considered?.slice(0, 80)}`);
          assert.match(res.headers['www-authenticate'] ?? '', /error="invalid_token"/);
        }
      }),
      { numRuns: 1000 },
    );
    await assertAlive(server);
    assert.equal((await server.me(token)).status, 200, 'the real token still works');
  });
});

// ---- the delivery API ------------------------------------------------------------------------------

describe('hostile input: GET /delivery/retailmedia', () => {
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startTestServer();
    const cred = await server.newCredential({ scopes: ['retail-media'] });
    token = await server.accessToken(cred.clientId, cred.clientSecret);
    assert.equal((await server.admin('PUT', '/partners/12345', { name: 'Open', rate_limit_per_minute: 1_000_000 })).status, 201);
    assert.equal((await server.admin('PUT', '/partners/777', { name: 'Closed', require_token: true, rate_limit_per_minute: 1_000_000 })).status, 201);
    assert.equal((await server.admin('POST', '/partners/777/applications', { application_id: cred.appId })).status, 201);
    const placement = await server.admin('PUT', '/partners/12345/placements/viewHome/Top', {
      format: 'sponsored_products',
      products: [{ ProductId: 'sku-1', ProductName: 'Kettle', Price: '19.99' }],
      rendering: { title: 'Sponsored' },
    });
    assert.equal(placement.status, 201, JSON.stringify(placement.body));
  });
  after(() => server?.stop());

  test('generated query strings, GET bodies and tokens never get a 5xx: 200 OK, the exact 401, or a 4xx in the errors shape', async () => {
    const values: Record<string, string[]> = {
      'criteo-partner-id': ['12345', '777', '0', '-1', '99999999999999999999', '12345.0', ' 12345', '1e3', '424242'],
      'retailer-visitor-id': ['visitor-1', '', ' ', 'v'.repeat(101), 'a\u0000b', '\u2028'],
      'event-type': ['viewHome', 'viewSearchResult', 'viewCategory', 'viewSearchBar', 'viewItem', 'viewhome', '__proto__', 'constructor', 'toString', ''],
      'page-id': ['viewHome_API_desktop', 'a b', 'x'.repeat(101), '../..', ''],
      keywords: ['kettle', '', 'k'.repeat(501)],
      category: ['kitchen', ''],
      'page-uid': ['uid-1'],
      item: ['sku-1'],
      environment: ['d', 'm', 'x1', 'e'.repeat(21)],
      'page-number': ['1', '0', '1001', '-1', '1.5', '9'.repeat(17), 'NaN'],
      'list-size': ['1', '100', '101', '0', 'abc'],
      'customer-id': ['c-1', 'c'.repeat(101)],
    };
    const names = Object.keys(values);
    const nearPair = fc
      .constantFrom(...names)
      .chain((n) => fc.tuple(fc.constant(n), fc.constantFrom(...(values[n] as string[]))))
      .map(([n, v]) => buf(`${n}=${encodeURIComponent(v)}`));
    const randomPair = fc.tuple(formText, formText).map(([n, v]) => Buffer.concat([n, buf('='), v]));
    const pairs = fc.array(fc.oneof({ weight: 4, arbitrary: nearPair }, { weight: 1, arbitrary: randomPair }), { maxLength: 10 });
    const valid = fc
      .constantFrom('12345', '777')
      .map((p) => [`criteo-partner-id=${p}`, 'retailer-visitor-id=v1', 'event-type=viewHome', 'page-id=viewHome_API_desktop'].map(buf));
    /** A request target must not carry bytes the HTTP parser refuses; those become escapes. */
    const toTarget = (query: Buffer) => {
      let out = '';
      for (const b of query) out += b > 0x20 && b < 0x7f && b !== 0x23 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
      return out;
    };
    const join = (list: Buffer[]) => Buffer.concat(list.flatMap((p, i) => (i === 0 ? [p] : [buf('&'), p])));
    const fewPairs = fc.array(fc.oneof({ weight: 4, arbitrary: nearPair }, { weight: 1, arbitrary: randomPair }), { maxLength: 2 });
    const query = fc
      .oneof(
        { weight: 2, arbitrary: pairs },
        { weight: 3, arbitrary: fc.tuple(valid, fewPairs).map(([a, b]) => [...a, ...b]) },
        { weight: 1, arbitrary: valid },
      )
      .map(join);
    const authorization = fc.option(
      fc.oneof(
        fc.constant(`Bearer ${token}`),
        fc.constantFrom('Bearer pct_', 'Bearer pct_0000000000000000000000000000000000000000', 'Bearer ', 'Basic Zm9vOmJhcg=='),
        fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => `Bearer pct_${s}`),
        jwtShaped.map((t) => `Bearer ${t}`),
      ),
      { nil: undefined },
    );
    const getBody = fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.tuple(pairs.map(join), fc.option(contentType, { nil: undefined })) },
    );

    await fc.assert(
      fc.asyncProperty(query, authorization, getBody, async (q, auth, withBody) => {
        const headers: [string, string | Buffer][] = [];
        if (auth !== undefined) headers.push(['Authorization', fieldValue(buf(auth))]);
        if (withBody?.[1] !== undefined) headers.push(['Content-Type', withBody[1]]);
        const target = `/delivery/retailmedia?${toTarget(q)}`;
        const res = await send(server, 'delivery', { method: 'GET', target, headers, ...(withBody ? { body: withBody[0] } : {}) });
        // A request line over 16 KiB is refused by Node's HTTP parser before any route runs.
        if (res.status === 431) return assert.ok(target.length > 8192);
        if (res.status === 200) assert.equal((res.json as any).status, 'OK');
        else if (res.status === 401) assertExactUnauthorized(res, `delivery ${target.slice(0, 120)}`);
        else {
          assert.ok(res.status >= 400, `status ${res.status}`);
          assertApiErrors(res, `delivery ${target.slice(0, 120)}`);
        }
      }),
      { numRuns: 1000 },
    );
    await assertAlive(server);
  });
});

// ---- the operator API -------------------------------------------------------------------------------

describe('hostile input: the operator API', () => {
  let server: TestServer;
  let appId: number;

  before(async () => {
    server = await startTestServer();
    appId = (await server.newCredential()).appId;
  });
  after(() => server?.stop());

  test('generated JSON bodies, ids and content types never get a 5xx; every error is {"errors":[{traceId,type,code,title,detail}]}', async () => {
    const id = fc.oneof(
      { weight: 3, arbitrary: fc.constant('APP') },
      {
        weight: 1,
        arbitrary: fc.constantFrom('0', '-1', '1.5', '99999999999999999999', '9007199254740993', 'abc', '%00', '%E2%80%A8', '1e3', 'x'.repeat(300)),
      },
      { weight: 1, arbitrary: fc.nat().map(String) },
    );
    const route = fc.tuple(
      fc.constantFrom(
        ['POST', '/organizations'],
        ['POST', '/organizations/:id/applications'],
        ['PATCH', '/applications/:id'],
        ['POST', '/applications/:id/credentials'],
        ['PATCH', '/applications/:id/credentials/pc_x'],
        ['PUT', '/partners/:id'],
        ['POST', '/partners/:id/applications'],
        ['POST', '/partners/:id/static-tokens'],
        ['PUT', '/partners/:id/placements/viewHome/Top'],
        ['PUT', '/applications/:id/rate-limit'],
        ['GET', '/audit-events?limit=:id&before=:id'],
        ['DELETE', '/applications/:id/credentials/:id'],
        ['POST', '/gateway/routes'],
        ['GET', '/organizations/:id'],
      ),
      id,
    );
    const deep = fc.tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":')).map(([n, open]) => {
      const close = open === '[' ? ']' : '}';
      return buf(`${open.repeat(n)}1${close.repeat(n)}`);
    });
    const fields = [
      'name',
      'description',
      'scopes',
      'require_token',
      'rate_limit_per_minute',
      'application_id',
      'expires_at',
      'per_minute',
      'prefix',
      'upstream',
      'products',
      'format',
    ];
    const wrongTypes = fc
      .dictionary(fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 10 })), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 })
      .map((o) => buf(JSON.stringify(o)));
    const body = fc.oneof(
      { weight: 4, arbitrary: wrongTypes },
      { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => buf(JSON.stringify(v) ?? '')) },
      { weight: 1, arbitrary: deep },
      { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((n) => buf(JSON.stringify({ name: 'n'.repeat(n) }))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('', '{', '{"name":"a",}', '{"name":"\\ud800"}', '{"constructor":{"prototype":{"x":1}}}', 'null', '"x"').map(buf),
      },
    );
    const type = fc.oneof(
      { weight: 4, arbitrary: fc.constant('application/json') },
      { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-16', 'APPLICATION/JSON', 'text/plain', FORM, 'application/jsonx', '') },
    );
    const operator = fc.oneof(
      { weight: 5, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
    );

    await fc.assert(
      fc.asyncProperty(route, body, type, operator, async ([[method, template], rawId], payload, contentType, auth) => {
        const target = `/admin/v1${template.replaceAll(':id', rawId === 'APP' ? String(appId) : rawId)}`;
        const headers: [string, string | Buffer][] = [
          ['Authorization', fieldValue(buf(auth))],
          ['Content-Type', contentType],
        ];
        const res = await send(server, 'operator API', { method, target, headers, body: payload });
        if (res.status >= 400) assertApiErrors(res, `${method} ${target.slice(0, 80)} ${payload.subarray(0, 80).toString('latin1')}`);
        else assert.ok(res.json !== undefined || res.status === 204, `${method} ${target}: ${res.status} not JSON`);
      }),
      { numRuns: 800 },
    );
    await assertAlive(server);
  });

  test('a path parameter over 512 characters (the router limit) or with a bad percent-escape gets the errors shape, not the framework body', async () => {
    const auth: [string, string][] = [['Authorization', `Bearer ${ADMIN_TOKEN}`]];
    const long = await rawRequest(server.url, { method: 'GET', target: `/admin/v1/applications/${'1'.repeat(513)}`, headers: auth });
    assert.equal(long.status, 414);
    assertApiErrors(long, 'long id');
    assert.equal((long.json as any).errors[0].code, 'path-too-long');
    const bad = await rawRequest(server.url, { method: 'GET', target: '/admin/v1/applications/%E0%A4%A', headers: auth });
    assert.equal(bad.status, 400);
    assertApiErrors(bad, 'bad escape');
    assert.equal((bad.json as any).errors[0].code, 'invalid-path');
    assert.ok(!bad.text.includes('%E0%A4%A'), 'the path is not echoed back');
  });
});

// ---- any route ------------------------------------------------------------------------------------

describe('hostile input: methods, paths and header lines on any route', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.stop());

  test('generated methods, request targets and header sets never get a 5xx and never hang', async () => {
    const method = fc.oneof(
      fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH'),
      fc.stringMatching(/^[A-Z]{1,12}$/),
    );
    const prefix = fc.constantFrom(
      '/oauth2/token',
      '/oauth2/revoke',
      '/me',
      '/2026-01/x/me',
      '/delivery/retailmedia',
      '/delivery/beacons/',
      '/admin/v1/',
      '/.well-known/',
      '/readyz',
      '/',
      '//',
      '/%2e%2e/',
      '/a%00b',
      '/%ZZ',
      '/%C0%AE',
    );
    const suffix = fc
      .array(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@/?-]{0,20}$/), fc.constantFrom('%', '%E2%82', '%FF', '..', '?a=%', '?a=1&a=2')), {
        maxLength: 4,
      })
      .map((p) => p.join(''));
    const headerName = fc.oneof(
      fc.constantFrom(
        'Authorization',
        'Content-Type',
        'Content-Length',
        'Transfer-Encoding',
        'X-Forwarded-For',
        'Cookie',
        'Accept',
        'Expect',
        'Origin',
        'X-CSRF-Token',
      ),
      fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}$/),
    );
    const header = fc
      .tuple(headerName, fc.uint8Array({ maxLength: 100 }).map(fieldValue))
      .filter(([n]) => !/^(content-length|transfer-encoding|host|connection)$/i.test(n));
    const body = fc.option(
      fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
      { nil: undefined },
    );

    await fc.assert(
      fc.asyncProperty(method, prefix, suffix, fc.array(header, { maxLength: 6 }), body, async (m, p, s, headers, payload) => {
        await send(server, 'any route', { method: m, target: p + s, headers, ...(payload ? { body: payload } : {}) });
      }),
      { numRuns: 600 },
    );
    await assertAlive(server);
  });
});
