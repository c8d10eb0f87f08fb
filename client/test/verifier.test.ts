import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ISSUER_FOR_TESTS, startTestServer, type TestServer } from 'portcullis/dist/test/helpers/server.js';
import { TokenVerificationError, type VerificationFailure } from '../src/errors.js';
import { expressBearerAuth } from '../src/express.js';
import { fastifyBearerAuth } from '../src/fastify.js';
import { createVerifier, type VerifierOptions } from '../src/verifier.js';
import { countingFetch, freePort, startDiscoverableServer } from './helpers/http.js';

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

const refusedFor = (reason: VerificationFailure) => (err: unknown) => {
  assert.ok(err instanceof TokenVerificationError, String(err));
  assert.equal(err.reason, reason, err.message);
  const code = reason === 'scope' ? 'insufficient_scope' : reason.endsWith('_unavailable') ? 'temporarily_unavailable' : 'invalid_token';
  assert.equal(err.code, code);
  return true;
};

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('verifier against a real server', () => {
  let server: TestServer;
  let credential: { clientId: string; clientSecret: string; appId: number; orgId: number };
  let token: string;
  before(async () => {
    server = await startTestServer();
    credential = await server.newCredential({ scopes: ['retail-media', 'billing'] });
    token = await server.accessToken(credential.clientId, credential.clientSecret);
  });
  after(() => server.stop());

  const verifierFor = (options: Partial<VerifierOptions> = {}) => {
    const fetch = countingFetch();
    const verifier = createVerifier({
      issuer: ISSUER_FOR_TESTS,
      audience: ISSUER_FOR_TESTS,
      jwksUri: `${server.url}/.well-known/jwks.json`,
      revocations: { uri: `${server.url}/oauth2/revocations` },
      fetch,
      ...options,
    });
    return { verifier, jwksFetches: () => fetch.count('/.well-known/jwks.json') };
  };

  test("accepts the platform's tokens and gives the caller's identity", async () => {
    const { verifier, jwksFetches } = verifierFor();
    const identity = await verifier.verify(token);
    assert.equal(identity.clientId, credential.clientId);
    assert.equal(identity.subject, credential.clientId);
    assert.equal(identity.applicationId, credential.appId);
    assert.equal(identity.organizationId, credential.orgId);
    assert.deepEqual(identity.scopes, ['retail-media', 'billing']);
    assert.equal(identity.expiresAt.getTime(), (decodeJwt(token).exp as number) * 1000);
    await verifier.verifyAuthorization(`Bearer ${token}`);
    assert.equal(jwksFetches(), 1, 'the key set is cached');
  });

  test('a tampered payload fails the signature check', async () => {
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = `${header}.${b64({ ...claims, scope: 'retail-media billing admin' })}.${signature}`;
    await assert.rejects(verifierFor().verifier.verify(forged), refusedFor('signature'));
  });

  test("a token naming another algorithm is refused before any key is used, whatever the token's choice", async () => {
    const payload = token.split('.')[1];
    const { verifier, jwksFetches } = verifierFor();
    const none = `${b64({ ...decodeProtectedHeader(token), alg: 'none' })}.${payload}.`;
    await assert.rejects(verifier.verify(none), refusedFor('algorithm'));
    const hs256 = `${b64({ ...decodeProtectedHeader(token), alg: 'HS256' })}.${payload}.${Buffer.from('x').toString('base64url')}`;
    await assert.rejects(verifier.verify(hs256), refusedFor('algorithm'));
    assert.equal(jwksFetches(), 0);
  });

  test('the algorithm allow-list is strict: an RS256 token is refused by a verifier that allows only ES256', async () => {
    await assert.rejects(verifierFor({ algorithms: ['ES256'] }).verifier.verify(token), refusedFor('algorithm'));
  });

  test('an expired token is refused once the clock tolerance (10 s by default) has passed, and accepted within it', async () => {
    const exp = (decodeJwt(token).exp as number) * 1000;
    await verifierFor({ now: () => exp + 9_000 }).verifier.verify(token);
    await assert.rejects(verifierFor({ now: () => exp + 11_000 }).verifier.verify(token), refusedFor('expired'));
    await verifierFor({ now: () => exp + 59_000, clockToleranceSeconds: 60 }).verifier.verify(token);
    await assert.rejects(verifierFor({ now: () => exp + 1000, clockToleranceSeconds: 0 }).verifier.verify(token), refusedFor('expired'));
  });

  test('a token used before its nbf (beyond the skew) is refused', async () => {
    const nbf = (decodeJwt(token).nbf as number) * 1000;
    await assert.rejects(verifierFor({ now: () => nbf - 120_000 }).verifier.verify(token), refusedFor('not_yet_valid'));
  });

  test('a token for another audience is refused', async () => {
    const other = await startTestServer({ PORTCULLIS_AUDIENCE: 'https://another-api.example' });
    try {
      const cred = await other.newCredential();
      const foreign = await other.accessToken(cred.clientId, cred.clientSecret);
      const verifier = createVerifier({
        issuer: ISSUER_FOR_TESTS,
        audience: ISSUER_FOR_TESTS,
        jwksUri: `${other.url}/.well-known/jwks.json`,
        revocations: false,
      });
      await assert.rejects(verifier.verify(foreign), refusedFor('audience'));
      await verifierFor({ audience: ['https://unrelated.example', ISSUER_FOR_TESTS] }).verifier.verify(token);
    } finally {
      await other.stop();
    }
  });

  test('a token from another issuer is refused even when its signature checks out', async () => {
    const impostor = await startTestServer({ PORTCULLIS_ISSUER: 'http://impostor.test', PORTCULLIS_AUDIENCE: ISSUER_FOR_TESTS });
    try {
      const cred = await impostor.newCredential();
      const foreign = await impostor.accessToken(cred.clientId, cred.clientSecret);
      const verifier = createVerifier({
        issuer: ISSUER_FOR_TESTS,
        audience: ISSUER_FOR_TESTS,
        jwksUri: `${impostor.url}/.well-known/jwks.json`,
        revocations: false,
      });
      await assert.rejects(verifier.verify(foreign), refusedFor('issuer'));
    } finally {
      await impostor.stop();
    }
  });

  test('required scopes: a token holding them passes; one lacking any is refused', async () => {
    const { verifier } = verifierFor({ requiredScopes: ['retail-media'] });
    await verifier.verify(token, { requiredScopes: ['billing'] });
    await assert.rejects(verifier.verify(token, { requiredScopes: ['reports'] }), refusedFor('scope'));
  });

  test('a missing or non-Bearer Authorization header is refused as missing', async () => {
    const { verifier } = verifierFor();
    await assert.rejects(verifier.verifyAuthorization(undefined), refusedFor('missing'));
    await assert.rejects(verifier.verifyAuthorization(`Basic ${token}`), refusedFor('missing'));
    await assert.rejects(verifier.verify('not-a-jwt'), refusedFor('malformed'));
  });

  test('a rotated key is picked up: an unknown kid fetches the key set again, at most once per cooldown', async () => {
    let now = Date.now();
    const { verifier, jwksFetches } = verifierFor({ now: () => now, jwksCooldownSeconds: 30 });
    await verifier.verify(token);
    assert.equal(jwksFetches(), 1);

    const rotated = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 0 });
    assert.equal(rotated.status, 200);
    const fresh = await server.accessToken(credential.clientId, credential.clientSecret);
    assert.equal(decodeProtectedHeader(fresh).kid, rotated.body.kid);

    // Within the cooldown of the first fetch, unknown kids do not reach the issuer.
    for (let i = 0; i < 5; i++) await assert.rejects(verifier.verify(fresh), refusedFor('unknown_key'));
    assert.equal(jwksFetches(), 1);

    now += 30_000;
    const identity = await Promise.all([verifier.verify(fresh), verifier.verify(fresh), verifier.verify(token)]);
    assert.equal(identity[0].clientId, credential.clientId);
    assert.equal(jwksFetches(), 2, 'one fetch for the rotated key, however many tokens asked');
    await verifier.verify(fresh);
    assert.equal(jwksFetches(), 2);

    // A kid the issuer never published costs at most one fetch per cooldown too.
    const unknownKid = `${b64({ ...decodeProtectedHeader(fresh), kid: 'never-published' })}.${fresh.split('.').slice(1).join('.')}`;
    now += 30_000;
    for (let i = 0; i < 10; i++) await assert.rejects(verifier.verify(unknownKid), refusedFor('unknown_key'));
    assert.equal(jwksFetches(), 3);
  });

  test('the key set is fetched again after its max age, and a stale one still serves while the issuer is down', async () => {
    let now = Date.now();
    let down = false;
    let fetches = 0;
    const verifier = createVerifier({
      issuer: ISSUER_FOR_TESTS,
      audience: ISSUER_FOR_TESTS,
      jwksUri: `${server.url}/.well-known/jwks.json`,
      jwksMaxAgeSeconds: 600,
      revocations: false,
      cacheSize: 0, // a cached verdict needs no key: this test is about the key set
      now: () => now,
      fetch: async (input, init) => {
        fetches++;
        if (down) throw new TypeError('fetch failed');
        return fetch(input, init);
      },
    });
    await verifier.verify(token);
    now += 599_000;
    await verifier.verify(token);
    assert.equal(fetches, 1);
    now += 1000;
    down = true;
    await verifier.verify(token);
    assert.equal(fetches, 2, 'refetched at max age; the failure left the old set in use');
  });

  test('a feed that stops answering is tolerated for maxStalenessSeconds, then tokens are 503 revocations_unavailable, with one request per second at most', async () => {
    let now = Date.now();
    let down = false;
    const feedCalls: number[] = [];
    const verifier = createVerifier({
      issuer: ISSUER_FOR_TESTS,
      audience: ISSUER_FOR_TESTS,
      jwksUri: `${server.url}/.well-known/jwks.json`,
      // No background poll during the test (its timer runs on real time): only the staleness bound acts.
      revocations: { uri: `${server.url}/oauth2/revocations`, maxStalenessSeconds: 30, intervalSeconds: 3600 },
      now: () => now,
      fetch: async (input, init) => {
        if (String(input).endsWith('/oauth2/revocations')) {
          feedCalls.push(now);
          if (down) throw new TypeError('fetch failed');
        }
        return fetch(input, init);
      },
    });
    try {
      await verifier.verify(token);
      down = true;
      now += 29_000;
      await verifier.verify(token); // stale but within the bound: no request, no refusal
      now += 2_000;
      for (let i = 0; i < 20; i++) {
        await assert.rejects(
          verifier.verify(token),
          (err: unknown) => refusedFor('revocations_unavailable')(err) && (err as TokenVerificationError).status === 503,
        );
      }
      assert.equal(feedCalls.length, 2, 'twenty refusals, one request to the feed');
      down = false;
      now += 1_000;
      await verifier.verify(token);
      assert.equal(feedCalls.length, 3, 'back as soon as the feed answers');
    } finally {
      verifier.close();
    }
  });

  test('the JWKS and revocation feed addresses are discovered from the issuer metadata (once) when not given', async () => {
    const discoverable = await startDiscoverableServer();
    try {
      const cred = await discoverable.newCredential();
      const fresh = await discoverable.accessToken(cred.clientId, cred.clientSecret);
      const fetch = countingFetch();
      const verifier = createVerifier({ issuer: discoverable.url, audience: discoverable.url, fetch });
      await verifier.verify(fresh);
      await verifier.verify(fresh);
      assert.deepEqual(fetch.calls, ['GET /.well-known/oauth-authorization-server', 'GET /oauth2/revocations', 'GET /.well-known/jwks.json']);
      verifier.close();
    } finally {
      await discoverable.stop();
    }
  });

  test('an unreachable issuer means keys_unavailable, not a crash', async () => {
    const verifier = createVerifier({
      issuer: ISSUER_FOR_TESTS,
      audience: ISSUER_FOR_TESTS,
      jwksUri: `http://127.0.0.1:${await freePort()}/jwks.json`,
      revocations: false,
      requestTimeoutMs: 2000,
    });
    await assert.rejects(
      verifier.verify(token),
      (err: unknown) => refusedFor('keys_unavailable')(err) && /ECONNREFUSED|fetch failed/.test(String((err as Error).message)),
    );
  });
});

describe('verifier token type', () => {
  test('a JWT that is not an at+jwt access token (RFC 9068) is refused unless the type check is turned off', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const keys = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    try {
      const jwksUri = `http://127.0.0.1:${(keys.address() as AddressInfo).port}/jwks.json`;
      const idToken = await new SignJWT({ client_id: 'c1' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
        .setIssuer('https://issuer.example')
        .setAudience('https://api.example')
        .setSubject('c1')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const options = { issuer: 'https://issuer.example', audience: 'https://api.example', jwksUri, revocations: false as const };
      await assert.rejects(createVerifier(options).verify(idToken), refusedFor('type'));
      assert.equal((await createVerifier({ ...options, tokenType: false }).verify(idToken)).clientId, 'c1');
    } finally {
      await new Promise<void>((resolve) => keys.close(() => resolve()));
    }
  });
});

describe('middleware', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer();
    const cred = await server.newCredential({ scopes: ['retail-media'] });
    token = await server.accessToken(cred.clientId, cred.clientSecret);
  });
  after(() => server.stop());

  const verifier = () =>
    createVerifier({
      issuer: ISSUER_FOR_TESTS,
      audience: ISSUER_FOR_TESTS,
      jwksUri: `${server.url}/.well-known/jwks.json`,
      revocations: { uri: `${server.url}/oauth2/revocations` },
    });

  /** The same checks for both frameworks: refusals exactly as the platform answers them, identity on the request. */
  async function assertGuards(base: string) {
    for (const authorization of [undefined, 'Bearer not-a-token', `Bearer ${token.slice(0, -2)}xx`]) {
      const res = await fetch(`${base}/me`, authorization ? { headers: { authorization } } : {});
      assert.equal(res.status, 401);
      assert.equal(await res.text(), UNAUTHORIZED);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="portcullis", error="invalid_token"');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    }
    const platform = await server.me(undefined);
    assert.equal(platform.text, UNAUTHORIZED, 'the same body as the platform');
    const ok = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { clientId: decodeJwt(token).client_id, scopes: ['retail-media'] });
    const scoped = await fetch(`${base}/reports`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(scoped.status, 403, 'a route that requires a scope the token lacks');
    assert.equal(scoped.headers.get('www-authenticate'), 'Bearer realm="portcullis", error="insufficient_scope", scope="reports"');
    assert.equal(await scoped.text(), '{"Status Message":"Forbidden"}');
  }

  test('Fastify hook: refuses with the platform 401 (403 for a missing scope) and puts the verified identity on request.portcullis', async () => {
    const app = Fastify();
    const check = verifier();
    app.get('/me', { onRequest: fastifyBearerAuth(check) }, async (request) => ({
      clientId: request.portcullis?.clientId,
      scopes: request.portcullis?.scopes,
    }));
    let handled = 0;
    app.get('/reports', { onRequest: fastifyBearerAuth(check, { requiredScopes: ['reports'] }) }, async () => ({ ok: ++handled }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      await assertGuards(base);
      assert.equal(handled, 0, 'a refused request never reaches the handler');
    } finally {
      await app.close();
    }
  });

  test('Express middleware: refuses with the platform 401 (403 for a missing scope) and puts the verified identity on req.portcullis', async () => {
    const app = express();
    const check = verifier();
    app.get('/me', expressBearerAuth(check), (req, res) => {
      res.json({ clientId: req.portcullis?.clientId, scopes: req.portcullis?.scopes });
    });
    let handled = 0;
    app.get('/reports', expressBearerAuth(check, { requiredScopes: ['reports'] }), (_req, res) => {
      res.json({ ok: ++handled });
    });
    const listener = await new Promise<ReturnType<typeof app.listen>>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      await assertGuards(`http://127.0.0.1:${(listener.address() as AddressInfo).port}`);
      assert.equal(handled, 0, 'a refused request never reaches the handler');
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  });
});
