import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ManualClock } from '../src/domain/clock.js';
import { describe } from './helpers/dialects.js';
import { recordSecret } from './helpers/secrets.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from './helpers/server.js';

describe('Idempotency-Key on operator POSTs', () => {
  const clock = new ManualClock(Date.parse('2030-01-01T00:00:00Z'));
  let server: TestServer;
  let appId: number;

  before(async () => {
    server = await startTestServer({}, { clock });
    const org = await server.admin('POST', '/organizations', { name: 'Idempotent' });
    appId = (await server.admin('POST', `/organizations/${org.body.id}/applications`, { name: 'Retried' })).body.id;
  });
  after(() => server.stop());

  const post = async (path: string, body: unknown, key: string) => {
    const res = await fetch(`${server.url}/admin/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    const parsed = (await res.json()) as any;
    if (parsed.client_secret) recordSecret(parsed.client_secret);
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const live = async () => (await server.admin('GET', `/applications/${appId}/credentials`)).body as Array<{ client_id: string }>;

  test('a retry with the same key returns the first answer, secret included, and creates nothing more', async () => {
    const before = (await live()).length;
    const key = randomUUID();
    const first = await post(`/applications/${appId}/credentials`, { name: 'once' }, key);
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const retry = await post(`/applications/${appId}/credentials`, { name: 'once' }, key);
    assert.equal(retry.status, 201);
    assert.deepEqual(retry.body, first.body);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.headers.get('cache-control'), 'no-store');
    assert.equal((await live()).length, before + 1);
    await server.accessToken(retry.body.client_id, retry.body.client_secret);
  });

  test('the kept answer is sealed at rest: the stored row holds neither the secret nor the client id', async () => {
    const key = randomUUID();
    const first = await post(`/applications/${appId}/credentials`, { name: 'sealed' }, key);
    assert.equal(first.status, 201);
    const rows = await server.services.store.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).execute();
    assert.equal(rows.length, 1);
    const row = JSON.stringify(rows[0]);
    assert.ok(!row.includes(first.body.client_secret), 'the secret is not stored in the clear');
    assert.ok(!row.includes(first.body.client_id), 'the answer is not stored in the clear');
    assert.ok(!row.includes(ADMIN_TOKEN), 'the operator token is not stored');
    assert.match(rows[0]!.response ?? '', /^v1\./);
  });

  test('the same key with another body is refused with 422 idempotency-key-reused, and runs nothing', async () => {
    const key = randomUUID();
    assert.equal((await post('/organizations', { name: 'First' }, key)).status, 201);
    const orgs = (await server.admin('GET', '/organizations')).body.length;
    const other = await post('/organizations', { name: 'Second' }, key);
    assert.equal(other.status, 422);
    assert.equal(other.body.errors[0].code, 'idempotency-key-reused');
    const elsewhere = await post(`/applications/${appId}/credentials`, { name: 'First' }, key);
    assert.equal(elsewhere.status, 422, 'another path with the same key is another request');
    assert.equal((await server.admin('GET', '/organizations')).body.length, orgs);
    const replayed = await post('/organizations', { name: 'First' }, key);
    assert.equal(replayed.status, 201, 'the first request again is still replayed');
  });

  test('concurrent duplicates do not both run: one credential, and every other answer is the same or 409 idempotency-key-in-use', async () => {
    const before = (await live()).length;
    const key = randomUUID();
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(`/applications/${appId}/credentials`, { name: 'racing' }, key)));
    assert.equal((await live()).length, before + 1);
    const created = answers.filter((a) => a.status === 201);
    assert.ok(created.length >= 1);
    assert.equal(new Set(created.map((a) => a.body.client_id)).size, 1, JSON.stringify(answers.map((a) => a.status)));
    for (const a of answers.filter((x) => x.status !== 201)) {
      assert.equal(a.status, 409);
      assert.equal(a.body.errors[0].code, 'idempotency-key-in-use');
      assert.equal(a.headers.get('retry-after'), '1');
    }
  });

  test('an answer that is an error is kept too, and a malformed key is a 400', async () => {
    const key = randomUUID();
    const first = await post('/organizations', { name: '' }, key);
    assert.equal(first.status, 400);
    const retry = await post('/organizations', { name: '' }, key);
    assert.equal(retry.status, 400);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    for (const bad of ['has space', 'x'.repeat(256)]) {
      const res = await post('/organizations', { name: 'Bad key' }, bad);
      assert.equal(res.status, 400);
      assert.equal(res.body.errors[0].code, 'invalid-idempotency-key');
    }
  });

  test('a key whose first request died with its node (claimed, never answered) is 409 idempotency-outcome-unknown, not run again', async () => {
    const key = randomUUID();
    const { idempotency } = server.services;
    const path = `/admin/v1/applications/${appId}/credentials`;
    const claimed = await server.services.store.idempotencyKeys.claim(
      idempotency.principal(ADMIN_TOKEN),
      key,
      idempotency.requestHash('POST', path, { name: 'orphan' }),
      clock.now() - 61_000,
    );
    assert.equal(claimed, 'claimed');
    const before = (await live()).length;
    const retry = await post(`/applications/${appId}/credentials`, { name: 'orphan' }, key);
    assert.equal(retry.status, 409);
    assert.equal(retry.body.errors[0].code, 'idempotency-outcome-unknown');
    assert.equal((await live()).length, before);
  });

  test('after 24 hours a key is forgotten: its row is pruned and the same key runs again', async () => {
    const key = randomUUID();
    const first = await post('/organizations', { name: 'Day one' }, key);
    clock.advance(24 * 3600 + 1);
    const again = await post('/organizations', { name: 'Day one' }, key);
    assert.equal(again.status, 201);
    assert.notEqual(again.body.id, first.body.id);
    assert.equal(again.headers.get('idempotent-replayed'), null);
    // Pruning runs beside the request: poll for it with a deadline.
    const stale = () =>
      server.services.store.db
        .selectFrom('idempotency_keys')
        .select('key')
        .where('created_at', '<', clock.now() - 24 * 3_600_000)
        .execute();
    const deadline = Date.now() + 5_000;
    while ((await stale()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await stale(), [], 'keys older than 24 hours are pruned');
  });
});
