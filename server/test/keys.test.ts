import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { ConfigError, loadConfig } from '../src/config.js';
import { createServices, stopServices } from '../src/app.js';
import { ManualClock } from '../src/domain/clock.js';
import { openSqlite } from '../src/store/db.js';
import { ISSUER_FOR_TESTS, MASTER_KEY, startTestServer, tempDir } from './helpers/server.js';

async function jwks(url: string): Promise<JSONWebKeySet> {
  return (await fetch(`${url}/.well-known/jwks.json`)).json() as Promise<JSONWebKeySet>;
}

const verifyWith = (set: JSONWebKeySet, token: string, at = new Date()) =>
  jwtVerify(token, createLocalJWKSet(set), { issuer: ISSUER_FOR_TESTS, audience: ISSUER_FOR_TESTS, currentDate: at });

describe('signing keys', () => {
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
