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

  async list(filter: { organizationId?: number; limit: number; before?: number }): Promise<AuditEvent[]> {
    let q = this.db.selectFrom('audit_events').selectAll();
    if (filter.organizationId !== undefined) q = q.where('organization_id', '=', filter.organizationId);
    if (filter.before !== undefined) q = q.where('id', '<', filter.before);
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
