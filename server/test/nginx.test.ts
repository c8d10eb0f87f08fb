import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from './helpers/process.js';
import { recordSecret } from './helpers/secrets.js';
import { ADMIN_TOKEN, startTestServer, type TestServer, tempDir } from './helpers/server.js';
import { freePort } from './helpers/services.js';

const NGINX = '/usr/sbin/nginx';
const UNAUTHORIZED = '{"Status Message":"Unauthorized"}';

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Without nginx the suite is skipped with a notice, except under CI=true, where starting it fails the run.
const missing = !existsSync(NGINX) && process.env.CI !== 'true';
if (missing) process.stdout.write(`# NOTICE: ${NGINX} is not installed (apt-get install nginx-light); skipping the nginx suite\n`);

describe('nginx with the generated configuration', { skip: missing ? 'nginx is not installed' : false }, () => {
  let server: TestServer;
  let upstream: Server;
  const seen: IncomingMessage['headers'][] = [];
  let nginx: ChildProcess | undefined;
  let base: string;
  let stderr = '';
  let credential: { clientId: string; clientSecret: string };

  before(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const dir = tempDir('portcullis-nginx-');
    // nginx's workers run as nobody when the master is root: they must reach the prefix.
    chmodSync(dir, 0o755);
    const routes = path.join(dir, 'routes.json');
    writeFileSync(routes, JSON.stringify([{ prefix: '/orders', upstream: `${upstreamUrl}/api`, scopes: ['orders:read'] }]));
    server = await startTestServer({ PORTCULLIS_ROUTES: routes });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const generated = await runCli(['nginx-config', '--listen', `127.0.0.1:${port}`, '--url', server.url, '--token', ADMIN_TOKEN]);
    assert.equal(generated.code, 0, generated.stderr);
    writeFileSync(path.join(dir, 'nginx.conf'), generated.stdout.replace('worker_processes auto;', 'worker_processes 1;'));
    credential = await server.newCredential({ scopes: ['orders:read', 'other'] });
    recordSecret(credential.clientSecret);
    nginx = spawn(NGINX, ['-e', 'stderr', '-p', dir, '-c', 'nginx.conf', '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    nginx.stderr?.on('data', (c) => {
      stderr += String(c);
    });
    await until(`nginx on ${base} (${stderr})`, 15_000, async () => {
      if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return (await fetch(`${base}/healthz`)).status === 200 ? true : undefined;
    });
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx?.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await server?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  const token = async (scope?: string) => {
    const res = await server.token({
      grant_type: 'client_credentials',
      client_id: credential.clientId,
      client_secret: credential.clientSecret,
      ...(scope ? { scope } : {}),
    });
    assert.equal(res.status, 200);
    return res.body.access_token as string;
  };

  test('a valid token passes: the upstream gets the identity headers, not the token', async () => {
    const access = await token();
    const res = await fetch(`${base}/orders/42?x=1`, { headers: { authorization: `Bearer ${access}`, 'x-portcullis-application': '999' } });
    assert.equal(res.status, 200, stderr);
    assert.deepEqual(await res.json(), { path: '/api/42?x=1' });
    const headers = seen.at(-1) as IncomingMessage['headers'];
    assert.equal(headers.authorization, undefined);
    assert.equal(headers['x-portcullis-client'], credential.clientId);
    assert.equal(headers['x-portcullis-scopes'], 'orders:read other');
    assert.notEqual(headers['x-portcullis-application'], '999', 'a client cannot spoof the identity');
    assert.equal(headers['x-forwarded-host'], new URL(base).host);
    const again = await fetch(`${base}/orders/42`, { headers: { authorization: `Bearer ${access}` } });
    assert.equal(again.status, 200, 'a cached decision keeps the identity headers');
    assert.equal((seen.at(-1) as IncomingMessage['headers'])['x-portcullis-client'], credential.clientId);
  });

  test('no token gets 401 with the reference body', async () => {
    const before = seen.length;
    for (const headers of [{}, { authorization: 'Bearer nope' }] as Record<string, string>[]) {
      const res = await fetch(`${base}/orders/1`, { headers });
      assert.equal(res.status, 401);
      assert.equal(await res.text(), UNAUTHORIZED);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    assert.equal(seen.length, before, 'nothing reached the upstream');
  });

  test("a token without the route's scope gets 403 insufficient_scope", async () => {
    const narrow = await token('other');
    const res = await fetch(`${base}/orders/1`, { headers: { authorization: `Bearer ${narrow}` } });
    assert.equal(res.status, 403);
    assert.equal(await res.text(), '{"Status Message":"Forbidden"}', 'the body every checkpoint gives');
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
  });

  test('a revoked token is refused within 5 s, cached decisions included', async () => {
    const access = await token();
    recordSecret(access);
    assert.equal((await fetch(`${base}/orders/1`, { headers: { authorization: `Bearer ${access}` } })).status, 200);
    const revoke = await fetch(`${server.url}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: access, client_id: credential.clientId, client_secret: credential.clientSecret }),
    });
    assert.equal(revoke.status, 200);
    const revokedAt = Date.now();
    const status = await until('the revocation to reach nginx', 5_000, async () => {
      const res = await fetch(`${base}/orders/1`, { headers: { authorization: `Bearer ${access}` } });
      await res.arrayBuffer();
      return res.status === 401 ? res.status : undefined;
    });
    assert.equal(status, 401);
    assert.ok(Date.now() - revokedAt <= 5_500, 'refused within the decision cache time');
  });

  test('other paths go to Portcullis itself', async () => {
    const res = await fetch(`${base}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(((await res.json()) as { keys: unknown[] }).keys));
  });
});
