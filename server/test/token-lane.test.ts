// POST /oauth2/token is answered on the raw request listener before Fastify (oauth/token-lane.ts),
// and by Fastify's route for the path's other spellings. Both must answer alike, log one line and
// count the same metrics; the lane reads the body itself, so its limit and a client that leaves
// mid-body are checked over raw sockets.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const FORM = 'application/x-www-form-urlencoded';

/** Writes `bytes` on a fresh connection; resolves everything the server sent until it closed or `waitMs` passed. */
function exchange(url: string, bytes: string | Buffer, waitMs = 3_000): Promise<{ text: string; closed: boolean }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port) });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(bytes);
  });
}

async function metric(server: TestServer, line: RegExp): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const found = line.exec(text);
  return found ? Number(found[1]) : 0;
}

const issuedCount = /^portcullis_token_requests_total\{outcome="issued"\} (\d+)$/m;
const durationCount = /^portcullis_http_request_duration_seconds_count\{method="POST",route="\/oauth2\/token",status_class="2xx"\} (\d+)$/m;
const abortCount = /^portcullis_client_aborts_total\{route="\/oauth2\/token"\} (\d+)$/m;

describe('the token endpoint on the raw listener', () => {
  let server: TestServer;
  const lines: Array<Record<string, any>> = [];
  let cred: { clientId: string; clientSecret: string };

  before(async () => {
    server = await startTestServer({}, { logLines: lines });
    cred = await server.newCredential();
  });
  after(async () => {
    await server?.stop();
  });

  test('every spelling of the path gets the same answer, one access line and the route metrics', async () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }).toString();
    const wrong = new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: `${cred.clientSecret}x` }).toString();
    const issued0 = await metric(server, issuedCount);
    const timed0 = await metric(server, durationCount);
    const before = lines.length;
    const answers = [];
    // The first two are the lane's; the last two fall through to Fastify's route.
    for (const path of ['/oauth2/token', '/oauth2/token?trace=1', '/oauth2/token/', '//oauth2/token']) {
      const ok = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': FORM, 'user-agent': 'OpenAPI-Generator/1.0/js' }, body });
      const okBody = (await ok.json()) as Record<string, unknown>;
      const refused = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': FORM }, body: wrong });
      answers.push({
        path,
        status: [ok.status, refused.status],
        headers: ['content-type', 'cache-control', 'pragma'].map((name) => [ok.headers.get(name), refused.headers.get(name)]),
        keys: Object.keys(okBody).sort(),
        refusedBody: await refused.json(),
      });
    }
    const [lane] = answers;
    assert.deepEqual(lane?.status, [200, 401]);
    assert.deepEqual(lane?.headers, [
      ['application/json; charset=utf-8', 'application/json; charset=utf-8'],
      ['no-store', 'no-store'],
      ['no-cache', 'no-cache'],
    ]);
    assert.deepEqual(lane?.keys, ['access_token', 'expires_in', 'refresh_token', 'token_type'], 'the generated SDKs get their null refresh_token');
    for (const other of answers.slice(1)) assert.deepEqual({ ...other, path: lane?.path }, lane, `${other.path} answers as /oauth2/token does`);

    assert.equal((await metric(server, issuedCount)) - issued0, 4, 'each issued token is counted once');
    assert.equal((await metric(server, durationCount)) - timed0, 4, 'each 200 is timed under the route');
    const access = lines.slice(before).filter((l) => l.msg === 'request completed' && String(l.req?.url).includes('oauth2/token'));
    assert.deepEqual(
      access.map((l) => [l.req.url, l.res.statusCode]),
      [
        ['/oauth2/token', 200],
        ['/oauth2/token', 401],
        ['/oauth2/token', 200],
        ['/oauth2/token', 401],
        ['/oauth2/token/', 200],
        ['/oauth2/token/', 401],
        ['//oauth2/token', 200],
        ['//oauth2/token', 401],
      ],
      'one line per request, without the query string',
    );
    for (const l of access) {
      assert.equal(typeof l.reqId, 'string');
      assert.equal(l.req.remoteAddress, '127.0.0.1');
      assert.equal(typeof l.responseTime, 'number');
    }
  });

  test('a chunked body over 16 KiB gets 413 invalid_request and the connection is closed', async () => {
    const chunk = `client_id=${'a'.repeat(8 * 1024)}`;
    const head = `POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const piece = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const { text, closed } = await exchange(server.url, head + piece + piece + piece);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.match(text, /"error":"invalid_request"/);
    assert.ok(closed, 'the server closed the connection instead of reading the rest');
  });

  test('a client that leaves mid-body is counted as an abort, gets nothing, and no error is logged', async () => {
    const aborts0 = await metric(server, abortCount);
    const before = lines.length;
    const target = new URL(server.url);
    const socket = net.connect({ host: target.hostname, port: Number(target.port) });
    let received = '';
    socket.on('data', (d) => {
      received += String(d);
    });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: 100\r\n\r\ngrant_type=client`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    const deadline = Date.now() + 5_000;
    while ((await metric(server, abortCount)) === aborts0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await metric(server, abortCount)) - aborts0, 1);
    assert.equal(received, '');
    const loud = lines.slice(before).filter((l) => l.level >= 40);
    assert.deepEqual(loud, [], 'nothing at warn or above');
  });
});
