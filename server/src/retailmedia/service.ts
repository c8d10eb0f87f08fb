import type { Bus } from '../bus/index.js';
import type { Actor, Directory } from '../directory/service.js';
import { ReadThroughCache } from '../directory/cache.js';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import { nameProblem, scopeProblem } from '../domain/names.js';
import { generateSecret, SECRET_PREFIX } from '../domain/secrets.js';
import { staticTokenUsable, type StaticTokenVerifier } from '../access/static-tokens.js';
import type { Store } from '../store/index.js';
import type { Partner, PartnerAccess } from '../store/partners.js';
import type { Placement } from '../store/placements.js';
import type { StaticToken } from '../store/static-tokens.js';
import { type Catalogue, catalogueOf, checkPlacement, EVENT_TYPES, SLOT } from './catalogue.js';

export const MAX_RATE_LIMIT = 1_000_000;

export interface StaticTokenView {
  id: number;
  partner_id: number;
  name: string;
  status: 'active' | 'expired';
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function checkName(value: unknown): string {
  const problem = nameProblem(value, 'name');
  if (problem) throw ApiError.validation('invalid-name', problem);
  return (value as string).trim();
}

/** The scope a partner's delivery API asks of dynamic tokens: a scope name, or null for retail-media. */
function checkRequiredScope(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (scopeProblem([value]))
    throw ApiError.validation(
      'invalid-required_scope',
      'required_scope must be one scope name (1 to 64 printable ASCII characters without spaces, quotes or backslashes), or null for retail-media',
    );
  return value as string;
}

/** One page of a list: at most `limit` items after the cursor `after` (an id; 0 for the first page). */
export interface Page {
  limit: number;
  after: number;
}

/** A per-minute limit: a whole number from 1 to MAX_RATE_LIMIT, or null for the default. */
export function checkRateLimit(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_RATE_LIMIT) {
    throw ApiError.validation(`invalid-${field}`, `${field} must be a whole number from 1 to ${MAX_RATE_LIMIT}, or null for the default`);
  }
  return value;
}

/**
 * Partners of the delivery API, the applications linked to them, their static tokens and their
 * catalogue of placements: every change is validated, written, audited and published on the bus;
 * the delivery endpoint reads only the caches here.
 */
export class RetailMedia {
  readonly partners: ReadThroughCache<number, PartnerAccess>;
  /** Per partner: its placements by event type, in slot order. */
  readonly catalogue: ReadThroughCache<number, Catalogue>;
  /** Per-application rate-limit overrides, `{ perMinute: null }` when there is none. */
  readonly applicationLimits: ReadThroughCache<number, { perMinute: number | null }>;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly clock: Clock,
    private readonly directory: Directory,
    private readonly staticTokens: StaticTokenVerifier,
  ) {
    const options = { negativeMs: 5_000, maxEntries: 100_000 };
    const byPartner = { 'partner.changed': (e: { partnerId: number }) => ({ key: e.partnerId }) };
    this.partners = bus.caches.register('partners', new ReadThroughCache((id: number) => store.partners.access(id), clock, options), byPartner);
    this.catalogue = bus.caches.register(
      'placements',
      new ReadThroughCache(async (id: number) => catalogueOf(await store.placements.listByPartner(id)), clock, options),
      byPartner,
    );
    this.applicationLimits = bus.caches.register(
      'application_rate_limits',
      new ReadThroughCache(async (id: number) => ({ perMinute: await store.partners.applicationRateLimit(id) }), clock, options),
      { 'application.changed': (e) => ({ key: e.applicationId }) },
    );
  }

  /** Records a change in the transaction `tx` that makes it, so neither exists without the other. */
  private audit(
    tx: Store,
    who: Actor,
    action: string,
    targetType: string,
    targetId: string | number,
    details: Record<string, unknown>,
    organizationId: number | null = null,
  ) {
    return tx.audit.recordChange(this.clock.now(), who, action, { type: targetType, id: targetId }, organizationId, details);
  }

  async partner(id: number): Promise<Partner> {
    const partner = await this.store.partners.get(id);
    if (!partner) throw ApiError.notFound(`partner ${id}`);
    return partner;
  }

  async partnerView(id: number) {
    const partner = await this.partner(id);
    return this.view(partner, await this.store.partners.linkedApplications(id));
  }

  /** A page of partners in id order after the cursor (a partner id), with their links read in one query. */
  async listPartners(page: Page) {
    const partners = await this.store.partners.list(page.limit, page.after);
    const links = await this.store.partners.linkedApplicationsOf(partners.map((p) => p.id));
    return partners.map((p) => this.view(p, links.get(p.id) ?? []));
  }

  view(p: Partner, applicationIds: number[]) {
    return {
      id: p.id,
      name: p.name,
      require_token: p.requireToken,
      rate_limit_per_minute: p.rateLimitPerMinute,
      required_scope: p.requiredScope,
      application_ids: applicationIds,
      created_at: iso(p.createdAt),
      updated_at: iso(p.updatedAt),
    };
  }

  /** PUT semantics: the body replaces the settings; require_token is off unless given (partners opt in). */
  async putPartner(id: number, input: { name?: unknown; require_token?: unknown; rate_limit_per_minute?: unknown; required_scope?: unknown }, who: Actor) {
    const name = checkName(input.name);
    if (input.require_token !== undefined && typeof input.require_token !== 'boolean') {
      throw ApiError.validation('invalid-require_token', 'require_token must be true or false');
    }
    const requireToken = input.require_token === true;
    const rateLimitPerMinute = checkRateLimit(input.rate_limit_per_minute, 'rate_limit_per_minute');
    const requiredScope = checkRequiredScope(input.required_scope);
    const { partner, created } = await this.store.transaction(async (tx) => {
      const result = await tx.partners.upsert({ id, name, requireToken, rateLimitPerMinute, requiredScope }, this.clock.now());
      const { before } = result;
      await this.audit(tx, who, result.created ? 'partner.created' : 'partner.updated', 'partner', id, {
        name,
        require_token: requireToken,
        rate_limit_per_minute: rateLimitPerMinute,
        required_scope: result.partner.requiredScope,
        ...(before
          ? {
              before: {
                name: before.name,
                require_token: before.requireToken,
                rate_limit_per_minute: before.rateLimitPerMinute,
                required_scope: before.requiredScope,
              },
            }
          : {}),
      });
      return result;
    });
    await this.bus.publish({ type: 'partner.changed', partnerId: id });
    return { created, partner: this.view(partner, await this.store.partners.linkedApplications(id)) };
  }

  async linkApplication(partnerId: number, applicationId: unknown, who: Actor) {
    if (typeof applicationId !== 'number' || !Number.isSafeInteger(applicationId) || applicationId < 1) {
      throw ApiError.validation('invalid-application_id', 'application_id must be a positive integer');
    }
    await this.partner(partnerId);
    const app = await this.directory.application(applicationId);
    const linked = await this.store.transaction(async (tx) => {
      const added = await tx.partners.link(partnerId, applicationId, this.clock.now());
      if (added) await this.audit(tx, who, 'partner.application_linked', 'partner', partnerId, { application_id: applicationId }, app.organizationId);
      return added;
    });
    if (linked) await this.bus.publish({ type: 'partner.changed', partnerId });
    return { created: linked, link: { partner_id: partnerId, application_id: applicationId, linked: true } };
  }

  async unlinkApplication(partnerId: number, applicationId: number, who: Actor) {
    await this.partner(partnerId);
    const app = await this.store.applications.get(applicationId);
    await this.store.transaction(async (tx) => {
      if (!(await tx.partners.unlink(partnerId, applicationId))) {
        throw ApiError.notFound(`application ${applicationId} linked to partner ${partnerId}`);
      }
      await this.audit(tx, who, 'partner.application_unlinked', 'partner', partnerId, { application_id: applicationId }, app?.organizationId ?? null);
    });
    await this.bus.publish({ type: 'partner.changed', partnerId });
    return { partner_id: partnerId, application_id: applicationId, linked: false };
  }

  /** Creates a static token; the token is in the result and is never stored or shown again. */
  async createStaticToken(partnerId: number, input: { name?: unknown; expires_at?: unknown }, who: Actor) {
    const name = checkName(input.name);
    let expiresAt: number | null = null;
    if (input.expires_at !== undefined && input.expires_at !== null) {
      const parsed = typeof input.expires_at === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(input.expires_at) ? Date.parse(input.expires_at) : Number.NaN;
      if (Number.isNaN(parsed)) throw ApiError.validation('invalid-expires_at', 'expires_at must be an ISO 8601 date and time, such as 2030-01-31T00:00:00Z');
      if (parsed <= this.clock.now()) throw ApiError.validation('invalid-expires_at', 'expires_at must be in the future');
      expiresAt = parsed;
    }
    await this.partner(partnerId);
    const token = generateSecret(SECRET_PREFIX.staticToken);
    const created = await this.store.transaction(async (tx) => {
      const row = await tx.staticTokens.create({ partnerId, name, tokenHash: this.staticTokens.hash(token), createdAt: this.clock.now(), expiresAt });
      await this.audit(tx, who, 'static_token.created', 'static_token', row.id, {
        partner_id: partnerId,
        name,
        expires_at: expiresAt === null ? null : iso(expiresAt),
      });
      return row;
    });
    return { ...this.tokenView(created), token };
  }

  async listStaticTokens(partnerId: number, page: Page = { limit: 1000, after: 0 }): Promise<StaticTokenView[]> {
    await this.partner(partnerId);
    await this.staticTokens.flush();
    return (await this.store.staticTokens.listByPartner(partnerId, page.limit, page.after)).map((t) => this.tokenView(t));
  }

  /** Revokes at once: the bus drops the cached token on every node. */
  async revokeStaticToken(partnerId: number, id: number, who: Actor) {
    await this.partner(partnerId);
    const existing = await this.store.staticTokens.get(id);
    if (!existing || existing.partnerId !== partnerId || existing.revokedAt !== null) throw ApiError.notFound(`static token ${id} of partner ${partnerId}`);
    const revoked = await this.store.transaction(async (tx) => {
      const row = (await tx.staticTokens.revoke(id, this.clock.now())) ?? existing;
      await this.audit(tx, who, 'static_token.revoked', 'static_token', id, { partner_id: partnerId, name: existing.name });
      return row;
    });
    await this.bus.publish({ type: 'static-token.changed', tokenHash: existing.tokenHash });
    return { id, partner_id: partnerId, name: existing.name, status: 'revoked', revoked_at: iso(revoked.revokedAt ?? this.clock.now()) };
  }

  private tokenView(t: StaticToken): StaticTokenView {
    const lastUsed = Math.max(t.lastUsedAt ?? 0, this.staticTokens.pendingLastUsed(t.id) ?? 0);
    return {
      id: t.id,
      partner_id: t.partnerId,
      name: t.name,
      status: staticTokenUsable(t, this.clock.now()) === 'expired' ? 'expired' : 'active',
      created_at: iso(t.createdAt),
      expires_at: t.expiresAt === null ? null : iso(t.expiresAt),
      last_used_at: lastUsed > 0 ? iso(lastUsed) : null,
    };
  }

  placementView(p: Placement) {
    return {
      id: p.id,
      partner_id: p.partnerId,
      event_type: p.eventType,
      slot: p.slot,
      format: p.format,
      products: p.products,
      rendering: p.rendering,
      updated_at: iso(p.updatedAt),
    };
  }

  async putPlacement(partnerId: number, eventType: string, slot: string, body: Record<string, unknown>, who: Actor) {
    if (!Object.hasOwn(EVENT_TYPES, eventType)) {
      throw ApiError.validation('invalid-event-type', `event type must be one of ${Object.keys(EVENT_TYPES).join(', ')}`);
    }
    if (!SLOT.test(slot)) throw ApiError.validation('invalid-slot', 'slot must be 1 to 64 letters, digits, "_" or "-"');
    const checked = checkPlacement(body);
    if ('problem' in checked) throw ApiError.validation(`invalid-${checked.field}`, checked.problem);
    await this.partner(partnerId);
    const { placement, created } = await this.store.transaction(async (tx) => {
      const result = await tx.placements.upsert({ partnerId, eventType, slot, ...checked.value, updatedAt: this.clock.now() });
      await this.audit(tx, who, result.created ? 'placement.created' : 'placement.updated', 'placement', result.placement.id, {
        partner_id: partnerId,
        event_type: eventType,
        slot,
        products: result.placement.products.map((p) => p.ProductId),
      });
      return result;
    });
    await this.bus.publish({ type: 'partner.changed', partnerId });
    return { created, placement: this.placementView(placement) };
  }

  /** A page of a partner's placements in id order after the cursor (a placement id). */
  async listPlacements(partnerId: number, page: Page) {
    await this.partner(partnerId);
    return (await this.store.placements.pageOfPartner(partnerId, page.limit, page.after)).map((p) => this.placementView(p));
  }

  async deletePlacement(partnerId: number, eventType: string, slot: string, who: Actor) {
    await this.partner(partnerId);
    const removed = await this.store.transaction(async (tx) => {
      const row = await tx.placements.remove(partnerId, eventType, slot);
      if (!row) throw ApiError.notFound(`placement ${eventType}/${slot} of partner ${partnerId}`);
      await this.audit(tx, who, 'placement.deleted', 'placement', row.id, { partner_id: partnerId, event_type: eventType, slot });
      return row;
    });
    await this.bus.publish({ type: 'partner.changed', partnerId });
    return { ...this.placementView(removed), deleted: true };
  }

  async setApplicationRateLimit(applicationId: number, value: unknown, who: Actor) {
    const perMinute = checkRateLimit(value, 'per_minute');
    const app = await this.directory.application(applicationId);
    await this.store.transaction(async (tx) => {
      await tx.partners.setApplicationRateLimit(applicationId, perMinute);
      await this.audit(tx, who, 'application.rate_limit_set', 'application', applicationId, { per_minute: perMinute }, app.organizationId);
    });
    await this.bus.publish({ type: 'application.changed', applicationId });
    return { application_id: applicationId, per_minute: perMinute };
  }

  async applicationRateLimit(applicationId: number) {
    await this.directory.application(applicationId);
    return { application_id: applicationId, per_minute: await this.store.partners.applicationRateLimit(applicationId) };
  }
}
