// Bearer verification of the access tokens the server issues: what a valid token looks like to a
// standard JOSE library, what GET /me answers, every way a token is refused (always the same
// 401 {"Status Message":"Unauthorized"} with WWW-Authenticate error="invalid_token"), expiry
// with clock leeway, and the credential lifecycle (revoke now vs. delete with grace).
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { calculateJwkThumbprint, createRemoteJWKSet, type JWK, jwtVerify } from 'jose';
import { ManualClock } from '../src/domain/clock.js';
import { signCompact } from '../src/keys/jwt.js';
import { type Res, request } from './helpers/http.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ISSUER = 'http://portcullis.test';
const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

const me = (server: TestServer, authorization: string | undefined, path = '/me') =>
  request(server.url, 'GET', path, authorization === undefined ? {} : { authorization });
const meWith = (server: TestServer, token: string, path = '/me') => me(server, `Bearer ${token}`, path);

/** The one refusal: 401, the exact body, and WWW-Authenticate with error="invalid_token". */
function assertUnauthorized(res: Res, what: string): void {
  assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.text, UNAUTHORIZED, what);
  assert.ok(String(res.headers['www-authenticate']).includes('error="invalid_token"'), `${what}: WWW-Authenticate ${res.headers['www-authenticate']}`);
}

async function assertRefusedEverywhere(server: TestServer, token: string, what: string): Promise<void> {
  assertUnauthorized(await meWith(server, token), `${what} on /me`);
  assertUnauthorized(await meWith(server, token, '/2026-01/retail-media/me'), `${what} on /2026-01/retail-media/me`);
}

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const segments = (token: string): [string, string, string] => {
  const [h, p, s] = token.split('.');
  assert.ok(h !== undefined && p !== undefined && s !== undefined, 'three segments');
  return [h, p, s];
};
const decode = (segment: string): any => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

function rs256(signingInput: string, privateKey: KeyObject): string {
  return sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url');
}

/** Changes a base64url character in a way that always changes the decoded bytes (its top bit). */
function flipChar(c: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const v = alphabet.indexOf(c);
  assert.ok(v >= 0);
  return alphabet[v ^ 0b100000] as string;
}

async function issue(server: TestServer, cred: Awaited<ReturnType<TestServer['newCredential']>>): Promise<string> {
  const res = await server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.access_token as string;
}

describe('a valid access token', () => {
  let server: TestServer;
  let cred: Awaited<ReturnType<TestServer['newCredential']>>;
  let token: string;

  before(async () => {
    server = await startTestServer();
    cred = await server.newCredential({ name: 'Shop Feed', description: 'nightly product feed', scopes: ['read', 'write'] });
    token = await issue(server, cred);
  });

  after(async () => {
    await server?.stop();
  });

  test('verifies with jose against the published JWKS (RS256, issuer and audience checked)', async () => {
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: ISSUER, algorithms: ['RS256'] });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(payload.iss, ISSUER);
  });

  test('its header has alg RS256, typ at+jwt and a kid equal to the RFC 7638 thumbprint of the JWKS key', async () => {
    const header = decode(segments(token)[0]);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'at+jwt');
    assert.equal(typeof header.kid, 'string');
    const jwksRes = await request(server.url, 'GET', '/.well-known/jwks.json');
    assert.equal(jwksRes.status, 200);
    const key = (jwksRes.body.keys as JWK[]).find((k) => k.kid === header.kid);
    assert.ok(key, 'the kid is published in the JWKS');
    assert.equal(key.kty, 'RSA');
    assert.equal(key.d, undefined, 'no private part is published');
    assert.equal(await calculateJwkThumbprint({ kty: 'RSA', n: key.n, e: key.e } as JWK, 'sha256'), header.kid);
  });

  test('its claims: iss, sub, aud, client_id, iat, nbf, exp = iat + 900, jti, and integer application and organization ids', async () => {
    const claims = decode(segments(token)[1]);
    const app = await server.admin('GET', `/applications/${cred.appId}`);
    assert.equal(app.status, 200);
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, ISSUER);
    assert.equal(claims.client_id, cred.clientId);
    assert.equal(claims.sub, cred.clientId, 'RFC 9068 §2.2: sub of a client-credentials token is the client');
    assert.ok(Number.isInteger(claims.iat));
    assert.ok(Number.isInteger(claims.nbf));
    assert.ok(claims.nbf <= claims.iat);
    assert.equal(claims.exp, claims.iat + 900);
    assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60, 'iat is now');
    assert.equal(typeof claims.jti, 'string');
    assert.ok(claims.jti.length > 0);
    assert.ok(Number.isInteger(claims.application_id));
    assert.ok(Number.isInteger(claims.organization_id));
    assert.equal(claims.application_id, app.body.id);
    assert.equal(claims.organization_id, app.body.organization_id);
    assert.equal(claims.application_id, cred.appId);
    assert.equal(claims.organization_id, cred.orgId);
    const second = decode(segments(await issue(server, cred))[1]);
    assert.notEqual(second.jti, claims.jti, 'each token has its own jti');
  });

  test('GET /me answers the calling application with integer ids, in the reference shape', async () => {
    const res = await meWith(server, token);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      data: {
        type: 'Application',
        attributes: {
          applicationId: cred.appId,
          organizationId: cred.orgId,
          name: 'Shop Feed',
          description: 'nightly product feed',
          criteoService: null,
          clientId: cred.clientId,
          scopes: ['read', 'write'],
        },
      },
      errors: [],
      warnings: [],
    });
    assert.ok(Number.isInteger(res.body.data.attributes.applicationId));
    assert.ok(Number.isInteger(res.body.data.attributes.organizationId));
  });

  test('GET /2026-01/retail-media/me answers exactly the reference fields with criteoService retail-media', async () => {
    const res = await meWith(server, token, '/2026-01/retail-media/me');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      data: {
        type: 'Application',
        attributes: {
          applicationId: cred.appId,
          organizationId: cred.orgId,
          name: 'Shop Feed',
          description: 'nightly product feed',
          criteoService: 'retail-media',
        },
      },
      errors: [],
      warnings: [],
    });
  });
});

describe('tokens that are refused', () => {
  let server: TestServer;
  let cred: Awaited<ReturnType<TestServer['newCredential']>>;
  let token: string;
  let other: string;
  let realKid: string;
  let realJwk: JWK;
  const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 });

  /** Signs claims with the server's real current private key, as the server itself would. */
  const forge = async (claims: Record<string, unknown>) => {
    const key = server.services.keys.signingKey();
    return signCompact(key.encodedHeader, claims, key.alg, key.privateKey);
  };
  const claimsOf = (t: string) => decode(segments(t)[1]) as Record<string, unknown>;

  before(async () => {
    server = await startTestServer();
    cred = await server.newCredential();
    token = await issue(server, cred);
    other = await issue(server, await server.newCredential());
    realKid = decode(segments(token)[0]).kid;
    const jwks = await request(server.url, 'GET', '/.well-known/jwks.json');
    const found = (jwks.body.keys as JWK[]).find((k) => k.kid === realKid);
    assert.ok(found);
    realJwk = found;
    // The tokens the refusals are derived from are themselves good.
    assert.equal((await meWith(server, token)).status, 200);
    assert.equal((await meWith(server, other)).status, 200);
  });

  after(async () => {
    await server?.stop();
  });

  test('control: a token re-signed with the real key and unchanged claims is accepted (so forgeries below fail for their change alone)', async () => {
    const reSigned = await forge({ ...claimsOf(token), jti: 'control-jti' });
    assert.equal((await meWith(server, reSigned)).status, 200);
    const [h, p] = segments(token);
    const manual = `${h}.${p}.${rs256(`${h}.${p}`, server.services.keys.signingKey().privateKey)}`;
    assert.equal((await meWith(server, manual)).status, 200);
  });

  test('no Authorization header is refused', async () => {
    assertUnauthorized(await me(server, undefined), 'no header');
    assertUnauthorized(await me(server, undefined, '/2026-01/retail-media/me'), 'no header, versioned');
  });

  test('"Bearer" with no token is refused', async () => {
    assertUnauthorized(await me(server, 'Bearer'), 'Bearer');
    assertUnauthorized(await me(server, 'Bearer '), 'Bearer + space');
    assertUnauthorized(await me(server, 'Bearer    '), 'Bearer + spaces');
  });

  test('a Basic Authorization header is refused, even with valid client credentials', async () => {
    const basic = `Basic ${Buffer.from(`${cred.clientId}:${cred.clientSecret}`).toString('base64')}`;
    assertUnauthorized(await me(server, basic), 'Basic');
    assertUnauthorized(await me(server, `Basic ${token}`), 'Basic with the token');
    assertUnauthorized(await me(server, token), 'the token without a scheme');
  });

  test('garbage tokens are refused', async () => {
    for (const junk of ['garbage', 'a.b.c', '...', 'e30.e30.e30', 'not a token', `${token}.extra`, `.${token}`, token.replaceAll('.', '')]) {
      await assertRefusedEverywhere(server, junk, `garbage ${junk.slice(0, 20)}`);
    }
  });

  test('alg "none" with the real kid and an empty signature is refused', async () => {
    const claims = claimsOf(token);
    const none = `${b64url({ alg: 'none', kid: realKid, typ: 'at+jwt' })}.${b64url(claims)}.`;
    await assertRefusedEverywhere(server, none, 'alg none');
    const noneUpper = `${b64url({ alg: 'NONE', kid: realKid, typ: 'at+jwt' })}.${b64url(claims)}.`;
    await assertRefusedEverywhere(server, noneUpper, 'alg NONE');
  });

  test('HS256 signed with the RSA public key (PEM/SPKI bytes as the HMAC secret) is refused', async () => {
    const pem = createPublicKey({ key: realJwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const der = createPublicKey({ key: realJwk as any, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    for (const secret of [Buffer.from(pem), der]) {
      const input = `${b64url({ alg: 'HS256', kid: realKid, typ: 'at+jwt' })}.${b64url(claimsOf(token))}`;
      const forged = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      await assertRefusedEverywhere(server, forged, 'HS256 key confusion');
    }
  });

  test('an unknown kid is refused, even when signed with the real key', async () => {
    const key = server.services.keys.signingKey();
    const input = `${b64url({ alg: 'RS256', kid: 'no-such-key', typ: 'at+jwt' })}.${b64url(claimsOf(token))}`;
    await assertRefusedEverywhere(server, `${input}.${rs256(input, key.privateKey)}`, 'unknown kid');
    const noKid = `${b64url({ alg: 'RS256', typ: 'at+jwt' })}.${b64url(claimsOf(token))}`;
    await assertRefusedEverywhere(server, `${noKid}.${rs256(noKid, key.privateKey)}`, 'no kid');
  });

  test('a header with an embedded jwk (signed with a foreign key) is refused', async () => {
    const jwk = foreign.publicKey.export({ format: 'jwk' }) as JWK;
    const foreignKid = await calculateJwkThumbprint(jwk, 'sha256');
    for (const kid of [foreignKid, realKid]) {
      const input = `${b64url({ alg: 'RS256', kid, typ: 'at+jwt', jwk })}.${b64url(claimsOf(token))}`;
      await assertRefusedEverywhere(server, `${input}.${rs256(input, foreign.privateKey)}`, `embedded jwk, kid ${kid === realKid ? 'real' : 'foreign'}`);
    }
  });

  test('a header with a jku (signed with a foreign key) is refused', async () => {
    const jwk = foreign.publicKey.export({ format: 'jwk' }) as JWK;
    const foreignKid = await calculateJwkThumbprint(jwk, 'sha256');
    for (const kid of [foreignKid, realKid]) {
      const input = `${b64url({ alg: 'RS256', kid, typ: 'at+jwt', jku: 'http://attacker.test/jwks.json' })}.${b64url(claimsOf(token))}`;
      await assertRefusedEverywhere(server, `${input}.${rs256(input, foreign.privateKey)}`, `jku, kid ${kid === realKid ? 'real' : 'foreign'}`);
    }
  });

  test('a token re-signed with a foreign RSA key but the real kid is refused', async () => {
    const [h, p] = segments(token);
    await assertRefusedEverywhere(server, `${h}.${p}.${rs256(`${h}.${p}`, foreign.privateKey)}`, 'foreign key, real kid');
  });

  test('a bad signature is refused: a flipped character, or a segment swapped from another token', async () => {
    const [h, p, s] = segments(token);
    const lastFlipped = `${h}.${p}.${s.slice(0, -1)}${flipChar(s.slice(-1))}`;
    await assertRefusedEverywhere(server, lastFlipped, 'last char flipped');
    const mid = Math.floor(s.length / 2);
    const midFlipped = `${h}.${p}.${s.slice(0, mid)}${flipChar(s.charAt(mid))}${s.slice(mid + 1)}`;
    await assertRefusedEverywhere(server, midFlipped, 'middle char flipped');
    const [, otherPayload, otherSignature] = segments(other);
    await assertRefusedEverywhere(server, `${h}.${otherPayload}.${s}`, 'payload swapped');
    await assertRefusedEverywhere(server, `${h}.${p}.${otherSignature}`, 'signature swapped');
    await assertRefusedEverywhere(server, `${p}.${h}.${s}`, 'header and payload swapped');
  });

  test('a stripped signature (header.payload.) is refused', async () => {
    const [h, p] = segments(token);
    await assertRefusedEverywhere(server, `${h}.${p}.`, 'stripped signature');
    await assertRefusedEverywhere(server, `${h}.${p}`, 'two segments');
  });

  test('a truncated token is refused', async () => {
    for (const cut of [1, 4, 10, 200]) await assertRefusedEverywhere(server, token.slice(0, -cut), `truncated by ${cut}`);
  });

  test('a token over 8 KiB is refused even when correctly signed, while a padded one under the limit passes', async () => {
    const claims = claimsOf(token);
    const small = await forge({ ...claims, padding: 'x'.repeat(4000) });
    assert.ok(small.length < 8192);
    assert.equal((await meWith(server, small)).status, 200, 'a large but allowed token passes');
    const big = await forge({ ...claims, padding: 'x'.repeat(6500) });
    assert.ok(big.length > 8192, `token length ${big.length}`);
    await assertRefusedEverywhere(server, big, 'over 8 KiB');
  });

  test('nbf in the future beyond the 60 s leeway is refused (within the leeway it passes)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = claimsOf(token);
    const later = await forge({ ...claims, iat: now, nbf: now + 300, exp: now + 1200 });
    await assertRefusedEverywhere(server, later, 'nbf +300 s');
    const slightly = await forge({ ...claims, iat: now, nbf: now + 20, exp: now + 920 });
    assert.equal((await meWith(server, slightly)).status, 200, 'nbf within the leeway passes');
  });

  test('a correctly signed token with the wrong issuer is refused', async () => {
    const claims = claimsOf(token);
    for (const iss of ['http://evil.test', `${ISSUER}/`, 'HTTP://PORTCULLIS.TEST']) {
      await assertRefusedEverywhere(server, await forge({ ...claims, iss }), `iss ${iss}`);
    }
    const { iss: _dropped, ...noIss } = claims;
    await assertRefusedEverywhere(server, await forge(noIss), 'no iss');
  });

  test('a correctly signed token with the wrong audience is refused', async () => {
    const claims = claimsOf(token);
    for (const aud of ['http://other.test', ['http://other.test'], [], `${ISSUER}/`]) {
      await assertRefusedEverywhere(server, await forge({ ...claims, aud }), `aud ${JSON.stringify(aud)}`);
    }
    const { aud: _dropped, ...noAud } = claims;
    await assertRefusedEverywhere(server, await forge(noAud), 'no aud');
  });

  test('a correctly signed token with exp as a string is refused', async () => {
    const claims = claimsOf(token);
    await assertRefusedEverywhere(server, await forge({ ...claims, exp: String(claims.exp) }), 'exp string');
    await assertRefusedEverywhere(server, await forge({ ...claims, exp: (claims.exp as number) + 0.5 }), 'exp fractional');
    const { exp: _dropped, ...noExp } = claims;
    await assertRefusedEverywhere(server, await forge(noExp), 'no exp');
  });

  test('duplicate JSON keys in the payload where the last iss is wrong are refused', async () => {
    const key = server.services.keys.signingKey();
    assert.equal(key.alg, 'RS256');
    const claims = claimsOf(token);
    const rest = JSON.stringify(claims).slice(1, -1);
    const signedWith = (payloadJson: string) => {
      const input = `${key.encodedHeader}.${Buffer.from(payloadJson).toString('base64url')}`;
      return `${input}.${rs256(input, key.privateKey)}`;
    };
    assert.equal((await meWith(server, signedWith(`{${rest}}`))).status, 200, 'control: the hand-built payload passes');
    const duplicate = signedWith(`{${rest},"iss":"http://evil.test"}`);
    await assertRefusedEverywhere(server, duplicate, 'duplicate iss, last wrong');
  });
});

describe('expiry, with a 60 s leeway', () => {
  let server: TestServer;
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);

  before(async () => {
    server = await startTestServer({}, { clock });
  });

  after(async () => {
    await server?.stop();
  });

  test('a token still passes at exp + 30 s (leeway) and is refused at exp + 61 s', async () => {
    const cred = await server.newCredential();
    const token = await issue(server, cred);
    assert.equal((await meWith(server, token)).status, 200);
    clock.advance(900 + 30);
    assert.equal((await meWith(server, token)).status, 200, 'within the 60 s leeway after exp');
    assert.equal((await meWith(server, token, '/2026-01/retail-media/me')).status, 200);
    clock.advance(31);
    await assertRefusedEverywhere(server, token, 'expired by 61 s');
    // A fresh token from the same credential works at the new time.
    assert.equal((await meWith(server, await issue(server, cred))).status, 200);
  });
});

describe('credential lifecycle and already-issued tokens', () => {
  let server: TestServer;
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);

  before(async () => {
    server = await startTestServer({ PORTCULLIS_DEACTIVATION_GRACE: '120' }, { clock });
  });

  after(async () => {
    await server?.stop();
  });

  test('DELETE ?immediately=true revokes at once: issued tokens fail /me and the credential gets invalid_client', async () => {
    const cred = await server.newCredential();
    const bystander = await server.newCredential();
    const first = await issue(server, cred);
    const second = await issue(server, cred);
    const unrelated = await issue(server, bystander);
    assert.equal((await meWith(server, first)).status, 200);
    assert.equal((await meWith(server, second)).status, 200);

    const del = await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.status, 'revoked');

    await assertRefusedEverywhere(server, first, 'revoked credential, first token');
    await assertRefusedEverywhere(server, second, 'revoked credential, second token');
    const res = await server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_client');
    assert.equal((await meWith(server, unrelated)).status, 200, 'other credentials are untouched');
  });

  test('revoke now during the grace period of a deleted credential also stops its issued tokens', async () => {
    const cred = await server.newCredential();
    const token = await issue(server, cred);
    const del = await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}`);
    assert.equal(del.body.status, 'deactivating');
    assert.equal((await meWith(server, token)).status, 200);
    const revoke = await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`);
    assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
    assert.equal(revoke.body.status, 'revoked');
    await assertRefusedEverywhere(server, token, 'revoked during grace');
    const res = await server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_client');
  });

  test('a plain DELETE keeps issued tokens valid and issues new ones until the grace ends; then invalid_client, and old tokens live to their exp', async () => {
    const cred = await server.newCredential();
    const preDelete = await issue(server, cred);

    const del = await server.admin('DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}`);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.status, 'deactivating');
    assert.equal((await meWith(server, preDelete)).status, 200, 'a token issued before the delete still works');

    clock.advance(60);
    const during = await issue(server, cred); // still within the 120 s grace
    assert.equal((await meWith(server, during)).status, 200);

    clock.advance(61); // 121 s after the delete: the grace is over
    const refused = await server.token({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret });
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'invalid_client');
    assert.equal((await meWith(server, preDelete)).status, 200, 'issued before the delete, still within its exp');
    assert.equal((await meWith(server, during)).status, 200, 'issued during the grace, still within its exp');

    clock.advance(1000 - 121); // t = 1000 s: `preDelete` (exp 900 + 60 leeway) is over, `during` (exp 960 + 60) is not
    await assertRefusedEverywhere(server, preDelete, 'pre-delete token past its exp');
    assert.equal((await meWith(server, during)).status, 200, 'the grace-period token lives until its own exp');

    clock.advance(21); // t = 1021 s
    await assertRefusedEverywhere(server, during, 'grace-period token past its exp');
  });
});
