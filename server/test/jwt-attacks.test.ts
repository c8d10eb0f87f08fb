// JWT attacks beyond those in verification.test.ts (which covers alg none, HS256 with the RSA
// public key, unknown kid, jwk and jku headers, foreign-key re-signing, bad, stripped and
// truncated signatures, tokens over 8 KiB, expiry, nbf in the future, wrong iss and aud, exp as
// a string and duplicate payload keys). Every forgery here is signed with the server's real
// private key, so each is refused for the one thing it changes, never for its signature.
import assert from 'node:assert/strict';
import { type KeyObject, sign } from 'node:crypto';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { type RawResponse, rawRequest } from './helpers/raw-http.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

const b64url = (text: string) => Buffer.from(text).toString('base64url');
const decode = (segment: string): Record<string, unknown> => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

describe('JWT attacks on bearer verification', () => {
  let server: TestServer;
  let token: string;
  let claims: Record<string, unknown>;
  let header: Record<string, unknown>;
  let privateKey: KeyObject;
  let partnerId: number;

  /** Signs the exact header and payload JSON texts given with the server's real key. */
  const signed = (headerJson: string, payloadJson: string) => {
    const input = `${b64url(headerJson)}.${b64url(payloadJson)}`;
    return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  };
  const withHeader = (h: Record<string, unknown>) => signed(JSON.stringify(h), JSON.stringify(claims));
  const withClaims = (c: Record<string, unknown>) => signed(JSON.stringify(header), JSON.stringify(c));

  const get = (path: string, authorization: string | Buffer | undefined): Promise<RawResponse> =>
    rawRequest(server.url, { method: 'GET', target: path, headers: authorization === undefined ? [] : [['Authorization', authorization]] });

  async function assertRefused(t: string, what: string): Promise<void> {
    for (const path of [
      '/me',
      '/2026-01/retail-media/me',
      `/delivery/retailmedia?criteo-partner-id=${partnerId}&retailer-visitor-id=v&event-type=viewHome&page-id=home`,
    ]) {
      const res = await get(path, `Bearer ${t}`);
      assert.equal(res.status, 401, `${what} on ${path.split('?')[0]}: ${res.status} ${res.text.slice(0, 200)}`);
      assert.equal(res.text, UNAUTHORIZED, `${what} on ${path}`);
    }
  }
  async function assertAccepted(t: string, what: string): Promise<void> {
    const res = await get('/me', `Bearer ${t}`);
    assert.equal(res.status, 200, `${what}: ${res.status} ${res.text.slice(0, 200)}`);
  }

  before(async () => {
    server = await startTestServer();
    const cred = await server.newCredential({ scopes: ['retail-media'] });
    token = await server.accessToken(cred.clientId, cred.clientSecret);
    const [h, p] = token.split('.') as [string, string];
    header = decode(h);
    claims = decode(p);
    const key = server.services.keys.signingKey();
    assert.equal(key.alg, 'RS256');
    assert.equal(key.kid, header.kid);
    privateKey = key.privateKey;
    partnerId = 4242;
    assert.equal((await server.admin('PUT', `/partners/${partnerId}`, { name: 'Retailer', require_token: true })).status, 201);
    assert.equal((await server.admin('POST', `/partners/${partnerId}/applications`, { application_id: cred.appId })).status, 201);
  });
  after(() => server?.stop());

  test('control: the hand-built header and payload, signed with the real key, pass everywhere', async () => {
    const control = withHeader(header);
    await assertAccepted(control, 'control');
    const delivery = await get(
      `/delivery/retailmedia?criteo-partner-id=${partnerId}&retailer-visitor-id=v&event-type=viewHome&page-id=home`,
      `Bearer ${control}`,
    );
    assert.equal(delivery.status, 200, delivery.text);
  });

  test('kid injection (path traversal, SQL, NUL, 6 KB, non-strings, near misses) is refused as an unknown key', async () => {
    const kid = header.kid as string;
    const injected: unknown[] = [
      '../../etc/passwd',
      '../../../../../../dev/null',
      '/dev/null',
      "' OR 1=1 --",
      `${kid}' OR '1'='1`,
      `x"; DROP TABLE signing_keys; --`,
      'k\u0000',
      `${kid}\u0000`,
      'k'.repeat(6_000),
      ` ${kid}`,
      `${kid} `,
      kid.toUpperCase(),
      kid.slice(0, -1),
      '',
      '__proto__',
      'constructor',
      42,
      [kid],
      { kid },
      null,
      true,
    ];
    for (const k of injected) await assertRefused(withHeader({ ...header, kid: k }), `kid ${JSON.stringify(k).slice(0, 40)}`);
    // The key set is untouched: the real token still passes.
    await assertAccepted(token, 'the real token afterwards');
  });

  test('x5u, x5c and crit headers are refused even with the real kid and key', async () => {
    const certLike = Buffer.from('not really a certificate').toString('base64');
    for (const extra of [
      { x5u: 'http://attacker.test/cert.pem' },
      { x5c: [certLike] },
      { x5c: [] },
      { crit: ['exp'], exp: 1 },
      { b64: false, crit: ['b64'] },
    ]) {
      await assertRefused(withHeader({ ...header, ...extra }), `header ${JSON.stringify(extra)}`);
    }
  });

  test('the header must say alg RS256 and typ at+jwt exactly (RFC 9068), whatever the key signed', async () => {
    for (const alg of ['rs256', 'RS384', 'RS512', 'PS256', 'ES256', 'EdDSA', 'HS256', '', ' RS256', null, ['RS256']]) {
      await assertRefused(withHeader({ ...header, alg }), `alg ${JSON.stringify(alg)}`);
    }
    for (const typ of ['JWT', 'at+JWT', 'application/at+jwt', '', null, undefined]) {
      const { typ: _drop, ...rest } = header;
      await assertRefused(withHeader(typ === undefined ? rest : { ...rest, typ }), `typ ${JSON.stringify(typ)}`);
    }
  });

  test('a __proto__ member in the header does not supply a kid or alg', async () => {
    const { kid, alg, ...rest } = header;
    await assertRefused(
      signed(`{"__proto__":{"kid":${JSON.stringify(kid)},"alg":${JSON.stringify(alg)}},${JSON.stringify(rest).slice(1)}`, JSON.stringify(claims)),
      '__proto__ kid',
    );
  });

  test('duplicate header keys: the lexically last one counts (RFC 7515 §4), so a wrong last alg or kid is refused', async () => {
    const kid = JSON.stringify(header.kid);
    const payload = JSON.stringify(claims);
    const body = (members: string) => signed(`{${members}}`, payload);
    await assertRefused(body(`"alg":"RS256","typ":"at+jwt","kid":${kid},"alg":"none"`), 'alg RS256 then none');
    await assertRefused(body(`"alg":"RS256","typ":"at+jwt","kid":${kid},"alg":"HS256"`), 'alg RS256 then HS256');
    await assertRefused(body(`"alg":"RS256","typ":"at+jwt","kid":${kid},"kid":"../../etc/passwd"`), 'real kid then a path');
    await assertRefused(body(`"alg":"RS256","typ":"at+jwt","kid":${kid},"typ":"JWT"`), 'typ at+jwt then JWT');
    // With the lexically last values right the header is what the key signed: accepted, not a bypass.
    await assertAccepted(body(`"alg":"none","typ":"at+jwt","kid":"other","kid":${kid},"alg":"RS256"`), 'wrong first, right last');
  });

  test('exp and nbf must be safe non-negative integers: 1e20, 2^53+1, negatives, floats, strings and null are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const exp of [1e20, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -1, -now, now + 600.5, 1e308, `${now + 600}`, null, true, [now + 600], { $gt: 0 }]) {
      await assertRefused(withClaims({ ...claims, exp }), `exp ${JSON.stringify(exp)}`);
    }
    for (const nbf of [1e20, Number.MAX_SAFE_INTEGER + 2, Number.MAX_SAFE_INTEGER, now + 3_600, -1, now - 0.5, `${now - 10}`, '0', null]) {
      await assertRefused(withClaims({ ...claims, nbf }), `nbf ${JSON.stringify(nbf)}`);
    }
    // exp as a JSON number text that overflows to Infinity.
    const text = JSON.stringify(claims).replace(/"exp":\d+/, '"exp":1e400');
    assert.ok(text.includes('1e400'));
    await assertRefused(signed(JSON.stringify(header), text), 'exp 1e400');
  });

  test('a correctly signed token may not claim to live longer than any token we issue, or to expire before it was issued', async () => {
    const iat = claims.iat as number;
    await assertRefused(withClaims({ ...claims, exp: Number.MAX_SAFE_INTEGER }), 'exp at the largest safe integer');
    await assertRefused(withClaims({ ...claims, exp: iat + 86_401 }), 'a lifetime over a day');
    await assertRefused(withClaims({ ...claims, exp: iat - 1 }), 'exp before iat');
    await assertAccepted(withClaims({ ...claims, exp: iat + 86_400 }), 'the longest configurable lifetime');
  });

  test('a signature has one spelling: the unused bits of its last character must be zero', async () => {
    const [h, p, s] = token.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // 256 bytes take 342 characters; the last one carries 4 bits of data and 2 unused ones.
    const last = alphabet.indexOf(s.at(-1) as string);
    const twin = `${s.slice(0, -1)}${alphabet[last ^ 1]}`;
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(s, 'base64url'), 'the twin decodes to the same bytes');
    await assertRefused(`${h}.${p}.${twin}`, 'a non-canonical twin of a valid signature');
    await assertAccepted(token, 'the original');
  });

  test('iat is required and must be a safe integer', async () => {
    const { iat: _drop, ...noIat } = claims;
    await assertRefused(withClaims(noIat), 'no iat');
    for (const iat of [`${claims.iat}`, 1e20, -5, (claims.iat as number) + 0.25, null])
      await assertRefused(withClaims({ ...claims, iat }), `iat ${JSON.stringify(iat)}`);
  });

  test('a 12 KB token is refused with the one 401; a 1 MB Authorization header is refused by the HTTP layer quickly, never with a 5xx', async () => {
    const big = withClaims({ ...claims, pad: 'p'.repeat(9_000) });
    assert.ok(big.length > 12_000 && big.length < 14_000);
    await assertRefused(big, '12 KB token');

    const started = performance.now();
    let outcome: string;
    try {
      const res = await rawRequest(server.url, {
        method: 'GET',
        target: '/me',
        headers: [['Authorization', `Bearer ${'A'.repeat(1024 * 1024)}`]],
        timeoutMs: 5_000,
      });
      outcome = String(res.status);
    } catch (err) {
      // The server may reset the connection before the client has read the 431.
      outcome = (err as NodeJS.ErrnoException).code ?? String(err);
    }
    assert.ok(['431', 'ECONNRESET', 'EPIPE'].includes(outcome), `1 MB header: ${outcome}`);
    assert.ok(performance.now() - started < 2_000, 'refused within 2 s');
    // Just over Node's 16 KiB header limit: 431 with no route involved.
    const over = await get('/me', `Bearer ${'A'.repeat(17 * 1024)}`);
    assert.equal(over.status, 431);
    const health = await get('/healthz', undefined);
    assert.equal(health.status, 200, 'the server is still up');
  });

  test('a token over 8 KiB sent for introspection is simply not active', async () => {
    const cred = await server.newCredential();
    const big = withClaims({ ...claims, pad: 'p'.repeat(7_000) });
    const introspected = await fetch(`${server.url}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: big, client_id: cred.clientId, client_secret: cred.clientSecret }),
    });
    assert.equal(introspected.status, 200);
    assert.deepEqual(await introspected.json(), { active: false });
  });

  test('whitespace: spaces around the token are allowed (1*SP), any inside it, a tab or a folded line after the scheme is refused', async () => {
    await assertAccepted(token, 'plain');
    const spaced = await get('/me', `Bearer    ${token}   `);
    assert.equal(spaced.status, 200, 'several spaces after the scheme (RFC 6750 b64token after 1*SP) and trailing OWS');
    const [h, p, s] = token.split('.') as [string, string, string];
    for (const t of [`${h}. ${p}.${s}`, `${h}.${p}.${s.slice(0, 20)} ${s.slice(20)}`, `${h}\t.${p}.${s}`, `${token}\u00a0`]) {
      await assertRefused(t, `whitespace inside ${JSON.stringify(t.slice(0, 10))}`);
    }
    const tab = await get('/me', `Bearer\t${token}`);
    assert.equal(tab.status, 401, 'a tab is not the SP the scheme needs');
    assert.equal(tab.text, UNAUTHORIZED);
    // obs-fold (a header continued on the next line) is refused by the HTTP parser before any route.
    const folded = await get('/me', Buffer.from(`Bearer\r\n ${token}`));
    assert.ok(folded.status >= 400 && folded.status < 500, `folded header: ${folded.status}`);
    const newline = await get('/me', Buffer.from(`Bearer ${h}.${p}\n.${s}`));
    assert.ok(newline.status >= 400 && newline.status < 500, `bare LF inside: ${newline.status}`);
  });

  test('the scheme name is case-insensitive (RFC 7235 §2.1): bearer, BEARER and BeArEr are accepted alike on /me and the delivery API', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const me = await get('/me', `${scheme} ${token}`);
      assert.equal(me.status, 200, `${scheme} on /me`);
      const delivery = await get(
        `/delivery/retailmedia?criteo-partner-id=${partnerId}&retailer-visitor-id=v&event-type=viewHome&page-id=home`,
        `${scheme} ${token}`,
      );
      assert.equal(delivery.status, 200, `${scheme} on delivery`);
    }
    for (const scheme of ['Bearer:', 'Bearerx', 'Beare', 'JWT', 'Token']) {
      const res = await get('/me', `${scheme} ${token}`);
      assert.equal(res.status, 401, scheme);
      assert.equal(res.text, UNAUTHORIZED);
    }
  });

  test('a signature in standard base64 (+, /, = padding) is refused even when it encodes the right bytes', async () => {
    const [h, p, s] = token.split('.') as [string, string, string];
    const standard = Buffer.from(s, 'base64url').toString('base64');
    assert.notEqual(standard, s);
    assert.ok(/[+/=]/.test(standard), 'this signature differs in base64 proper');
    await assertRefused(`${h}.${p}.${standard}`, 'base64 signature');
    await assertRefused(`${h}.${p}.${s}=`, 'padded signature');
  });
});
