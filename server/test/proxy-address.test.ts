// The README's fleet example, run for real: nginx with the README's location block in front of a
// node with PORTCULLIS_TRUST_PROXY=1. A client's forged X-Forwarded-For must not pick the address
// that limits and the audit log use.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../src/config.js';
import { startServer } from '../src/main.js';
import { ADMIN_TOKEN, ISSUER_FOR_TESTS, MASTER_KEY, startTestServer, tempDir } from './helpers/server.js';
import { freePort, needService } from './helpers/services.js';
import { clearOfWindowEdge } from './helpers/windows.js';

const NGINX = '/usr/sbin/nginx';
const ROOT = new URL('../../../', import.meta.url).pathname;

/** The `location / { … }` block of the README's fleet example, as an operator would paste it. */
function readmeLocation(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'README has an nginx example');
  const location = /(location \/ \{[\s\S]*?\n {2}\})/.exec(block)?.[1];
  assert.ok(location, "the nginx example has a 'location /' block");
  assert.match(block, /upstream portcullis \{/);
  return location;
}

/** A request to `url` from the local address `from` (another loopback address plays another client). */
function send(
  url: string,
  from: string,
  method: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, localAddress: from }, (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startNginx(upstreamPort: number): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = tempDir('portcullis-nginx-');
  for (const sub of ['body', 'proxy', 'logs']) mkdirSync(path.join(dir, sub));
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  upstream portcullis { server 127.0.0.1:${upstreamPort}; keepalive 8; }
  server {
    listen 127.0.0.1:${port};
  ${readmeLocation()}
  }
}
`,
  );
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'logs/error.log')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        const log = existsSync(path.join(dir, 'logs/error.log')) ? readFileSync(path.join(dir, 'logs/error.log'), 'utf8') : '';
        throw new Error(`nginx did not start: ${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("behind the README's nginx with PORTCULLIS_TRUST_PROXY=1, a forged X-Forwarded-For neither evades the address limit nor reaches the audit log", async (t) => {
  if (!needService(t, 'nginx', existsSync(NGINX))) return;
  const server = await startTestServer({ PORTCULLIS_TRUST_PROXY: '1', PORTCULLIS_AUTH_FAILURE_LIMIT_PER_IP: '2' });
  const nginx = await startNginx(Number(new URL(server.url).port)).catch(async (err) => {
    await server.stop();
    throw err;
  });
  try {
    const cred = await server.newCredential();
    const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
    const token = (from: string, secret: string, forged: string) =>
      send(
        `${nginx.url}/oauth2/token`,
        from,
        'POST',
        { ...FORM, 'x-forwarded-for': forged },
        new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: secret }).toString(),
      );
    // The attacker connects to nginx from 127.0.0.2 and writes a new address each time (all
    // within one minute-long window, so the count is the two failures whole).
    await clearOfWindowEdge(60_000, 5_000);
    assert.equal((await token('127.0.0.2', 'pcs_wrong', '10.1.1.1')).status, 401);
    assert.equal((await token('127.0.0.2', 'pcs_wrong', '10.2.2.2')).status, 401);
    const refused = await token('127.0.0.2', cred.clientSecret, '10.3.3.3');
    assert.equal(refused.status, 429, 'the address nginx saw is limited, whatever the client wrote');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    // Another client, through the same nginx, is not: each client keeps its own address.
    assert.equal((await token('127.0.0.3', cred.clientSecret, '127.0.0.2')).status, 200);

    const created = await send(
      `${nginx.url}/admin/v1/organizations`,
      '127.0.0.4',
      'POST',
      { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-forwarded-for': '6.6.6.6' },
      JSON.stringify({ name: 'Through nginx' }),
    );
    assert.equal(created.status, 201);
    const { id } = JSON.parse(created.body) as { id: number };
    const events = await server.admin('GET', `/audit-events?organization_id=${id}`);
    assert.equal(events.body[0].ip, '127.0.0.4', 'the audit log records the address nginx saw');
  } finally {
    await nginx.stop();
    await server.stop();
  }
});

test('PORTCULLIS_TRUST_PROXY takes false, a hop count or addresses and ranges; a bad value names the variable', () => {
  const base = { PORTCULLIS_DATA_DIR: tempDir(), PORTCULLIS_MASTER_KEY: MASTER_KEY };
  assert.deepEqual(loadConfig(base).trustProxy, { kind: 'none' });
  assert.deepEqual(loadConfig({ ...base, PORTCULLIS_TRUST_PROXY: '2' }).trustProxy, { kind: 'hops', hops: 2 });
  assert.deepEqual(loadConfig({ ...base, PORTCULLIS_TRUST_PROXY: '10.0.0.0/8, ::1, 192.168.1.4' }).trustProxy, {
    kind: 'addresses',
    addresses: ['10.0.0.0/8', '::1', '192.168.1.4'],
  });
  for (const bad of ['yes', '10.0.0.0/33', '10.0.0.1,', 'proxy.internal', '99']) {
    assert.throws(
      () => loadConfig({ ...base, PORTCULLIS_TRUST_PROXY: bad }),
      (err: unknown) => err instanceof ConfigError && /^PORTCULLIS_TRUST_PROXY /.test(err.message),
    );
  }
});

test('PORTCULLIS_TRUST_PROXY=true keeps its old meaning (the leftmost entry) with a warning at start', async () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const dataDir = tempDir();
  const config = loadConfig({
    PORT: '0',
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_MASTER_KEY: MASTER_KEY,
    PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN,
    PORTCULLIS_ISSUER: ISSUER_FOR_TESTS,
    PORTCULLIS_TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
  });
  const server = await startServer(config, { logger: { stream } });
  try {
    assert.ok(
      lines.some((l) => l.level === 40 && /PORTCULLIS_TRUST_PROXY=true/.test(l.msg)),
      'a warning says that clients can choose their address',
    );
    const created = await fetch(`${server.url}/admin/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.1, 198.51.100.2' },
      body: JSON.stringify({ name: 'Old meaning' }),
    });
    const { id } = (await created.json()) as { id: number };
    const events = await (
      await fetch(`${server.url}/admin/v1/audit-events?organization_id=${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json();
    assert.equal((events as Array<{ ip: string }>)[0]?.ip, '203.0.113.1');
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
