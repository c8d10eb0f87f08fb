import type { Db } from './db.js';

/** What organizations require of their members (a second factor). */
export class OrganizationPolicyRepository {
  constructor(private readonly db: Db) {}

  async secondFactorRequired(organizationId: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('organization_policies')
      .select('second_factor_required_at')
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    return row?.second_factor_required_at != null;
  }

  async requireSecondFactor(organizationId: number, at: number | null): Promise<void> {
    await this.db
      .insertInto('organization_policies')
      .values({ organization_id: organizationId, second_factor_required_at: at })
      .onConflict((oc) => oc.column('organization_id').doUpdateSet({ second_factor_required_at: at }))
      .execute();
  }
}
