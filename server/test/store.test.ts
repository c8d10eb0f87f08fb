import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isPostgres } from '../src/store/db.js';
import type { Store } from '../src/store/index.js';
import { migrateToLatest, pendingMigrations } from '../src/store/migrations.js';
import { STORE_DIALECTS, storeSuite } from './helpers/stores.js';

for (const dialect of STORE_DIALECTS) {
  describe(`store on ${dialect.name}`, () => {
    const suite = storeSuite(dialect);
    let store: Store;
    const now = 1_800_000_000_000;

    before(async () => {
      store = (await suite.open()) as Store;
    });
    after(suite.close);

    const ready = suite.ready;

    test('migrations apply once and leave nothing pending, however often they run', async (t) => {
      if (!(await ready(t))) return;
      assert.deepEqual(await migrateToLatest(suite.db), []);
      assert.deepEqual(await pendingMigrations(suite.db), []);
      assert.equal(isPostgres(suite.db), dialect.name === 'postgres');
    });

    test('organizations and applications get increasing positive integer ids, read back as numbers', async (t) => {
      if (!(await ready(t))) return;
      const a = await store.organizations.create('A', now);
      const b = await store.organizations.create('B', now + 1);
      assert.ok(Number.isInteger(a.id) && a.id > 0 && b.id > a.id);
      assert.equal(typeof a.createdAt, 'number');
      const app = await store.applications.create({ organizationId: a.id, name: 'App', description: 'd', scopes: ['x', 'y'] }, now);
      assert.deepEqual(await store.applications.get(app.id), app);
      assert.deepEqual(
        (await store.applications.listByOrganization(a.id)).map((x) => x.id),
        [app.id],
      );
      assert.deepEqual(await store.applications.listByOrganization(b.id), []);
      const changed = await store.applications.update(app.id, { name: 'Renamed', scopes: ['z'] });
      assert.equal(changed?.name, 'Renamed');
      assert.deepEqual(changed?.scopes, ['z']);
      assert.equal(await store.organizations.get(999_999), undefined);
    });

    test('concurrent credential creations never pass the limit of active credentials', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Limit', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'L', description: '', scopes: [] }, now);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.credentials.createWithinLimit(
            { clientId: `limit-${dialect.name}-${i}`, applicationId: app.id, name: `k${i}`, secretHash: 'h', createdAt: now },
            5,
          ),
        ),
      );
      assert.equal(results.filter((r) => r !== 'limit-reached').length, 5);
      assert.equal((await store.credentials.listLive(app.id, now)).length, 5);
    });

    test('a credential moves through deletion and revocation, keeping its first deadline', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Life', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'L', description: '', scopes: [] }, now);
      const created = await store.credentials.createWithinLimit(
        { clientId: `life-${dialect.name}`, applicationId: app.id, name: 'k', secretHash: 'h', createdAt: now },
        5,
      );
      assert.notEqual(created, 'limit-reached');
      const deleted = await store.credentials.markDeleted(`life-${dialect.name}`, now + 10, now + 900_010);
      assert.equal(deleted?.deactivatesAt, now + 900_010);
      const again = await store.credentials.markDeleted(`life-${dialect.name}`, now + 20, now + 900_020);
      assert.equal(again?.deactivatesAt, now + 900_010, 'deleting twice keeps the first deadline');
      assert.equal((await store.credentials.listLive(app.id, now + 900_009)).length, 1);
      assert.equal((await store.credentials.listLive(app.id, now + 900_010)).length, 0);
      const revoked = await store.credentials.markRevoked(`life-${dialect.name}`, now + 30);
      assert.equal(revoked?.revokedAt, now + 30);
      assert.equal(revoked?.deletedAt, now + 10, 'revoking keeps the deletion time');
    });

    test('last use is written in a batch and never moves backwards', async (t) => {
      if (!(await ready(t))) return;
      const org = await store.organizations.create('Use', now);
      const app = await store.applications.create({ organizationId: org.id, name: 'U', description: '', scopes: [] }, now);
      const id = `use-${dialect.name}`;
      await store.credentials.createWithinLimit({ clientId: id, applicationId: app.id, name: 'k', secretHash: 'h', createdAt: now }, 5);
      await store.credentials.recordLastUsed(new Map([[id, now + 500]]));
      await store.credentials.recordLastUsed(new Map([[id, now + 100]]));
      assert.equal((await store.credentials.get(id))?.lastUsedAt, now + 500);
    });

    test('failed authentications accumulate per day, client and reason', async (t) => {
      if (!(await ready(t))) return;
      await store.authFailures.add([{ day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 3 }]);
      await store.authFailures.add([
        { day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 4 },
        { day: '2027-01-15', clientId: '', reason: 'unknown_client', count: 1 },
      ]);
      const counts = await store.authFailures.since('2027-01-15');
      assert.deepEqual(counts, [
        { day: '2027-01-15', clientId: 'c1', reason: 'bad_secret', count: 7 },
        { day: '2027-01-15', clientId: '', reason: 'unknown_client', count: 1 },
      ]);
    });

    test('settings, signing keys and audit events round-trip', async (t) => {
      if (!(await ready(t))) return;
      await store.settings.set('k', 'v1');
      await store.settings.set('k', 'v2');
      assert.equal(await store.settings.get('k'), 'v2');
      await store.signingKeys.insert({ kid: 'old', alg: 'RS256', publicJwk: '{}', privateKey: 'v1.a.b.c', createdAt: now, activatesAt: now });
      await store.signingKeys.insert({ kid: 'new', alg: 'RS256', publicJwk: '{}', privateKey: 'v1.a.b.c', createdAt: now + 1, activatesAt: now + 600_000 });
      assert.deepEqual(
        (await store.signingKeys.list()).map((k) => [k.kid, k.activatesAt]),
        [
          ['new', now + 600_000],
          ['old', now],
        ],
      );
      for (let i = 0; i < 3; i++) {
        await store.audit.record({
          occurredAt: now + i,
          actor: 'operator',
          action: `a${i}`,
          targetType: 't',
          targetId: String(i),
          organizationId: 42,
          ip: '127.0.0.1',
          details: { i },
        });
      }
      const page = await store.audit.list({ organizationId: 42, limit: 2 });
      assert.deepEqual(
        page.map((e) => e.action),
        ['a2', 'a1'],
      );
      const next = await store.audit.list({ organizationId: 42, limit: 2, before: page[1]!.id });
      assert.deepEqual(
        next.map((e) => [e.action, e.details]),
        [['a0', { i: 0 }]],
      );
    });

    const org = async (name: string) => store.organizations.create(name, now);

    test('a transaction commits a change and its audit event together, or neither when it fails', async (t) => {
      if (!(await ready(t))) return;
      const committed = await store.transaction(async (tx) => {
        const o = await tx.organizations.create('Committed', now);
        await tx.audit.recordChange(now, { actor: 'operator', ip: null }, 'organization.created', { type: 'organization', id: o.id }, o.id);
        // Nested: the same transaction, not a new one (Kysely does not nest them).
        return tx.transaction(async (inner) => {
          assert.equal(inner.db, tx.db);
          return o;
        });
      });
      assert.deepEqual(await store.organizations.get(committed.id), committed);
      assert.equal((await store.audit.list({ organizationId: committed.id, limit: 5 })).length, 1);
      let rolledBackId = 0;
      await assert.rejects(
        store.transaction(async (tx) => {
          const o = await tx.organizations.create('Rolled back', now);
          rolledBackId = o.id;
          await tx.audit.recordChange(now, { actor: 'operator', ip: null }, 'organization.created', { type: 'organization', id: o.id }, o.id);
          throw new Error('crash before commit');
        }),
        /crash before commit/,
      );
      assert.equal(await store.organizations.get(rolledBackId), undefined);
      assert.deepEqual(await store.audit.list({ organizationId: rolledBackId, limit: 5 }), []);
    });

    test('revoked tokens: adding twice is harmless, only unexpired ones are live, prune drops the rest', async (t) => {
      if (!(await ready(t))) return;
      await store.revokedTokens.add('jti-old', now + 10);
      await store.revokedTokens.add('jti-new', now + 1_000);
      await store.revokedTokens.add('jti-new', now + 1_000);
      assert.deepEqual(
        (await store.revokedTokens.live(now + 10)).map((r) => r.jti),
        ['jti-new'],
      );
      await store.revokedTokens.prune(now + 10);
      assert.deepEqual(
        (await store.revokedTokens.live(now)).map((r) => [r.jti, r.expiresAt]),
        [['jti-new', now + 1_000]],
      );
    });

    test('partners: concurrent upserts of a new id create it once, then replace it with the settings before', async (t) => {
      if (!(await ready(t))) return;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.partners.upsert({ id: 4242, name: `P${i}`, requireToken: false, rateLimitPerMinute: null, requiredScope: null }, now + i),
        ),
      );
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.ok(results.filter((r) => !r.created).every((r) => r.before !== undefined));
      const replaced = await store.partners.upsert({ id: 4242, name: 'Final', requireToken: true, rateLimitPerMinute: 30, requiredScope: null }, now + 100);
      assert.equal(replaced.created, false);
      assert.deepEqual([replaced.partner.name, replaced.partner.requireToken, replaced.partner.rateLimitPerMinute], ['Final', true, 30]);
      assert.equal(replaced.partner.updatedAt, now + 100);
      assert.equal(replaced.partner.createdAt, results.find((r) => r.created)!.partner.createdAt);
      assert.deepEqual((await store.partners.list(1000)).filter((p) => p.id === 4242).length, 1);
      assert.equal(await store.partners.get(4243), undefined);
    });

    test('partners: links are added and removed once, access lists them, application limits are upserted', async (t) => {
      if (!(await ready(t))) return;
      const o = await org('Links');
      const app = await store.applications.create({ organizationId: o.id, name: 'Linked', description: '', scopes: [] }, now);
      await store.partners.upsert({ id: 5151, name: 'Linker', requireToken: false, rateLimitPerMinute: null, requiredScope: null }, now);
      assert.equal(await store.partners.link(5151, app.id, now), true);
      assert.equal(await store.partners.link(5151, app.id, now), false);
      assert.deepEqual((await store.partners.access(5151))?.applicationIds, [app.id]);
      assert.equal(await store.partners.access(5152), undefined);
      assert.equal(await store.partners.unlink(5151, app.id), true);
      assert.equal(await store.partners.unlink(5151, app.id), false);
      assert.deepEqual(await store.partners.linkedApplications(5151), []);
      assert.equal(await store.partners.applicationRateLimit(app.id), null);
      await store.partners.setApplicationRateLimit(app.id, 10);
      await store.partners.setApplicationRateLimit(app.id, 20);
      assert.equal(await store.partners.applicationRateLimit(app.id), 20);
      await store.partners.setApplicationRateLimit(app.id, null);
      assert.equal(await store.partners.applicationRateLimit(app.id), null);
    });

    test('static tokens: found by hash, listed until revoked, revoked once, last use never moves backwards', async (t) => {
      if (!(await ready(t))) return;
      await store.partners.upsert({ id: 6161, name: 'Static', requireToken: true, rateLimitPerMinute: null, requiredScope: null }, now);
      const a = await store.staticTokens.create({ partnerId: 6161, name: 'a', tokenHash: `hash-a-${dialect.name}`, createdAt: now, expiresAt: null });
      const b = await store.staticTokens.create({ partnerId: 6161, name: 'b', tokenHash: `hash-b-${dialect.name}`, createdAt: now, expiresAt: now + 5 });
      assert.deepEqual(await store.staticTokens.byHash(`hash-a-${dialect.name}`), a);
      assert.equal(b.expiresAt, now + 5);
      assert.deepEqual(
        (await store.staticTokens.listByPartner(6161)).map((x) => x.id),
        [a.id, b.id],
      );
      assert.equal((await store.staticTokens.revoke(a.id, now + 1))?.revokedAt, now + 1);
      assert.equal(await store.staticTokens.revoke(a.id, now + 2), undefined, 'a second revocation changes nothing');
      assert.deepEqual(
        (await store.staticTokens.listByPartner(6161)).map((x) => x.id),
        [b.id],
      );
      await store.staticTokens.recordLastUsed(new Map([[b.id, now + 50]]));
      await store.staticTokens.recordLastUsed(new Map([[b.id, now + 20]]));
      assert.equal((await store.staticTokens.get(b.id))?.lastUsedAt, now + 50);
    });

    test('placements: concurrent upserts of a new slot create one row; remove answers it; beacon counts add up', async (t) => {
      if (!(await ready(t))) return;
      await store.partners.upsert({ id: 7171, name: 'Catalogue', requireToken: false, rateLimitPerMinute: null, requiredScope: null }, now);
      const input = (i: number) => ({
        partnerId: 7171,
        eventType: 'viewHome',
        slot: 'Top',
        format: 'sponsored_products',
        products: [{ ProductId: `sku-${i}` }],
        rendering: { i },
        updatedAt: now + i,
      });
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.placements.upsert(input(i))));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.placement.id)).size, 1);
      const listed = await store.placements.listByPartner(7171);
      assert.equal(listed.length, 1);
      await store.placements.addBeaconCounts(new Map([['k', { partnerId: 7171, placementId: listed[0]!.id, productId: 'sku-1', kind: 'click', count: 2 }]]));
      await store.placements.addBeaconCounts(new Map([['k', { partnerId: 7171, placementId: listed[0]!.id, productId: 'sku-1', kind: 'click', count: 3 }]]));
      assert.deepEqual(await store.placements.beaconCounts(7171), [{ placementId: listed[0]!.id, productId: 'sku-1', kind: 'click', count: 5 }]);
      assert.equal((await store.placements.remove(7171, 'viewHome', 'Top'))?.id, listed[0]!.id);
      assert.equal(await store.placements.remove(7171, 'viewHome', 'Top'), undefined);
    });

    test('gateway routes: a prefix is taken once, also by concurrent creations; listed and removed', async (t) => {
      if (!(await ready(t))) return;
      const route = (upstream: string) => ({ prefix: '/stored', upstream, scopes: ['a'], timeoutMs: 500, options: {}, createdAt: now });
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.gatewayRoutes.create(route(`http://u${i}.test`))));
      const created = results.filter((r) => r !== 'prefix-taken');
      assert.equal(created.length, 1);
      assert.deepEqual(await store.gatewayRoutes.list(), created);
      const id = (created[0] as { id: number }).id;
      assert.equal((await store.gatewayRoutes.remove(id))?.prefix, '/stored');
      assert.equal(await store.gatewayRoutes.remove(id), undefined);
      assert.deepEqual(await store.gatewayRoutes.list(), []);
    });

    test('portal users and sessions: an email registers once; sessions are touched, ended per user and expire', async (t) => {
      if (!(await ready(t))) return;
      const user = await store.portalUsers.create(`u-${dialect.name}@example.test`, 'hash1', now);
      assert.notEqual(user, 'taken');
      if (user === 'taken') return;
      assert.equal(await store.portalUsers.create(`u-${dialect.name}@example.test`, 'hash2', now), 'taken');
      assert.deepEqual(await store.portalUsers.byEmail(`u-${dialect.name}@example.test`), user);
      await store.portalUsers.setPassword(user.id, 'hash3', now + 5);
      const changed = await store.portalUsers.get(user.id);
      assert.deepEqual([changed?.passwordHash, changed?.passwordChangedAt], ['hash3', now + 5]);
      const session = (id: string, expiresAt: number) => ({
        id,
        userId: user.id,
        csrfToken: `csrf-${id}`,
        createdAt: now,
        lastSeenAt: now,
        expiresAt,
        ip: null,
        userAgent: null,
      });
      await store.portalSessions.create(session('s1', now + 100));
      await store.portalSessions.create(session('s2', now + 100));
      await store.portalSessions.create(session('s3', now + 10));
      await store.portalSessions.touch('s1', now + 7);
      assert.equal((await store.portalSessions.get('s1'))?.lastSeenAt, now + 7);
      await store.portalSessions.deleteExpired(now + 10);
      assert.equal(await store.portalSessions.get('s3'), undefined);
      await store.portalSessions.deleteForUser(user.id, 's1');
      assert.equal(await store.portalSessions.get('s2'), undefined);
      assert.ok(await store.portalSessions.get('s1'));
      await store.portalSessions.delete('s1');
      assert.equal(await store.portalSessions.get('s1'), undefined);
    });

    test('memberships and invitations: a member is added once, owners are counted, an invitation is accepted once', async (t) => {
      if (!(await ready(t))) return;
      const o = await org('Members');
      const owner = await store.portalUsers.create(`owner-${dialect.name}@example.test`, 'h', now);
      const dev = await store.portalUsers.create(`dev-${dialect.name}@example.test`, 'h', now);
      if (owner === 'taken' || dev === 'taken') throw new Error('fresh emails are taken');
      assert.equal(await store.memberships.add({ organizationId: o.id, userId: owner.id, role: 'owner', createdAt: now }), 'added');
      assert.equal(await store.memberships.add({ organizationId: o.id, userId: owner.id, role: 'admin', createdAt: now }), 'exists');
      assert.equal((await store.memberships.get(o.id, owner.id))?.role, 'owner');
      const invitation = await store.invitations.create({
        organizationId: o.id,
        email: dev.email,
        role: 'developer',
        tokenHash: `inv-${dialect.name}`,
        invitedBy: owner.id,
        createdAt: now,
        expiresAt: now + 1000,
      });
      assert.deepEqual(await store.invitations.byTokenHash(`inv-${dialect.name}`), invitation);
      assert.deepEqual(
        (await store.invitations.pending(o.id)).map((i) => i.id),
        [invitation.id],
      );
      const accepts = await Promise.all([store.invitations.accept(invitation.id, dev.id, now + 1), store.invitations.accept(invitation.id, dev.id, now + 2)]);
      assert.deepEqual(accepts.sort(), [false, true]);
      assert.deepEqual(await store.invitations.pending(o.id), []);
      await store.memberships.add({ organizationId: o.id, userId: dev.id, role: 'developer', createdAt: now });
      assert.deepEqual(
        (await store.memberships.members(o.id)).map((m) => [m.email, m.role]),
        [
          [dev.email, 'developer'],
          [owner.email, 'owner'],
        ],
      );
      assert.deepEqual(
        (await store.memberships.organizationsOf(dev.id)).map((x) => [x.id, x.role]),
        [[o.id, 'developer']],
      );
      await store.memberships.setRole(o.id, dev.id, 'owner');
      assert.equal(await store.memberships.countOwners(o.id), 2);
      await store.memberships.remove(o.id, dev.id);
      assert.equal(await store.memberships.countOwners(o.id), 1);
      const revocable = await store.invitations.create({
        organizationId: o.id,
        email: 'x@example.test',
        role: 'admin',
        tokenHash: `inv2-${dialect.name}`,
        invitedBy: owner.id,
        createdAt: now,
        expiresAt: now + 1000,
      });
      await store.invitations.revoke(revocable.id, now + 3);
      assert.equal((await store.invitations.get(revocable.id))?.revokedAt, now + 3);
      assert.equal(await store.invitations.accept(revocable.id, dev.id, now + 4), false);
    });

    test('token counts add up per application and day', async (t) => {
      if (!(await ready(t))) return;
      await store.tokenCounts.add([{ applicationId: 9191, day: '2027-02-01', count: 2 }]);
      await store.tokenCounts.add([
        { applicationId: 9191, day: '2027-02-01', count: 3 },
        { applicationId: 9191, day: '2027-02-02', count: 1 },
      ]);
      assert.deepEqual(await store.tokenCounts.since(9191, '2027-02-01'), [
        { applicationId: 9191, day: '2027-02-01', count: 5 },
        { applicationId: 9191, day: '2027-02-02', count: 1 },
      ]);
      assert.deepEqual((await store.tokenCounts.since(9191, '2027-02-02')).length, 1);
    });

    test('idempotency keys: of concurrent claims one wins; the record is completed, released and pruned', async (t) => {
      if (!(await ready(t))) return;
      const claims = await Promise.all(Array.from({ length: 6 }, () => store.idempotencyKeys.claim('op', 'k1', 'h1', now)));
      assert.equal(claims.filter((c) => c === 'claimed').length, 1);
      for (const c of claims.filter((x) => x !== 'claimed'))
        assert.deepEqual(c, { principal: 'op', key: 'k1', requestHash: 'h1', status: null, response: null, createdAt: now });
      await store.idempotencyKeys.complete('op', 'k1', 201, 'v1.sealed');
      const done = await store.idempotencyKeys.claim('op', 'k1', 'other', now + 1);
      assert.deepEqual(done, { principal: 'op', key: 'k1', requestHash: 'h1', status: 201, response: 'v1.sealed', createdAt: now });
      assert.equal(await store.idempotencyKeys.claim('another-op', 'k1', 'h1', now), 'claimed', 'keys are per operator token');
      await store.idempotencyKeys.release('op', 'k1');
      assert.equal(await store.idempotencyKeys.claim('op', 'k1', 'h2', now + 10), 'claimed');
      assert.equal(await store.idempotencyKeys.prune(now + 5), 1, 'only the claim older than the cutoff is pruned');
      assert.notEqual(await store.idempotencyKeys.claim('op', 'k1', 'h3', now + 20), 'claimed');
    });
  });
}
