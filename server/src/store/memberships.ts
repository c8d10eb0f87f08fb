import { type Db, isPostgres } from './db.js';

export type Role = 'owner' | 'admin' | 'developer';

export interface Membership {
  organizationId: number;
  userId: number;
  role: Role;
  createdAt: number;
}

export interface MemberView extends Membership {
  email: string;
}

export interface MemberOrganization {
  id: number;
  name: string;
  createdAt: number;
  role: Role;
}

/** Who belongs to which organization, with which role. */
export class MembershipRepository {
  constructor(private readonly db: Db) {}

  /** Adds a member, or answers 'exists' when the user already belongs to the organization. */
  async add(m: Membership): Promise<'added' | 'exists'> {
    const row = await this.db
      .insertInto('memberships')
      .values({ organization_id: m.organizationId, user_id: m.userId, role: m.role, created_at: m.createdAt })
      .onConflict((oc) => oc.columns(['organization_id', 'user_id']).doNothing())
      .returning('user_id')
      .executeTakeFirst();
    return row ? 'added' : 'exists';
  }

  async get(organizationId: number, userId: number): Promise<Membership | undefined> {
    const row = await this.db
      .selectFrom('memberships')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row && { organizationId: Number(row.organization_id), userId: Number(row.user_id), role: row.role as Role, createdAt: Number(row.created_at) };
  }

  async organizationsOf(userId: number): Promise<MemberOrganization[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('organizations', 'organizations.id', 'memberships.organization_id')
      .select(['organizations.id', 'organizations.name', 'organizations.created_at', 'memberships.role'])
      .where('memberships.user_id', '=', userId)
      .orderBy('organizations.name')
      .execute();
    return rows.map((r) => ({ id: Number(r.id), name: r.name, createdAt: Number(r.created_at), role: r.role as Role }));
  }

  async members(organizationId: number): Promise<MemberView[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('portal_users', 'portal_users.id', 'memberships.user_id')
      .select(['memberships.organization_id', 'memberships.user_id', 'memberships.role', 'memberships.created_at', 'portal_users.email'])
      .where('memberships.organization_id', '=', organizationId)
      .orderBy('portal_users.email')
      .execute();
    return rows.map((r) => ({
      organizationId: Number(r.organization_id),
      userId: Number(r.user_id),
      role: r.role as Role,
      createdAt: Number(r.created_at),
      email: r.email,
    }));
  }

  async setRole(organizationId: number, userId: number, role: Role): Promise<void> {
    await this.db.updateTable('memberships').set({ role }).where('organization_id', '=', organizationId).where('user_id', '=', userId).execute();
  }

  async remove(organizationId: number, userId: number): Promise<void> {
    await this.db.deleteFrom('memberships').where('organization_id', '=', organizationId).where('user_id', '=', userId).execute();
  }

  /**
   * Counts the owners; inside a transaction on PostgreSQL it first locks the organization's row,
   * so two concurrent demotions cannot both see a second owner.
   */
  async countOwners(organizationId: number): Promise<number> {
    if (this.db.isTransaction && isPostgres(this.db)) {
      await this.db.selectFrom('organizations').select('id').where('id', '=', organizationId).forUpdate().execute();
    }
    const { n } = await this.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', organizationId)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow();
    return Number(n);
  }
}
