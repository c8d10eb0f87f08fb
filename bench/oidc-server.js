// oidc-provider (v9) configured as a client-credentials-only token service that
// issues RS256 JWT access tokens at POST /oauth2/token. The benchmark's peer.
//
// Usage: PORT=N BENCH_CLIENT_ID=.. BENCH_CLIENT_SECRET=.. node bench/oidc-server.js
// Listens on 127.0.0.1 only. Readiness: GET /.well-known/openid-configuration.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT ?? 0);
const clientId = process.env.BENCH_CLIENT_ID;
const clientSecret = process.env.BENCH_CLIENT_SECRET;
if (!clientId || !clientSecret) {
  console.error('oidc-server: BENCH_CLIENT_ID and BENCH_CLIENT_SECRET are required');
  process.exit(2);
}

const RESOURCE = 'https://bench-api.example';
const resourceServer = {
  scope: 'read',
  audience: 'bench-api',
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'RS256' } },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('base64url'),
  use: 'sig',
  alg: 'RS256',
};

// Minimal in-memory adapter. JWT access tokens are not persisted by
// oidc-provider, so this is barely touched; supplying it avoids the
// "development-only adapter" warning.
class MapAdapter {
  static store = new Map();
  constructor(name) {
    this.name = name;
  }
  key(id) {
    return `${this.name}:${id}`;
  }
  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    MapAdapter.store.set(this.key(id), { payload, expiresAt });
  }
  async find(id) {
    const entry = MapAdapter.store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      MapAdapter.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }
  async findByUserCode() {
    return undefined;
  }
  async findByUid() {
    return undefined;
  }
  async consume(id) {
    const entry = MapAdapter.store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) {
    MapAdapter.store.delete(this.key(id));
  }
  async revokeByGrantId() {}
}

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [signingKey] },
  routes: { token: '/oauth2/token' },
  ttl: { ClientCredentials: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Lets the same request body (no `resource` parameter) work here too.
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== RESOURCE) throw new errors.InvalidTarget();
        return resourceServer;
      },
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-server listening on ${issuer}`);
});

if (process.send) process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
