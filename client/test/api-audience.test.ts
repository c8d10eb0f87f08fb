import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestServer } from 'portcullis/dist/test/helpers/server.js';
import { createAuthorizedFetch } from '../src/authorized-fetch.js';
import { TokenVerificationError } from '../src/errors.js';
import { createTokenProvider } from '../src/token-provider.js';
import { createVerifier } from '../src/verifier.js';
import { startDiscoverableServer } from './helpers/http.js';

const API_A = 'https://a.api.example';
const API_B = 'https://b.api.example';

let issuer: TestServer;
let cred: { appId: number; clientId: string; clientSecret: string };
before(async () => {
  issuer = await startDiscoverableServer();
  cred = await issuer.newCredential({ scopes: ['retail-media'] });
  for (const [identifier, scope] of [
    [API_A, 'a:read'],
    [API_B, 'b:read'],
  ] as const) {
    const api = await issuer.admin('POST', '/apis', { identifier, name: identifier, scopes: [scope] });
    assert.equal(api.status, 201);
    assert.equal((await issuer.admin('PUT', `/applications/${cred.appId}/apis/${api.body.id}`, {})).status, 200);
  }
});
after(() => issuer.stop());

test('a token asked with resource=A is accepted by a verifier for A and refused by one for B; without resource the platform still accepts it', async () => {
  const forA = createTokenProvider({ issuer: issuer.url, clientId: cred.clientId, clientSecret: cred.clientSecret, resource: API_A });
  const verifierA = createVerifier({ issuer: issuer.url, audience: API_A });
  const verifierB = createVerifier({ issuer: issuer.url, audience: API_B });
  try {
    const token = await forA.getToken();
    const caller = await verifierA.verify(token, { requiredScopes: ['a:read'] });
    assert.equal(caller.clientId, cred.clientId);
    assert.deepEqual(caller.scopes, ['a:read']);
    await assert.rejects(verifierB.verify(token), (err: unknown) => err instanceof TokenVerificationError && err.reason === 'audience' && err.status === 401);
    assert.equal((await issuer.me(token)).status, 401, 'nor is it a token for the platform itself');

    // The reference request, with no resource: today's audience, accepted by the platform as before.
    const plain = createAuthorizedFetch(createTokenProvider({ issuer: issuer.url, clientId: cred.clientId, clientSecret: cred.clientSecret }));
    assert.equal((await plain(`${issuer.url}/me`)).status, 200);
    await assert.rejects(
      verifierA.verify(await issuer.accessToken(cred.clientId, cred.clientSecret)),
      (err: TokenVerificationError) => err.reason === 'audience',
    );
  } finally {
    verifierA.close();
    verifierB.close();
  }
});

test('a resource the application is not granted is a TokenEndpointError invalid_target', async () => {
  const tokens = createTokenProvider({ issuer: issuer.url, clientId: cred.clientId, clientSecret: cred.clientSecret, resource: 'https://c.api.example' });
  await assert.rejects(tokens.getToken(), (err: { code?: string; status?: number }) => err.code === 'invalid_target' && err.status === 400);
});
