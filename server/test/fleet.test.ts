import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { runCli, type ServerProcess, spawnServer } from './helpers/process.js';
import { ADMIN_TOKEN, MASTER_KEY, tempDir } from './helpers/server.js';
import { createTestDatabase, freePort, needService, postgresAvailable, Relay, redisServerAvailable, TestRedis } from './helpers/services.js';

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
      await within(10_000, async () => new Set([...current.output().matchAll(/"pid":(\d+)[^\n]*portcullis is listening/g)].map((m) => m[1])).size === 2);
      const org = await admin(server.url, 'POST', '/organizations', { name: 'Workers' });
      const app = await admin(server.url, 'POST', `/organizations/${org.body.id}/applications`, { name: 'W' });
      const cred = await admin(server.url, 'POST', `/applications/${app.body.id}/credentials`, { name: 'k' });
      for (let i = 0; i < 10; i++) assert.equal((await token(server.url, cred.body.client_id, cred.body.client_secret)).status, 200);
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
