// Connections: silent and slow sockets are closed, the per-process cap holds with one log line,
// /healthz answers while many sockets are open below the cap, and a client that aborts its
// request body is not reported as a database outage.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.js';

/** A server whose log lines (debug and up) are kept in memory, to check what it says. */
async function serverWithLog(env: Record<string, string>): Promise<{ server: TestServer; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const server = await startTestServer({ LOG_LEVEL: 'debug', ...env }, { logLines: lines, dialect: 'sqlite' });
  return { server, lines };
}

function openSocket(url: string): Promise<Socket & { closedAt?: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname) as Socket & { closedAt?: number };
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
    socket.on('close', () => {
      socket.closedAt = Date.now();
    });
  });
}

/** Polls until `check` holds or the deadline passes; the last answer is returned. */
async function until(check: () => boolean, deadlineMs: number): Promise<boolean> {
  return (await polled(check, deadlineMs)).held;
}

const POLL_MS = 100;
/** A gap between two polls longer than this is a stall: the process did not run. */
const STALL_MS = 1_000;

/**
 * Polls until `check` holds or `deadlineMs` of time in which this process ran have passed. A gap
 * between polls longer than STALL_MS (the machine paused, or other suites held both cores) is not
 * counted against the deadline, since the server's own timers could not fire in it either; the
 * time so excused is returned, for the test to report.
 */
async function polled(check: () => boolean, deadlineMs: number): Promise<{ held: boolean; stalledMs: number }> {
  let end = Date.now() + deadlineMs;
  let stalledMs = 0;
  let last = Date.now();
  while (Date.now() < end) {
    if (check()) return { held: true, stalledMs };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const now = Date.now();
    if (now - last > STALL_MS) {
      stalledMs += now - last - POLL_MS;
      end += now - last - POLL_MS;
    }
    last = now;
  }
  return { held: check(), stalledMs };
}

describe('connections', { concurrency: true }, () => {
  test('with the default timeouts, a silent connection is closed within 75 seconds', { timeout: 180_000 }, async () => {
    const server = await startTestServer();
    try {
      const opened = Date.now();
      const socket = await openSocket(server.url);
      socket.on('error', () => {});
      const { held, stalledMs } = await polled(() => socket.closedAt !== undefined, 75_000);
      const stalled = stalledMs > 0 ? ` (and ${(stalledMs / 1000).toFixed(1)} s in which this process did not run, not counted)` : '';
      assert.ok(held, `the server closed the silent socket within 75 s${stalled}`);
      const seconds = ((socket.closedAt ?? 0) - opened) / 1000;
      process.stdout.write(`# a silent connection was closed after ${seconds.toFixed(1)} s with the defaults${stalled}\n`);
      assert.ok(seconds >= 30, `not before the idle timeout: ${seconds} s`);
    } finally {
      await server.stop();
    }
  });

  test('/healthz answers while 200 silent sockets are open below the cap, and the silent ones are closed after PORTCULLIS_IDLE_TIMEOUT', async () => {
    const server = await startTestServer({ PORTCULLIS_IDLE_TIMEOUT: '2', PORTCULLIS_MAX_CONNECTIONS: '300' });
    const sockets: Array<Socket & { closedAt?: number }> = [];
    try {
      for (let i = 0; i < 200; i++) sockets.push(await openSocket(server.url));
      for (const s of sockets) s.on('error', () => {});
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      assert.ok(await until(() => sockets.every((s) => s.closedAt !== undefined), 20_000), 'every silent socket was closed');
    } finally {
      for (const s of sockets) s.destroy();
      await server.stop();
    }
  });

  test('a client that sends its headers a byte at a time is cut off by the headers timeout', async () => {
    const server = await startTestServer({ PORTCULLIS_HEADERS_TIMEOUT: '2', PORTCULLIS_IDLE_TIMEOUT: '30' });
    const socket = await openSocket(server.url);
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (d) => {
      received += String(d);
    });
    const drip = setInterval(() => socket.writable && socket.write('X'), 300);
    try {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      assert.ok(await until(() => socket.closedAt !== undefined, 15_000), 'the slow client was disconnected');
      assert.match(received, /^HTTP\/1\.1 408/, 'with 408 Request Timeout');
    } finally {
      clearInterval(drip);
      socket.destroy();
      await server.stop();
    }
  });

  test('past PORTCULLIS_MAX_CONNECTIONS new connections are closed at once, with one log line and a metric', async () => {
    const { server, lines } = await serverWithLog({ PORTCULLIS_MAX_CONNECTIONS: '20' });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) held.push(await openSocket(server.url));
      const extra: Array<Socket & { closedAt?: number }> = [];
      for (let i = 0; i < 5; i++) {
        const s = await openSocket(server.url).catch(() => undefined);
        if (s) {
          s.on('error', () => {});
          extra.push(s);
        }
      }
      assert.ok(await until(() => extra.every((s) => s.closedAt !== undefined), 5_000), 'connections over the cap are closed');
      const capLines = lines.filter((l) => String(l.msg).startsWith('connection cap reached'));
      assert.equal(capLines.length, 1, 'one line, not one per dropped connection');
      assert.equal(capLines[0]?.level, 40);
      for (const s of held) s.destroy();
      assert.ok(await until(() => server.app.server.listening && held.every((s) => s.destroyed), 5_000), 'the held sockets are released');
      await until(() => false, 300); // let the server see the closes
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^portcullis_connections_dropped_total 5$/m);
    } finally {
      for (const s of held) s.destroy();
      await server.close();
    }
  });

  test('a client that aborts its GET body is logged at debug and counted, not reported as a database outage', async () => {
    const { server, lines } = await serverWithLog({});
    try {
      const socket = await openSocket(server.url);
      socket.on('error', () => {});
      let received = '';
      socket.on('data', (d) => {
        received += String(d);
      });
      socket.write(
        'GET /delivery/retailmedia?criteo-partner-id=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nevent-type',
      );
      await until(() => false, 300);
      socket.destroy();
      const metricLine = /^portcullis_client_aborts_total\{route="\/delivery\/retailmedia"\} 1$/m;
      let metrics = '';
      const deadline = Date.now() + 5_000;
      while (!metricLine.test(metrics) && Date.now() < deadline) {
        metrics = await (await fetch(`${server.url}/metrics`)).text();
        if (!metricLine.test(metrics)) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.match(metrics, metricLine, 'the abort is counted');
      assert.equal(received, '', 'nothing was written to the client');
      assert.equal(lines.filter((l) => /database/i.test(String(l.msg))).length, 0, 'no database-outage line');
      assert.ok(
        lines.some((l) => l.level === 20 && /went away|closed the connection/.test(String(l.msg))),
        'a debug line says what happened',
      );
      assert.ok(!lines.some((l) => (l.level as number) >= 40), `nothing at warn or above: ${JSON.stringify(lines.filter((l) => (l.level as number) >= 40))}`);
    } finally {
      await server.close();
    }
  });
});
