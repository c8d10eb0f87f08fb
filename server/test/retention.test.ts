import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock, utcDay } from '../src/domain/clock.js';
import type { Db } from '../src/store/db.js';
import type { Store } from '../src/store/index.js';
import { Retention } from '../src/store/retention.js';
import { STORE_DIALECTS, storeSuite } from './helpers/stores.js';

const DAY = 86_400_000;
const count = async (db: Db, table: 'audit_events' | 'token_counts' | 'auth_failures' | 'portal_sessions') =>
  Number(
    (
      await db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

for (const dialect of STORE_DIALECTS) {
  describe(`retention on ${dialect.name}`, () => {
    const suite = storeSuite(dialect);
    let store: Store;
    const clock = new ManualClock(Date.UTC(2027, 0, 1));

    before(async () => {
      store = (await suite.open()) as Store;
    });
    after(suite.close);
    const ready = suite.ready;

    test('audit events past their retention are deleted, in slices, and younger ones stay', async (t) => {
      if (!(await ready(t))) return;
      const now = clock.now();
      const old = Array.from({ length: 2_500 }, (_, i) => ({
        occurred_at: now - 400 * DAY + i,
        actor: 'operator',
        action: 'credential.created',
        target_type: 'credential',
        target_id: String(i),
        organization_id: 1,
        ip: null,
        details: '{}',
      }));
      for (let i = 0; i < old.length; i += 500)
        await suite.db
          .insertInto('audit_events')
          .values(old.slice(i, i + 500))
          .execute();
      await store.audit.recordChange(now - 10 * DAY, { actor: 'operator', ip: null }, 'credential.deleted', { type: 'credential', id: 'young' }, 1);

      const result = await new Retention(suite.db, clock, { auditDays: 365, usageDays: 90 }).prune();

      assert.equal(result.auditEvents, 2_500);
      assert.deepEqual(
        (await store.audit.list({ limit: 10 })).map((e) => e.targetId),
        ['young'],
      );
    });

    test('per-day counters older than the usage retention are deleted, the recent days stay', async (t) => {
      if (!(await ready(t))) return;
      const day = (daysAgo: number) => new Date(clock.now() - daysAgo * DAY).toISOString().slice(0, 10);
      await store.tokenCounts.add([
        { applicationId: 1, day: day(91), count: 5 },
        { applicationId: 1, day: day(89), count: 7 },
      ]);
      await store.authFailures.add([
        { day: day(200), clientId: 'c', reason: 'bad_secret', count: 1 },
        { day: day(1), clientId: 'c', reason: 'bad_secret', count: 2 },
      ]);

      const result = await new Retention(suite.db, clock, { auditDays: 365, usageDays: 90 }).prune();

      assert.equal(result.tokenCounts, 1);
      assert.equal(result.authFailures, 1);
      assert.deepEqual(
        (await store.tokenCounts.since(1, day(365))).map((c) => c.count),
        [7],
      );
      assert.deepEqual(
        (await store.authFailures.since(day(365))).map((c) => c.count),
        [2],
      );
    });

    test('expired portal sessions are deleted and live ones kept', async (t) => {
      if (!(await ready(t))) return;
      const user = await store.portalUsers.create(`retention-${dialect.name}@example.test`, 'hash', clock.now());
      assert.notEqual(user, 'taken');
      const userId = (user as { id: number }).id;
      const session = (id: string, expiresAt: number) => ({ id, userId, csrfToken: 'x', createdAt: 0, lastSeenAt: 0, expiresAt, ip: null, userAgent: null });
      await store.portalSessions.create(session('expired', clock.now() - 1));
      await store.portalSessions.create(session('live', clock.now() + DAY));

      await new Retention(suite.db, clock, { auditDays: 365, usageDays: 90 }).prune();

      assert.equal(await count(suite.db, 'portal_sessions'), 1);
      assert.ok(await store.portalSessions.get('live'));
    });
  });
}

test('utcDay names the UTC day of a time, across midnight and back (it keeps its last answer)', () => {
  const midnight = Date.UTC(2026, 11, 31, 24);
  assert.equal(utcDay(midnight - 1), '2026-12-31');
  assert.equal(utcDay(midnight), '2027-01-01');
  assert.equal(utcDay(midnight - 1), '2026-12-31', 'an earlier time after a later one');
  assert.equal(utcDay(-1), '1969-12-31');
});
