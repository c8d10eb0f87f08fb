import { type ApiRegistry, notSelfService } from '../apis/service.js';
import { apiView, grantView } from '../apis/views.js';
import type { Actor, CredentialView, Directory } from '../directory/service.js';
import { ApiError } from '../domain/errors.js';
import { scopeProblem } from '../domain/names.js';
import type { Application } from '../store/applications.js';
import type { AuditFilter } from '../store/audit.js';
import type { Store } from '../store/index.js';
import type { Role } from '../store/memberships.js';
import { emailNotVerified } from './accounts.js';
import type { Mailer } from './mail.js';
import type { Members } from './members.js';
import type { TokenCounter } from './usage-stats.js';

const iso = (ms: number) => new Date(ms).toISOString();

export const applicationView = (a: Application) => ({
  id: a.id,
  organization_id: a.organizationId,
  name: a.name,
  description: a.description,
  scopes: a.scopes,
  created_at: iso(a.createdAt),
});

/**
 * What a signed-in person can do with organizations, apps and credentials. Every call checks the
 * caller's role in the organization first, then goes through the Directory, so the operator
 * API's rules, caches, events and audit apply unchanged.
 */
export class Portal {
  constructor(
    readonly store: Store,
    private readonly directory: Directory,
    readonly members: Members,
    private readonly tokenCounts: TokenCounter,
    private readonly mailer: Mailer,
    private readonly failures: { flush(): Promise<void> },
    private readonly apis: ApiRegistry,
    /** The scopes an app created here gets (PORTCULLIS_PORTAL_APP_SCOPES); linking it to a partner stays the operator's. */
    private readonly appScopes: readonly string[] = [],
  ) {}

  async createOrganization(userId: number, input: { name: unknown }, who: Actor) {
    const org = await this.directory.createOrganization(input, who, async (tx, created) => {
      await tx.memberships.add({ organizationId: created.id, userId, role: 'owner', createdAt: created.createdAt });
    });
    return { id: org.id, name: org.name, created_at: iso(org.createdAt), role: 'owner' as Role };
  }

  async organizations(userId: number) {
    return (await this.store.memberships.organizationsOf(userId)).map((o) => ({ id: o.id, name: o.name, created_at: iso(o.createdAt), role: o.role }));
  }

  async organization(orgId: number, userId: number) {
    const membership = await this.members.access(orgId, userId, 'view');
    const org = await this.directory.organization(orgId);
    const secondFactorRequired = await this.store.organizationPolicies.secondFactorRequired(orgId);
    return { id: org.id, name: org.name, created_at: iso(org.createdAt), role: membership.role, second_factor_required: secondFactorRequired };
  }

  /** The application when it belongs to the organization; one of another organization is "not found". */
  private async application(orgId: number, appId: number): Promise<Application> {
    const app = await this.store.applications.get(appId);
    if (!app || app.organizationId !== orgId) throw ApiError.notFound(`application ${appId}`);
    return app;
  }

  async applications(orgId: number, userId: number) {
    await this.members.access(orgId, userId, 'view');
    return (await this.directory.listApplications(orgId)).map(applicationView);
  }

  async getApplication(orgId: number, appId: number, userId: number) {
    await this.members.access(orgId, userId, 'view');
    return applicationView(await this.application(orgId, appId));
  }

  async createApplication(orgId: number, userId: number, input: { name: unknown; description?: unknown }, who: Actor) {
    await this.members.access(orgId, userId, 'manageApps');
    return applicationView(
      await this.directory.createApplication(orgId, { name: input.name, description: input.description, scopes: [...this.appScopes] }, who),
    );
  }

  async updateApplication(orgId: number, appId: number, userId: number, input: { name?: unknown; description?: unknown }, who: Actor) {
    await this.members.access(orgId, userId, 'manageApps');
    await this.application(orgId, appId);
    return applicationView(await this.directory.updateApplication(appId, { name: input.name, description: input.description }, who));
  }

  async credentials(orgId: number, appId: number, userId: number): Promise<CredentialView[]> {
    await this.members.access(orgId, userId, 'view');
    await this.application(orgId, appId);
    return this.directory.listCredentials(appId);
  }

  async createCredential(orgId: number, appId: number, userId: number, input: { name: unknown }, who: Actor) {
    await this.members.access(orgId, userId, 'manageKeys');
    await this.application(orgId, appId);
    const user = await this.store.portalUsers.get(userId);
    if (user?.emailVerifiedAt == null) throw emailNotVerified();
    const { credential, secret } = await this.directory.createCredential(appId, input, who);
    return {
      client_id: credential.clientId,
      client_secret: secret,
      name: credential.name,
      application_id: credential.applicationId,
      status: 'active' as const,
      created_at: iso(credential.createdAt),
    };
  }

  async renameCredential(orgId: number, appId: number, clientId: string, userId: number, input: { name: unknown }, who: Actor) {
    await this.members.access(orgId, userId, 'manageKeys');
    await this.application(orgId, appId);
    return this.directory.renameCredential(appId, clientId, input, who);
  }

  async deleteCredential(orgId: number, appId: number, clientId: string, userId: number, who: Actor) {
    await this.members.access(orgId, userId, 'manageKeys');
    await this.application(orgId, appId);
    const result = await this.directory.deleteCredential(appId, clientId, false, who);
    return { client_id: clientId, status: 'deactivating' as const, deactivates_at: result.deactivates_at };
  }

  /**
   * Revokes a key at once, as the operator API's ?immediately=true: its secret gets
   * invalid_client and tokens already issued from it stop verifying. Owners and admins are told.
   */
  async revokeCredential(orgId: number, appId: number, clientId: string, user: { id: number; email: string }, who: Actor) {
    await this.members.access(orgId, user.id, 'manageKeys');
    const app = await this.application(orgId, appId);
    const result = await this.directory.deleteCredential(appId, clientId, true, who);
    const org = await this.directory.organization(orgId);
    // The notice goes out in the background: the key is already revoked, a slow mail server must not delay the answer.
    const notices = (await this.members.managers(orgId)).map((manager) =>
      this.mailer.send({
        to: manager.email,
        subject: `API key ${clientId} of ${app.name} was revoked`,
        text: `${user.email} revoked the API key ${clientId} of the app "${app.name}" in ${org.name} at ${result.deactivates_at}.\n\nThe key and every token issued from it stopped working at once. If this was not expected, review the organization's audit log.`,
      }),
    );
    void Promise.allSettled(notices);
    return { client_id: clientId, status: 'deactivated' as const, deactivates_at: result.deactivates_at };
  }

  /** What the portal calls the default audience (tokens asked for without `resource`): the app's own scopes. */
  private defaultApi() {
    return { id: 'default' as const, identifier: this.apis.defaultAudience, name: 'This platform (tokens without resource)' };
  }

  /** The APIs published to the portal, each with only the scopes self-service apps may take; the default audience first. */
  async publishedApis() {
    const defaults = await this.apis.defaultSelfServiceScopes();
    const published = (await this.apis.published()).map((a) => {
      const { id, identifier, name, self_service_scopes } = apiView(a);
      return { id: id as number | 'default', identifier, name, scopes: self_service_scopes };
    });
    return defaults.length > 0 ? [{ ...this.defaultApi(), scopes: defaults }, ...published] : published;
  }

  /** The app's APIs: its own scopes (the default audience), when it has any, then its grants. */
  async applicationApis(orgId: number, appId: number, userId: number) {
    await this.members.access(orgId, userId, 'view');
    const app = await this.application(orgId, appId);
    const grants = (await this.apis.grantsOf(appId)).map((g) => ({ ...grantView(g), api_id: g.apiId as number | 'default' }));
    if (app.scopes.length === 0) return grants;
    const { id, identifier, name } = this.defaultApi();
    return [{ api_id: id, identifier, name, scopes: app.scopes }, ...grants];
  }

  /**
   * An owner or admin sets which self-service scopes of a published API the app has (none removes
   * them); `default` is the app's own scopes, changed through the Directory like the operator's.
   */
  async grantApi(orgId: number, appId: number, apiId: number | 'default', userId: number, input: { scopes?: unknown }, who: Actor) {
    await this.members.access(orgId, userId, 'manageApps');
    const app = await this.application(orgId, appId);
    if (apiId !== 'default') {
      const grant = await this.apis.grantSelfService(appId, apiId, input, who);
      return grant ? grantView(grant) : { api_id: apiId, scopes: [] as string[], revoked: true };
    }
    const problem = scopeProblem(input.scopes);
    if (problem) throw ApiError.validation('invalid-scopes', problem);
    const chosen = input.scopes as string[];
    const open = await this.apis.defaultSelfServiceScopes();
    const closed = chosen.find((s) => !open.includes(s));
    if (closed !== undefined) throw notSelfService(closed, `the default audience ${this.apis.defaultAudience}`);
    const scopes = [...app.scopes.filter((s) => !open.includes(s)), ...open.filter((s) => chosen.includes(s))];
    const updated = await this.directory.updateApplication(appId, { scopes }, who);
    const { id, identifier, name } = this.defaultApi();
    return { api_id: id, identifier, name, scopes: updated.scopes };
  }

  /** One key's tokens issued and failed authentications (wrong secret, deactivated) per day, last 30 days. */
  async keyUsage(orgId: number, appId: number, clientId: string, userId: number) {
    await this.members.access(orgId, userId, 'view');
    await this.application(orgId, appId);
    const credential = await this.store.credentials.get(clientId);
    if (!credential || credential.applicationId !== appId) throw ApiError.notFound(`key ${clientId.slice(0, 64)}`);
    await this.failures.flush().catch(() => {});
    const tokens = await this.tokenCounts.perDayOfKey(clientId);
    const failed = new Map<string, number>();
    for (const f of await this.store.authFailures.since(tokens[0]!.day)) {
      if (f.clientId === clientId) failed.set(f.day, (failed.get(f.day) ?? 0) + f.count);
    }
    return { client_id: clientId, days: tokens.map((d) => ({ ...d, failed_authentications: failed.get(d.day) ?? 0 })) };
  }

  async usage(orgId: number, appId: number, userId: number) {
    await this.members.access(orgId, userId, 'view');
    await this.application(orgId, appId);
    return { application_id: appId, days: await this.tokenCounts.perDay(appId) };
  }

  /** The organization's audit log, newest first, with people named by their email address. */
  async audit(orgId: number, userId: number, query: { limit: number; before?: number; actor?: string; action?: string; from?: number; to?: number }) {
    await this.members.access(orgId, userId, 'viewAudit');
    const { actor, ...rest } = query;
    const filter: AuditFilter = { ...rest, organizationId: orgId };
    filter.signInsOf = (await this.store.memberships.members(orgId)).map((m) => String(m.userId));
    if (actor !== undefined) {
      // People are searched by email address; "operator" is the operator API's token.
      const person = await this.store.portalUsers.byEmail(actor.trim().toLowerCase());
      filter.actors = actor.trim().toLowerCase() === 'operator' ? ['operator'] : person ? [`user:${person.id}`, `operator:user:${person.id}`] : [];
    }
    return this.auditEvents(filter);
  }

  /** Audit events, newest first (of one organization or all), with people named by their email address and targets by their names. */
  async auditEvents(query: AuditFilter) {
    const events = await this.store.audit.list(query);
    const targets = new Map<string, string | undefined>();
    for (const e of events) {
      const key = `${e.targetType}:${e.targetId}`;
      if (targets.has(key)) continue;
      targets.set(key, await this.targetName(e.targetType, e.targetId, e.details));
    }
    const emails = new Map<number, string>();
    for (const e of events) {
      const id = /^(?:operator:)?user:(\d+)$/.exec(e.actor)?.[1];
      if (id === undefined || emails.has(Number(id))) continue;
      const user = await this.store.portalUsers.get(Number(id));
      if (user) emails.set(user.id, user.email);
    }
    const name = (actor: string) => {
      const found = /^(operator:)?user:(\d+)$/.exec(actor);
      if (found) {
        const email = emails.get(Number(found[2])) ?? `user ${found[2]}`;
        return found[1] ? `${email} (operator)` : email;
      }
      if (actor === 'operator') return 'an operator (API token)';
      return actor;
    };
    return events.map((e) => ({
      id: e.id,
      occurred_at: iso(e.occurredAt),
      actor: name(e.actor),
      ip: e.ip,
      action: e.action,
      target_type: e.targetType,
      target_id: e.targetId,
      target_name: targets.get(`${e.targetType}:${e.targetId}`) ?? null,
      organization_id: e.organizationId,
      details: e.details,
    }));
  }

  /** What a person calls an audit event's target: the app's or key's name, the member's address. */
  private async targetName(type: string, id: string, details: Record<string, unknown>): Promise<string | undefined> {
    const number = /^\d{1,15}$/.test(id) ? Number(id) : undefined;
    switch (type) {
      case 'application':
        return number === undefined ? undefined : (await this.store.applications.get(number))?.name;
      case 'credential':
        return (await this.store.credentials.get(id))?.name ?? (typeof details.name === 'string' ? details.name : undefined);
      case 'user':
        return number === undefined ? undefined : (await this.store.portalUsers.get(number))?.email;
      case 'organization':
        return number === undefined ? undefined : (await this.store.organizations.get(number))?.name;
      case 'partner':
        return number === undefined ? undefined : (await this.store.partners.get(number))?.name;
      case 'invitation':
        return typeof details.email === 'string' ? details.email : undefined;
      default:
        return undefined;
    }
  }
}
