import type { Db } from './db.js';

export interface AuditEvent {
  id: number;
  occurredAt: number;
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  organizationId: number | null;
  ip: string | null;
  details: Record<string, unknown>;
}

export type NewAuditEvent = Omit<AuditEvent, 'id'>;

/** Which events to list: newest first, `before` an event id for paging. */
export interface AuditFilter {
  organizationId?: number;
  /** With organizationId: also the sign-in events of these user ids (as strings). */
  signInsOf?: string[];
  limit: number;
  before?: number;
  /** Only events by these actors. */
  actors?: string[];
  /** An action ("credential.created") or its family ("credential"). */
  action?: string;
  /** Occurred at or after, and before (ms). */
  from?: number;
  to?: number;
}

export class AuditRepository {
  constructor(private readonly db: Db) {}

  async record(e: NewAuditEvent): Promise<void> {
    await this.db
      .insertInto('audit_events')
      .values({
        occurred_at: e.occurredAt,
        actor: e.actor,
        action: e.action,
        target_type: e.targetType,
        target_id: e.targetId,
        organization_id: e.organizationId,
        ip: e.ip,
        details: JSON.stringify(e.details),
      })
      .execute();
  }

  /** Newest first; `before` is an event id for paging. */
  /** Records what `who` did to a target at time `at`. */
  recordChange(
    at: number,
    who: { actor: string; ip: string | null },
    action: string,
    target: { type: string; id: string | number },
    organizationId: number | null,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    return this.record({ occurredAt: at, actor: who.actor, ip: who.ip, action, targetType: target.type, targetId: String(target.id), organizationId, details });
  }

  async list(filter: AuditFilter): Promise<AuditEvent[]> {
    let q = this.db.selectFrom('audit_events').selectAll();
    const { organizationId, signInsOf } = filter;
    if (organizationId !== undefined && signInsOf !== undefined && signInsOf.length > 0) {
      // The organization's events, and the sign-in events (which belong to no organization) of its members.
      q = q.where((eb) =>
        eb.or([
          eb('organization_id', '=', organizationId),
          eb.and([eb('organization_id', 'is', null), eb('target_type', '=', 'user'), eb('target_id', 'in', signInsOf), eb('action', 'like', 'user.sign%')]),
        ]),
      );
    } else if (organizationId !== undefined) q = q.where('organization_id', '=', organizationId);
    if (filter.before !== undefined) q = q.where('id', '<', filter.before);
    if (filter.actors !== undefined) q = q.where('actor', 'in', filter.actors.length > 0 ? filter.actors : ['']);
    if (filter.action !== undefined)
      q = q.where((eb) => eb.or([eb('action', '=', filter.action!), eb('action', 'like', `${filter.action!.replace(/[%_\\]/g, '')}.%`)]));
    if (filter.from !== undefined) q = q.where('occurred_at', '>=', filter.from);
    if (filter.to !== undefined) q = q.where('occurred_at', '<', filter.to);
    const rows = await q.orderBy('id', 'desc').limit(filter.limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      occurredAt: Number(r.occurred_at),
      actor: r.actor,
      action: r.action,
      targetType: r.target_type,
      targetId: r.target_id,
      organizationId: r.organization_id === null ? null : Number(r.organization_id),
      ip: r.ip,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
  }
}
