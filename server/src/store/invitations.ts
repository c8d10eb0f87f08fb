import type { Db } from './db.js';
import type { Role } from './memberships.js';

export interface Invitation {
  id: number;
  organizationId: number;
  email: string;
  role: Role;
  tokenHash: string;
  invitedBy: number;
  createdAt: number;
  expiresAt: number;
  acceptedAt: number | null;
  acceptedBy: number | null;
  revokedAt: number | null;
}

type Row = {
  id: number;
  organization_id: number;
  email: string;
  role: string;
  token_hash: string;
  invited_by: number;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: number | null;
  revoked_at: number | null;
};
const num = (v: number | null) => (v === null ? null : Number(v));
const toInvitation = (r: Row): Invitation => ({
  id: Number(r.id),
  organizationId: Number(r.organization_id),
  email: r.email,
  role: r.role as Role,
  tokenHash: r.token_hash,
  invitedBy: Number(r.invited_by),
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  acceptedAt: num(r.accepted_at),
  acceptedBy: num(r.accepted_by),
  revokedAt: num(r.revoked_at),
});

/** Invitations to join an organization, found by the hash of their link's token. */
export class InvitationRepository {
  constructor(private readonly db: Db) {}

  async create(i: Omit<Invitation, 'id' | 'acceptedAt' | 'acceptedBy' | 'revokedAt'>): Promise<Invitation> {
    const row = await this.db
      .insertInto('invitations')
      .values({
        organization_id: i.organizationId,
        email: i.email,
        role: i.role,
        token_hash: i.tokenHash,
        invited_by: i.invitedBy,
        created_at: i.createdAt,
        expires_at: i.expiresAt,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toInvitation(row);
  }

  async byTokenHash(tokenHash: string): Promise<Invitation | undefined> {
    const row = await this.db.selectFrom('invitations').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row && toInvitation(row);
  }

  async get(id: number): Promise<Invitation | undefined> {
    const row = await this.db.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toInvitation(row);
  }

  /** Invitations not yet accepted nor revoked, newest first. */
  async pending(organizationId: number): Promise<Invitation[]> {
    const rows = await this.db
      .selectFrom('invitations')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .orderBy('id', 'desc')
      .execute();
    return rows.map(toInvitation);
  }

  /** Marks an open invitation accepted; false when it was already used or revoked (a concurrent accept loses). */
  async accept(id: number, userId: number, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('invitations')
      .set({ accepted_at: now, accepted_by: userId })
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async revoke(id: number, now: number): Promise<void> {
    await this.db.updateTable('invitations').set({ revoked_at: now }).where('id', '=', id).where('accepted_at', 'is', null).execute();
  }
}
