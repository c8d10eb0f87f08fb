import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from 'portcullis/dist/src/domain/clock.js';
import { startTestServer, type TestServer } from 'portcullis/dist/test/helpers/server.js';
import { createAuthorizedFetch } from '../src/authorized-fetch.js';
import { InvalidClientError } from '../src/errors.js';
import { createTokenProvider } from '../src/token-provider.js';
import { countingFetch } from './helpers/http.js';

/** An API that refuses every token, recording what it was sent. */
async function startRefusingApi() {
  const seen: Array<{ authorization: string | undefined; body: string }> = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ authorization: req.headers.authorization, body });
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
    res.end('{"Status Message":"Unauthorized"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/reports`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('authorized fetch', () => {
  // The server's clock moves on its own, so a token the client still trusts can be expired for the API.
  const serverClock = new ManualClock();
  let server: TestServer;
  let credential: { clientId: string; clientSecret: string; appId: number };
  before(async () => {
    server = await startTestServer({}, { clock: serverClock });
    credential = await server.newCredential();
  });
  after(() => server.stop());

  const setup = (clientSecret = credential.clientSecret, clientId = credential.clientId) => {
    const fetch = countingFetch();
    const tokens = createTokenProvider({ tokenUrl: `${server.url}/oauth2/token`, clientId, clientSecret, fetch });
    return { api: createAuthorizedFetch(tokens, { fetch }), fetch };
  };

  test('sends the provider token as Authorization: Bearer, one token request for many API calls', async () => {
    const { api, fetch } = setup();
    const responses = await Promise.all(Array.from({ length: 10 }, () => api(`${server.url}/me`)));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array(10).fill(200),
    );
    assert.equal(((await responses[0]!.json()) as any).data.attributes.applicationId, credential.appId);
    assert.equal(fetch.count('/oauth2/token'), 1);
  });

  test('a server-side 401 on an API call triggers exactly one renewal and one retry', async () => {
    const { api, fetch } = setup();
    assert.equal((await api(`${server.url}/me`)).status, 200);
    // The token expires for the server (its clock moved past exp and the skew) while the client still holds it.
    serverClock.advance(900 + 61);
    const response = await api(`${server.url}/me`, { headers: { accept: 'application/json' } });
    assert.equal(response.status, 200);
    assert.deepEqual(fetch.calls, ['POST /oauth2/token', 'GET /me', 'GET /me', 'POST /oauth2/token', 'GET /me']);
  });

  test('many API calls refused at once with the same token share one renewal', async () => {
    const { api, fetch } = setup();
    assert.equal((await api(`${server.url}/me`)).status, 200);
    serverClock.advance(900 + 61);
    const responses = await Promise.all(Array.from({ length: 10 }, () => api(`${server.url}/me`)));
    assert.ok(responses.every((r) => r.status === 200));
    assert.equal(fetch.count('/oauth2/token'), 2);
    assert.equal(fetch.count('/me'), 1 + 10 + 10);
  });

  test('a second 401 is returned to the caller: one retry only, with the same replayed body', async () => {
    const refusing = await startRefusingApi();
    try {
      const { api, fetch } = setup();
      const response = await api(refusing.url, { method: 'POST', body: '{"report":42}', headers: { 'content-type': 'application/json' } });
      assert.equal(response.status, 401);
      assert.equal(refusing.seen.length, 2);
      assert.deepEqual(
        refusing.seen.map((s) => s.body),
        ['{"report":42}', '{"report":42}'],
      );
      assert.notEqual(refusing.seen[0]!.authorization, refusing.seen[1]!.authorization, 'the retry carries the renewed token');
      assert.equal(fetch.count('/oauth2/token'), 2);
    } finally {
      await refusing.close();
    }
  });

  test('a request whose body is a stream is not retried on 401', async () => {
    const refusing = await startRefusingApi();
    try {
      const { api, fetch } = setup();
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('streamed'));
          controller.close();
        },
      });
      const response = await api(refusing.url, { method: 'POST', body, duplex: 'half' } as RequestInit);
      assert.equal(response.status, 401);
      assert.equal(refusing.seen.length, 1);
      assert.equal(fetch.count('/oauth2/token'), 1, 'no renewal when there is no retry');
    } finally {
      await refusing.close();
    }
  });

  test('a credential revoked since the token was issued: the 401 leads to one renewal attempt that fails with InvalidClientError', async () => {
    const revocable = await server.newCredential();
    const { api, fetch } = setup(revocable.clientSecret, revocable.clientId);
    assert.equal((await api(`${server.url}/me`)).status, 200);
    await server.admin('DELETE', `/applications/${revocable.appId}/credentials/${revocable.clientId}?immediately=true`);
    await assert.rejects(api(`${server.url}/me`), InvalidClientError);
    assert.deepEqual(fetch.calls, ['POST /oauth2/token', 'GET /me', 'GET /me', 'POST /oauth2/token']);
  });
});
