// An API owner's Express service for the resource-server bench: GET /api/me answers a small JSON
// body, with no authentication (BENCH_AUTH=none) or behind @portcullis/client (BENCH_AUTH=sdk).
import express from 'express';

const auth = process.env.BENCH_AUTH ?? 'none';
const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});
if (auth === 'sdk') {
  const { createVerifier } = await import('@portcullis/client');
  const { expressBearerAuth } = await import('@portcullis/client/express');
  const issuer = process.env.BENCH_ISSUER;
  const verifier = createVerifier({ issuer, audience: issuer, jwksUri: process.env.BENCH_JWKS, revocations: { uri: process.env.BENCH_FEED } });
  app.use('/api', expressBearerAuth(verifier));
}
app.get('/api/me', (req, res) => {
  res.json({ clientId: req.portcullis?.clientId ?? null, items: [1, 2, 3] });
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
server.keepAliveTimeout = 72_000;
if (process.send) process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
