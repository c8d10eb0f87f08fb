import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import type { TestServer } from 'portcullis/dist/test/helpers/server.js';
import { createAuthorizedFetch } from '../src/authorized-fetch.js';
import type { TokenVerificationError } from '../src/errors.js';
import { expressBearerAuth, requireScopes } from '../src/express.js';
import { fastifyBearerAuth, requireScopes as fastifyRequireScopes } from '../src/fastify.js';
import { createTokenProvider } from '../src/token-provider.js';
import { createVerifier, type Verifier } from '../src/verifier.js';
import { countingFetch, freePort, startDiscoverableServer } from './helpers/http.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** An Express service protected the way the README says, on default settings. */
async function startExpressService(verifier: Verifier, refused: TokenVerificationError[] = []) {
  const app = express();
  app.use('/api', expressBearerAuth(verifier, { onRefused: (err) => refused.push(err) }));
  app.get('/api/me', (req, res) => {
    res.json({ clientId: req.portcullis?.clientId });
  });
  app.get('/api/reports', requireScopes('reports'), (_req, res) => {
    res.json({ reports: [] });
  });
  const listener = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(listener.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => listener.close(() => resolve())),
  };
}

/** Polls `condition` until it holds; resolves to the milliseconds it took, or fails after `ms`. */
async function within(ms: number, condition: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Date.now() - started;
}

describe('an Express service on default settings', () => {
  let issuer: TestServer;
  let service: Awaited<ReturnType<typeof startExpressService>>;
  let verifier: Verifier;
  const refused: TokenVerificationError[] = [];
  before(async () => {
    issuer = await startDiscoverableServer();
    verifier = createVerifier({ issuer: issuer.url, audience: issuer.url });
    service = await startExpressService(verifier, refused);
  });
  after(async () => {
    verifier.close();
    await service.close();
    await issuer.stop();
  });

  const call = (token: string, path = '/api/me') => fetch(`${service.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  test('refuses a token revoked with RFC 7009 within 10 s, though it had accepted (and cached) it', async () => {
    const cred = await issuer.newCredential();
    const token = await issuer.accessToken(cred.clientId, cred.clientSecret);
    assert.equal((await call(token)).status, 200);
    const revoked = await fetch(`${issuer.url}/oauth2/revoke`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ token, client_id: cred.clientId, client_secret: cred.clientSecret }),
    });
    assert.equal(revoked.status, 200);
    await within(10_000, async () => (await call(token)).status === 401);
    const answer = await call(token);
    assert.equal(await answer.text(), '{"Status Message":"Unauthorized"}');
    assert.equal(refused.at(-1)?.reason, 'revoked', 'the owner is told why');
  });

  test('refuses every token of a credential revoked now within 10 s; other credentials keep working', async () => {
    const cred = await issuer.newCredential();
    const other = await issuer.newCredential();
    const tokens = [await issuer.accessToken(cred.clientId, cred.clientSecret), await issuer.accessToken(cred.clientId, cred.clientSecret)];
    const otherToken = await issuer.accessToken(other.clientId, other.clientSecret);
    for (const token of tokens) assert.equal((await call(token)).status, 200);
    assert.equal((await issuer.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`)).status, 200);
    await within(10_000, async () => (await call(tokens[0]!)).status === 401 && (await call(tokens[1]!)).status === 401);
    assert.equal((await call(otherToken)).status, 200);
  });

  test('a valid token without the scope gets 403 insufficient_scope, and the authorized fetch does not renew on it', async () => {
    const cred = await issuer.newCredential({ scopes: ['retail-media'] });
    const counting = countingFetch();
    const api = createAuthorizedFetch(createTokenProvider({ issuer: issuer.url, clientId: cred.clientId, clientSecret: cred.clientSecret, fetch: counting }), {
      fetch: counting,
    });
    for (let i = 0; i < 10; i++) {
      const res = await api(`${service.url}/api/reports`);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="portcullis", error="insufficient_scope", scope="reports"');
      assert.equal(await res.text(), '{"Status Message":"Forbidden"}');
    }
    assert.equal(counting.count('/api/reports'), 10, 'one API request per call');
    assert.equal(counting.count('/oauth2/token'), 1, 'one token for all of them');
    assert.equal((await api(`${service.url}/api/me`)).status, 200);
  });

  test('Fastify: requireScopes answers 403 insufficient_scope for a valid token without the scope, and lets one with it through', async () => {
    const app = Fastify();
    app.addHook('onRequest', fastifyBearerAuth(verifier));
    app.get('/reports', { preHandler: fastifyRequireScopes('reports') }, async (request) => ({ client: request.portcullis?.clientId }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const without = await issuer.newCredential({ scopes: ['retail-media'] });
      const refusedRes = await fetch(`${base}/reports`, {
        headers: { authorization: `Bearer ${await issuer.accessToken(without.clientId, without.clientSecret)}` },
      });
      assert.equal(refusedRes.status, 403);
      assert.equal(refusedRes.headers.get('www-authenticate'), 'Bearer realm="portcullis", error="insufficient_scope", scope="reports"');
      const holder = await issuer.newCredential({ scopes: ['reports'] });
      const ok = await fetch(`${base}/reports`, { headers: { authorization: `Bearer ${await issuer.accessToken(holder.clientId, holder.clientSecret)}` } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { client: holder.clientId });
    } finally {
      await app.close();
    }
  });

  test('a token with the scope passes requireScopes, which reads the verified caller', async () => {
    const cred = await issuer.newCredential({ scopes: ['reports'] });
    const res = await call(await issuer.accessToken(cred.clientId, cred.clientSecret), '/api/reports');
    assert.equal(res.status, 200);
  });
});

describe('a service whose issuer cannot be reached', () => {
  test('Express and Fastify answer 503 with Retry-After to any token, and tell the owner why; 401 stays for no token', async () => {
    const issuer = `http://127.0.0.1:${await freePort()}`;
    const verifier = createVerifier({ issuer, audience: issuer, requestTimeoutMs: 2000 });
    const refused: TokenVerificationError[] = [];
    const service = await startExpressService(verifier, refused);
    const fastify = Fastify();
    fastify.get('/api/reports', { onRequest: fastifyBearerAuth(verifier), preHandler: fastifyRequireScopes('reports') }, async () => ({ ok: true }));
    const fastifyUrl = await fastify.listen({ port: 0, host: '127.0.0.1' });
    try {
      // Well-formed but unverifiable: the service cannot know whether it is good.
      const token = `${Buffer.from('{"alg":"RS256","kid":"k","typ":"at+jwt"}').toString('base64url')}.e30.c2ln`;
      for (const url of [`${service.url}/api/me`, `${fastifyUrl}/api/reports`]) {
        const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 503, url);
        assert.equal(res.headers.get('retry-after'), '5');
        assert.equal(await res.text(), '{"Status Message":"Service Unavailable"}');
      }
      assert.match(refused[0]?.reason ?? '', /_unavailable$/);
      assert.equal(refused[0]?.status, 503);
      const none = await fetch(`${service.url}/api/me`);
      assert.equal(none.status, 401);
    } finally {
      verifier.close();
      await service.close();
      await fastify.close();
    }
  });
});

describe('verified-token cache', () => {
  let issuer: TestServer;
  before(async () => {
    issuer = await startDiscoverableServer();
  });
  after(() => issuer.stop());

  test('a cached token is still refused once it expires (beyond the tolerance)', async () => {
    const cred = await issuer.newCredential();
    const token = await issuer.accessToken(cred.clientId, cred.clientSecret);
    let now = Date.now();
    const verifier = createVerifier({ issuer: issuer.url, audience: issuer.url, now: () => now });
    try {
      const identity = await verifier.verify(token);
      await verifier.verify(token);
      now = identity.expiresAt.getTime() + 11_000;
      await assert.rejects(verifier.verify(token), (err: TokenVerificationError) => err.reason === 'expired');
    } finally {
      verifier.close();
    }
  });

  test('per-request scopes are checked on a cached token too', async () => {
    const cred = await issuer.newCredential({ scopes: ['a'] });
    const token = await issuer.accessToken(cred.clientId, cred.clientSecret);
    const verifier = createVerifier({ issuer: issuer.url, audience: issuer.url });
    try {
      await verifier.verify(token, { requiredScopes: ['a'] });
      await assert.rejects(verifier.verify(token, { requiredScopes: ['b'] }), (err: TokenVerificationError) => err.status === 403 && err.scopes?.[0] === 'b');
    } finally {
      verifier.close();
    }
  });
});
