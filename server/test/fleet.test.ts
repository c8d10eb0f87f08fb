import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { runCli, type ServerProcess, spawnServer } from './helpers/process.js';
import { recordSecret } from './helpers/secrets.js';
import { ADMIN_TOKEN, MASTER_KEY, tempDir } from './helpers/server.js';
import { createTestDatabase, freePort, needService, postgresAvailable, Relay, redisServerAvailable, TestRedis } from './helpers/services.js';
import { clearOfWindowEdge } from './helpers/windows.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function token(url: string, clientId: string, clientSecret: string) {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
}

async function admin(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const me = async (url: string, bearer: string) => (await fetch(`${url}/me`, { headers: { authorization: `Bearer ${bearer}` } })).status;

/** Polls until `check` is true or the time is up; returns the milliseconds it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not true within ${ms} ms`);
}

describe('a fleet sharing PostgreSQL and Redis', () => {
  let available = false;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: TestRedis;
  let relay: Relay;
  let nodes: ServerProcess[] = [];
  const dirs: string[] = [];
  let a: string;
  let b: string;
  let c: string; // reaches PostgreSQL through a relay the tests can cut

  before(async () => {
    available = (await postgresAvailable()) && (await redisServerAvailable());
    if (!available) return;
    database = await createTestDatabase();
    redis = await TestRedis.start();
    const pgUrl = new URL(database.url);
    relay = await Relay.start({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    const env = (databaseUrl: string) => {
      const dir = tempDir();
      dirs.push(dir);
      return {
        PORTCULLIS_DATA_DIR: dir,
        DATABASE_URL: databaseUrl,
        REDIS_URL: redis.url,
        PORTCULLIS_MASTER_KEY: MASTER_KEY,
        PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
        PORTCULLIS_ISSUER: 'http://fleet.test',
        PORTCULLIS_DEACTIVATION_GRACE: '2',
        PORTCULLIS_KEY_PREPUBLISH: '0',
      };
    };
    // Started one after another here; the migration lock is exercised by the workers test.
    nodes.push(await spawnServer(env(database.url)));
    nodes.push(await spawnServer(env(database.url)));
    const relayed = new URL(database.url);
    relayed.port = String(relay.port);
    nodes.push(await spawnServer(env(relayed.toString())));
    [a, b, c] = nodes.map((n) => n.url) as [string, string, string];
  });

  after(async () => {
    for (const n of nodes) if (n.child.exitCode !== null) process.stderr.write(`node exited early:\n${n.output().slice(-3000)}\n`);
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
    await relay?.cut();
    await redis?.stop();
    await database?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function newCredential(at: string) {
    const org = await admin(at, 'POST', '/organizations', { name: 'Fleet' });
    const app = await admin(at, 'POST', `/organizations/${org.body.id}/applications`, { name: 'App' });
    const cred = await admin(at, 'POST', `/applications/${app.body.id}/credentials`, { name: 'k' });
    assert.equal(cred.status, 201);
    return { appId: app.body.id as number, clientId: cred.body.client_id as string, clientSecret: cred.body.client_secret as string };
  }

  test('a credential created through node A gets tokens at node B, which verify at both', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    const issued = await token(b, cred.clientId, cred.clientSecret);
    assert.equal(issued.status, 200);
    assert.equal(await me(a, issued.body.access_token), 200);
    assert.equal(await me(b, issued.body.access_token), 200);
  });

  test('deleted at A, a credential stops getting tokens at B when its grace period ends', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    assert.equal((await token(b, cred.clientId, cred.clientSecret)).status, 200); // B caches it
    const deleted = Date.now();
    assert.equal((await admin(a, 'DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}`)).status, 200);
    assert.equal((await token(b, cred.clientId, cred.clientSecret)).status, 200, 'still inside the grace period');
    await within(4_000, async () => (await token(b, cred.clientId, cred.clientSecret)).status === 401);
    assert.ok(Date.now() - deleted >= 1_900, 'not before the grace period ends');
  });

  test('revoked immediately at A, its tokens fail at B within a second', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    const issued = await token(b, cred.clientId, cred.clientSecret);
    assert.equal(await me(b, issued.body.access_token), 200); // verified and cached at B
    assert.equal((await admin(a, 'DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`)).status, 200);
    const took = await within(1_000, async () => (await me(b, issued.body.access_token)) === 401);
    assert.ok(took < 1_000);
  });

  test('a token revoked through RFC 7009 at A fails at B within a second', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    const issued = await token(a, cred.clientId, cred.clientSecret);
    assert.equal(await me(b, issued.body.access_token), 200);
    const revoked = await fetch(`${a}/oauth2/revoke`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ token: issued.body.access_token, client_id: cred.clientId, client_secret: cred.clientSecret }),
    });
    assert.equal(revoked.status, 200);
    await within(1_000, async () => (await me(b, issued.body.access_token)) === 401);
  });

  test('a key rotated on A is published by B and signs there; old tokens still verify', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    const before = await token(b, cred.clientId, cred.clientSecret);
    const rotated = await admin(a, 'POST', '/keys/rotate', { activate_after_seconds: 0 });
    assert.equal(rotated.status, 200);
    await within(1_000, async () => {
      const jwks = (await (await fetch(`${b}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
      return jwks.keys.some((k) => k.kid === rotated.body.kid);
    });
    const after = await token(b, cred.clientId, cred.clientSecret);
    assert.equal(decodeProtectedHeader(after.body.access_token).kid, rotated.body.kid);
    assert.equal(await me(a, after.body.access_token), 200);
    assert.equal(await me(b, before.body.access_token), 200);
    const [jwksA, jwksB] = await Promise.all([a, b].map(async (url) => (await fetch(`${url}/.well-known/jwks.json`)).text()));
    assert.equal(jwksA, jwksB, 'every node publishes the same key set');
  });

  test('rate limits are counted across nodes', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const partnerId = 4242;
    assert.equal(
      (await admin(a, 'PUT', `/partners/${partnerId}`, { name: 'Shared limit', require_token: false, rate_limit_per_minute: 4 })).status,
      201,
      'created',
    );
    const query = new URLSearchParams({
      'criteo-partner-id': String(partnerId),
      'retailer-visitor-id': 'v1',
      'event-type': 'viewHome',
      'page-id': 'viewHome_API_desktop',
    });
    const deliver = async (url: string) => fetch(`${url}/delivery/retailmedia?${query}`);
    // Two calls at A and two at B fill the window of four; the fifth is refused wherever it lands.
    // Nodes exchange their counts through Redis every 100 ms, so each call waits a little longer.
    const settle = () => new Promise((r) => setTimeout(r, 300));
    const statuses = [];
    await clearOfWindowEdge(60_000, 5_000); // the six calls in one minute-long window
    for (const url of [a, b, a, b]) {
      statuses.push((await deliver(url)).status);
      await settle();
    }
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    const refused = await deliver(b);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('x-ratelimit-limit'), '4');
    assert.equal(refused.headers.get('x-ratelimit-remaining'), '0');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    await settle();
    assert.equal((await deliver(a)).status, 429);
  });

  test('losing Redis loses nothing: nodes keep serving, say so, follow changes through the database, and recover', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cred = await newCredential(a);
    const issued = await token(b, cred.clientId, cred.clientSecret);
    await redis.stop();
    await within(3_000, async () => ((await (await fetch(`${b}/readyz`)).json()) as any).status === 'degraded');
    const ready = (await (await fetch(`${b}/readyz`)).json()) as any;
    assert.equal(ready.redis.state, 'down');
    assert.equal((await fetch(`${b}/readyz`)).status, 200, 'a degraded node stays in the load balancer');

    const during = await newCredential(a);
    assert.equal((await token(b, during.clientId, during.clientSecret)).status, 200, 'created while Redis was down, served by B');
    assert.equal(await me(b, issued.body.access_token), 200);
    await admin(a, 'DELETE', `/applications/${cred.appId}/credentials/${cred.clientId}?immediately=true`);
    await within(3_000, async () => (await me(b, issued.body.access_token)) === 401);

    await redis.start();
    await within(5_000, async () => ((await (await fetch(`${b}/readyz`)).json()) as any).status === 'ready');
    const later = await newCredential(a);
    const laterToken = await token(b, later.clientId, later.clientSecret);
    assert.equal(await me(b, laterToken.body.access_token), 200);
    await admin(a, 'DELETE', `/applications/${later.appId}/credentials/${later.clientId}?immediately=true`);
    await within(1_000, async () => (await me(b, laterToken.body.access_token)) === 401);
  });

  test('with PostgreSQL unreachable the token endpoint answers 503 quickly for what it has not cached, /readyz stays 200 degraded, and it recovers', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const cached = await newCredential(a);
    assert.equal((await token(c, cached.clientId, cached.clientSecret)).status, 200);
    const uncached = await newCredential(a);
    await relay.cut();
    try {
      const started = Date.now();
      const refused = await token(c, uncached.clientId, uncached.clientSecret);
      assert.ok(Date.now() - started < 8_000, 'a bounded wait, not a hang');
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error, 'temporarily_unavailable');
      assert.match(refused.body.error_description, /unreachable/);
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal((await token(c, cached.clientId, cached.clientSecret)).status, 200, 'cached credentials keep working');
      const operator = await admin(c, 'GET', '/organizations');
      assert.equal(operator.status, 503);
      assert.equal(operator.body.errors[0].type, 'availability');
      await within(3_000, async () => ((await (await fetch(`${c}/readyz`)).json()) as any).database.state === 'down');
      const ready = await fetch(`${c}/readyz`);
      assert.equal(ready.status, 200, 'a node serving from its caches stays in the load balancer');
      assert.equal(((await ready.json()) as any).status, 'degraded');
    } catch (err) {
      process.stderr.write(nodes[2]!.output().slice(-4000));
      throw err;
    } finally {
      await relay.open();
    }
    await within(10_000, async () => (await token(c, uncached.clientId, uncached.clientSecret)).status === 200);
    assert.equal((await fetch(`${c}/readyz`)).status, 200);
  });
});

/** An upstream for gateway routes: answers 200 with the path it was asked for. */
async function startUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`upstream ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const deliveryQuery = (partnerId: number) =>
  new URLSearchParams({ 'criteo-partner-id': String(partnerId), 'retailer-visitor-id': 'v1', 'event-type': 'viewHome', 'page-id': 'viewHome_API_desktop' });

async function deliver(url: string, partnerId: number, bearer?: string) {
  const res = await fetch(`${url}/delivery/retailmedia?${deliveryQuery(partnerId)}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.status, text: await res.text(), limit: res.headers.get('x-ratelimit-limit') };
}

const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as any };
};

describe('every registered cache, with Redis killed and with PostgreSQL cut', () => {
  let available = false;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let redis: TestRedis;
  let relay: Relay;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const nodes: ServerProcess[] = [];
  const dirs: string[] = [];
  let a: string;
  let b: string;
  let c: string; // reaches PostgreSQL through a relay the tests can cut
  let startWithRedis = 0; // how long node A took to start, Redis up: this machine's baseline
  const env = (databaseUrl: string, extra: Record<string, string> = {}) => {
    const dir = tempDir();
    dirs.push(dir);
    return {
      PORTCULLIS_DATA_DIR: dir,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      PORTCULLIS_ISSUER: 'http://fleet.test',
      // The default pre-publication, so an immediate rotation is one that must be forced.
      PORTCULLIS_KEY_PREPUBLISH: '600',
      ...extra,
    };
  };

  before(async () => {
    available = (await postgresAvailable()) && (await redisServerAvailable());
    if (!available) return;
    database = await createTestDatabase();
    redis = await TestRedis.start();
    upstream = await startUpstream();
    const pgUrl = new URL(database.url);
    relay = await Relay.start({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    const started = Date.now();
    nodes.push(await spawnServer(env(database.url)));
    startWithRedis = Date.now() - started;
    nodes.push(await spawnServer(env(database.url)));
    const relayed = new URL(database.url);
    relayed.port = String(relay.port);
    nodes.push(await spawnServer(env(relayed.toString())));
    [a, b, c] = nodes.map((n) => n.url) as [string, string, string];
  });

  after(async () => {
    for (const n of nodes) if (n.child.exitCode !== null && n.child.exitCode !== 0) process.stderr.write(`node exited early:\n${n.output().slice(-3000)}\n`);
    await Promise.all(nodes.map((n) => n.stop()));
    await relay?.cut();
    await redis?.stop();
    await upstream?.close();
    await database?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** An app with scopes, a credential, a partner linked to it, a static token, a placement and a gateway route: one of everything a cache holds. */
  async function everything(at: string, partnerId: number, prefix: string) {
    const org = await admin(at, 'POST', '/organizations', { name: 'Caches' });
    const app = await admin(at, 'POST', `/organizations/${org.body.id}/applications`, { name: 'App', scopes: ['retail-media', 'orders'] });
    const cred = await admin(at, 'POST', `/applications/${app.body.id}/credentials`, { name: 'k' });
    assert.equal(cred.status, 201);
    recordSecret(cred.body.client_secret);
    assert.equal((await admin(at, 'PUT', `/partners/${partnerId}`, { name: 'Retailer', require_token: true })).status, 201);
    assert.equal((await admin(at, 'POST', `/partners/${partnerId}/applications`, { application_id: app.body.id })).status, 201);
    const st = await admin(at, 'POST', `/partners/${partnerId}/static-tokens`, { name: 'handed over' });
    assert.equal(st.status, 201);
    recordSecret(st.body.token);
    const placed = await admin(at, 'PUT', `/partners/${partnerId}/placements/viewHome/Top`, { format: 'f', products: [{ ProductId: 'sku-before' }] });
    assert.equal(placed.status, 201);
    const route = await admin(at, 'POST', '/gateway/routes', { prefix, upstream: upstream.url, scopes: [] });
    assert.equal(route.status, 201, JSON.stringify(route.body));
    const open = 9_000 + partnerId; // a partner without require_token, whose settings change
    assert.equal((await admin(at, 'PUT', `/partners/${open}`, { name: 'Open' })).status, 201);
    return {
      appId: app.body.id as number,
      clientId: cred.body.client_id as string,
      clientSecret: cred.body.client_secret as string,
      partnerId,
      open,
      staticTokenId: st.body.id as number,
      staticToken: st.body.token as string,
      routeId: route.body.id as number,
      prefix,
    };
  }

  async function accessToken(at: string, clientId: string, clientSecret: string, scope?: string) {
    const res = await fetch(`${at}/oauth2/token`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, ...(scope ? { scope } : {}) }),
    });
    const body = (await res.json()) as any;
    recordSecret(body.access_token);
    return { status: res.status, token: body.access_token as string, body };
  }

  /** Every cached decision at `at`, as the client sees it. */
  async function decisions(at: string, e: Awaited<ReturnType<typeof everything>>, bearer: string) {
    const dynamic = await deliver(at, e.partnerId, bearer);
    return {
      token: (await accessToken(at, e.clientId, e.clientSecret, 'orders')).status,
      me: await me(at, bearer),
      staticToken: (await deliver(at, e.partnerId, e.staticToken)).status,
      dynamic: dynamic.status,
      placement: dynamic.text.includes('sku-before'),
      gateway: (await fetch(`${at}${e.prefix}/x`, { headers: { authorization: `Bearer ${bearer}` } })).status,
      open: (await deliver(at, e.open)).status,
      jwks: (await fetch(`${at}/.well-known/jwks.json`)).status,
    };
  }

  /** A client calling `at` all along (a token, then /me), counting what it saw; nothing here must be refused. */
  function steadyClient(at: string, clientId: string, clientSecret: string, bearer: string) {
    const counts: Record<string, number> = {};
    const seen = (what: string) => {
      counts[what] = (counts[what] ?? 0) + 1;
    };
    let running = true;
    const loop = (async () => {
      while (running) {
        seen(`token ${(await accessToken(at, clientId, clientSecret)).status}`);
        seen(`me ${await me(at, bearer)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return counts;
      },
    };
  }

  const allServed = { token: 200, me: 200, staticToken: 200, dynamic: 200, placement: true, gateway: 200, open: 200, jwks: 200 };

  test('rotations asked for at once on two nodes make one key, and both callers get it', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const refused = await admin(a, 'POST', '/keys/rotate', { activate_after_seconds: 0 });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.errors[0].code, 'activation-sooner-than-jwks-cache');
    const before = (await admin(a, 'GET', '/keys')).body.length;
    const [ra, rb] = await Promise.all([a, b].map((url) => admin(url, 'POST', '/keys/rotate', { activate_after_seconds: 700 })));
    assert.equal(ra!.status, 200);
    assert.equal(rb!.status, 200);
    assert.equal(ra!.body.kid, rb!.body.kid);
    assert.equal((await admin(a, 'GET', '/keys')).body.length, before + 1, 'one new key');
  });

  test('with Redis killed, every change made at node A holds at node B within 2.5 s, and a node started meanwhile serves', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const e = await everything(a, 501, '/fleet-orders');
    const early = await accessToken(a, e.clientId, e.clientSecret);
    const linked = await accessToken(a, e.clientId, e.clientSecret);
    assert.deepEqual(await decisions(b, e, linked.token), allServed, 'B has cached every decision');
    assert.equal(await me(b, early.token), 200);

    const steady = await newCredentialAt(a);
    const steadyToken = await accessToken(b, steady.clientId, steady.clientSecret);
    const client = steadyClient(b, steady.clientId, steady.clientSecret, steadyToken.token);
    await redis.stop();
    const killedAt = Date.now();
    try {
      await within(3_000, async () => (await readyz(b)).body.redis?.state === 'down' && (await readyz(a)).body.redis?.state === 'down');
      assert.equal((await readyz(b)).status, 200, 'degraded is still ready');

      const took: Record<string, number> = {};
      const holds = async (name: string, change: () => Promise<unknown>, check: () => Promise<boolean>) => {
        await change();
        took[name] = await within(2_500, check);
      };
      await holds(
        'RFC 7009 revocation',
        () =>
          fetch(`${a}/oauth2/revoke`, {
            method: 'POST',
            headers: FORM,
            body: new URLSearchParams({ token: early.token, client_id: e.clientId, client_secret: e.clientSecret }),
          }),
        async () => (await me(b, early.token)) === 401,
      );
      await holds(
        'static-token revocation',
        () => admin(a, 'DELETE', `/partners/${e.partnerId}/static-tokens/${e.staticTokenId}`),
        async () => (await deliver(b, e.partnerId, e.staticToken)).status === 401,
      );
      await holds(
        'placement change',
        () => admin(a, 'PUT', `/partners/${e.partnerId}/placements/viewHome/Top`, { format: 'f', products: [{ ProductId: 'sku-after' }] }),
        async () => (await deliver(b, e.partnerId, linked.token)).text.includes('sku-after'),
      );
      await holds(
        'application rate limit',
        () => admin(a, 'PUT', `/applications/${e.appId}/rate-limit`, { per_minute: 77 }),
        async () => (await deliver(b, e.partnerId, linked.token)).limit === '77',
      );
      await holds(
        'partner unlink',
        () => admin(a, 'DELETE', `/partners/${e.partnerId}/applications/${e.appId}`),
        async () => (await deliver(b, e.partnerId, linked.token)).status === 401,
      );
      await holds(
        'partner settings',
        () => admin(a, 'PUT', `/partners/${e.open}`, { name: 'Open', require_token: true }),
        async () => (await deliver(b, e.open)).status === 401,
      );
      await holds(
        'application scopes',
        () => admin(a, 'PATCH', `/applications/${e.appId}`, { scopes: ['retail-media'] }),
        async () => (await accessToken(b, e.clientId, e.clientSecret, 'orders')).status === 400,
      );
      await holds(
        'gateway route removal',
        () => admin(a, 'DELETE', `/gateway/routes/${e.routeId}`),
        async () => (await fetch(`${b}${e.prefix}/x`, { headers: { authorization: `Bearer ${linked.token}` } })).status === 404,
      );
      let rotated = '';
      await holds(
        'forced immediate rotation',
        async () => {
          const r = await admin(a, 'POST', '/keys/rotate', { activate_after_seconds: 0, force: true });
          assert.equal(r.status, 200);
          assert.match(r.body.warnings[0], /refuse/);
          rotated = r.body.kid;
        },
        async () => {
          const fresh = await accessToken(a, e.clientId, e.clientSecret);
          return decodeProtectedHeader(fresh.token).kid === rotated && (await me(b, fresh.token)) === 200;
        },
      );
      const other = await newCredentialAt(a);
      const otherToken = await accessToken(b, other.clientId, other.clientSecret);
      assert.equal(await me(b, otherToken.token), 200);
      await holds(
        'credential revoked now',
        () => admin(a, 'DELETE', `/applications/${other.appId}/credentials/${other.clientId}?immediately=true`),
        async () => (await me(b, otherToken.token)) === 401,
      );
      process.stdout.write(`# with Redis down, ms for each change to hold at B: ${JSON.stringify(took)}\n`);

      const startedAt = Date.now();
      const late = await spawnServer(env(database.url));
      nodes.push(late);
      const startup = Date.now() - startedAt;
      // 15 s on a machine that starts a node in a few; a loaded one gets its own baseline plus the 2 s Redis wait and slack.
      assert.ok(startup < Math.max(15_000, startWithRedis + 5_000), `started in ${startup} ms (with Redis up: ${startWithRedis} ms)`);
      assert.match(late.output(), /Redis is unreachable at start/);
      const lateReady = await readyz(late.url);
      assert.equal(lateReady.status, 200);
      assert.equal(lateReady.body.status, 'degraded');
      const fromLate = await accessToken(late.url, e.clientId, e.clientSecret);
      assert.equal(fromLate.status, 200);
      assert.equal(await me(b, fromLate.token), 200);
      process.stdout.write(
        `# Redis down ${Date.now() - killedAt} ms; a node started meanwhile listened after ${startup} ms (with Redis up: ${startWithRedis} ms)\n`,
      );
    } finally {
      await redis.start();
    }
    for (const url of [a, b, nodes[nodes.length - 1]!.url]) await within(10_000, async () => (await readyz(url)).body.status === 'ready');
    const saw = await client.stop();
    process.stdout.write(`# a client of node B during the Redis outage and its recovery saw: ${JSON.stringify(saw)}\n`);
    assert.deepEqual(Object.keys(saw).sort(), ['me 200', 'token 200'], 'never refused, never a 5xx');
    assert.match(nodes[0]!.output(), /"level":40[^\n]*Redis is unreachable/);
    assert.match(nodes[0]!.output(), /"level":30[^\n]*Redis is reachable again/);
  });

  test('a node that lost only its own link to Redis sends the events it could not publish when the link returns', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const link = await Relay.start({ host: '127.0.0.1', port: redis.port });
    const cutOff = await spawnServer(env(database.url, { REDIS_URL: `redis://127.0.0.1:${link.port}` }));
    nodes.push(cutOff);
    try {
      const e = await everything(a, 503, '/fleet-outbox');
      assert.equal((await deliver(b, e.partnerId, e.staticToken)).status, 200, 'B has cached the static token');
      await link.cut();
      await within(3_000, async () => (await readyz(cutOff.url)).body.redis?.state === 'down');
      assert.equal((await readyz(b)).body.redis.state, 'ok', 'B never lost Redis, so it keeps its 30 s freshness');
      assert.equal((await admin(cutOff.url, 'DELETE', `/partners/${e.partnerId}/static-tokens/${e.staticTokenId}`)).status, 200);
      assert.equal((await deliver(b, e.partnerId, e.staticToken)).status, 200, 'the event could not reach B');
      await link.open();
      const took = await within(5_000, async () => (await deliver(b, e.partnerId, e.staticToken)).status === 401);
      process.stdout.write(`# one node's Redis link cut: its revocation reached B ${took} ms after the link returned\n`);
    } finally {
      await cutOff.stop();
      await link.cut();
    }
  });

  async function newCredentialAt(at: string) {
    const org = await admin(at, 'POST', '/organizations', { name: 'Other' });
    const app = await admin(at, 'POST', `/organizations/${org.body.id}/applications`, { name: 'Other' });
    const cred = await admin(at, 'POST', `/applications/${app.body.id}/credentials`, { name: 'k' });
    recordSecret(cred.body.client_secret);
    return { appId: app.body.id as number, clientId: cred.body.client_id as string, clientSecret: cred.body.client_secret as string };
  }

  test('with PostgreSQL cut, and then Redis killed too, node C serves every cached decision and /readyz stays 200 degraded', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', available)) return;
    const e = await everything(a, 502, '/fleet-stock');
    const bearer = await accessToken(a, e.clientId, e.clientSecret);
    const revoked = await accessToken(a, e.clientId, e.clientSecret);
    await fetch(`${a}/oauth2/revoke`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ token: revoked.token, client_id: e.clientId, client_secret: e.clientSecret }),
    });
    await within(2_500, async () => (await me(c, revoked.token)) === 401);
    assert.deepEqual(await decisions(c, e, bearer.token), allServed, 'C has cached every decision');

    const client = steadyClient(c, e.clientId, e.clientSecret, bearer.token);
    await relay.cut();
    const counts = { served: 0, refused: 0 };
    try {
      await within(3_000, async () => (await readyz(c)).body.database.state === 'down');
      const cut = await readyz(c);
      assert.equal(cut.status, 200);
      assert.equal(cut.body.status, 'degraded');
      assert.deepEqual(await decisions(c, e, bearer.token), allServed, 'PostgreSQL away: served from the caches');
      assert.equal(await me(c, revoked.token), 401, 'a revoked token stays revoked');

      await redis.stop();
      try {
        await within(3_000, async () => (await readyz(c)).body.redis?.state === 'down');
        // Past the degraded freshness (1 s), with nothing to re-read from: the cached values still serve.
        await new Promise((r) => setTimeout(r, 1_500));
        const both = await decisions(c, e, bearer.token);
        assert.deepEqual(both, allServed, 'both away: still served from the caches');
        for (const v of Object.values(both)) if (v === 200 || v === true) counts.served++;
        assert.equal(await me(c, revoked.token), 401);
        const ready = await readyz(c);
        assert.equal(ready.status, 200);
        assert.equal(ready.body.status, 'degraded');
      } finally {
        await redis.start();
      }
    } finally {
      await relay.open();
    }
    await within(10_000, async () => (await readyz(c)).body.status === 'ready');
    const saw = await client.stop();
    process.stdout.write(`# a client of node C (cached credential) while PostgreSQL was cut, then Redis too, saw: ${JSON.stringify(saw)}\n`);
    assert.deepEqual(Object.keys(saw).sort(), ['me 200', 'token 200'], 'never refused, never a 5xx');
    assert.match(nodes[2]!.output(), /"level":40[^\n]*PostgreSQL is unreachable/);
    assert.match(nodes[2]!.output(), /"level":30[^\n]*PostgreSQL is reachable again/);
    assert.deepEqual(await decisions(c, e, bearer.token), allServed);
    process.stdout.write(`# PostgreSQL cut, then Redis killed too: node C answered ${counts.served} of 8 cached decisions as before\n`);
  });
});

describe('processes', () => {
  test('PORTCULLIS_WORKERS above 1 is refused on the embedded store, with a clear line', async () => {
    const dir = tempDir();
    try {
      const result = await runCli(['serve'], { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_WORKERS: '2', DATABASE_URL: '', REDIS_URL: '', PORT: '0' });
      assert.equal(result.code, 78);
      assert.match(result.stderr, /PORTCULLIS_WORKERS=2 needs DATABASE_URL \(PostgreSQL\) and REDIS_URL/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('on SIGTERM a node answers 503 on /readyz at once, keeps serving for PORTCULLIS_DRAIN_SECONDS, then exits cleanly', async () => {
    const dir = tempDir();
    try {
      const node = await spawnServer({
        PORTCULLIS_DATA_DIR: dir,
        PORTCULLIS_MASTER_KEY: MASTER_KEY,
        PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
        PORTCULLIS_DRAIN_SECONDS: '2',
      });
      assert.equal((await readyz(node.url)).status, 200);
      const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
      const signalled = Date.now();
      node.child.kill('SIGTERM');
      await within(1_000, async () => (await readyz(node.url)).status === 503);
      assert.equal((await readyz(node.url)).body.status, 'draining');
      const served = await admin(node.url, 'GET', '/organizations');
      assert.equal(served.status, 200, 'still serving while draining');
      assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
      assert.equal(await exited, 0);
      const drained = Date.now() - signalled;
      assert.ok(drained >= 1_900, `closed after ${drained} ms, not before the drain time`);
      assert.match(node.output(), /draining: \/readyz answers 503, still serving/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL unreachable at start: the node exits at once with one line naming it', async () => {
    const dir = tempDir();
    try {
      const closed = await freePort();
      const result = await runCli(['serve'], {
        PORTCULLIS_DATA_DIR: dir,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/none`,
        PORTCULLIS_MASTER_KEY: MASTER_KEY,
        PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
        PORT: '0',
      });
      assert.equal(result.code, 69);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^portcullis: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${closed}/none after 3 attempts: .*ECONNREFUSED`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('nodes starting together on an empty database agree on one signing key and migrate once', async (t) => {
    if (!needService(t, 'PostgreSQL', await postgresAvailable())) return;
    const database = await createTestDatabase();
    const dirs = [tempDir(), tempDir(), tempDir()];
    const started: ServerProcess[] = [];
    try {
      const env = (dir: string) => ({
        PORTCULLIS_DATA_DIR: dir,
        DATABASE_URL: database.url,
        PORTCULLIS_MASTER_KEY: MASTER_KEY,
        PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      });
      const results = await Promise.allSettled(dirs.map((dir) => spawnServer(env(dir))));
      for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
      assert.equal(
        started.length,
        3,
        String(results.find((r) => r.status === 'rejected') && (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason),
      );
      const sets = await Promise.all(started.map(async (n) => (await fetch(`${n.url}/.well-known/jwks.json`)).text()));
      assert.equal(new Set(sets).size, 1, 'every node publishes the same key set');
      assert.equal(JSON.parse(sets[0]!).keys.length, 1, 'one signing key, not one per node');
    } finally {
      await Promise.all(started.map((n) => n.stop()));
      await database.drop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PORTCULLIS_WORKERS=2 runs two workers on one port that serve tokens and stop cleanly on SIGTERM', async (t) => {
    if (!needService(t, 'PostgreSQL and redis-server', (await postgresAvailable()) && (await redisServerAvailable()))) return;
    const database = await createTestDatabase();
    const redis = await TestRedis.start();
    const dir = tempDir();
    let server: ServerProcess | undefined;
    try {
      const port = await freePort();
      server = await spawnServer({
        PORT: String(port),
        PORTCULLIS_WORKERS: '2',
        PORTCULLIS_DATA_DIR: dir,
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        PORTCULLIS_MASTER_KEY: MASTER_KEY,
        PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      });
      const current = server;
      await within(25_000, async () => new Set([...current.output().matchAll(/"pid":(\d+)[^\n]*portcullis is listening/g)].map((m) => m[1])).size === 2);
      const org = await admin(server.url, 'POST', '/organizations', { name: 'Workers' });
      const app = await admin(server.url, 'POST', `/organizations/${org.body.id}/applications`, { name: 'W' });
      const cred = await admin(server.url, 'POST', `/applications/${app.body.id}/credentials`, { name: 'k' });
      for (let i = 0; i < 10; i++) assert.equal((await token(server.url, cred.body.client_id, cred.body.client_secret)).status, 200);
      // Whichever worker answers the scrape, it is every worker's count, aggregated by the primary.
      for (let i = 0; i < 4; i++) {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        assert.match(text, /^portcullis_token_requests_total\{outcome="issued"\} 10$/m);
        assert.match(text, /^portcullis_dependency_up\{dependency="redis"\} 1$/m);
        assert.match(text, /^portcullis_db_pool_connections\{state="total"\} [1-9]\d*$/m);
      }
      assert.equal(await server.stop(), 0);
      assert.match(server.output(), /stopping workers/);
    } finally {
      await server?.stop();
      await redis.stop();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
