import type { Actor } from '../directory/service.js';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import { problem } from '../http/errors.js';
import type { Store } from '../store/index.js';
import type { Invitation } from '../store/invitations.js';
import type { Membership, Role } from '../store/memberships.js';
import type { PortalUser } from '../store/portal-users.js';
import { checkEmail, emailNotVerified } from './accounts.js';
import type { Mailer, MailOutcome } from './mail.js';
import { randomToken, sha256 } from './sessions.js';

export const ROLES: readonly Role[] = ['owner', 'admin', 'developer'];
const INVITATION_LIFETIME_MS = 7 * 86_400_000;

/** What each role may do in its organization. */
export const CAN = {
  view: ROLES,
  manageApps: ['owner', 'admin'] as Role[],
  manageKeys: ['owner', 'admin'] as Role[],
  viewAudit: ['owner', 'admin'] as Role[],
  manageMembers: ['owner'] as Role[],
} as const;

const WHAT: Record<keyof typeof CAN, string> = {
  view: 'see this organization',
  manageApps: 'create or change apps',
  manageKeys: 'create, rename or delete keys',
  viewAudit: "see the organization's audit log",
  manageMembers: 'invite or manage members',
};

/** The organization is "not found" for a non-member, so ids of other organizations reveal nothing. */
export const organizationNotFound = (id: number) => ApiError.notFound(`organization ${id}`);

function checkRole(value: unknown): Role {
  if (typeof value !== 'string' || !ROLES.includes(value as Role)) throw ApiError.validation('invalid-role', 'role must be owner, admin or developer');
  return value as Role;
}

export interface InvitationView {
  id: number;
  email: string;
  role: Role;
  created_at: string;
  expires_at: string;
}

const iso = (ms: number) => new Date(ms).toISOString();
export const invitationView = (i: Invitation): InvitationView => ({
  id: i.id,
  email: i.email,
  role: i.role,
  created_at: iso(i.createdAt),
  expires_at: iso(i.expiresAt),
});

/** Memberships, roles and invitations: the access check every portal request goes through. */
export class Members {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly mailer: Mailer,
  ) {}

  /** The caller's membership when its role allows `action`: 404 for a non-member, 403 for a role that may not. */
  async access(organizationId: number, userId: number, action: keyof typeof CAN): Promise<Membership> {
    const membership = await this.store.memberships.get(organizationId, userId);
    if (!membership) throw organizationNotFound(organizationId);
    if (await this.store.organizationPolicies.secondFactorRequired(organizationId)) {
      const user = await this.store.portalUsers.get(userId);
      if (user?.totpEnabledAt == null) {
        throw new ApiError(
          403,
          'authorization',
          'organization-requires-second-factor',
          'Two-factor authentication required',
          'this organization requires two-factor authentication; turn it on in your account page, then come back',
        );
      }
    }
    if (!(CAN[action] as readonly Role[]).includes(membership.role)) {
      throw problem(
        'forbidden',
        `your role in this organization (${membership.role}) cannot ${WHAT[action]}; ask an owner${action === 'manageMembers' ? '' : ' or an admin'}`,
      );
    }
    return membership;
  }

  /** Owners require (or stop requiring) a second factor of every member; the owner must have one on first. */
  async requireSecondFactor(organizationId: number, owner: PortalUser, required: unknown, who: Actor): Promise<boolean> {
    if (typeof required !== 'boolean') throw ApiError.validation('invalid-second_factor_required', 'second_factor_required must be true or false');
    if (required && owner.totpEnabledAt === null) {
      throw ApiError.conflict('second-factor-off', 'turn on two-factor authentication for your own account first, so you are not locked out');
    }
    if ((await this.store.organizationPolicies.secondFactorRequired(organizationId)) !== required) {
      await this.store.transaction(async (tx) => {
        await tx.organizationPolicies.requireSecondFactor(organizationId, required ? this.clock.now() : null);
        await this.audit(
          tx,
          who,
          required ? 'organization.second_factor_required' : 'organization.second_factor_optional',
          'organization',
          organizationId,
          organizationId,
        );
      });
    }
    return required;
  }

  /** Records a change in the transaction `tx` that makes it, so neither exists without the other. */
  private audit(
    tx: Store,
    who: Actor,
    action: string,
    targetType: string,
    targetId: string | number,
    organizationId: number,
    details: Record<string, unknown> = {},
  ) {
    return tx.audit.recordChange(this.clock.now(), who, action, { type: targetType, id: targetId }, organizationId, details);
  }

  /** Owners and admins of the organization, whom a developer asks for keys and who hear of revoked keys. */
  async managers(organizationId: number) {
    return (await this.store.memberships.members(organizationId)).filter((m) => CAN.manageKeys.includes(m.role));
  }

  async list(organizationId: number) {
    const members = await this.store.memberships.members(organizationId);
    return members.map((m) => ({ user_id: m.userId, email: m.email, role: m.role, joined_at: iso(m.createdAt) }));
  }

  async invite(
    organizationId: number,
    organizationName: string,
    inviter: PortalUser,
    input: { email: unknown; role: unknown },
    portalUrl: string,
    who: Actor,
  ): Promise<{ invitation: InvitationView; link: string; mail: MailOutcome }> {
    const email = checkEmail(input.email);
    const role = checkRole(input.role);
    const existing = await this.store.portalUsers.byEmail(email);
    if (existing && (await this.store.memberships.get(organizationId, existing.id))) {
      throw ApiError.conflict('already-member', `${email} is already a member of this organization`);
    }
    const token = randomToken();
    const now = this.clock.now();
    const invitation = await this.store.transaction(async (tx) => {
      const created = await tx.invitations.create({
        organizationId,
        email,
        role,
        tokenHash: sha256(token),
        invitedBy: inviter.id,
        createdAt: now,
        expiresAt: now + INVITATION_LIFETIME_MS,
      });
      await this.audit(tx, who, 'member.invited', 'invitation', created.id, organizationId, { email, role });
      return created;
    });
    const link = `${portalUrl}/invitations/${token}`;
    const mail = await this.mailer.send({
      to: email,
      subject: `You are invited to ${organizationName} on Portcullis`,
      text: `${inviter.email} invited you to join ${organizationName} as ${role}.\n\nAccept the invitation: ${link}\n\nIf you have no Portcullis account yet, the link lets you create one with this address. The link works once and expires on ${iso(invitation.expiresAt)}.`,
    });
    return { invitation: invitationView(invitation), link, mail };
  }

  async pending(organizationId: number): Promise<InvitationView[]> {
    return (await this.store.invitations.pending(organizationId)).filter((i) => i.expiresAt > this.clock.now()).map(invitationView);
  }

  async revoke(organizationId: number, invitationId: number, who: Actor): Promise<void> {
    const invitation = await this.store.invitations.get(invitationId);
    if (!invitation || invitation.organizationId !== organizationId || invitation.acceptedAt !== null || invitation.revokedAt !== null) {
      throw ApiError.notFound(`invitation ${invitationId}`);
    }
    await this.store.transaction(async (tx) => {
      await tx.invitations.revoke(invitationId, this.clock.now());
      await this.audit(tx, who, 'invitation.revoked', 'invitation', invitationId, organizationId, { email: invitation.email });
    });
  }

  /** An invitation that can still be accepted, by its link's token; a clear 4xx otherwise. */
  async openInvitation(token: string): Promise<Invitation> {
    const invitation = token.length <= 100 ? await this.store.invitations.byTokenHash(sha256(token)) : undefined;
    if (!invitation || invitation.revokedAt !== null) {
      throw problem('invitationNotFound', 'this invitation link is not valid; ask for a new invitation');
    }
    if (invitation.acceptedAt !== null) {
      throw problem('invitationUsed', 'this invitation has already been accepted; ask for a new one if you need it');
    }
    if (invitation.expiresAt <= this.clock.now()) {
      throw problem('invitationExpired', 'this invitation has expired; ask the organization owner for a new one');
    }
    return invitation;
  }

  async accept(token: string, user: PortalUser, who: Actor): Promise<{ organizationId: number; role: Role }> {
    const invitation = await this.openInvitation(token);
    if (user.emailVerifiedAt === null) throw emailNotVerified();
    if (invitation.email !== user.email) {
      throw problem('invitationForSomeoneElse', `this invitation was sent to ${invitation.email}; sign in with that address to accept it`);
    }
    if (await this.store.memberships.get(invitation.organizationId, user.id)) {
      throw ApiError.conflict('already-member', 'you are already a member of this organization');
    }
    await this.store.transaction(async (tx) => {
      if (!(await tx.invitations.accept(invitation.id, user.id, this.clock.now()))) {
        throw problem('invitationUsed', 'this invitation has already been accepted; ask for a new one if you need it');
      }
      // A concurrent accept of another invitation to the same organization may have added the user.
      const added = await tx.memberships.add({
        organizationId: invitation.organizationId,
        userId: user.id,
        role: invitation.role,
        createdAt: this.clock.now(),
      });
      if (added === 'exists') throw ApiError.conflict('already-member', 'you are already a member of this organization');
      await this.audit(tx, who, 'member.joined', 'user', user.id, invitation.organizationId, { email: user.email, role: invitation.role });
    });
    return { organizationId: invitation.organizationId, role: invitation.role };
  }

  async changeRole(organizationId: number, userId: number, input: { role: unknown }, who: Actor): Promise<void> {
    const role = checkRole(input.role);
    await this.store.transaction(async (tx) => {
      // Counted first: on PostgreSQL that locks the organization, so concurrent demotions queue.
      const owners = await tx.memberships.countOwners(organizationId);
      const member = await tx.memberships.get(organizationId, userId);
      if (!member) throw ApiError.notFound(`member ${userId}`);
      if (member.role === 'owner' && role !== 'owner' && owners <= 1) {
        throw ApiError.conflict('last-owner', 'an organization needs at least one owner; make someone else owner first');
      }
      await tx.memberships.setRole(organizationId, userId, role);
      await this.audit(tx, who, 'member.role_changed', 'user', userId, organizationId, { from: member.role, to: role });
    });
  }

  async remove(organizationId: number, userId: number, who: Actor): Promise<void> {
    await this.store.transaction(async (tx) => {
      const owners = await tx.memberships.countOwners(organizationId);
      const member = await tx.memberships.get(organizationId, userId);
      if (!member) throw ApiError.notFound(`member ${userId}`);
      if (member.role === 'owner' && owners <= 1) {
        throw ApiError.conflict('last-owner', 'an organization needs at least one owner; make someone else owner first');
      }
      await tx.memberships.remove(organizationId, userId);
      await this.audit(tx, who, 'member.removed', 'user', userId, organizationId, {});
    });
  }
}
