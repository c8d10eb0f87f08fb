import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent, createServer, type IncomingMessage, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { grantsScopes } from '../src/http/bearer.js';
import { runCli, spawnServer } from './helpers/process.js';
import { ADMIN_TOKEN, MASTER_KEY, startTestServer, type TestServer, tempDir } from './helpers/server.js';
import { clearOfWindowEdge } from './helpers/windows.js';

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodyBytes: number;
}

/** A real upstream: echoes what it received, streams slowly on /stream, stalls on /slow. */
async function startUpstream(): Promise<{ server: Server; url: string; seen: Seen[]; release: () => void; abandoned: () => number }> {
  const seen: Seen[] = [];
  let release = () => {};
  let abandoned = 0;
  const server = createServer(async (req, res) => {
    if (req.url?.endsWith('/early')) {
      // Answers before reading the upload (node:http reads and drops the rest).
      seen.push({ method: req.method ?? '', url: req.url, headers: req.headers, bodyBytes: -1 });
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end('{"early":true}');
      return;
    }
    let bodyBytes = 0;
    try {
      for await (const chunk of req) bodyBytes += (chunk as Buffer).length;
    } catch {
      return; // the gateway dropped the call: its client went away
    }
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes });
    if (req.url?.endsWith('/slow')) return; // never answers
    if (req.url?.endsWith('/own-headers')) {
      res.writeHead(200, {
        'content-type': 'text/html',
        'content-security-policy': "default-src 'none'; frame-ancestors https://partner.example",
        'x-frame-options': 'SAMEORIGIN',
        'set-cookie': ['portcullis_session=stolen; Path=/', 'Portcullis_csrf=forged', 'theirs=kept; Path=/'],
      });
      res.end('<p>upstream page</p>');
      return;
    }
    if (req.url?.endsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close', 'keep-alive': 'timeout=5', 'x-upstream': 'yes' });
      res.on('close', () => {
        if (!res.writableFinished) abandoned++;
      });
      res.write('first chunk\n');
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      res.end('last chunk\n');
      return;
    }
    res.writeHead(req.url?.endsWith('/unavailable') ? 503 : 200, { 'content-type': 'application/json', 'x-upstream': 'yes', vary: 'Accept-Encoding' });
    res.end(JSON.stringify({ path: req.url, bodyBytes }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, seen, release: () => release(), abandoned: () => abandoned };
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
        {
          prefix: '/shop',
          upstream: upstream.url,
          rules: [
            { methods: ['GET', 'HEAD'], scopes: ['orders:read'] },
            { methods: ['POST', 'PUT', 'PATCH', 'DELETE'], scopes: ['orders:write'] },
          ],
        },
        { prefix: '/limited', upstream: upstream.url, rate_limit_per_minute: 2 },
        { prefix: '/browser', upstream: upstream.url, cors: { origins: ['https://app.example'], headers: ['X-Request-Id'], credentials: true } },
        { prefix: '/elsewhere', upstream: upstream.url, audience: 'https://elsewhere.example' },
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

  test('a client that leaves during a streamed answer drops the upstream call', async () => {
    const before = upstream.abandoned();
    const abort = new AbortController();
    const res = await fetch(`${server.url}/orders/stream`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
    const first = await (res.body as ReadableStream<Uint8Array>).getReader().read();
    assert.equal(new TextDecoder().decode(first.value), 'first chunk\n');
    abort.abort();
    const deadline = Date.now() + 5000;
    while (upstream.abandoned() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(upstream.abandoned(), before + 1, "the upstream's connection is closed, not left waiting");
    upstream.release();
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

  test("an upstream's answer that comes before the whole upload reaches the client, and the client can finish sending it", { timeout: 20_000 }, async () => {
    // One socket: the next request waits until the upload is sent whole.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, target: string, body?: Buffer) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(`${server.url}${target}`, {
          method,
          agent,
          headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {}) },
        });
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const early = await send('POST', '/orders/early', Buffer.alloc(4 * 1024 * 1024, 99));
      assert.equal(early.status, 413);
      assert.equal(early.text, '{"early":true}');
      const next = await send('GET', '/orders/1');
      assert.equal(next.status, 200, next.text);
    } finally {
      agent.destroy();
    }
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

  test("Expect: 100-continue gets the upstream's answer, with the whole body", async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 97); // curl adds the expectation above 1 MiB
    const answer = await new Promise<{ status: number; text: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest(`${server.url}/orders/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, expect: '100-continue', 'content-type': 'application/octet-stream', 'content-length': body.length },
      });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, continued }));
      });
      req.on('error', reject);
    });
    assert.equal(answer.continued, true, 'the client was told to send its body');
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(JSON.parse(answer.text), { path: '/api/upload', bodyBytes: body.length });
    assert.equal((upstream.seen.at(-1) as Seen).headers.expect, undefined, 'the expectation was met here, not passed on');
  });

  test("the portal's cookies and CSRF header never reach the upstream, and the upstream cannot set them", async () => {
    const res = await fetch(`${server.url}/orders/own-headers`, {
      headers: {
        authorization: `Bearer ${token}`,
        cookie: 'portcullis_session=s3ss10n; theme=dark; portcullis_csrf=c5rf',
        'x-csrf-token': 'c5rf-token',
      },
    });
    assert.equal(res.status, 200);
    const seen = upstream.seen.at(-1) as Seen;
    assert.equal(seen.headers.cookie, 'theme=dark', "only the cookies that are not the portal's");
    assert.equal(seen.headers['x-csrf-token'], undefined);
    assert.deepEqual(res.headers.getSetCookie(), ['theirs=kept; Path=/']);
    const onlyPortal = await fetch(`${server.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, cookie: 'portcullis_session=s3ss10n' } });
    assert.equal(onlyPortal.status, 200);
    assert.equal((upstream.seen.at(-1) as Seen).headers.cookie, undefined, "no Cookie field is left when every cookie was the portal's");
  });

  test("the upstream's own CSP and X-Frame-Options arrive unchanged, without the portal's security headers", async () => {
    const res = await fetch(`${server.url}/orders/own-headers`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors https://partner.example");
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(res.headers.get('referrer-policy'), null, "the portal's page headers are the portal's alone");
    assert.equal(await res.text(), '<p>upstream page</p>');
  });

  test('X-Forwarded-Host, -Proto and -For describe the client, and the upstream gets its own Host', async () => {
    const res = await fetch(`${server.url}/orders/1`, {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'evil.example' },
    });
    assert.equal(res.status, 200);
    const seen = upstream.seen.at(-1) as Seen;
    assert.equal(seen.headers['x-forwarded-host'], new URL(server.url).host, "the client's Host");
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted client cannot invent the chain');
    assert.equal(seen.headers.host, new URL(upstream.url).host);
  });

  test('per-method rules: GET with orders:read is allowed, POST without orders:write is 403', async () => {
    const get = await fetch(`${server.url}/shop/orders`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(get.status, 200);
    const before = upstream.seen.length;
    const post = await fetch(`${server.url}/shop/orders`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' });
    assert.equal(post.status, 403);
    assert.match(post.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="orders:write"/);
    assert.equal(upstream.seen.length, before, 'a refused call never reaches the upstream');
  });

  test("a route's own rate limit counts calls on that route only", async () => {
    const call = (prefix: string) => fetch(`${server.url}${prefix}/x`, { headers: { authorization: `Bearer ${token}` } });
    await clearOfWindowEdge(60_000, 5_000); // the three calls in one minute-long window
    assert.equal((await call('/limited')).status, 200);
    assert.equal((await call('/limited')).status, 200);
    const third = await call('/limited');
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as any).errors[0].code, 'rate-limit-exceeded');
    assert.equal((await call('/orders')).status, 200, 'another route keeps its own bucket');
  });

  test('a CORS preflight is answered before authentication (never 401), and allowed origins can read answers', async () => {
    const preflight = await fetch(`${server.url}/browser/items`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization.*X-Request-Id/);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
    const stranger = await fetch(`${server.url}/browser/items`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(stranger.status, 204);
    assert.equal(stranger.headers.get('access-control-allow-origin'), null);
    const noToken = await fetch(`${server.url}/browser/items`, { headers: { origin: 'https://app.example' } });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('access-control-allow-origin'), 'https://app.example', 'the page can read why it was refused');
    const ok = await fetch(`${server.url}/browser/items`, { headers: { origin: 'https://app.example', authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(ok.headers.get('vary'), 'Accept-Encoding, Origin', "the upstream's Vary is kept");
  });

  test('a route with an audience refuses tokens not issued for that resource (RFC 8707)', async () => {
    const res = await fetch(`${server.url}/elsewhere/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401);
    assert.equal(await res.text(), UNAUTHORIZED);
  });

  test('a WebSocket upgrade is refused with 501 upgrade-not-supported, never passed on as a plain request', async () => {
    const before = upstream.seen.length;
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${server.url}/orders/socket`, {
        headers: {
          authorization: `Bearer ${token}`,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status.status, 501);
    assert.equal(JSON.parse(status.body).errors[0].code, 'upgrade-not-supported');
    assert.equal(upstream.seen.length, before);
  });

  test('refusals are counted by checkpoint and reason, static tokens included', async () => {
    await fetch(`${server.url}/orders/1`, { headers: { authorization: `Bearer pct_${'A'.repeat(49)}` } });
    await fetch(`${server.url}/orders/1`);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /portcullis_bearer_refusals_total\{checkpoint="gateway",reason="static_token_not_accepted"\} [1-9]/);
    assert.match(metrics, /portcullis_bearer_refusals_total\{checkpoint="gateway",reason="missing"\} [1-9]/);
    assert.match(metrics, /portcullis_bearer_refusals_total\{checkpoint="gateway",reason="insufficient_scope"\} [1-9]/);
  });

  test('the decision endpoint applies the same rules, for nginx (X-Original-*) and Envoy (method and path)', async () => {
    const ask = (path: string, init: RequestInit) => fetch(`${server.url}${path}`, init);
    const nginxGet = await ask('/decision', {
      headers: { authorization: `Bearer ${token}`, 'x-original-method': 'GET', 'x-original-uri': '/shop/orders?x=1' },
    });
    assert.equal(nginxGet.status, 200);
    assert.equal(nginxGet.headers.get('x-portcullis-client'), app.clientId);
    assert.equal(nginxGet.headers.get('x-portcullis-application'), String(app.appId));
    const nginxPost = await ask('/decision', { headers: { authorization: `Bearer ${token}`, 'x-original-method': 'POST', 'x-original-uri': '/shop/orders' } });
    assert.equal(nginxPost.status, 403);
    assert.match(nginxPost.headers.get('www-authenticate') ?? '', /insufficient_scope/);
    const envoyGet = await ask('/decision/shop/orders', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(envoyGet.status, 200);
    const envoyPost = await ask('/decision/shop/orders', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    assert.equal(envoyPost.status, 403, 'a body-less check with a JSON content type is still decided');
    const none = await ask('/decision/shop/orders', {});
    assert.equal(none.status, 401);
    assert.equal(await none.text(), UNAUTHORIZED);
    const unrouted = await ask('/decision', { headers: { authorization: `Bearer ${token}`, 'x-original-method': 'GET', 'x-original-uri': '/nowhere' } });
    assert.equal(unrouted.status, 403);
    assert.equal(((await unrouted.json()) as any).errors[0].code, 'no-route');
    const bad = await ask('/decision', { headers: { authorization: `Bearer ${token}`, 'x-original-method': 'BREW', 'x-original-uri': '/shop' } });
    assert.equal(bad.status, 400);
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
      ['file /browser', 'file /down', 'file /elsewhere', 'api /inventory', 'file /limited', 'file /orders', 'file /shop', 'file /slow'],
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

describe('gateway request logs', () => {
  test('a proxied request costs one log line; PORTCULLIS_LOG_SAMPLE=0 keeps only refusals and errors', async () => {
    const upstream = await startUpstream();
    const file = path.join(tempDir(), 'routes.json');
    writeFileSync(file, JSON.stringify([{ prefix: '/orders', upstream: upstream.url }]));
    for (const sample of ['1', '0']) {
      const lines: Array<Record<string, any>> = [];
      const server = await startTestServer({ PORTCULLIS_ROUTES: file, LOG_LEVEL: 'info', PORTCULLIS_LOG_SAMPLE: sample }, { logLines: lines });
      try {
        const cred = await server.newCredential();
        const token = await server.accessToken(cred.clientId, cred.clientSecret);
        lines.length = 0;
        assert.equal((await fetch(`${server.url}/orders/1?secret=x`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
        assert.equal((await fetch(`${server.url}/orders/1`)).status, 401);
        await new Promise((r) => setTimeout(r, 50)); // the line is written when the response finishes
        const parsed = lines;
        const proxied = parsed.filter((l) => l.res?.statusCode === 200);
        const refused = parsed.filter((l) => l.res?.statusCode === 401);
        assert.equal(proxied.length, sample === '1' ? 1 : 0, JSON.stringify(parsed));
        assert.equal(refused.length, 1, 'a refusal is always logged');
        assert.equal(refused[0]!.refusal, 'missing');
        assert.equal(parsed.length, proxied.length + refused.length, 'nothing else is logged for them');
        if (sample === '1') {
          assert.equal(proxied[0]!.req.url, '/orders/1', 'no query string');
          assert.equal(proxied[0]!.caller.client_id, cred.clientId);
        }
      } finally {
        await server.stop();
      }
    }
    upstream.release();
    await new Promise((resolve) => upstream.server.close(resolve));
    upstream.server.closeAllConnections();
  });
});

test('scopes are granted by whole, space-separated scope names only', () => {
  const cases: Array<[string | undefined, string[], boolean]> = [
    ['orders:read other', ['orders:read'], true],
    ['orders:read other', ['other', 'orders:read'], true],
    ['orders:reader', ['orders:read'], false],
    ['xorders:read', ['orders:read'], false],
    ['orders:read', ['orders:read', 'orders:write'], false],
    ['a orders:readx orders:read', ['orders:read'], true],
    ['', ['orders:read'], false],
    [undefined, ['orders:read'], false],
    [undefined, [], true],
    ['anything', [], true],
  ];
  for (const [scope, needed, granted] of cases) assert.equal(grantsScopes(scope, needed), granted, `${scope} / ${needed}`);
});

describe('gateway requests as operators see them', () => {
  test('behind a trusted proxy, the client address, Host and protocol follow the rules of every other request', async () => {
    const upstream = await startUpstream();
    const file = path.join(tempDir(), 'routes.json');
    writeFileSync(file, JSON.stringify([{ prefix: '/orders', upstream: upstream.url }]));
    const lines: Array<Record<string, any>> = [];
    const server = await startTestServer(
      { PORTCULLIS_ROUTES: file, PORTCULLIS_TRUST_PROXY: '1', LOG_LEVEL: 'info', PORTCULLIS_LOG_SAMPLE: '1' },
      { logLines: lines },
    );
    try {
      const cred = await server.newCredential();
      const token = await server.accessToken(cred.clientId, cred.clientSecret);
      const forwarded = { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-host': 'api.example', 'x-forwarded-proto': 'https' };
      lines.length = 0;
      assert.equal((await fetch(`${server.url}/orders/1`, { headers: { ...forwarded, authorization: `Bearer ${token}` } })).status, 200);
      const seen = upstream.seen.at(-1) as Seen;
      assert.equal(seen.headers['x-forwarded-for'], '198.51.100.7, 127.0.0.1', "the trusted proxy's chain is kept, its peer appended");
      assert.equal(seen.headers['x-forwarded-host'], 'api.example');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal((await fetch(`${server.url}/not-a-route`, { headers: forwarded })).status, 404);
      await new Promise((r) => setTimeout(r, 50));
      const proxied = lines.find((l) => l.req?.url === '/orders/1');
      const fastify = lines.find((l) => l.req?.url === '/not-a-route');
      assert.ok(proxied && fastify, JSON.stringify(lines));
      assert.equal(proxied.req.remoteAddress, '198.51.100.7');
      assert.deepEqual(
        { remoteAddress: proxied.req.remoteAddress, host: proxied.req.host },
        { remoteAddress: fastify.req.remoteAddress, host: fastify.req.host },
        'the gateway and Fastify name the same client',
      );
      assert.equal(typeof proxied.reqId, 'string');
      assert.equal(typeof proxied.responseTime, 'number');
    } finally {
      await server.stop();
      upstream.release();
      await new Promise((resolve) => upstream.server.close(resolve));
      upstream.server.closeAllConnections();
    }
  });

  test('a proxied request is measured under its prefix; an upload the client abandons is no server error', async () => {
    const upstream = await startUpstream();
    const file = path.join(tempDir(), 'routes.json');
    writeFileSync(file, JSON.stringify([{ prefix: '/orders', upstream: upstream.url }]));
    const lines: Array<Record<string, any>> = [];
    const server = await startTestServer({ PORTCULLIS_ROUTES: file, LOG_LEVEL: 'info', PORTCULLIS_LOG_SAMPLE: '1' }, { logLines: lines });
    try {
      const cred = await server.newCredential();
      const token = await server.accessToken(cred.clientId, cred.clientSecret);
      assert.equal((await fetch(`${server.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await fetch(`${server.url}/orders/1`)).status, 401);
      // Half a body, then the client goes away.
      await new Promise<void>((resolve) => {
        const req = httpRequest(`${server.url}/orders/upload`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 1024 * 1024 },
        });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(64 * 1024, 98));
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 300);
      });
      await new Promise((r) => setTimeout(r, 300));
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /portcullis_http_request_duration_seconds_count\{method="GET",route="\/orders",status_class="2xx"\} 1\n/);
      assert.match(metrics, /portcullis_http_request_duration_seconds_count\{method="GET",route="\/orders",status_class="4xx"\} 1\n/);
      assert.match(metrics, /portcullis_client_aborts_total\{route="\/orders"\} 1\n/);
      assert.doesNotMatch(metrics, /route="\/orders",status_class="5xx"/);
      assert.deepEqual(
        lines.filter((l) => l.level >= 40),
        [],
        'an abandoned upload is neither a warning nor an error',
      );
    } finally {
      await server.stop();
      upstream.release();
      await new Promise((resolve) => upstream.server.close(resolve));
      upstream.server.closeAllConnections();
    }
  });
});

describe('gateway routes from the shell', () => {
  test('portcullis admin routes add/list/remove manage routes, and SIGHUP re-reads PORTCULLIS_ROUTES (a bad file keeps the routes)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'routes.json');
    writeFileSync(file, JSON.stringify([{ prefix: '/alpha', upstream: 'http://127.0.0.1:9/a' }]));
    const server = await spawnServer({
      PORTCULLIS_DATA_DIR: dir,
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      PORTCULLIS_ROUTES: file,
    });
    try {
      const env = { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN };
      const prefixes = async () => {
        const listed = await runCli(['admin', 'routes', 'list', '--json'], env);
        assert.equal(listed.code, 0, listed.stderr);
        return (JSON.parse(listed.stdout) as { prefix: string; source: string }[]).map((r) => `${r.source} ${r.prefix}`);
      };
      const added = await runCli(
        [
          'admin',
          'routes',
          'add',
          '--prefix',
          '/beta',
          '--upstream',
          'http://127.0.0.1:9/b',
          '--rules',
          '[{"methods":["GET"],"scopes":["b:read"]}]',
          '--rate-limit',
          '5',
          '--json',
        ],
        env,
      );
      assert.equal(added.code, 0, added.stderr);
      const route = JSON.parse(added.stdout);
      assert.deepEqual(route.rules, [{ methods: ['GET'], scopes: ['b:read'] }]);
      assert.equal(route.rate_limit_per_minute, 5);
      const badRules = await runCli(
        ['admin', 'routes', 'add', '--prefix', '/gamma', '--upstream', 'http://127.0.0.1:9', '--rules', '[{"methods":["BREW"]}]'],
        env,
      );
      assert.notEqual(badRules.code, 0);
      assert.match(badRules.stderr + badRules.stdout, /rules\[0\]\.methods/);
      assert.deepEqual(await prefixes(), ['file /alpha', 'api /beta']);

      writeFileSync(file, JSON.stringify([{ prefix: '/delta', upstream: 'http://127.0.0.1:9/d' }]));
      server.child.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      let seen = await prefixes();
      while (!seen.includes('file /delta') && Date.now() < deadline) seen = await prefixes();
      assert.deepEqual(seen, ['api /beta', 'file /delta']);

      writeFileSync(file, '{ broken');
      server.child.kill('SIGHUP');
      const refusedDeadline = Date.now() + 10_000;
      while (!/PORTCULLIS_ROUTES not reloaded/.test(server.output()) && Date.now() < refusedDeadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(server.output(), /PORTCULLIS_ROUTES not reloaded/);
      assert.deepEqual(await prefixes(), ['api /beta', 'file /delta'], 'the routes in use are kept');

      const removed = await runCli(['admin', 'routes', 'remove', '--id', String(route.id)], env);
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(await prefixes(), ['file /delta']);
    } finally {
      await server.stop();
    }
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
