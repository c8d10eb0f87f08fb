import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from 'portcullis/dist/src/domain/clock.js';
import { startTestServer, type TestServer } from 'portcullis/dist/test/helpers/server.js';
import { DiscoveryError, InvalidClientError, TokenEndpointError } from '../src/errors.js';
import { createTokenProvider, parseRetryAfter } from '../src/token-provider.js';
import { countingFetch, eventually, freePort, startDiscoverableServer } from './helpers/http.js';

type Front = (n: number, req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * A node:http front for the real server: `misbehave` answers the nth request itself (returning
 * true), or lets it through to the real token endpoint.
 */
async function startFront(target: string, misbehave: Front): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let n = 0;
  const server: Server = createServer(async (req, res) => {
    n++;
    if (misbehave(n, req, res)) return;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const upstream = await fetch(target + req.url, {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] ?? '' },
      body: Buffer.concat(chunks),
    });
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(await upstream.text());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => n,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const oauthError = (res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error, error_description: 'try later' }));
  return true;
};

describe('token provider against a real server', () => {
  let server: TestServer;
  let credential: { clientId: string; clientSecret: string; appId: number };
  before(async () => {
    server = await startTestServer({ PORTCULLIS_TOKEN_TTL: '5' });
    credential = await server.newCredential({ scopes: ['retail-media', 'billing'] });
  });
  after(() => server.stop());

  const provider = (extra: Partial<Parameters<typeof createTokenProvider>[0]> = {}) => {
    const fetch = countingFetch();
    const clock = new ManualClock();
    const tokens = createTokenProvider({
      tokenUrl: `${server.url}/oauth2/token`,
      clientId: credential.clientId,
      clientSecret: credential.clientSecret,
      fetch,
      now: () => clock.now(),
      random: () => 0,
      ...extra,
    });
    return { tokens, fetch, clock, tokenRequests: () => fetch.count('/oauth2/token') };
  };

  test('many concurrent getToken() calls make one token request and get the same token', async () => {
    const { tokens, tokenRequests } = provider();
    const got = await Promise.all(Array.from({ length: 100 }, () => tokens.getToken()));
    assert.equal(tokenRequests(), 1);
    assert.equal(new Set(got).size, 1);
    assert.equal((await server.me(got[0])).status, 200);
    assert.equal(await tokens.getToken(), got[0], 'a later call is served from the cache');
    assert.equal(tokenRequests(), 1);
  });

  test('a token is renewed in the background before it expires, and callers keep the valid one meanwhile', async () => {
    // TTL 5 s: the margin is capped at half the lifetime, so renewal is due after 2.5 s.
    const { tokens, clock, tokenRequests } = provider();
    const first = await tokens.getToken();
    clock.advance(2.4);
    assert.equal(await tokens.getToken(), first);
    assert.equal(tokenRequests(), 1, 'not yet due');

    clock.advance(0.2);
    assert.equal(await tokens.getToken(), first, 'the caller does not wait for the renewal');
    await eventually(() => tokenRequests() === 2);
    let renewed = first;
    await eventually(() => {
      void tokens.getToken().then((t) => (renewed = t));
      return renewed !== first;
    });
    assert.equal(tokenRequests(), 2, 'one renewal however many calls');
    assert.equal((await server.me(first)).status, 200, 'the old token was still valid when it was replaced');
    assert.equal((await server.me(renewed)).status, 200);
  });

  test('jitter renews some clients earlier than others, within the margin', async () => {
    const steady = provider({ random: () => 0 });
    const jittery = provider({ random: () => 0.99 });
    await steady.tokens.getToken();
    await jittery.tokens.getToken();
    // Renewal due at 2.5 s without jitter, from about 1.26 s with the most jitter.
    steady.clock.advance(2);
    jittery.clock.advance(2);
    await steady.tokens.getToken();
    await jittery.tokens.getToken();
    await eventually(() => jittery.tokenRequests() === 2);
    assert.equal(steady.tokenRequests(), 1);
  });

  test('a token past its expiry is never handed out: the caller waits for a new one', async () => {
    const { tokens, clock, tokenRequests } = provider();
    const first = await tokens.getToken();
    clock.advance(5);
    const second = await tokens.getToken();
    assert.notEqual(second, first);
    assert.equal(tokenRequests(), 2);
    const { expiresAt } = await tokens.getAccessToken();
    assert.ok(expiresAt > clock.now() && expiresAt <= clock.now() + 5000);
  });

  test('client_secret_basic and a requested scope get a token with that scope', async () => {
    const { tokens } = provider({ authMethod: 'client_secret_basic', scope: ['billing'] });
    const token = await tokens.getAccessToken();
    assert.equal(token.scope, 'billing');
    assert.equal((await server.me(token.value)).status, 200);
  });

  test('a wrong secret is an InvalidClientError after one request, and the secret is in no error text', async () => {
    const wrongSecret = `${credential.clientSecret.slice(0, -4)}AAAA`;
    const { tokens, tokenRequests } = provider({ clientSecret: wrongSecret });
    const err = await tokens.getToken().then(
      () => assert.fail('no token expected'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InvalidClientError);
    assert.equal(err.code, 'invalid_client');
    assert.equal(err.status, 401);
    assert.equal(tokenRequests(), 1, 'never retried');
    assert.ok(!JSON.stringify({ message: err.message, stack: err.stack, description: err.description }).includes(wrongSecret));
  });

  test('a revoked credential gives the typed InvalidClientError, and the provider does not ask again', async () => {
    const revocable = await server.newCredential();
    const { tokens, clock, tokenRequests } = provider({ clientId: revocable.clientId, clientSecret: revocable.clientSecret });
    await tokens.getToken();
    const revoked = await server.admin('DELETE', `/applications/${revocable.appId}/credentials/${revocable.clientId}?immediately=true`);
    assert.equal(revoked.status, 200);
    clock.advance(5);
    await assert.rejects(tokens.getToken(), (e: unknown) => e instanceof InvalidClientError && e.code === 'invalid_client');
    assert.equal(tokenRequests(), 2);
    await assert.rejects(tokens.getToken(), InvalidClientError);
    await assert.rejects(tokens.renew(), InvalidClientError);
    assert.equal(tokenRequests(), 2, 'a refused credential is not asked for again');
  });

  test('a scope the application lacks is a TokenEndpointError invalid_scope, not retried', async () => {
    const { tokens, tokenRequests } = provider({ scope: 'not-granted' });
    await assert.rejects(tokens.getToken(), (e: unknown) => e instanceof TokenEndpointError && e.code === 'invalid_scope' && e.status === 400);
    assert.equal(tokenRequests(), 1);
  });

  describe('backoff', () => {
    const recordSleeps = () => {
      const sleeps: number[] = [];
      return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
    };

    test('a 503 with Retry-After in seconds is waited out exactly, then the token comes', async () => {
      const front = await startFront(server.url, (n, _req, res) => n === 1 && oauthError(res, 503, 'temporarily_unavailable', { 'retry-after': '2' }));
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens } = provider({ tokenUrl: `${front.url}/oauth2/token`, sleep });
        assert.equal((await server.me(await tokens.getToken())).status, 200);
        assert.deepEqual(sleeps, [2000]);
        assert.equal(front.requests(), 2);
      } finally {
        await front.close();
      }
    });

    test('a 429 with Retry-After as an HTTP date is honoured', async () => {
      const clock = new ManualClock();
      const at = new Date(Math.ceil((clock.now() + 3000) / 1000) * 1000);
      const front = await startFront(server.url, (n, _req, res) => n === 1 && oauthError(res, 429, 'slow_down', { 'retry-after': at.toUTCString() }));
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens } = provider({ tokenUrl: `${front.url}/oauth2/token`, sleep, now: () => clock.now() });
        await tokens.getToken();
        assert.equal(sleeps.length, 1);
        assert.equal(sleeps[0], at.getTime() - clock.now());
      } finally {
        await front.close();
      }
    });

    test('5xx without Retry-After backs off exponentially with jitter and a cap, then gives up with TokenEndpointError', async () => {
      const front = await startFront(server.url, (_n, _req, res) => oauthError(res, 500, 'server_error'));
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens } = provider({
          tokenUrl: `${front.url}/oauth2/token`,
          sleep,
          random: () => 0.5,
          retryBaseDelayMs: 200,
          retryMaxDelayMs: 500,
          maxAttempts: 5,
        });
        await assert.rejects(
          tokens.getToken(),
          (e: unknown) => e instanceof TokenEndpointError && e.code === 'server_error' && e.status === 500 && e.attempts === 5,
        );
        assert.deepEqual(sleeps, [100, 200, 250, 250]);
        assert.equal(front.requests(), 5);
      } finally {
        await front.close();
      }
    });

    test('a dropped connection is retried as a network error', async () => {
      const front = await startFront(server.url, (n, req) => {
        if (n !== 1) return false;
        req.socket.destroy();
        return true;
      });
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens } = provider({ tokenUrl: `${front.url}/oauth2/token`, sleep });
        assert.equal((await server.me(await tokens.getToken())).status, 200);
        assert.equal(sleeps.length, 1);
        assert.equal(front.requests(), 2);
      } finally {
        await front.close();
      }
    });

    test('a Retry-After longer than the provider may wait is not waited, and is honoured by the next call too', async () => {
      const front = await startFront(server.url, (_n, _req, res) => oauthError(res, 503, 'temporarily_unavailable', { 'retry-after': '3600' }));
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens, clock } = provider({ tokenUrl: `${front.url}/oauth2/token`, sleep });
        await assert.rejects(
          tokens.getToken(),
          (e: unknown) => e instanceof TokenEndpointError && e.code === 'retry_after_too_long' && e.retryAfterMs === 3_600_000,
        );
        await assert.rejects(tokens.getToken(), (e: unknown) => e instanceof TokenEndpointError && e.code === 'retry_after_too_long');
        assert.equal(front.requests(), 1, 'no request while the server asked for quiet');
        assert.deepEqual(sleeps, []);
        clock.advance(3600);
        await assert.rejects(tokens.getToken(), TokenEndpointError);
        assert.equal(front.requests(), 2, 'asks again once the time has passed');
      } finally {
        await front.close();
      }
    });

    test('a token endpoint that never answers costs at most the deadline, not the request timeout times the attempts', async () => {
      const front = await startFront(server.url, () => true); // takes the request and never answers
      try {
        const started = Date.now();
        const { tokens } = provider({ tokenUrl: `${front.url}/oauth2/token`, now: Date.now, requestTimeoutMs: 60_000, deadlineMs: 1000 });
        await assert.rejects(tokens.getToken(), (e: unknown) => e instanceof TokenEndpointError && e.code === 'deadline_exceeded' && e.attempts === 1);
        assert.ok(Date.now() - started < 30_000, 'cut at the deadline, long before the 60 s request timeout');
        assert.equal(front.requests(), 1);
      } finally {
        await front.close();
      }
    });

    test('a backoff that would end past the deadline is not waited: the caller gets deadline_exceeded at once', async () => {
      const front = await startFront(server.url, (_n, _req, res) => oauthError(res, 503, 'temporarily_unavailable', { 'retry-after': '8' }));
      try {
        const { sleeps, sleep } = recordSleeps();
        const { tokens } = provider({ tokenUrl: `${front.url}/oauth2/token`, sleep, deadlineMs: 5000 });
        await assert.rejects(tokens.getToken(), (e: unknown) => e instanceof TokenEndpointError && e.code === 'deadline_exceeded');
        assert.deepEqual(sleeps, []);
        assert.equal(front.requests(), 1);
      } finally {
        await front.close();
      }
    });

    test('Retry-After is read as seconds or an HTTP date; anything else is ignored', () => {
      const now = Date.parse('2026-01-01T00:00:00Z');
      assert.equal(parseRetryAfter('7', now), 7000);
      assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
      assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
      assert.equal(parseRetryAfter('soon', now), undefined);
      assert.equal(parseRetryAfter(null, now), undefined);
    });
  });
});

describe('token provider discovery', () => {
  test('given only the issuer, the token endpoint comes from its RFC 8414 metadata, read once', async () => {
    const server = await startDiscoverableServer();
    try {
      const { clientId, clientSecret } = await server.newCredential();
      const fetch = countingFetch();
      const clock = new ManualClock();
      const tokens = createTokenProvider({ issuer: server.url, clientId, clientSecret, fetch, now: () => clock.now() });
      await Promise.all([tokens.getToken(), tokens.getToken()]);
      clock.advance(900);
      const token = await tokens.getToken();
      assert.equal((await server.me(token)).status, 200);
      assert.deepEqual(fetch.calls, ['GET /.well-known/oauth-authorization-server', 'POST /oauth2/token', 'POST /oauth2/token']);
    } finally {
      await server.stop();
    }
  });

  test('a failed discovery is retried with backoff across calls, not on every call', async () => {
    const fetch = countingFetch();
    const clock = new ManualClock();
    const issuer = `http://127.0.0.1:${await freePort()}`;
    const tokens = createTokenProvider({ issuer, clientId: 'c', clientSecret: 's', fetch, now: () => clock.now(), random: () => 0.99 });
    for (let i = 0; i < 20; i++) await assert.rejects(tokens.getToken(), DiscoveryError);
    assert.equal(fetch.calls.length, 1, 'one discovery request for twenty calls in a row');
    clock.advance(1);
    await assert.rejects(tokens.getToken(), DiscoveryError);
    assert.equal(fetch.calls.length, 2, 'asked again after the first backoff (about a second)');
    clock.advance(1);
    await assert.rejects(tokens.getToken(), DiscoveryError);
    assert.equal(fetch.calls.length, 2, 'the second backoff is longer');
    clock.advance(1);
    await assert.rejects(tokens.getToken(), DiscoveryError);
    assert.equal(fetch.calls.length, 3);
  });

  test('metadata that names another issuer is refused with DiscoveryError', async () => {
    // This server's issuer is http://portcullis.test, not its own URL.
    const server = await startTestServer();
    try {
      const { clientId, clientSecret } = await server.newCredential();
      const tokens = createTokenProvider({ issuer: server.url, clientId, clientSecret });
      await assert.rejects(
        tokens.getToken(),
        (e: unknown) => e instanceof DiscoveryError && e.code === 'discovery_failed' && /portcullis\.test/.test(e.message),
      );
    } finally {
      await server.stop();
    }
  });
});
