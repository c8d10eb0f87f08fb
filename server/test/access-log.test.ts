import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { startTestServer, tempDir } from './helpers/server.js';

/** A server logging at info into memory; `env` adds settings. */
async function loggingServer(env: Record<string, string> = {}) {
  const lines: any[] = [];
  const server = await startTestServer(env, { logLines: lines, dialect: 'sqlite' });
  return { url: server.url, lines, stop: () => server.stop() };
}

test('every request writes exactly one access line, with its status and time, and no query string', async () => {
  const server = await loggingServer();
  try {
    await (await fetch(`${server.url}/healthz`)).text();
    await (await fetch(`${server.url}/me`)).text();
    await (await fetch(`${server.url}/no-such-route?secret=x`)).text();
    const access = server.lines.filter((l) => l.req);
    assert.deepEqual(
      access.map((l) => [l.msg, l.req.url, l.res.statusCode]),
      [
        ['request completed', '/healthz', 200],
        ['request completed', '/me', 401],
        ['request completed', '/no-such-route', 404],
      ],
    );
    for (const l of access) assert.equal(typeof l.responseTime, 'number');
    assert.equal(server.lines.filter((l) => l.msg === 'incoming request').length, 0);
  } finally {
    await server.stop();
  }
});

test('PORTCULLIS_LOG_SAMPLE=0 writes no access line for answers below 500; a bad value is refused at start', async () => {
  const server = await loggingServer({ PORTCULLIS_LOG_SAMPLE: '0' });
  try {
    for (let i = 0; i < 5; i++) await (await fetch(`${server.url}/healthz`)).text();
    assert.equal(server.lines.filter((l) => l.req).length, 0);
  } finally {
    await server.stop();
  }
  for (const bad of ['2', '-1', 'half', '0.5.1']) {
    assert.throws(
      () => loadConfig({ PORTCULLIS_DATA_DIR: tempDir(), PORTCULLIS_LOG_SAMPLE: bad }),
      (err: unknown) => err instanceof ConfigError && /PORTCULLIS_LOG_SAMPLE/.test(String(err)),
    );
  }
});
