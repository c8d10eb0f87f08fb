import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/domain/clock.js';
import { MemoryBeaconLedger } from '../src/retailmedia/beacon-ledger.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { needService, redisServerAvailable, TestRedis } from './helpers/services.js';

const HOME = { 'criteo-partner-id': '7', 'retailer-visitor-id': 'v', 'event-type': 'viewHome', 'page-id': 'home' };

describe('beacon ledger: each (impression, beacon) counts once', () => {
  test('the in-memory ledger forgets a beacon once it has expired, and stays within its bound', () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const ledger = new MemoryBeaconLedger(clock, 3);
    const expires = clock.now() + 3_600_000;
    assert.equal(ledger.firstSightingNow('a', expires), true);
    assert.equal(ledger.firstSightingNow('a', expires), false, 'a replay');
    assert.equal(ledger.firstSightingNow('b', expires + 120_000), true);
    assert.equal(ledger.firstSightingNow('c', expires + 240_000), true);
    assert.equal(ledger.firstSightingNow('d', expires + 240_000), true, 'over the bound, the soonest-expiring bucket goes');
    assert.equal(ledger.size, 3);
    assert.equal(ledger.evicted, 1);
    clock.advance(3600 + 600);
    assert.equal(ledger.firstSightingNow('e', clock.now() + 1000), true);
    assert.equal(ledger.size, 1, 'expired buckets are dropped whole');
  });

  describe('two nodes sharing Redis', () => {
    let redis: TestRedis | undefined;
    let a: TestServer;
    let b: TestServer;
    let available = false;
    before(async () => {
      available = await redisServerAvailable();
      if (!available) return;
      redis = await TestRedis.start();
      a = await startTestServer({ REDIS_URL: redis.url });
      b = await startTestServer({ REDIS_URL: redis.url });
    });
    after(async () => {
      await a?.stop();
      await b?.stop();
      await redis?.stop();
    });

    test('a beacon counted at one node is a replay at the other: 204, nothing counted', async (t) => {
      if (!needService(t, 'redis-server', available)) return;
      for (const node of [a, b]) {
        await node.admin('PUT', '/partners/7', { name: 'Shared' });
        await node.admin('PUT', '/partners/7/placements/viewHome/Top', { format: 'f', products: [{ ProductId: 'p' }] });
      }
      const body: any = await (await fetch(`${a.url}/delivery/retailmedia?${new URLSearchParams(HOME)}`)).json();
      const path = new URL(body.placements[0]['home-Top'][0].products[0].OnClickBeacon).pathname;
      assert.equal((await fetch(a.url + path)).status, 204);
      assert.equal((await fetch(b.url + path)).status, 204);
      assert.equal((await fetch(b.url + path, { method: 'POST' })).status, 204);
      const counted = async (node: TestServer) => (await node.admin('GET', '/partners/7/beacon-counts')).body.map((c: any) => c.count);
      assert.deepEqual(await counted(a), [1]);
      assert.deepEqual(await counted(b), [], 'the replay at the other node counted nothing');
    });
  });
});
