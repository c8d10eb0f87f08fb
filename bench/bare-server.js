// Bare node:http client-credentials token endpoint: the practical ceiling for
// "parse a form, check a secret, sign an RS256 JWT" on this machine.
//
// Usage: node bench/bare-server.js [--port N] [--client-id ID] [--client-secret S]
// or env PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET. Listens on 127.0.0.1 only.
import { createHmac, generateKeyPairSync, randomBytes, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
  },
});
const port = Number(args.port ?? process.env.PORT ?? 0);
const clientId = args['client-id'] ?? process.env.BENCH_CLIENT_ID;
const clientSecret = args['client-secret'] ?? process.env.BENCH_CLIENT_SECRET;
if (!clientId || !clientSecret) {
  console.error('bare-server: client id and secret are required');
  process.exit(2);
}

const TTL = 900;
const MAX_BODY = 8 * 1024;
const pepper = randomBytes(32);
const hashSecret = (secret) => createHmac('sha256', pepper).update(secret).digest();
const storedHash = hashSecret(clientSecret);

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
});
const kid = randomBytes(8).toString('base64url');
const encodedHeader = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid })).toString('base64url');
let issuer = '';

function send(res, status, body) {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(json);
}

const oauthError = (res, status, error) => send(res, status, { error });

function issueToken(res, form) {
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(res, 400, 'unsupported_grant_type');
  }
  const id = form.get('client_id');
  const secret = form.get('client_secret');
  if (id !== clientId || secret === null || !timingSafeEqual(hashSecret(secret), storedHash)) {
    return oauthError(res, 401, 'invalid_client');
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer,
    sub: id,
    aud: 'bench-api',
    client_id: id,
    scope: form.get('scope') ?? '',
    iat: now,
    nbf: now,
    exp: now + TTL,
    jti: randomUUID(),
  };
  const signingInput = `${encodedHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  sign('sha256', Buffer.from(signingInput), privateKey, (err, signature) => {
    if (err) return oauthError(res, 500, 'server_error');
    send(res, 200, {
      access_token: `${signingInput}.${signature.toString('base64url')}`,
      token_type: 'Bearer',
      expires_in: TTL,
    });
  });
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    return send(res, 200, { status: 'ok' });
  }
  // Published only so bench/run.js can check the signature before the load.
  if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
    return send(res, 200, { issuer, jwks_uri: `${issuer}/jwks` });
  }
  if (req.method === 'GET' && req.url === '/jwks') {
    const jwk = {
      ...publicKey.export({ format: 'jwk' }),
      kid,
      use: 'sig',
      alg: 'RS256',
    };
    return send(res, 200, { keys: [jwk] });
  }
  if (req.url !== '/oauth2/token') return oauthError(res, 404, 'not_found');
  if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request');
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    return oauthError(res, 400, 'invalid_request');
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      oauthError(res, 413, 'invalid_request');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    issueToken(res, new URLSearchParams(Buffer.concat(chunks).toString()));
  });
});

server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  issuer = `http://127.0.0.1:${bound}`;
  console.log(`bare-server listening on ${issuer}`);
});

// Started by bench/run.js with an IPC channel: exit if the parent goes away.
if (process.send) process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
