import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { type Db, openPostgres, openSqlite } from '../src/store/db.js';
import { createPostgresTestDatabase, currentDialect, describe } from './helpers/dialects.js';
import { spawnServer } from './helpers/process.js';
import { recordSecret } from './helpers/secrets.js';
import { ADMIN_TOKEN, ISSUER_FOR_TESTS, MASTER_KEY, startTestServer, type TestServer, tempDir } from './helpers/server.js';

const APPS = 40;
const WORKERS = 12;

/** Creates credentials from WORKERS loops until a request fails (the server is gone); counts the 201s. */
async function burst(url: string, appIds: number[], state: { next: number; created: number; stop: boolean }): Promise<void> {
  const worker = async () => {
    while (!state.stop) {
      const appId = appIds[state.next++ % appIds.length];
      try {
        const res = await fetch(`${url}/admin/v1/applications/${appId}/credentials`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'burst' }),
        });
        const body = (await res.json()) as { client_secret?: string };
        if (body.client_secret) recordSecret(body.client_secret);
        if (res.status === 201) state.created++;
      } catch {
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
}

describe('writes that cannot half-happen', () => {
  test('SIGKILL during a burst of credential creations leaves no credential without its audit event, nor an event without its credential', async () => {
    const dir = tempDir();
    const database = currentDialect() === 'postgres' ? await createPostgresTestDatabase() : undefined;
    const env = {
      PORTCULLIS_DATA_DIR: dir,
      PORTCULLIS_MASTER_KEY: MASTER_KEY,
      PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
      PORTCULLIS_ISSUER: ISSUER_FOR_TESTS,
      PORTCULLIS_KEY_PREPUBLISH: '0',
      DATABASE_URL: database?.url ?? '',
      REDIS_URL: '',
    };
    let answered = 0;
    try {
      for (let round = 0; round < 2; round++) {
        const server = await spawnServer(env);
        try {
          const admin = (path: string, body: unknown) =>
            fetch(server.url + path, {
              method: 'POST',
              headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
              body: JSON.stringify(body),
            }).then((r) => r.json() as Promise<{ id: number }>);
          const org = await admin('/admin/v1/organizations', { name: `Burst ${round}` });
          const appIds: number[] = [];
          for (let i = 0; i < APPS / 2; i++) appIds.push((await admin(`/admin/v1/organizations/${org.id}/applications`, { name: `app ${i}` })).id);
          const state = { next: 0, created: 0, stop: false };
          const running = burst(server.url, appIds, state);
          // Killed while requests are in flight: some transactions are open at that instant.
          const deadline = Date.now() + 20_000;
          while (state.created < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          server.child.kill('SIGKILL');
          await new Promise((r) => server.child.once('exit', r));
          state.stop = true;
          await running;
          assert.ok(state.created >= 15, `only ${state.created} credentials were created before the deadline`);
          answered += state.created;
        } finally {
          if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
        }
      }
      const db: Db = database ? openPostgres(database.url) : openSqlite(dir);
      try {
        const orphans = await sql<{ client_id: string }>`
          select c.client_id from credentials c
          where not exists (select 1 from audit_events a where a.action = 'credential.created' and a.target_id = c.client_id)`.execute(db);
        const eventsWithout = await sql<{ target_id: string }>`
          select a.target_id from audit_events a
          where a.action = 'credential.created' and not exists (select 1 from credentials c where c.client_id = a.target_id)`.execute(db);
        const { rows } = await sql<{ n: number }>`select count(*) as n from credentials`.execute(db);
        assert.deepEqual(orphans.rows, [], 'credentials without their audit event');
        assert.deepEqual(eventsWithout.rows, [], 'audit events of credentials that were never committed');
        assert.ok(Number(rows[0]?.n) >= answered, `every answered creation is stored (${rows[0]?.n} stored, ${answered} answered)`);
      } finally {
        await db.destroy();
      }
    } finally {
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('concurrent upserts', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const auditActions = async (targetType: string, targetId: string) => {
    const res = await server.admin('GET', '/audit-events?limit=100');
    return res.body
      .filter((e: any) => e.target_type === targetType && e.target_id === targetId)
      .map((e: any) => e.action)
      .sort();
  };

  test('eight concurrent PUTs of a new partner answer one 201 and seven 200, never 5xx, and leave one row with eight audit events', async () => {
    const id = 7_000_000 + Math.floor(Math.random() * 1_000_000);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => server.admin('PUT', `/partners/${id}`, { name: `Racer ${i}`, require_token: i % 2 === 0 })),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201], JSON.stringify(answers.map((a) => a.body)));
    const partners = (await server.admin('GET', '/partners')).body.filter((p: any) => p.id === id);
    assert.equal(partners.length, 1);
    assert.ok(
      answers.some((a) => a.body.name === partners[0].name),
      'the row holds one of the bodies sent',
    );
    assert.deepEqual(await auditActions('partner', String(id)), ['partner.created', ...Array(7).fill('partner.updated')]);
  });

  test('eight concurrent PUTs of a new placement answer one 201 and seven 200, never 5xx, and leave one placement', async () => {
    const partner = 8_000_000 + Math.floor(Math.random() * 1_000_000);
    assert.equal((await server.admin('PUT', `/partners/${partner}`, { name: 'Placements' })).status, 201);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        server.admin('PUT', `/partners/${partner}/placements/viewHome/Race`, { format: 'sponsored_products', products: [{ ProductId: `sku-${i}` }] }),
      ),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201], JSON.stringify(answers.map((a) => a.body)));
    const placements = (await server.admin('GET', `/partners/${partner}/placements`)).body;
    assert.equal(placements.length, 1);
    assert.equal(new Set(answers.map((a) => a.body.id)).size, 1, 'every answer names the same placement');
  });

  test('concurrent creations of one gateway prefix give one 201 and 409 prefix-taken for the rest, never 5xx', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => server.admin('POST', '/gateway/routes', { prefix: '/race', upstream: 'http://127.0.0.1:9' })),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409], JSON.stringify(answers.map((a) => a.body)));
    for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.body.errors[0].code, 'prefix-taken');
  });
});
