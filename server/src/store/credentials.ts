import { type Db, inTransaction, isPostgres } from './db.js';

export interface Credential {
  clientId: string;
  applicationId: number;
  name: string;
  secretHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  deletedAt: number | null;
  deactivatesAt: number | null;
  revokedAt: number | null;
}

type Row = {
  client_id: string;
  application_id: number;
  name: string;
  secret_hash: string;
  created_at: number;
  last_used_at: number | null;
  deleted_at: number | null;
  deactivates_at: number | null;
  revoked_at: number | null;
};

const num = (v: number | null): number | null => (v === null ? null : Number(v));
const toCredential = (r: Row): Credential => ({
  clientId: r.client_id,
  applicationId: Number(r.application_id),
  name: r.name,
  secretHash: r.secret_hash,
  createdAt: Number(r.created_at),
  lastUsedAt: num(r.last_used_at),
  deletedAt: num(r.deleted_at),
  deactivatesAt: num(r.deactivates_at),
  revokedAt: num(r.revoked_at),
});

export class CredentialRepository {
  constructor(private readonly db: Db) {}

  /**
   * Inserts a credential unless the application already has `limit` active ones; the count and
   * the insert run in one transaction so two concurrent requests cannot both take the last place.
   */
  async createWithinLimit(
    c: Omit<Credential, 'lastUsedAt' | 'deletedAt' | 'deactivatesAt' | 'revokedAt'>,
    limit: number,
  ): Promise<Credential | 'limit-reached'> {
    return inTransaction(this.db, async (trx) => {
      // PostgreSQL: lock the application row so concurrent creations count one after another.
      // SQLite: a write transaction is already exclusive.
      if (isPostgres(this.db)) await trx.selectFrom('applications').select('id').where('id', '=', c.applicationId).forUpdate().execute();
      const { active } = await trx
        .selectFrom('credentials')
        .select((eb) => eb.fn.countAll<number>().as('active'))
        .where('application_id', '=', c.applicationId)
        .where('deleted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(active) >= limit) return 'limit-reached' as const;
      const row = await trx
        .insertInto('credentials')
        .values({
          client_id: c.clientId,
          application_id: c.applicationId,
          name: c.name,
          secret_hash: c.secretHash,
          created_at: c.createdAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toCredential(row);
    });
  }

  async get(clientId: string): Promise<Credential | undefined> {
    const row = await this.db.selectFrom('credentials').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    return row && toCredential(row);
  }

  /** Credentials of an application that are not yet deactivated or revoked, oldest first. */
  async listLive(applicationId: number, now: number): Promise<Credential[]> {
    const rows = await this.db
      .selectFrom('credentials')
      .selectAll()
      .where('application_id', '=', applicationId)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('deactivates_at', 'is', null), eb('deactivates_at', '>', now)]))
      .orderBy('created_at')
      .orderBy('client_id')
      .execute();
    return rows.map(toCredential);
  }

  async rename(clientId: string, name: string): Promise<Credential | undefined> {
    const row = await this.db.updateTable('credentials').set({ name }).where('client_id', '=', clientId).returningAll().executeTakeFirst();
    return row && toCredential(row);
  }

  /** Starts the grace period; a credential already deleted keeps its first deadline. */
  async markDeleted(clientId: string, now: number, deactivatesAt: number): Promise<Credential | undefined> {
    await this.db
      .updateTable('credentials')
      .set({ deleted_at: now, deactivates_at: deactivatesAt })
      .where('client_id', '=', clientId)
      .where('deleted_at', 'is', null)
      .execute();
    return this.get(clientId);
  }

  async markRevoked(clientId: string, now: number): Promise<Credential | undefined> {
    await this.db
      .updateTable('credentials')
      .set((eb) => ({
        revoked_at: now,
        deleted_at: eb.fn.coalesce('deleted_at', eb.val(now)),
        deactivates_at: now,
      }))
      .where('client_id', '=', clientId)
      .where('revoked_at', 'is', null)
      .execute();
    return this.get(clientId);
  }

  /** Credentials revoked at or after `since` ("revoke now"), for the revocation feed. */
  async revokedSince(since: number): Promise<Array<{ clientId: string; revokedAt: number }>> {
    const rows = await this.db.selectFrom('credentials').select(['client_id', 'revoked_at']).where('revoked_at', '>=', since).execute();
    return rows.map((r) => ({ clientId: r.client_id, revokedAt: Number(r.revoked_at) }));
  }

  /** Records when credentials were last used, from a batch collected in memory. */
  async recordLastUsed(batch: Map<string, number>): Promise<void> {
    if (batch.size === 0) return;
    await inTransaction(this.db, async (trx) => {
      for (const [clientId, at] of batch) {
        await trx
          .updateTable('credentials')
          .set({ last_used_at: at })
          .where('client_id', '=', clientId)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute();
      }
    });
  }
}
