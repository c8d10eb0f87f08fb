import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { TestServer } from 'portcullis/dist/test/helpers/server.js';
import { createTokenProvider } from '../src/token-provider.js';
import { createVerifier } from '../src/verifier.js';
import { startDiscoverableServer } from './helpers/http.js';

// Well-known third-party libraries against the platform, unchanged and with their defaults,
// apart from allowing plain HTTP on the loopback test server.
describe('interoperability', () => {
  let server: TestServer;
  let credential: { clientId: string; clientSecret: string; appId: number };
  before(async () => {
    server = await startDiscoverableServer();
    credential = await server.newCredential({ scopes: ['retail-media'] });
  });
  after(() => server.stop());

  for (const [method, auth] of [
    ['client_secret_post', oidc.ClientSecretPost],
    ['client_secret_basic', oidc.ClientSecretBasic],
  ] as const) {
    test(`openid-client obtains a token through RFC 8414 discovery (${method}), and jose's remote JWKS verification accepts it`, async () => {
      const config = await oidc.discovery(new URL(server.url), credential.clientId, undefined, auth(credential.clientSecret), {
        algorithm: 'oauth2',
        execute: [oidc.allowInsecureRequests],
      });
      const metadata = config.serverMetadata();
      assert.equal(metadata.issuer, server.url);
      assert.equal(metadata.token_endpoint, `${server.url}/oauth2/token`);

      const response = await oidc.clientCredentialsGrant(config, { scope: 'retail-media' });
      assert.equal(response.token_type, 'bearer');
      assert.equal(response.expires_in, 900);
      assert.equal(response.scope, 'retail-media');

      const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri!));
      const { payload, protectedHeader } = await jwtVerify(response.access_token, jwks, {
        issuer: server.url,
        audience: server.url,
        typ: 'at+jwt',
        algorithms: ['RS256'],
      });
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(payload.client_id, credential.clientId);
      assert.equal(payload.application_id, credential.appId);
      assert.equal((await server.me(response.access_token)).status, 200);
    });
  }

  test("the SDK's own provider and verifier work together and with jose's remote JWKS", async () => {
    const tokens = createTokenProvider({ issuer: server.url, clientId: credential.clientId, clientSecret: credential.clientSecret });
    const token = await tokens.getToken();
    const verifier = createVerifier({ issuer: server.url, audience: server.url, requiredScopes: ['retail-media'] });
    assert.equal((await verifier.verify(token)).applicationId, credential.appId);
    await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)), { issuer: server.url, audience: server.url });
  });
});
