import type { FastifyInstance } from 'fastify';
import type { RevocationList } from './revocation-list.js';

/** Whether an If-None-Match value (RFC 9110 §13.1.2, weak comparison) matches `etag`. */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}

/**
 * GET /oauth2/revocations: what resource servers need to refuse revoked tokens and credentials
 * before those tokens expire, polled with If-None-Match. It is public, like the JWKS: it lists
 * only random jtis and client_ids (identifiers, not secrets), each useless to an attacker since
 * the list is exactly what is refused; requiring a credential would give every verifier a secret
 * to hold and the platform a second way to lock them out.
 */
export async function revocationFeed(app: FastifyInstance, opts: { list: RevocationList }): Promise<void> {
  const { list } = opts;
  await list.start(30_000, (err) => app.log.error({ err }, 'could not read revoked credentials'));
  app.addHook('onClose', async () => list.stop());

  app.get('/oauth2/revocations', async (request, reply) => {
    const { body, etag } = list.snapshot();
    // no-cache: a shared cache may keep it but must ask again every time, so revocations are never served stale.
    reply.header('etag', etag).header('cache-control', 'no-cache');
    if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
    return reply.type('application/json').send(body);
  });
}
