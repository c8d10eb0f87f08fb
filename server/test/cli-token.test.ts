import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { runCli } from './helpers/process.js';
import { startTestServer, type TestServer } from './helpers/server.js';

describe('portcullis token', () => {
  let server: TestServer;
  let credential: { clientId: string; clientSecret: string; appId: number };
  before(async () => {
    server = await startTestServer();
    credential = await server.newCredential({ scopes: ['retail-media', 'billing'] });
  });
  after(() => server.stop());

  test('prints only an access token that the server accepts, with the credential from flags', async () => {
    const result = await runCli(['token', '--client-id', credential.clientId, '--client-secret', credential.clientSecret, '--url', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    assert.equal((await server.me(result.stdout.trim())).status, 200);
  });

  test('takes the credential and URL from PORTCULLIS_CLIENT_ID, PORTCULLIS_CLIENT_SECRET and PORTCULLIS_URL, and --scope narrows the token', async () => {
    const result = await runCli(['token', '--scope', 'billing'], {
      PORTCULLIS_CLIENT_ID: credential.clientId,
      PORTCULLIS_CLIENT_SECRET: credential.clientSecret,
      PORTCULLIS_URL: `${server.url}/`,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(decodeJwt(result.stdout.trim()).scope, 'billing');
  });

  test('a refused credential is one line on stderr, exit 1, nothing on stdout and no secret echoed', async () => {
    const wrong = `${credential.clientSecret.slice(0, -4)}AAAA`;
    const result = await runCli(['token', '--client-id', credential.clientId, '--url', server.url], { PORTCULLIS_CLIENT_SECRET: wrong });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, 'portcullis token: the token request failed: invalid_client: client authentication failed\n');
    assert.ok(!result.stderr.includes(wrong));
  });

  test('a missing secret, an unreachable server and an unknown flag are each one line on stderr and exit 1', async () => {
    const env = { PORTCULLIS_CLIENT_ID: '', PORTCULLIS_CLIENT_SECRET: '', CLIENT_ID: '', CLIENT_SECRET: '' };
    const noSecret = await runCli(['token', '--client-id', credential.clientId, '--url', server.url], env);
    assert.equal(noSecret.code, 1);
    assert.match(noSecret.stderr, /^portcullis token: no client secret: set PORTCULLIS_CLIENT_SECRET or pass --client-secret\n$/);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = await runCli(['token', '--url', `http://127.0.0.1:${port}`], {
      ...env,
      PORTCULLIS_CLIENT_ID: credential.clientId,
      PORTCULLIS_CLIENT_SECRET: 'x',
    });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, new RegExp(`^portcullis token: cannot reach http://127\\.0\\.0\\.1:${port}/oauth2/token: ECONNREFUSED\n$`));
    const unknown = await runCli(['token', '--colour', 'blue'], env);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.split('\n').length, 2);
    assert.match(unknown.stderr, /colour/);
  });

  test('--issuer finds the token endpoint in the RFC 8414 metadata and refuses metadata of another issuer', async () => {
    // The test server's issuer is http://portcullis.test while it listens elsewhere: its metadata names that issuer.
    const result = await runCli(['token', '--issuer', server.url], {
      PORTCULLIS_CLIENT_ID: credential.clientId,
      PORTCULLIS_CLIENT_SECRET: credential.clientSecret,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /belongs to the issuer "http:\/\/portcullis\.test"/);
  });
});
