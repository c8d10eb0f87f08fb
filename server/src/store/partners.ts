import { type Db, inTransaction, isPostgres } from './db.js';

export interface Partner {
  id: number;
  name: string;
  requireToken: boolean;
  rateLimitPerMinute: number | null;
  /** The scope a dynamic token must carry for this partner's delivery API. */
  requiredScope: string;
  createdAt: number;
  updatedAt: number;
}

/** A partner with the applications linked to it: what the delivery endpoint needs per call. */
export interface PartnerAccess extends Partner {
  applicationIds: number[];
}

export const DEFAULT_DELIVERY_SCOPE = 'retail-media';

type Row = {
  id: number;
  name: string;
  require_token: number;
  rate_limit_per_minute: number | null;
  required_scope: string | null;
  created_at: number;
  updated_at: number;
};
const toPartner = (r: Row): Partner => ({
  id: Number(r.id),
  name: r.name,
  requireToken: Number(r.require_token) === 1,
  rateLimitPerMinute: r.rate_limit_per_minute === null ? null : Number(r.rate_limit_per_minute),
  requiredScope: r.required_scope ?? DEFAULT_DELIVERY_SCOPE,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export class PartnerRepository {
  constructor(private readonly db: Db) {}

  /**
   * Creates or replaces a partner's settings; `created` tells which, and `before` holds the
   * replaced settings. Atomic on both databases: the insert skips an existing row (waiting for a
   * concurrent insert of the same id to commit), then the row it met is locked and updated.
   */
  async upsert(
    input: { id: number; name: string; requireToken: boolean; rateLimitPerMinute: number | null; requiredScope: string | null },
    now: number,
  ): Promise<{ partner: Partner; created: boolean; before?: Partner }> {
    return inTransaction(this.db, async (trx) => {
      const values = {
        name: input.name,
        require_token: input.requireToken ? 1 : 0,
        rate_limit_per_minute: input.rateLimitPerMinute,
        required_scope: input.requiredScope,
        updated_at: now,
      };
      const inserted = await trx
        .insertInto('partners')
        .values({ id: input.id, created_at: now, ...values })
        .onConflict((oc) => oc.column('id').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) return { partner: toPartner(inserted), created: true };
      const current = trx.selectFrom('partners').selectAll().where('id', '=', input.id);
      const before = await (isPostgres(trx) ? current.forUpdate() : current).executeTakeFirstOrThrow();
      const row = await trx.updateTable('partners').set(values).where('id', '=', input.id).returningAll().executeTakeFirstOrThrow();
      return { partner: toPartner(row), created: false, before: toPartner(before) };
    });
  }

  async get(id: number): Promise<Partner | undefined> {
    const row = await this.db.selectFrom('partners').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toPartner(row);
  }

  /** A page of partners in id order, after the partner `after` (a cursor), at most `limit`. */
  async list(limit: number, after = 0): Promise<Partner[]> {
    return (await this.db.selectFrom('partners').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute()).map(toPartner);
  }

  /** The linked application ids of several partners, in one query. */
  async linkedApplicationsOf(partnerIds: number[]): Promise<Map<number, number[]>> {
    const out = new Map<number, number[]>(partnerIds.map((id) => [id, []]));
    if (partnerIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('partner_applications')
      .select(['partner_id', 'application_id'])
      .where('partner_id', 'in', partnerIds)
      .orderBy('partner_id')
      .orderBy('application_id')
      .execute();
    for (const r of rows) out.get(Number(r.partner_id))?.push(Number(r.application_id));
    return out;
  }

  async access(id: number): Promise<PartnerAccess | undefined> {
    const partner = await this.get(id);
    if (!partner) return undefined;
    return { ...partner, applicationIds: await this.linkedApplications(id) };
  }

  async linkedApplications(partnerId: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('partner_applications')
      .select('application_id')
      .where('partner_id', '=', partnerId)
      .orderBy('application_id')
      .execute();
    return rows.map((r) => Number(r.application_id));
  }

  /** Links an application; false when it was linked already. */
  async link(partnerId: number, applicationId: number, now: number): Promise<boolean> {
    const result = await this.db
      .insertInto('partner_applications')
      .values({ partner_id: partnerId, application_id: applicationId, linked_at: now })
      .onConflict((oc) => oc.columns(['partner_id', 'application_id']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Unlinks an application; false when it was not linked. */
  async unlink(partnerId: number, applicationId: number): Promise<boolean> {
    const result = await this.db
      .deleteFrom('partner_applications')
      .where('partner_id', '=', partnerId)
      .where('application_id', '=', applicationId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async applicationRateLimit(applicationId: number): Promise<number | null> {
    const row = await this.db.selectFrom('application_rate_limits').select('per_minute').where('application_id', '=', applicationId).executeTakeFirst();
    return row ? Number(row.per_minute) : null;
  }

  async setApplicationRateLimit(applicationId: number, perMinute: number | null): Promise<void> {
    if (perMinute === null) {
      await this.db.deleteFrom('application_rate_limits').where('application_id', '=', applicationId).execute();
      return;
    }
    await this.db
      .insertInto('application_rate_limits')
      .values({ application_id: applicationId, per_minute: perMinute })
      .onConflict((oc) => oc.column('application_id').doUpdateSet({ per_minute: perMinute }))
      .execute();
  }
}
