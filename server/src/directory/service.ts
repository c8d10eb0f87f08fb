import type { Bus } from '../bus/index.js';
import type { Clock } from '../domain/clock.js';
import { credentialStatus, MAX_ACTIVE_CREDENTIALS_PER_APP } from '../domain/credentials.js';
import { ApiError } from '../domain/errors.js';
import { DESCRIPTION_MAX, nameProblem, scopeProblem } from '../domain/names.js';
import { generateClientId, generateSecret, hashSecret, SECRET_PREFIX } from '../domain/secrets.js';
import type { Application } from '../store/applications.js';
import type { Credential } from '../store/credentials.js';
import { StoreUnavailableError } from '../store/db.js';
import type { Store } from '../store/index.js';
import type { Organization } from '../store/organizations.js';
import { ReadThroughCache } from './cache.js';
import type { UsageRecorder } from './usage.js';

/** Who asked for a change, for the audit log. */
export interface Actor {
  actor: string;
  ip: string | null;
}

export interface CredentialView {
  client_id: string;
  name: string;
  application_id: number;
  status: 'active' | 'deactivating';
  created_at: string;
  last_used_at: string | null;
  deactivates_at?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A failed read on the hot path means the store is unreachable: callers answer 503. */
function unavailableOnError<T>(read: Promise<T>): Promise<T> {
  return read.catch((err: unknown) => {
    throw new StoreUnavailableError('the database is unreachable', { cause: err });
  });
}

function checkName(value: unknown, field = 'name'): string {
  const problem = nameProblem(value, field);
  if (problem) throw ApiError.validation(`invalid-${field}`, problem);
  return (value as string).trim();
}

function checkDescription(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw ApiError.validation('invalid-description', 'description must be a string');
  if (value.trim() === '') return '';
  const problem = nameProblem(value, 'description', DESCRIPTION_MAX);
  if (problem) throw ApiError.validation('invalid-description', problem);
  return value.trim();
}

function checkScopes(value: unknown): string[] {
  if (value === undefined) return [];
  const problem = scopeProblem(value);
  if (problem) throw ApiError.validation('invalid-scopes', problem);
  return value as string[];
}

/**
 * Organizations, applications and their credentials: the rules both the operator API and the
 * portal apply, the audit trail of every change, and the caches the hot path reads.
 */
export class Directory {
  readonly credentials: ReadThroughCache<string, Credential>;
  readonly applications: ReadThroughCache<number, Application>;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly clock: Clock,
    private readonly pepper: Buffer,
    private readonly usage: UsageRecorder,
    private readonly graceSeconds: number,
  ) {
    const options = { negativeMs: 5_000, maxEntries: 100_000 };
    this.credentials = bus.caches.register('credentials', new ReadThroughCache((id: string) => unavailableOnError(store.credentials.get(id)), clock, options), {
      'credential.changed': (e) => ({ key: e.clientId }),
    });
    this.applications = bus.caches.register(
      'applications',
      new ReadThroughCache((id: number) => unavailableOnError(store.applications.get(id)), clock, options),
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
    organizationId: number | null,
    details: Record<string, unknown> = {},
  ) {
    return tx.audit.recordChange(this.clock.now(), who, action, { type: targetType, id: targetId }, organizationId, details);
  }

  /** Creates an organization; `alongside` writes more in the same transaction (the portal's owner membership). */
  async createOrganization(input: { name: unknown }, who: Actor, alongside?: (tx: Store, org: Organization) => Promise<void>): Promise<Organization> {
    const name = checkName(input.name);
    return this.store.transaction(async (tx) => {
      const org = await tx.organizations.create(name, this.clock.now());
      await alongside?.(tx, org);
      await this.audit(tx, who, 'organization.created', 'organization', org.id, org.id, { name: org.name });
      return org;
    });
  }

  async organization(id: number): Promise<Organization> {
    const org = await this.store.organizations.get(id);
    if (!org) throw ApiError.notFound(`organization ${id}`);
    return org;
  }

  /** A page of organizations in id order after the cursor `after` (an organization id). */
  listOrganizations(page: { limit: number; after: number }): Promise<Organization[]> {
    return this.store.organizations.list(page.limit, page.after);
  }

  async createApplication(organizationId: number, input: { name: unknown; description?: unknown; scopes?: unknown }, who: Actor): Promise<Application> {
    const name = checkName(input.name);
    const description = checkDescription(input.description);
    const scopes = checkScopes(input.scopes);
    await this.organization(organizationId);
    return this.store.transaction(async (tx) => {
      const app = await tx.applications.create({ organizationId, name, description, scopes }, this.clock.now());
      await this.audit(tx, who, 'application.created', 'application', app.id, organizationId, { name, scopes });
      return app;
    });
  }

  async application(id: number): Promise<Application> {
    const app = await this.store.applications.get(id);
    if (!app) throw ApiError.notFound(`application ${id}`);
    return app;
  }

  /** A page of the organization's applications (the first 1000 unless a page is given). */
  async listApplications(organizationId: number, page = { limit: 1000, after: 0 }): Promise<Application[]> {
    await this.organization(organizationId);
    return this.store.applications.listByOrganization(organizationId, page.limit, page.after);
  }

  async updateApplication(id: number, input: { name?: unknown; description?: unknown; scopes?: unknown }, who: Actor): Promise<Application> {
    const changes: { name?: string; description?: string; scopes?: string[] } = {};
    if (input.name !== undefined) changes.name = checkName(input.name);
    if (input.description !== undefined) changes.description = checkDescription(input.description);
    if (input.scopes !== undefined) changes.scopes = checkScopes(input.scopes);
    const before = await this.application(id);
    const app = await this.store.transaction(async (tx) => {
      const updated = (await tx.applications.update(id, changes)) ?? before;
      await this.audit(tx, who, 'application.updated', 'application', id, updated.organizationId, changes);
      return updated;
    });
    await this.bus.publish({ type: 'application.changed', applicationId: id });
    return app;
  }

  /** Creates a credential; the secret is in the result and is never stored or shown again. */
  async createCredential(applicationId: number, input: { name: unknown }, who: Actor): Promise<{ credential: Credential; secret: string }> {
    const name = checkName(input.name);
    const app = await this.application(applicationId);
    const secret = generateSecret(SECRET_PREFIX.clientSecret);
    const created = await this.store.transaction(async (tx) => {
      const credential = await tx.credentials.createWithinLimit(
        { clientId: generateClientId(), applicationId, name, secretHash: hashSecret(this.pepper, secret), createdAt: this.clock.now() },
        MAX_ACTIVE_CREDENTIALS_PER_APP,
      );
      if (credential === 'limit-reached') {
        throw ApiError.conflict(
          'credential-limit-reached',
          `application ${applicationId} already has ${MAX_ACTIVE_CREDENTIALS_PER_APP} active credentials, the most allowed; delete one before creating another`,
        );
      }
      await this.audit(tx, who, 'credential.created', 'credential', credential.clientId, app.organizationId, { application_id: applicationId, name });
      return credential;
    });
    await this.bus.publish({ type: 'credential.changed', clientId: created.clientId });
    return { credential: created, secret };
  }

  /**
   * A credential of this application that is still live (active or in its grace period); with
   * `orDeactivated`, also one whose grace has ended, whose tokens may still be unexpired.
   */
  private async liveCredential(applicationId: number, clientId: string, orDeactivated = false): Promise<{ app: Application; credential: Credential }> {
    const app = await this.application(applicationId);
    const credential = await this.store.credentials.get(clientId);
    const status = credential && credentialStatus(credential, this.clock.now());
    const allowed = status === 'active' || status === 'deactivating' || (orDeactivated && status === 'deactivated');
    if (!credential || credential.applicationId !== applicationId || !allowed) {
      throw ApiError.notFound(`credential ${clientId} of application ${applicationId}`);
    }
    return { app, credential };
  }

  async listCredentials(applicationId: number): Promise<CredentialView[]> {
    await this.application(applicationId);
    const credentials = await this.store.credentials.listLive(applicationId, this.clock.now());
    return credentials.map((c) => this.view(c));
  }

  async credential(applicationId: number, clientId: string): Promise<CredentialView> {
    return this.view((await this.liveCredential(applicationId, clientId)).credential);
  }

  async renameCredential(applicationId: number, clientId: string, input: { name: unknown }, who: Actor): Promise<CredentialView> {
    const name = checkName(input.name);
    const { app, credential } = await this.liveCredential(applicationId, clientId);
    const renamed = await this.store.transaction(async (tx) => {
      const row = (await tx.credentials.rename(clientId, name)) ?? credential;
      await this.audit(tx, who, 'credential.renamed', 'credential', clientId, app.organizationId, { from: credential.name, to: name });
      return row;
    });
    await this.bus.publish({ type: 'credential.changed', clientId });
    return this.view(renamed);
  }

  /**
   * Deleting starts the grace period: the credential keeps getting tokens until it ends.
   * `immediately` revokes now and also invalidates every token already issued from it.
   */
  async deleteCredential(applicationId: number, clientId: string, immediately: boolean, who: Actor): Promise<{ deactivates_at: string; revoked: boolean }> {
    // Revoking stays possible after the grace period, while tokens issued in it are still alive.
    const { app } = await this.liveCredential(applicationId, clientId, immediately);
    const now = this.clock.now();
    const deactivatesAt = await this.store.transaction(async (tx) => {
      const updated = immediately
        ? await tx.credentials.markRevoked(clientId, now)
        : await tx.credentials.markDeleted(clientId, now, now + this.graceSeconds * 1000);
      const at = updated?.deactivatesAt ?? now;
      await this.audit(tx, who, immediately ? 'credential.revoked' : 'credential.deleted', 'credential', clientId, app.organizationId, {
        application_id: applicationId,
        deactivates_at: iso(at),
      });
      return at;
    });
    await this.bus.publish({ type: 'credential.changed', clientId });
    return { deactivates_at: iso(deactivatesAt), revoked: immediately };
  }

  private view(c: Credential): CredentialView {
    const status = credentialStatus(c, this.clock.now());
    const lastUsed = Math.max(c.lastUsedAt ?? 0, this.usage.pendingLastUsed(c.clientId) ?? 0);
    const view: CredentialView = {
      client_id: c.clientId,
      name: c.name,
      application_id: c.applicationId,
      status: status === 'deactivating' ? 'deactivating' : 'active',
      created_at: iso(c.createdAt),
      last_used_at: lastUsed > 0 ? iso(lastUsed) : null,
    };
    if (c.deactivatesAt !== null) view.deactivates_at = iso(c.deactivatesAt);
    return view;
  }
}
