// Faults, on the real `portcullis serve` process: SIGTERM drains (stops accepting, finishes the
// request in flight, writes the batched last_used_at, exits 0), and SIGKILL in the middle of
// concurrent writes loses no credential whose creation was answered 201 (SQLite in WAL mode).
// The database becoming unreachable (503 within a bounded time, then recovery by itself) is
// proved on PostgreSQL in fleet.test.ts ("with PostgreSQL unreachable the token endpoint answers
// 503 quickly…", through a TCP relay it cuts and restores); the embedded SQLite file cannot go away.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SQLITE_FILE } from '../src/store/db.js';
import { type ServerProcess, spawnServer } from './helpers/process.js';
import { ADMIN_TOKEN, MASTER_KEY, tempDir } from './helpers/server.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function serverEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_MASTER_KEY: MASTER_KEY,
    PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
    PORTCULLIS_ISSUER: 'http://portcullis.test',
    PORTCULLIS_KEY_PREPUBLISH: '0',
    DATABASE_URL: '',
    REDIS_URL: '',
    ...extra,
  };
}

async function admin(base: string, method: string, target: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/admin/v1${target}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed as any };
}

async function tokenStatus(base: string, clientId: string, clientSecret: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

function connects(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ServerProcess['child']): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** An upstream that holds each request until the test releases it, so a request stays in flight. */
async function holdingUpstream(): Promise<{ server: Server; url: string; arrived: Promise<void>; release: () => void }> {
  let arrive = () => {};
  const arrived = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const server = createServer(async (req, res) => {
    for await (const _ of req) {
      // drain
    }
    arrive();
    await released;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ served: req.url }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrived, release };
}

describe('graceful shutdown on SIGTERM', () => {
  test('stops accepting, finishes the request in flight, writes the batched last_used_at and exits 0', async () => {
    const dataDir = tempDir('portcullis-faults-');
    dirs.push(dataDir);
    const upstream = await holdingUpstream();
    const routes = path.join(dataDir, 'routes.json');
    writeFileSync(routes, JSON.stringify([{ prefix: '/orders', upstream: upstream.url, timeout_ms: 20_000 }]));
    const first = await spawnServer(serverEnv(dataDir, { PORTCULLIS_ROUTES: routes }));
    let second: ServerProcess | undefined;
    try {
      const org = await admin(first.url, 'POST', '/organizations', { name: 'Shop' });
      const app = await admin(first.url, 'POST', `/organizations/${org.body.id}/applications`, { name: 'Feed' });
      const cred = await admin(first.url, 'POST', `/applications/${app.body.id}/credentials`, { name: 'key' });
      assert.equal(cred.status, 201);
      const before = await admin(first.url, 'GET', `/applications/${app.body.id}/credentials`);
      assert.equal(before.body[0].last_used_at, null, 'never used yet');

      // The use below is only in memory (written every 5 s); SIGTERM follows at once.
      const issued = await tokenStatus(first.url, cred.body.client_id, cred.body.client_secret);
      assert.equal(issued.status, 200);
      const usedAt = Date.now();

      const inFlight = fetch(`${first.url}/orders/42`, {
        headers: { authorization: `Bearer ${issued.body.access_token}` },
        signal: AbortSignal.timeout(15_000),
      });
      await upstream.arrived;
      const exit = exited(first.child);
      first.child.kill('SIGTERM');

      // New connections are refused while the request in flight is still held by the upstream.
      const deadline = Date.now() + 5_000;
      while ((await connects(first.url)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await connects(first.url), false, 'the listening socket is closed after SIGTERM');
      assert.equal(first.child.exitCode, null, 'the process waits for the request in flight');

      upstream.release();
      const response = await inFlight;
      assert.equal(response.status, 200, 'the request in flight completes');
      assert.deepEqual(await response.json(), { served: '/42' });
      // The client keeps that connection alive; it must not hold the exit for keepAliveTimeout (72 s).
      const answered = Date.now();
      assert.deepEqual(await exit, { code: 0, signal: null }, 'a clean exit');
      assert.ok(Date.now() - answered < 5_000, `exited ${Date.now() - answered} ms after the last answer`);
      assert.match(first.output(), /"msg":"shutting down"/);

      second = await spawnServer(serverEnv(dataDir, { PORTCULLIS_ROUTES: routes }));
      const listed = await admin(second.url, 'GET', `/applications/${app.body.id}/credentials`);
      assert.equal(listed.status, 200);
      const lastUsed = listed.body[0].last_used_at;
      assert.equal(typeof lastUsed, 'string', 'last_used_at was written at shutdown');
      assert.ok(Math.abs(Date.parse(lastUsed) - usedAt) < 5_000, `last_used_at ${lastUsed} is the use just before SIGTERM`);
    } finally {
      upstream.release();
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
      await second?.stop();
      await new Promise((resolve) => upstream.server.close(resolve));
    }
  });
});

describe('a crash in the middle of writes', () => {
  test('SIGKILL during concurrent credential creation loses nothing answered 201; the WAL store reopens cleanly', async () => {
    const dataDir = tempDir('portcullis-faults-');
    dirs.push(dataDir);
    const first = await spawnServer(serverEnv(dataDir));
    const acknowledged: { appId: number; clientId: string; clientSecret: string }[] = [];
    const apps: number[] = [];
    let failedAfterKill = 0;
    let killed = false;
    const KILL_AFTER = 60;

    /** One writer: an organization, an application, then the five credentials an application may hold. */
    const writer = async (n: number) => {
      for (let round = 0; !killed; round++) {
        try {
          const org = await admin(first.url, 'POST', '/organizations', { name: `Org ${n}.${round}` });
          if (org.status !== 201) return;
          const app = await admin(first.url, 'POST', `/organizations/${org.body.id}/applications`, { name: `App ${n}.${round}` });
          if (app.status !== 201) return;
          apps.push(app.body.id);
          for (let i = 0; i < 5; i++) {
            const cred = await admin(first.url, 'POST', `/applications/${app.body.id}/credentials`, { name: `key ${i}` });
            assert.equal(cred.status, 201, JSON.stringify(cred.body));
            acknowledged.push({ appId: app.body.id, clientId: cred.body.client_id, clientSecret: cred.body.client_secret });
            if (acknowledged.length >= KILL_AFTER && !killed) {
              killed = true;
              first.child.kill('SIGKILL');
            }
          }
        } catch (err) {
          if (!killed) throw err;
          failedAfterKill++;
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, n) => writer(n)));
    assert.deepEqual(await exited(first.child), { code: null, signal: 'SIGKILL' });
    assert.ok(acknowledged.length >= KILL_AFTER);
    assert.ok(failedAfterKill > 0, 'writes were still in flight when the process died');
    assert.ok(existsSync(path.join(dataDir, `${SQLITE_FILE}-wal`)), 'the store was in WAL mode when it died');

    const second = await spawnServer(serverEnv(dataDir));
    let stopped = false;
    try {
      const byApp = new Map<number, any[]>();
      for (const appId of new Set(apps)) {
        const listed = await admin(second.url, 'GET', `/applications/${appId}/credentials`);
        assert.equal(listed.status, 200, `application ${appId} survives`);
        byApp.set(appId, listed.body);
      }
      for (const cred of acknowledged) {
        const row = byApp.get(cred.appId)?.find((c) => c.client_id === cred.clientId);
        assert.ok(row, `credential ${cred.clientId} answered 201 before the crash exists after it`);
        assert.equal(row.status, 'active');
      }
      // No half-written rows: every credential listed is complete, no application exceeds its limit.
      let total = 0;
      for (const [appId, rows] of byApp) {
        assert.ok(rows.length <= 5, `application ${appId} holds ${rows.length} credentials`);
        for (const row of rows) {
          assert.equal(row.application_id, appId);
          assert.match(row.client_id, /\S/);
          assert.match(row.name, /^key \d$/);
          assert.ok(!Number.isNaN(Date.parse(row.created_at)), `created_at of ${row.client_id}`);
        }
        total += rows.length;
      }
      assert.ok(total >= acknowledged.length, `${total} credentials stored, ${acknowledged.length} acknowledged`);
      // Each acknowledged secret still authenticates: the hash was committed with its row.
      for (const cred of acknowledged.slice(0, 10).concat(acknowledged.slice(-10))) {
        const issued = await tokenStatus(second.url, cred.clientId, cred.clientSecret);
        assert.equal(issued.status, 200, `${cred.clientId}: ${JSON.stringify(issued.body)}`);
      }
      // Every acknowledged credential has its audit event (written before the 201).
      const audit = await admin(second.url, 'GET', '/audit-events?limit=1000');
      const audited = new Set((audit.body as any[]).filter((e) => e.action === 'credential.created').map((e) => e.target_id));
      for (const cred of acknowledged) assert.ok(audited.has(cred.clientId), `audit event of ${cred.clientId}`);
      process.stdout.write(
        `# crash test: ${acknowledged.length} credentials acknowledged, ${total} stored, ${total - acknowledged.length} committed without an answer, ${failedAfterKill} writes cut off\n`,
      );
      // A clean shutdown after recovery checkpoints the WAL into a consistent file.
      assert.equal(await second.stop(), 0);
      stopped = true;
      const db = new Database(path.join(dataDir, SQLITE_FILE), { readonly: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        db.close();
      }
    } finally {
      if (!stopped) await second.stop();
    }
  });
});
