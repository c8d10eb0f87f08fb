import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, type JWK, jwtVerify, type JSONWebKeySet } from 'jose';
import { ConfigError, loadConfig } from '../src/config.js';
import { createServices, stopServices } from '../src/app.js';
import { ManualClock } from '../src/domain/clock.js';
import { jwkThumbprint } from '../src/keys/keyring.js';
import { openSqlite } from '../src/store/db.js';
import { ISSUER_FOR_TESTS, MASTER_KEY, startTestServer, tempDir } from './helpers/server.js';

async function jwks(url: string): Promise<JSONWebKeySet> {
  return (await fetch(`${url}/.well-known/jwks.json`)).json() as Promise<JSONWebKeySet>;
}

const verifyWith = (set: JSONWebKeySet, token: string, at = new Date()) =>
  jwtVerify(token, createLocalJWKSet(set), { issuer: ISSUER_FOR_TESTS, audience: ISSUER_FOR_TESTS, currentDate: at });

describe('signing keys', () => {
  test('a kid is the RFC 7638 thumbprint of the public key, as jose computes it, for each signing algorithm', async () => {
    const pairs = [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ed25519')];
    for (const { publicKey } of pairs) {
      const jwk = publicKey.export({ format: 'jwk' });
      // Extra members (kid, alg, use) are not part of the thumbprint.
      const ours = jwkThumbprint({ ...jwk, alg: 'x', use: 'sig', kid: 'y' });
      assert.match(ours, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(ours, await calculateJwkThumbprint(jwk as JWK, 'sha256'), String(jwk.kty));
    }
    assert.throws(() => jwkThumbprint({ kty: 'RSA', e: 'AQAB' }), /no n/);
    assert.throws(() => jwkThumbprint({ kty: 'oct', k: 'abc' }), /key type oct/);
  });

  test('rotation publishes the new key before it signs, and old tokens keep verifying until they expire', async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ PORTCULLIS_KEY_PREPUBLISH: '600' }, { clock });
    try {
      const { clientId, clientSecret } = await server.newCredential();
      const oldToken = await server.accessToken(clientId, clientSecret);
      const oldKid = decodeProtectedHeader(oldToken).kid;

      const rotated = await server.admin('POST', '/keys/rotate', {});
      assert.equal(rotated.status, 200);
      assert.match(rotated.body.kid, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(rotated.body.kid, oldKid);

      // Published at once, but the old key still signs during the pre-publication time.
      const published = await jwks(server.url);
      assert.deepEqual(published.keys.map((k) => k.kid).sort(), [oldKid, rotated.body.kid].sort());
      const during = await server.accessToken(clientId, clientSecret);
      assert.equal(decodeProtectedHeader(during).kid, oldKid);

      clock.advance(600);
      const fresh = await server.accessToken(clientId, clientSecret);
      assert.equal(decodeProtectedHeader(fresh).kid, rotated.body.kid);
      const both = await jwks(server.url);
      await verifyWith(both, oldToken, new Date(clock.now()));
      await verifyWith(both, fresh, new Date(clock.now()));
      assert.equal((await server.me(during)).status, 200, 'a token of the retired key still verifies');

      // The retired key stays published until its last token (issued just before activation) has expired.
      clock.advance(900 + 60 - 1);
      assert.equal((await jwks(server.url)).keys.length, 2);
      clock.advance(1);
      assert.deepEqual(
        (await jwks(server.url)).keys.map((k) => k.kid),
        [rotated.body.kid],
      );
      assert.equal((await server.me(fresh)).status, 401, 'fresh token has expired by now too');
      const statuses = await server.admin('GET', '/keys');
      assert.deepEqual(
        statuses.body.map((k: any) => [k.kid, k.status]),
        [
          [rotated.body.kid, 'active'],
          [oldKid, 'expired'],
        ],
      );
    } finally {
      await server.stop();
    }
  });

  test('an immediate rotation signs with the new key at once while old tokens still verify', async () => {
    const server = await startTestServer();
    try {
      const { clientId, clientSecret } = await server.newCredential();
      const oldToken = await server.accessToken(clientId, clientSecret);
      const rotated = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 0 });
      const newToken = await server.accessToken(clientId, clientSecret);
      assert.equal(decodeProtectedHeader(newToken).kid, rotated.body.kid);
      assert.equal((await server.me(oldToken)).status, 200);
      assert.equal((await server.me(newToken)).status, 200);
      const set = await jwks(server.url);
      await verifyWith(set, oldToken);
      await verifyWith(set, newToken);
    } finally {
      await server.stop();
    }
  });

  test('an activation sooner than the JWKS cache lifetime is refused unless forced, and a forced one warns', async () => {
    const server = await startTestServer({ PORTCULLIS_KEY_PREPUBLISH: '600' });
    try {
      const refused = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 299 });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.errors[0].code, 'activation-sooner-than-jwks-cache');
      assert.match(refused.body.errors[0].detail, /300 s.*"force": true/);
      assert.equal((await server.admin('GET', '/keys')).body.length, 1, 'no key made');
      const bad = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 0, force: 'yes' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.errors[0].code, 'invalid-force');
      const forced = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 0, force: true });
      assert.equal(forced.status, 200);
      assert.match(forced.body.warnings[0], /may refuse its tokens/);
      const { clientId, clientSecret } = await server.newCredential();
      assert.equal(decodeProtectedHeader(await server.accessToken(clientId, clientSecret)).kid, forced.body.kid);
      const safe = await server.admin('POST', '/keys/rotate', { activate_after_seconds: 300 });
      assert.equal(safe.status, 200);
      assert.equal(safe.body.warnings, undefined);
    } finally {
      await server.stop();
    }
  });

  test('concurrent rotations with the same activation make one key, and every caller gets it', async () => {
    const server = await startTestServer();
    try {
      const answers = await Promise.all(Array.from({ length: 4 }, () => server.admin('POST', '/keys/rotate', { activate_after_seconds: 60 })));
      assert.deepEqual(
        answers.map((r) => r.status),
        [200, 200, 200, 200],
      );
      assert.equal(new Set(answers.map((r) => r.body.kid)).size, 1);
      assert.equal((await server.admin('GET', '/keys')).body.length, 2);
      const audit = await server.admin('GET', '/audit-events?limit=10');
      const byOperator = audit.body.filter((e: { action: string; actor: string }) => e.action === 'key.rotated' && e.actor !== 'system');
      assert.equal(byOperator.length, 1, 'one rotation audited (besides the first key, made at start)');
    } finally {
      await server.stop();
    }
  });

  test('a verifier meeting an unknown kid reads the keys again, at most once a second', async () => {
    // Two servers on one SQLite file, with no events between them: only the store tells B of A's key.
    const dataDir = tempDir();
    const a = await startTestServer({}, { dataDir });
    const b = await startTestServer({}, { dataDir });
    try {
      const rotated = await a.admin('POST', '/keys/rotate', { activate_after_seconds: 0, force: true });
      const { clientId, clientSecret } = await a.newCredential();
      const token = await a.accessToken(clientId, clientSecret);
      assert.equal(decodeProtectedHeader(token).kid, rotated.body.kid);
      const reloads = () =>
        b.services.bus.caches
          .list()
          .find((c) => c.name === 'signing_keys')
          ?.cache.stats().misses ?? 0;
      const before = reloads();
      assert.equal((await b.me(token)).status, 200, 'B read the keys again and knew it');
      assert.equal(reloads(), before + 1);
      // A made-up kid of the right shape: one more read at most within the cooldown, however many tries.
      const [h, p, sig] = token.split('.') as [string, string, string];
      const header = JSON.parse(Buffer.from(h, 'base64url').toString());
      for (let i = 0; i < 5; i++) {
        const forged = `${Buffer.from(JSON.stringify({ ...header, kid: `${'A'.repeat(42)}${i}` })).toString('base64url')}.${p}.${sig}`;
        assert.equal((await b.me(forged)).status, 401);
      }
      assert.ok(reloads() <= before + 2, `reloads: ${reloads() - before}`);
    } finally {
      await a.stop();
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('scheduled rotation makes a new key once the newest is older than PORTCULLIS_KEY_ROTATION_DAYS', async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ PORTCULLIS_KEY_ROTATION_DAYS: '30', PORTCULLIS_KEY_PREPUBLISH: '600' }, { clock });
    try {
      const keys = server.services.keys;
      clock.advance(29 * 86_400);
      assert.equal(await keys.rotateIfDue(), undefined);
      clock.advance(86_400);
      const created = await keys.rotateIfDue();
      assert.ok(created);
      assert.equal(created.activatesAt, clock.now() + 600_000);
      assert.equal(await keys.rotateIfDue(), undefined, 'a fresh key is not rotated again');
      const audit = await server.admin('GET', '/audit-events?limit=1');
      assert.equal(audit.body[0].action, 'key.rotated');
      assert.equal(audit.body[0].actor, 'system');
    } finally {
      await server.stop();
    }
  });

  for (const [alg, kty] of [
    ['ES256', 'EC'],
    ['EdDSA', 'OKP'],
  ] as const) {
    test(`PORTCULLIS_SIGNING_ALG=${alg} issues ${alg} tokens that jose verifies`, async () => {
      const server = await startTestServer({ PORTCULLIS_SIGNING_ALG: alg });
      try {
        const { clientId, clientSecret } = await server.newCredential();
        const token = await server.accessToken(clientId, clientSecret);
        assert.equal(decodeProtectedHeader(token).alg, alg);
        const set = await jwks(server.url);
        assert.equal(set.keys[0]?.kty, kty);
        assert.equal(set.keys[0]?.alg, alg);
        await verifyWith(set, token);
        assert.equal((await server.me(token)).status, 200);
      } finally {
        await server.stop();
      }
    });
  }

  test('private keys are encrypted at rest and only the same master key opens them', async () => {
    const dataDir = tempDir();
    try {
      const server = await startTestServer({}, { dataDir });
      const kid = server.services.keys.signingKey().kid;
      await server.stop();
      const db = openSqlite(dataDir);
      const row = await db.selectFrom('signing_keys').selectAll().executeTakeFirstOrThrow();
      await db.destroy();
      assert.equal(row.kid, kid);
      assert.match(row.private_key, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      assert.ok(!row.private_key.includes('PRIVATE KEY'));
      const pkcs8Start = Buffer.from([0x30, 0x82]).toString('base64url');
      assert.ok(!row.private_key.split('.')[3]?.startsWith(pkcs8Start), 'ciphertext is not DER');

      const other = loadConfig({ PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: 'b'.repeat(64), PORT: '0' });
      await assert.rejects(createServices(other), (err: unknown) => err instanceof ConfigError && /not the master key/.test(err.message));
      const same = await createServices(loadConfig({ PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_MASTER_KEY: MASTER_KEY, PORT: '0' }));
      assert.equal(same.keys.signingKey().kid, kid);
      await stopServices(same);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
