import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ReadThroughCache } from '../src/directory/cache.js';
import { ManualClock } from '../src/domain/clock.js';
import { openSqlite } from '../src/store/db.js';
import { startTestServer, type TestServer, tempDir } from './helpers/server.js';

describe('hot path', () => {
  let server: TestServer;
  let dataDir: string;
  const queries: string[] = [];
  before(async () => {
    dataDir = tempDir();
    const db = openSqlite(dataDir, (event) => {
      queries.push(event.query.sql);
    });
    server = await startTestServer({}, { dataDir, db });
  });
  after(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('issuing and verifying tokens reads no database row in the steady state', async () => {
    const { clientId, clientSecret } = await server.newCredential();
    const first = await server.accessToken(clientId, clientSecret); // warms the caches
    assert.equal((await server.me(first)).status, 200);
    queries.length = 0;
    const tokens = await Promise.all(Array.from({ length: 20 }, () => server.accessToken(clientId, clientSecret)));
    for (const token of tokens) assert.equal((await server.me(token)).status, 200);
    const wrong = await server.token({ grant_type: 'client_credentials', client_id: clientId, client_secret: `${clientSecret}x` });
    assert.equal(wrong.status, 401);
    assert.deepEqual(queries, [], 'no query while issuing, verifying and refusing');
  });

  test('usage is written in one batch, not per request', async () => {
    const { clientId, clientSecret } = await server.newCredential();
    for (let i = 0; i < 10; i++) await server.accessToken(clientId, clientSecret);
    queries.length = 0;
    await server.services.usage.flush();
    const writes = queries.filter((q) => /^update "credentials" set "last_used_at"/.test(q));
    assert.ok(writes.length >= 1 && writes.length <= 2, `last_used_at written once per credential in the batch: ${writes.length}`);
  });

  test('an unknown client_id is remembered briefly, so repeated guesses do not reach the database', async () => {
    const unknown = '0123456789abcdef0123456789abcdef';
    await server.token({ grant_type: 'client_credentials', client_id: unknown, client_secret: 'pcs_x' });
    queries.length = 0;
    for (let i = 0; i < 10; i++) {
      const res = await server.token({ grant_type: 'client_credentials', client_id: unknown, client_secret: 'pcs_x' });
      assert.equal(res.status, 401);
    }
    assert.deepEqual(queries, []);
  });
});

test('a read-through cache answers a hit with the value itself and only a miss with a promise', async () => {
  const clock = new ManualClock();
  const loads: string[] = [];
  const cache = new ReadThroughCache(
    async (key: string) => {
      loads.push(key);
      return key === 'absent' ? undefined : { key };
    },
    clock,
    { negativeMs: 5_000, maxEntries: 10 },
  );
  const miss = cache.get('a');
  assert.ok(miss instanceof Promise, 'a miss reads the store');
  assert.deepEqual(await miss, { key: 'a' });
  const hit = cache.get('a');
  assert.deepEqual(hit, { key: 'a' }, 'a hit is the value, not a promise');
  assert.equal(await cache.get('absent'), undefined);
  assert.equal(cache.get('absent'), undefined, 'a remembered absence is answered at once too');
  // Past its age the value is still served at once while a background read refreshes it.
  clock.advance(31);
  assert.deepEqual(cache.get('a'), { key: 'a' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(loads, ['a', 'absent', 'a']);
  // A loader that throws instead of rejecting still gives the caller a rejected promise.
  const throwing = new ReadThroughCache<string, string>(
    () => {
      throw new Error('no store');
    },
    clock,
    { negativeMs: 5_000, maxEntries: 10 },
  );
  const failed = throwing.get('x');
  assert.ok(failed instanceof Promise);
  await assert.rejects(failed, /no store/);
});
