import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { describe } from './helpers/dialects.js';
import { buildApp, createServices, stopServices } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { ManualClock } from '../src/domain/clock.js';
import { curl, curlAvailable, referenceDeliveryCurl, referenceTokenCurl } from './helpers/curl.js';
import { runCli } from './helpers/process.js';
import { ADMIN_TOKEN, ISSUER_FOR_TESTS, MASTER_KEY, startTestServer, type TestServer, tempDir } from './helpers/server.js';

/** A GET from a chosen local address (any 127.0.0.0/8 address reaches a loopback server); resolves the status. */
function localRequest(base: string, path: string, localAddress: string): Promise<number> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: target.hostname, port: target.port, path, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36';

/** The reference page's curl command, as written, with only the host and the token changed. */
const referenceCurl = (base: string, token: string) => referenceDeliveryCurl(base, token, ['X-Forwarded-For: 123.456.789.012', `User-Agent: ${UA}`]);

const HOME = { 'criteo-partner-id': '12345', 'retailer-visitor-id': '123', 'customer-id': '456', 'event-type': 'viewHome', 'page-id': 'viewHome_API_desktop' };

const errorOf = (body: any) => {
  assert.ok(Array.isArray(body?.errors) && body.errors.length === 1, `errors shape: ${JSON.stringify(body)}`);
  const [e] = body.errors;
  for (const field of ['traceId', 'type', 'code', 'title', 'detail']) assert.equal(typeof e[field], 'string');
  return e;
};

describe('retail media: partners, static tokens and the delivery API', () => {
  let server: TestServer;
  const clock = new ManualClock();
  let app: { orgId: number; appId: number; clientId: string; clientSecret: string };

  const deliver = async (params: Record<string, string> | string, headers: Record<string, string> = {}) => {
    const query = typeof params === 'string' ? params : new URLSearchParams(params).toString();
    const res = await fetch(`${server.url}/delivery/retailmedia?${query}`, { headers });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, text, body, headers: res.headers };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    server = await startTestServer({}, { clock });
    app = await server.newCredential({ scopes: ['retail-media'] });
    assert.equal((await server.admin('PUT', '/partners/12345', { name: 'Retailer', require_token: true })).status, 201);
    const placement = await server.admin('PUT', '/partners/12345/placements/viewHome/Top', {
      format: 'sponsored_products',
      products: [
        { ProductId: 'sku-1', ParentSKU: 'parent-1', ProductName: 'Kettle', Price: '19.99', Image: 'https://cdn.example/k.png' },
        { ProductId: 'sku-2', ProductName: 'Toaster', Price: 24.5 },
      ],
      rendering: { title: 'Sponsored' },
    });
    assert.equal(placement.status, 201, JSON.stringify(placement.body));
  });
  after(() => server.stop());

  test('PUT creates a partner with require_token off by default, then replaces its settings', async () => {
    const created = await server.admin('PUT', '/partners/777', { name: 'Opt-out' });
    assert.equal(created.status, 201);
    assert.equal(created.body.id, 777);
    assert.equal(created.body.require_token, false);
    assert.deepEqual(created.body.application_ids, []);
    const replaced = await server.admin('PUT', '/partners/777', { name: 'Renamed', require_token: true, rate_limit_per_minute: 10 });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.name, 'Renamed');
    assert.equal(replaced.body.require_token, true);
    assert.equal(replaced.body.rate_limit_per_minute, 10);
    assert.equal((await server.admin('GET', '/partners/777')).body.name, 'Renamed');
    assert.ok((await server.admin('GET', '/partners')).body.some((p: any) => p.id === 777));
  });

  test('operator inputs that are wrong get 400 or 404 in the errors shape, never 500', async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ['PUT', '/partners/0', { name: 'x' }, 400, /partnerId must be a positive integer/],
      ['PUT', '/partners/-3', { name: 'x' }, 400, /partnerId must be a positive integer/],
      ['PUT', '/partners/abc', { name: 'x' }, 400, /partnerId must be a positive integer/],
      ['PUT', '/partners/99999999999999999999', { name: 'x' }, 400, /partnerId/],
      ['PUT', '/partners/5', {}, 400, /name is required/],
      ['PUT', '/partners/5', { name: 'x', require_token: 'yes' }, 400, /require_token must be true or false/],
      ['PUT', '/partners/5', { name: 'x', rate_limit_per_minute: 0 }, 400, /rate_limit_per_minute/],
      ['GET', '/partners/424242', undefined, 404, /partner 424242 was not found/],
      ['POST', '/partners/424242/static-tokens', { name: 'x' }, 404, /partner 424242 was not found/],
      ['POST', '/partners/12345/static-tokens', {}, 400, /name is required/],
      ['POST', '/partners/12345/static-tokens', { name: 'x', expires_at: 'tomorrow' }, 400, /ISO 8601/],
      ['POST', '/partners/12345/static-tokens', { name: 'x', expires_at: '2001-01-01T00:00:00Z' }, 400, /in the future/],
      ['POST', '/partners/12345/applications', { application_id: 'one' }, 400, /application_id must be a positive integer/],
      ['POST', '/partners/12345/applications', { application_id: 999999 }, 404, /application 999999 was not found/],
      ['DELETE', '/partners/12345/applications/999999', undefined, 404, /not found/],
      ['DELETE', '/partners/12345/static-tokens/999999', undefined, 404, /static token 999999 of partner 12345/],
      ['PUT', '/partners/12345/placements/viewNowhere/Top', { format: 'x' }, 400, /event type must be one of/],
      ['PUT', '/partners/12345/placements/viewHome/Top', { format: 'x', products: [{ Name: 'no id' }] }, 400, /ProductId is required/],
      ['PUT', '/partners/12345/placements/viewHome/Top', { format: 'x', products: [{ ProductId: 'a', OnClickBeacon: 'x' }] }, 400, /made by the server/],
    ];
    for (const [method, target, body, status, detail] of cases) {
      const res = await server.admin(method, target, body);
      assert.equal(res.status, status, `${method} ${target} → ${JSON.stringify(res.body)}`);
      assert.match(errorOf(res.body).detail, detail, `${method} ${target}`);
    }
  });

  test('a static token is shown once with a scanner-friendly prefix, stored as a hash and listed without it', async () => {
    const created = await server.admin('POST', '/partners/12345/static-tokens', { name: 'Retailer prod', expires_at: '2099-01-01T00:00:00Z' });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^pct_[A-Za-z0-9_-]{49}$/);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    assert.equal(created.body.expires_at, '2099-01-01T00:00:00.000Z');
    const stored = await server.services.store.staticTokens.get(created.body.id);
    assert.ok(stored && stored.tokenHash !== created.body.token && !stored.tokenHash.includes(created.body.token.slice(4, 20)));
    assert.equal((await deliver(HOME, bearer(created.body.token))).status, 200);
    const list = await server.admin('GET', '/partners/12345/static-tokens');
    const item = list.body.find((t: any) => t.id === created.body.id);
    assert.deepEqual(Object.keys(item).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'partner_id', 'status']);
    assert.equal(item.last_used_at, new Date(clock.now()).toISOString());
    assert.ok(!JSON.stringify(list.body).includes(created.body.token));
    assert.ok(!JSON.stringify((await server.admin('GET', '/audit-events?limit=1000')).body).includes('pct_'), 'no token in the audit log');
  });

  test("the reference page's static-token curl example works as written (GET with a form body)", async (t) => {
    if (!curlAvailable(t)) return;
    const { body: token } = await server.admin('POST', '/partners/12345/static-tokens', { name: 'curl' });
    const res = await curl(referenceCurl(server.url, token.token));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'OK');
    const placement = res.body.placements[0]['viewHome_API_desktop-Top'][0];
    assert.equal(placement.format, 'sponsored_products');
    assert.deepEqual(placement.products_order, ['sku-1', 'sku-2']);
    assert.equal(placement.products[0].ProductId, 'sku-1');
    assert.equal(placement.products[0].ParentSKU, 'parent-1');
    assert.equal(placement.products[1].ParentSKU, 'sku-2', 'ParentSKU defaults to the ProductId');
    assert.equal(placement.products[1].Price, '24.5');
    const bad = await curl(referenceCurl(server.url, `${token.token.slice(0, -1)}x`));
    assert.equal(bad.status, 401);
    assert.equal(bad.text, UNAUTHORIZED);
  });

  test("the reference page's dynamic-token curl examples work as written, once the app is linked", async (t) => {
    if (!curlAvailable(t)) return;
    const tokenRes = await curl(referenceTokenCurl(server.url, app.clientId, app.clientSecret));
    assert.equal(tokenRes.status, 200, tokenRes.text);
    const dynamic = tokenRes.body.access_token as string;
    const before = await curl(referenceCurl(server.url, dynamic));
    assert.equal(before.status, 401, 'an unlinked application is refused');
    assert.equal(before.text, UNAUTHORIZED);
    const link = await server.admin('POST', '/partners/12345/applications', { application_id: app.appId });
    assert.equal(link.status, 201);
    const res = await curl(referenceCurl(server.url, dynamic));
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.placements[0]['viewHome_API_desktop-Top']);
    assert.equal((await server.admin('POST', '/partners/12345/applications', { application_id: app.appId })).status, 200, 'linking twice is idempotent');
  });

  test('every missing or wrong token for a token-requiring partner is 401 with exactly the reference body', async () => {
    const other = await server.admin('PUT', '/partners/222', { name: 'Other', require_token: true });
    assert.equal(other.status, 201);
    const otherToken = (await server.admin('POST', '/partners/222/static-tokens', { name: 'other' })).body.token;
    const unlinked = await server.newCredential();
    const unlinkedToken = await server.accessToken(unlinked.clientId, unlinked.clientSecret);
    const revoked = (await server.admin('POST', '/partners/12345/static-tokens', { name: 'to revoke' })).body;
    assert.equal((await deliver(HOME, bearer(revoked.token))).status, 200);
    const revocation = await server.admin('DELETE', `/partners/12345/static-tokens/${revoked.id}`);
    assert.equal(revocation.status, 200);
    assert.equal(revocation.body.status, 'revoked');
    const cases: [string, Record<string, string>][] = [
      ['no Authorization header', {}],
      ['an empty bearer', { authorization: 'Bearer ' }],
      ['Basic instead of Bearer', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['random text', bearer('not-a-token')],
      ['a static token of another partner', bearer(otherToken)],
      ['a revoked static token', bearer(revoked.token)],
      ['a well-formed static token that was never issued', bearer(`pct_${'A'.repeat(43)}AAAAAA`)],
      ['a dynamic token of an unlinked application', bearer(unlinkedToken)],
      ['a tampered dynamic token', bearer(`${unlinkedToken.slice(0, -2)}xx`)],
    ];
    for (const [what, headers] of cases) {
      const res = await deliver(HOME, headers);
      assert.equal(res.status, 401, what);
      assert.equal(res.text, UNAUTHORIZED, what);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /, what);
    }
    assert.equal((await deliver({ ...HOME, 'criteo-partner-id': '222' }, bearer(otherToken))).status, 200, 'the other partner accepts its own token');
  });

  test('an expired static token is refused from its expiry on', async () => {
    const expires = new Date(clock.now() + 3_600_000).toISOString();
    const created = (await server.admin('POST', '/partners/12345/static-tokens', { name: 'short', expires_at: expires })).body;
    assert.equal((await deliver(HOME, bearer(created.token))).status, 200);
    clock.advance(3599);
    assert.equal((await deliver(HOME, bearer(created.token))).status, 200);
    clock.advance(1);
    const res = await deliver(HOME, bearer(created.token));
    assert.equal(res.status, 401);
    assert.equal(res.text, UNAUTHORIZED);
    const listed = (await server.admin('GET', '/partners/12345/static-tokens')).body.find((t: any) => t.id === created.id);
    assert.equal(listed.status, 'expired');
  });

  test('unlinking an application stops its dynamic tokens at once', async () => {
    const other = await server.newCredential({ scopes: ['retail-media'] });
    const token = await server.accessToken(other.clientId, other.clientSecret);
    await server.admin('POST', '/partners/12345/applications', { application_id: other.appId });
    assert.equal((await deliver(HOME, bearer(token))).status, 200);
    const unlinked = await server.admin('DELETE', `/partners/12345/applications/${other.appId}`);
    assert.equal(unlinked.status, 200);
    assert.equal((await deliver(HOME, bearer(token))).status, 401);
  });

  test('a partner that has not opted in serves calls without a token, but a wrong token is still refused', async () => {
    await server.admin('PUT', '/partners/333', { name: 'Open' });
    const open = { ...HOME, 'criteo-partner-id': '333' };
    const res = await deliver(open);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.placements, []);
    assert.equal((await deliver(open, bearer('wrong'))).status, 401);
  });

  test('missing, malformed, repeated and over-long parameters are 400 naming the parameter', async () => {
    const without = (name: string) => Object.fromEntries(Object.entries(HOME).filter(([k]) => k !== name));
    const cases: [Record<string, string> | string, string, RegExp][] = [
      [without('criteo-partner-id'), 'missing-parameter', /^criteo-partner-id is required/],
      [without('retailer-visitor-id'), 'missing-parameter', /^retailer-visitor-id is required/],
      [without('event-type'), 'missing-parameter', /^event-type is required/],
      [without('page-id'), 'missing-parameter', /^page-id is required/],
      [{ ...HOME, 'criteo-partner-id': '0' }, 'invalid-parameter', /criteo-partner-id must be a positive integer/],
      [{ ...HOME, 'criteo-partner-id': '-1' }, 'invalid-parameter', /criteo-partner-id must be a positive integer/],
      [{ ...HOME, 'criteo-partner-id': '12a' }, 'invalid-parameter', /criteo-partner-id must be a positive integer/],
      [{ ...HOME, 'event-type': 'viewMoon' }, 'invalid-parameter', /event-type must be one of viewHome/],
      [{ ...HOME, 'page-id': 'has space' }, 'invalid-parameter', /page-id must be/],
      [{ ...HOME, 'event-type': 'viewSearchResult' }, 'missing-parameter', /keywords is required when event-type is viewSearchResult/],
      [{ ...HOME, 'event-type': 'viewCategory' }, 'missing-parameter', /category is required when event-type is viewCategory/],
      [{ ...HOME, 'event-type': 'viewSearchBar' }, 'missing-parameter', /page-uid is required when event-type is viewSearchBar/],
      [{ ...HOME, 'list-size': '0' }, 'invalid-parameter', /list-size must be a whole number from 1 to 100/],
      [{ ...HOME, 'page-number': 'two' }, 'invalid-parameter', /page-number/],
      [{ ...HOME, 'retailer-visitor-id': 'x'.repeat(101) }, 'parameter-too-long', /retailer-visitor-id must be at most 100 characters/],
      [{ ...HOME, keywords: 'k'.repeat(1001) }, 'parameter-too-long', /keywords must be at most 1000 characters/],
      [`${new URLSearchParams(HOME)}&event-type=viewHome`, 'repeated-parameter', /event-type is given more than once/],
      [`${new URLSearchParams(HOME)}&retailer-visitor-id=9`, 'repeated-parameter', /retailer-visitor-id is given more than once/],
    ];
    for (const [params, code, detail] of cases) {
      const res = await deliver(params);
      assert.equal(res.status, 400, `${JSON.stringify(params)} → ${res.text}`);
      const e = errorOf(res.body);
      assert.equal(e.code, code, JSON.stringify(params));
      assert.equal(e.type, 'validation');
      assert.match(e.detail, detail, JSON.stringify(params));
    }
    const unknown = await deliver({ ...HOME, 'criteo-partner-id': '31337' });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown.body).code, 'unknown-partner');
    assert.match(errorOf(unknown.body).detail, /criteo-partner-id 31337 is not a known partner/);
  });

  test('a parameter given in both the query string and the GET body is 400; split parameters merge', async () => {
    const send = (query: string, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        import('node:http').then(({ request }) => {
          const req = request(`${server.url}/delivery/retailmedia?${query}`, {
            method: 'GET',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), 'x-forwarded-for': '203.0.113.9' },
          });
          req.on('response', (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          });
          req.on('error', reject);
          req.end(body);
        }, reject);
      });
    const all = new URLSearchParams({ ...HOME });
    const both = await send(`criteo-partner-id=12345&page-id=viewHome_API_desktop`, `${all}`);
    assert.equal(both.status, 400);
    assert.match(both.text, /criteo-partner-id is given in both the query string and the body/);
    const partner = await send('criteo-partner-id=333', 'retailer-visitor-id=1&event-type=viewHome&page-id=viewHome_API_desktop');
    assert.equal(partner.status, 200, partner.text);
  });

  test('the response carries signed beacon URLs that the server answers and counts per placement and product', async () => {
    const { token } = (await server.admin('POST', '/partners/12345/static-tokens', { name: 'beacons' })).body;
    const res = await deliver(HOME, bearer(token));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(String(res.headers.get('content-type')), /^application\/json/);
    const placement = res.body.placements[0]['viewHome_API_desktop-Top'][0];
    assert.deepEqual(placement.products_order, ['sku-1', 'sku-2']);
    assert.deepEqual(placement.rendering, { title: 'Sponsored' });
    const product = placement.products[0];
    assert.equal(product.ProductName, 'Kettle');
    assert.equal(product.ParentSKU, 'parent-1');
    for (const url of [
      res.body.onLoadBeacon,
      placement.OnLoadBeacon,
      placement.OnViewBeacon,
      product.OnLoadBeacon,
      product.OnViewBeacon,
      product.OnClickBeacon,
    ]) {
      assert.ok(url.startsWith(`${ISSUER_FOR_TESTS}/delivery/beacons/`), url);
    }
    const hit = (url: string, method = 'GET') => fetch(server.url + new URL(url).pathname, { method });
    assert.equal((await hit(product.OnClickBeacon)).status, 204);
    assert.equal((await hit(placement.OnViewBeacon, 'POST')).status, 204);
    const forged = `${product.OnClickBeacon.slice(0, -3)}AAA`;
    const refused = await hit(forged);
    assert.equal(refused.status, 404);
    errorOf(await refused.json());
    // A beacon of another response is another impression: it counts again.
    const again = (await deliver(HOME, bearer(token))).body.placements[0]['viewHome_API_desktop-Top'][0].products[0];
    assert.notEqual(again.OnClickBeacon, product.OnClickBeacon);
    assert.equal((await hit(again.OnClickBeacon)).status, 204);
    const counts = (await server.admin('GET', '/partners/12345/beacon-counts')).body;
    const placementId = (await server.admin('GET', '/partners/12345/placements')).body[0].id;
    assert.deepEqual(
      counts.filter((c: any) => c.placement_id === placementId),
      [
        { placement_id: placementId, product_id: null, kind: 'view', count: 1 },
        { placement_id: placementId, product_id: 'sku-1', kind: 'click', count: 2 },
      ],
    );
  });

  test('a replayed beacon answers 204 and counts once per impression', async () => {
    await server.admin('PUT', '/partners/444', { name: 'Replays' });
    await server.admin('PUT', '/partners/444/placements/viewHome/Top', { format: 'f', products: [{ ProductId: 'p-1' }] });
    const res = await deliver({ ...HOME, 'criteo-partner-id': '444' });
    const click = res.body.placements[0]['viewHome_API_desktop-Top'][0].products[0].OnClickBeacon;
    const path = server.url + new URL(click).pathname;
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await fetch(path, { method: i % 2 ? 'POST' : 'GET' })).status);
    assert.deepEqual(statuses, Array(10).fill(204));
    const counts = (await server.admin('GET', '/partners/444/beacon-counts')).body;
    assert.deepEqual(
      counts.map((c: any) => [c.product_id, c.kind, c.count]),
      [['p-1', 'click', 1]],
    );
  });

  test('a beacon of a product with the longest, non-ASCII ProductId is served and counted', async () => {
    const id = '\u{1F600}é|'.repeat(25);
    await server.admin('PUT', '/partners/450', { name: 'Long ids' });
    const put = await server.admin('PUT', '/partners/450/placements/viewHome/Top', { format: 'f', products: [{ ProductId: id }] });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const res = await deliver({ ...HOME, 'criteo-partner-id': '450' });
    const click = res.body.placements[0]['viewHome_API_desktop-Top'][0].products[0].OnClickBeacon;
    assert.equal((await fetch(server.url + new URL(click).pathname)).status, 204);
    const counts = (await server.admin('GET', '/partners/450/beacon-counts')).body;
    assert.deepEqual(
      counts.map((c: any) => [c.product_id, c.kind, c.count]),
      [[id, 'click', 1]],
    );
  });

  test('a changed placement is served changed at once, even within the same millisecond', async () => {
    await server.admin('PUT', '/partners/451', { name: 'Changes' });
    const put = (ids: string[]) =>
      server.admin('PUT', '/partners/451/placements/viewHome/Top', { format: 'f', products: ids.map((ProductId) => ({ ProductId })) });
    const order = async () => (await deliver({ ...HOME, 'criteo-partner-id': '451' })).body.placements[0]['viewHome_API_desktop-Top'][0].products_order;
    await put(['a', 'b']);
    assert.deepEqual(await order(), ['a', 'b']);
    await put(['c']);
    assert.deepEqual(await order(), ['c'], 'the clock has not moved, the answer has');
  });

  test('a beacon is refused with 410 beacon-expired once its impression has expired, and counts nothing', async () => {
    await server.admin('PUT', '/partners/445', { name: 'Expiry' });
    await server.admin('PUT', '/partners/445/placements/viewHome/Top', { format: 'f', products: [{ ProductId: 'p-1' }] });
    const res = await deliver({ ...HOME, 'criteo-partner-id': '445' });
    const view = res.body.placements[0]['viewHome_API_desktop-Top'][0].products[0].OnViewBeacon;
    clock.advance(3600);
    const late = await fetch(server.url + new URL(view).pathname);
    assert.equal(late.status, 410);
    const e = errorOf(await late.json());
    assert.equal(e.code, 'beacon-expired');
    assert.deepEqual((await server.admin('GET', '/partners/445/beacon-counts')).body, []);
  });

  test("a beacon of one partner's impression cannot be counted under another impression's partner", async () => {
    await server.admin('PUT', '/partners/446', { name: 'Mix A' });
    await server.admin('PUT', '/partners/447', { name: 'Mix B' });
    for (const id of [446, 447]) await server.admin('PUT', `/partners/${id}/placements/viewHome/Top`, { format: 'f', products: [{ ProductId: 'p' }] });
    const a = (await deliver({ ...HOME, 'criteo-partner-id': '446' })).body.placements[0]['viewHome_API_desktop-Top'][0].OnClickBeacon;
    const b = (await deliver({ ...HOME, 'criteo-partner-id': '447' })).body.placements[0]['viewHome_API_desktop-Top'][0].OnClickBeacon;
    const [impressionA] = new URL(a).pathname.split('/').slice(3);
    const [, beaconB] = new URL(b).pathname.split('/').slice(3);
    assert.equal((await fetch(`${server.url}/delivery/beacons/${impressionA}/${beaconB}`)).status, 404);
  });

  test('a dynamic token without the retail-media scope is 403 insufficient_scope; a partner may name its own scope', async () => {
    const narrow = await server.newCredential({ scopes: ['orders:read'] });
    await server.admin('POST', '/partners/12345/applications', { application_id: narrow.appId });
    const token = await server.accessToken(narrow.clientId, narrow.clientSecret);
    const refused = await deliver(HOME, bearer(token));
    assert.equal(refused.status, 403);
    assert.equal(refused.text, '{"Status Message":"Forbidden"}');
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="portcullis", error="insufficient_scope", scope="retail-media"');
    // A partner that names another scope: that one is needed, retail-media alone is not enough.
    const own = await server.admin('PUT', '/partners/448', { name: 'Own scope', require_token: true, required_scope: 'orders:read' });
    assert.equal(own.body.required_scope, 'orders:read');
    await server.admin('POST', '/partners/448/applications', { application_id: narrow.appId });
    await server.admin('POST', '/partners/448/applications', { application_id: app.appId });
    assert.equal((await deliver({ ...HOME, 'criteo-partner-id': '448' }, bearer(token))).status, 200);
    const retailOnly = await server.accessToken(app.clientId, app.clientSecret);
    assert.equal((await deliver({ ...HOME, 'criteo-partner-id': '448' }, bearer(retailOnly))).status, 403);
    // Static tokens are the partner's own and carry no scopes: unaffected.
    const { token: st } = (await server.admin('POST', '/partners/448/static-tokens', { name: 's' })).body;
    assert.equal((await deliver({ ...HOME, 'criteo-partner-id': '448' }, bearer(st))).status, 200);
    assert.equal((await server.admin('PUT', '/partners/449', { name: 'Bad', required_scope: 'two words' })).status, 400);
  });

  test('list-size and page-number page through a placement’s products', async () => {
    await server.admin('PUT', '/partners/333/placements/viewSearchResult/Grid', {
      format: 'grid',
      products: ['a', 'b', 'c'].map((id) => ({ ProductId: id })),
    });
    const res = await deliver({
      ...HOME,
      'criteo-partner-id': '333',
      'event-type': 'viewSearchResult',
      'page-id': 'viewSearchResult_API_desktop',
      keywords: 'tea',
      'list-size': '2',
      'page-number': '2',
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.placements[0]['viewSearchResult_API_desktop-Grid'][0].products_order, ['c']);
  });

  test('partner, placement and organization lists come a page at a time: limit, cursor and X-Next-Cursor', async () => {
    for (const id of [9001, 9002, 9003]) await server.admin('PUT', `/partners/${id}`, { name: `Paged ${id}` });
    const walk = async (path: string) => {
      const seen: number[] = [];
      let cursor: string | null = '';
      let pages = 0;
      while (cursor !== null && pages < 1000) {
        const res = await server.admin('GET', `${path}${path.includes('?') ? '&' : '?'}limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200);
        assert.ok(res.body.length <= 2);
        seen.push(...res.body.map((x: any) => x.id));
        cursor = res.headers.get('x-next-cursor');
        pages++;
      }
      return seen;
    };
    const partners = await walk('/partners');
    assert.deepEqual(
      partners.filter((id) => id >= 9001 && id <= 9003),
      [9001, 9002, 9003],
    );
    assert.deepEqual(
      [...partners].sort((x, y) => x - y),
      partners,
      'in id order, each once',
    );
    assert.equal(new Set(partners).size, partners.length);
    const all = (await server.admin('GET', '/partners?limit=1000')).body.map((p: any) => p.id);
    assert.deepEqual(partners, all);
    const orgs = await walk('/organizations');
    assert.deepEqual(
      orgs,
      (await server.admin('GET', '/organizations?limit=1000')).body.map((o: any) => o.id),
    );
    assert.equal((await server.admin('GET', '/partners?limit=0')).status, 400);
    assert.equal((await server.admin('GET', '/partners?cursor=x')).status, 400);
    assert.equal((await server.admin('GET', '/partners?limit=5000')).status, 200, 'capped at 1000, not refused');
  });

  test('every partner, link, static-token and catalogue change is audited', async () => {
    const extra = await server.newCredential();
    await server.admin('PUT', '/partners/4444', { name: 'Audited' });
    await server.admin('PUT', '/partners/4444', { name: 'Audited', require_token: true });
    await server.admin('POST', '/partners/4444/applications', { application_id: extra.appId });
    await server.admin('DELETE', `/partners/4444/applications/${extra.appId}`);
    const token = (await server.admin('POST', '/partners/4444/static-tokens', { name: 'audit me' })).body;
    await server.admin('DELETE', `/partners/4444/static-tokens/${token.id}`);
    await server.admin('PUT', '/partners/4444/placements/viewHome/Top', { format: 'f' });
    await server.admin('DELETE', '/partners/4444/placements/viewHome/Top');
    await server.admin('PUT', `/applications/${extra.appId}/rate-limit`, { per_minute: 5 });
    const events = (await server.admin('GET', '/audit-events?limit=9')).body.reverse();
    assert.deepEqual(
      events.map((e: any) => e.action),
      [
        'partner.created',
        'partner.updated',
        'partner.application_linked',
        'partner.application_unlinked',
        'static_token.created',
        'static_token.revoked',
        'placement.created',
        'placement.deleted',
        'application.rate_limit_set',
      ],
    );
    for (const e of events) {
      assert.equal(e.actor, 'operator');
      assert.equal(e.ip, '127.0.0.1');
    }
    assert.equal(events[1].details.before.require_token, false);
    assert.equal(events[2].details.application_id, extra.appId);
    assert.equal(events[2].organization_id, extra.orgId);
    assert.equal(events[5].target_id, String(token.id));
  });
});

describe('retail media: rate limits', () => {
  let server: TestServer;
  const clock = new ManualClock(Date.UTC(2030, 0, 1, 12, 0, 0));
  before(async () => {
    server = await startTestServer({ PORTCULLIS_RATE_LIMIT: '4' }, { clock });
  });
  after(() => server.stop());

  const call = (partner: number, token?: string) =>
    fetch(`${server.url}/delivery/retailmedia?${new URLSearchParams({ ...HOME, 'criteo-partner-id': String(partner) })}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  test('over the default limit a caller gets 429 with x-ratelimit headers and Retry-After, until the minute ends', async () => {
    await server.admin('PUT', '/partners/1', { name: 'Default limit', require_token: true });
    const { token } = (await server.admin('POST', '/partners/1/static-tokens', { name: 't' })).body;
    const reset = String(Date.UTC(2030, 0, 1, 12, 1, 0) / 1000);
    for (let i = 1; i <= 4; i++) {
      const res = await call(1, token);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-ratelimit-limit'), '4');
      assert.equal(res.headers.get('x-ratelimit-remaining'), String(4 - i));
      assert.equal(res.headers.get('x-ratelimit-reset'), reset);
    }
    clock.advance(15);
    const over = await call(1, token);
    assert.equal(over.status, 429);
    assert.equal(over.headers.get('x-ratelimit-remaining'), '0');
    assert.equal(over.headers.get('x-ratelimit-reset'), reset);
    assert.equal(over.headers.get('retry-after'), '45');
    const e = errorOf(await over.json());
    assert.equal(e.type, 'quota');
    assert.equal(e.code, 'rate-limit-exceeded');
    clock.advance(45);
    assert.equal((await call(1, token)).status, 200, 'a new minute, a new allowance');
  });

  test('a partner and an application can each set their own limit; applications and static tokens count apart', async () => {
    await server.admin('PUT', '/partners/2', { name: 'Partner limit', require_token: true, rate_limit_per_minute: 2 });
    const a = await server.newCredential({ scopes: ['retail-media'] });
    const b = await server.newCredential({ scopes: ['retail-media'] });
    for (const c of [a, b]) await server.admin('POST', '/partners/2/applications', { application_id: c.appId });
    await server.admin('PUT', `/applications/${b.appId}/rate-limit`, { per_minute: 3 });
    assert.deepEqual((await server.admin('GET', `/applications/${b.appId}/rate-limit`)).body, { application_id: b.appId, per_minute: 3 });
    const ta = await server.accessToken(a.clientId, a.clientSecret);
    const tb = await server.accessToken(b.clientId, b.clientSecret);
    const { token: st } = (await server.admin('POST', '/partners/2/static-tokens', { name: 's' })).body;
    const statuses = async (token: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await call(2, token)).status);
      return out;
    };
    assert.deepEqual(await statuses(ta, 3), [200, 200, 429], "the partner's limit");
    assert.deepEqual(await statuses(tb, 4), [200, 200, 200, 429], "the application's own limit");
    assert.deepEqual(await statuses(st, 3), [200, 200, 429], 'a static token has its own counter at the partner limit');
    assert.equal((await call(2, ta)).headers.get('x-ratelimit-limit'), '2');
  });

  test('calls without a token are counted per client address: one caller over its limit does not block another', async () => {
    await server.admin('PUT', '/partners/3', { name: 'Open', rate_limit_per_minute: 2 });
    const target = `/delivery/retailmedia?${new URLSearchParams({ ...HOME, 'criteo-partner-id': '3' })}`;
    // Loopback answers from every 127.0.0.0/8 address: two callers, two client addresses.
    const from = (localAddress: string) => localRequest(server.url, target, localAddress);
    assert.deepEqual([await from('127.0.0.1'), await from('127.0.0.1'), await from('127.0.0.1')], [200, 200, 429]);
    assert.deepEqual([await from('127.0.0.2'), await from('127.0.0.2'), await from('127.0.0.2')], [200, 200, 429]);
  });
});

describe('retail media: shopper context and the CLI', () => {
  test('Referer, User-Agent and the first X-Forwarded-For address are logged, an invalid IP recorded as given', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const dataDir = tempDir();
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      PORTCULLIS_ISSUER: ISSUER_FOR_TESTS,
    });
    const services = await createServices(config);
    const app = buildApp(services, { level: 'info', stream });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      await fetch(`${url}/admin/v1/partners/12345`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Logged' }),
      });
      const headers = { referer: 'www.criteo.com', 'user-agent': UA };
      const first = await fetch(`${url}/delivery/retailmedia?${new URLSearchParams(HOME)}`, { headers: { ...headers, 'x-forwarded-for': '123.456.789.012' } });
      assert.equal(first.status, 200);
      await fetch(`${url}/delivery/retailmedia?${new URLSearchParams(HOME)}`, { headers: { ...headers, 'x-forwarded-for': '198.51.100.7, 10.0.0.1' } });
      const all = lines.map((l) => JSON.parse(l));
      const logged = all.filter((l) => l.req?.url === '/delivery/retailmedia');
      assert.equal(logged.length, 2, 'one access line per delivery call');
      assert.equal(logged[0].msg, 'request completed');
      assert.equal(logged[0].res.statusCode, 200);
      assert.equal(logged[0].partner_id, 12345);
      assert.equal(all.filter((l) => l.msg === 'incoming request').length, 0, "Fastify's own request lines are off");
      assert.deepEqual(logged[0].shopper, { ip: '123.456.789.012', ip_valid: false, user_agent: UA, referer: 'www.criteo.com' });
      assert.deepEqual(logged[1].shopper.ip, '198.51.100.7');
      assert.equal(logged[1].shopper.ip_valid, true);
    } finally {
      await app.close();
      await stopServices(services);
    }
  });

  test('portcullis admin partners and static-tokens wrap the operator API', async () => {
    const server = await startTestServer();
    try {
      const env = { PORTCULLIS_URL: server.url, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN };
      const put = await runCli(['admin', 'partners', 'put', '--partner', '12345', '--name', 'Retailer', '--require-token'], env);
      assert.equal(put.code, 0, put.stderr);
      assert.match(put.stdout, /partner 12345 "Retailer" saved; tokens required/);
      const app = await server.newCredential();
      const link = await runCli(['admin', 'partners', 'link', '--partner', '12345', '--app', String(app.appId)], env);
      assert.equal(link.code, 0, link.stderr);
      const created = await runCli(['admin', 'static-tokens', 'create', '--partner', '12345', '--name', 'handover', '--json'], env);
      assert.equal(created.code, 0, created.stderr);
      const token = JSON.parse(created.stdout);
      assert.match(token.token, /^pct_/);
      const listed = await runCli(['admin', 'static-tokens', 'list', '--partner', '12345'], env);
      assert.match(listed.stdout, /handover/);
      assert.ok(!listed.stdout.includes(token.token));
      const revoked = await runCli(['admin', 'static-tokens', 'revoke', '--partner', '12345', '--id', String(token.id)], env);
      assert.equal(revoked.code, 0, revoked.stderr);
      const partners = await runCli(['admin', 'partners', 'list'], env);
      assert.match(partners.stdout, /12345\s+Retailer\s+true/);
      const unlink = await runCli(['admin', 'partners', 'unlink', '--partner', '12345', '--app', String(app.appId)], env);
      assert.equal(unlink.code, 0, unlink.stderr);
      const res = await fetch(`${server.url}/delivery/retailmedia?${new URLSearchParams(HOME)}`, { headers: { authorization: `Bearer ${token.token}` } });
      assert.equal(res.status, 401);
    } finally {
      await server.stop();
    }
  });
});
