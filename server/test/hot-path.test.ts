import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
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
