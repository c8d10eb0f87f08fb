import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
}

/** A real upstream: echoes what it received, streams slowly on /stream, stalls on /slow. */
async function startUpstream(): Promise<{ server: Server; url: string; seen: Seen[]; release: () => void }> {
  const seen: Seen[] = [];
  let release = () => {};
  const server = createServer(async (req, res) => {
    let bodyBytes = 0;
    for await (const chunk of req) bodyBytes += (chunk as Buffer).length;
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes });
    if (req.url?.endsWith('/slow')) return; // never answers
    if (req.url?.endsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close', 'keep-alive': 'timeout=5', 'x-upstream': 'yes' });
      res.write('first chunk\n');
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end('last chunk\n');
      return;
    }
    res.writeHead(req.url?.endsWith('/unavailable') ? 503 : 200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(JSON.stringify({ path: req.url, bodyBytes }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, seen, release: () => release() };
}

describe('gateway', () => {
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let token: string;
  let narrowToken: string;
  let app: { appId: number; orgId: number; clientId: string };
  let closedPort: number;

  before(async () => {
    upstream = await startUpstream();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const file = path.join(tempDir(), 'routes.json');
    writeFileSync(
      file,
      JSON.stringify([
        { prefix: '/orders', upstream: `${upstream.url}/api`, scopes: ['orders:read'] },
        { prefix: '/slow', upstream: upstream.url, timeout_ms: 300 },
        { prefix: '/down', upstream: `http://127.0.0.1:${closedPort}` },
      ]),
    );
    server = await startTestServer({ PORTCULLIS_ROUTES: file });
    const cred = await server.newCredential({ scopes: ['orders:read', 'other'] });
    app = cred;
    token = await server.accessToken(cred.clientId, cred.clientSecret);
    const narrow = await server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret, scope: 'other' });
    narrowToken = narrow.body.access_token;
  });
  after(async () => {
    upstream.release();
    await server.stop();
    await new Promise((resolve) => upstream.server.close(resolve));
    upstream.server.closeAllConnections();
  });

  test('a valid token is proxied with the token removed and the identity headers added', async () => {
    const res = await fetch(`${server.url}/orders/42?expand=lines`, {
      headers: {
        authorization: `Bearer ${token}`,
        'x-portcullis-application': '999',
        'x-portcullis-scopes': 'admin',
        'x-custom': 'kept',
      },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-upstream'), 'yes');
    assert.match(res.headers.get('via') ?? '', /portcullis/);
    assert.deepEqual(await res.json(), { path: '/api/42?expand=lines', bodyBytes: 0 });
    const seen = upstream.seen.at(-1) as Seen;
    assert.equal(seen.headers.authorization, undefined, 'the token never reaches the upstream');
    assert.equal(seen.headers['x-portcullis-application'], String(app.appId), 'a client cannot spoof the identity headers');
    assert.equal(seen.headers['x-portcullis-organization'], String(app.orgId));
    assert.equal(seen.headers['x-portcullis-client'], app.clientId);
    assert.equal(seen.headers['x-portcullis-scopes'], 'orders:read other');
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.match(String(seen.headers.via), /1\.1 portcullis/);
  });

  test('hop-by-hop headers are not forwarded, in either direction (RFC 9110 §7.6.1)', async () => {
    const status = await new Promise<{ status: number; headers: IncomingMessage['headers'] }>((resolve, reject) => {
      const url = new URL(`${server.url}/orders/stream`);
      const req = httpRequest(url, {
        headers: {
          authorization: `Bearer ${token}`,
          connection: 'keep-alive, x-drop-me',
          'x-drop-me': '1',
          'keep-alive': 'timeout=9',
          'proxy-authorization': 'Basic eDp5',
        },
      });
      req.on('response', (res) => {
        res.once('data', () => {
          upstream.release();
        });
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status.status, 200);
    assert.notEqual(status.headers.connection, 'close', "the upstream's Connection: close is not passed on");
    assert.notEqual(status.headers['keep-alive'], 'timeout=5', "the upstream's Keep-Alive is not passed on");
    const seen = upstream.seen.at(-1) as Seen;
    assert.equal(seen.headers['x-drop-me'], undefined, 'a field named in Connection is dropped');
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.notEqual(seen.headers['keep-alive'], 'timeout=9');
  });

  test('response bodies stream: the first chunk arrives before the upstream has finished', async () => {
    const res = await fetch(`${server.url}/orders/stream`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), 'first chunk\n', 'received while the upstream still holds the rest');
    upstream.release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.equal(rest, 'last chunk\n');
  });

  test('request bodies stream to the upstream whole, whatever their size or type', async () => {
    const size = 5 * 1024 * 1024; // far above the server's JSON body limit
    const chunk = Buffer.alloc(64 * 1024, 120);
    const body = new ReadableStream({
      start(controller) {
        for (let sent = 0; sent < size; sent += chunk.length) controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await fetch(`${server.url}/orders/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { path: '/api/upload', bodyBytes: size });
    const json = await fetch(`${server.url}/orders/x`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"not": "parsed by the gateway"',
    });
    assert.equal(json.status, 200, 'a body the gateway cannot parse is still passed through');
  });

  test('a missing or bad token gets the same 401 and never reaches the upstream', async () => {
    const before = upstream.seen.length;
    for (const headers of [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Bearer ${token.slice(0, -2)}xx` },
      { authorization: `Bearer pct_${'A'.repeat(49)}` },
    ]) {
      const res = await fetch(`${server.url}/orders/1`, { headers });
      assert.equal(res.status, 401);
      assert.equal(await res.text(), UNAUTHORIZED);
    }
    assert.equal(upstream.seen.length, before);
  });

  test("a valid token without the route's scopes gets 403 insufficient_scope", async () => {
    const res = await fetch(`${server.url}/orders/1`, { headers: { authorization: `Bearer ${narrowToken}` } });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="orders:read"/);
  });

  test('an upstream that is down is 502, one that is slow is 504, with a clear body', async () => {
    const down = await fetch(`${server.url}/down/anything`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(down.status, 502);
    const e = ((await down.json()) as any).errors[0];
    assert.equal(e.type, 'availability');
    assert.equal(e.code, 'upstream-unavailable');
    assert.match(e.detail, /upstream of \/down/);
    const slow = await fetch(`${server.url}/slow/slow`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(slow.status, 504);
    assert.equal(((await slow.json()) as any).errors[0].code, 'upstream-timeout');
    const unavailable = await fetch(`${server.url}/orders/unavailable`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(unavailable.status, 503, "an upstream's own error status is passed through, not retried");
  });

  test('paths that climb out of the prefix are refused, and paths outside every route are 404', async () => {
    // Raw requests: fetch would resolve the dot segments itself.
    const raw = (target: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${server.url}${target}`, { headers: { authorization: `Bearer ${token}` } });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    const before = upstream.seen.length;
    // Dot segments are resolved before routing (so the path is /secret, under no route)…
    for (const target of ['/orders/%2e%2e/secret', '/orders/../secret']) assert.equal(await raw(target), 404, target);
    // …and encoded ones that the upstream could resolve later are refused.
    for (const target of ['/orders/a%2F..%2F..%2Fsecret', '/orders/%5c..%5csecret']) assert.equal(await raw(target), 400, target);
    assert.equal(upstream.seen.length, before);
    assert.equal((await fetch(`${server.url}/ordersX/1`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
    const admin = await fetch(`${server.url}/admin/v1/nothing-here`);
    assert.equal(admin.status, 401, 'the operator API keeps its own answers');
  });

  test('operators add and remove routes through the operator API; file routes are read-only', async () => {
    const created = await server.admin('POST', '/gateway/routes', { prefix: '/inventory', upstream: `${upstream.url}/inv`, scopes: [] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.source, 'api');
    const res = await fetch(`${server.url}/inventory/7`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).path, '/inv/7');
    const list = (await server.admin('GET', '/gateway/routes')).body;
    assert.deepEqual(
      list.map((r: any) => `${r.source} ${r.prefix}`),
      ['file /down', 'api /inventory', 'file /orders', 'file /slow'],
    );
    for (const [body, detail] of [
      [{ prefix: '/orders', upstream: upstream.url }, /declared in PORTCULLIS_ROUTES/],
      [{ prefix: '/inventory', upstream: upstream.url }, /exists already/],
      [{ prefix: '/admin/x', upstream: upstream.url }, /overlaps \/admin/],
      [{ prefix: 'no-slash', upstream: upstream.url }, /prefix must be a path/],
      [{ prefix: '/ftp', upstream: 'ftp://x' }, /http or https/],
    ] as const) {
      const bad = await server.admin('POST', '/gateway/routes', body);
      assert.ok(bad.status === 400 || bad.status === 409, JSON.stringify(bad.body));
      assert.match(bad.body.errors[0].detail, detail);
    }
    const deleted = await server.admin('DELETE', `/gateway/routes/${created.body.id}`);
    assert.equal(deleted.status, 200);
    assert.equal((await fetch(`${server.url}/inventory/7`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
    const audit = (await server.admin('GET', '/audit-events?limit=2')).body.map((e: any) => e.action);
    assert.deepEqual(audit, ['gateway_route.deleted', 'gateway_route.created']);
  });
});

describe('gateway configuration', () => {
  test('a bad PORTCULLIS_ROUTES file stops the start with an error naming the variable', () => {
    const dir = tempDir();
    const cases: [string, RegExp][] = [
      ['{ not json', /PORTCULLIS_ROUTES: .* is not valid JSON/],
      ['{"x": 1}', /PORTCULLIS_ROUTES: .* must hold a JSON array/],
      ['[{"prefix": "/a", "upstream": "nope"}]', /PORTCULLIS_ROUTES: route 0 in .*: upstream must be an absolute http or https URL/],
      ['[{"prefix": "/a", "upstream": "http://x"}, {"prefix": "/a", "upstream": "http://y"}]', /prefix \/a is declared twice/],
      ['[{"prefix": "/oauth2", "upstream": "http://x"}]', /overlaps \/oauth2/],
    ];
    for (const [content, message] of cases) {
      const file = path.join(dir, 'routes.json');
      writeFileSync(file, content);
      assert.throws(
        () => loadConfig({ PORTCULLIS_ROUTES: file }),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
        content,
      );
    }
    assert.throws(() => loadConfig({ PORTCULLIS_ROUTES: path.join(dir, 'missing.json') }), /PORTCULLIS_ROUTES: cannot read .*ENOENT/);
  });
});
