import type { Bus } from '../bus/index.js';
import { ReadThroughCache } from '../directory/cache.js';
import type { Actor } from '../directory/service.js';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import { nameProblem, scopeProblem } from '../domain/names.js';
import type { Api, ApiGrant } from '../store/apis.js';
import type { Store } from '../store/index.js';

const IDENTIFIER_MAX = 200;

/** Why an API identifier is not acceptable (RFC 8707 §2: an absolute URI without a fragment), or undefined. */
export function identifierProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > IDENTIFIER_MAX) return `identifier must be a URI of 1 to ${IDENTIFIER_MAX} characters`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'identifier must be an absolute URI, e.g. https://api.example.com/reports';
  }
  if (value.includes('#')) return 'identifier must not contain a fragment';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'identifier must be an http or https URI';
  return undefined;
}

/** The setting holding the default audience's scopes open to self-service (a JSON array). */
const DEFAULT_SELF_SERVICE_SETTING = 'self_service_default_scopes';

/** A scope asked for in the portal that the operator did not open to self-service. */
export function notSelfService(scope: string, of: string): ApiError {
  return new ApiError(
    403,
    'authorization',
    'scope-not-self-service',
    'Not allowed',
    `the scope ${JSON.stringify(scope)} of ${of} is not open to self-service apps; ask an operator to grant it`,
  );
}

/** The self-service scopes asked for, when they are valid scopes of the API; else a 400. */
function selfServiceProblemOrScopes(value: unknown, apiScopes: string[]): string[] {
  const problem = scopeProblem(value);
  if (problem) throw ApiError.validation('invalid-self_service_scopes', problem.replace(/^scopes/, 'self_service_scopes'));
  const foreign = (value as string[]).find((s) => !apiScopes.includes(s));
  if (foreign !== undefined) throw ApiError.validation('invalid-self_service_scopes', `the API defines no scope ${JSON.stringify(foreign)}`);
  return value as string[];
}

/**
 * APIs with their own audience, and which applications may ask tokens for them (with which of
 * their scopes). Every change is validated, written, audited and published as
 * `application.changed` for each application concerned, so the token endpoint's cached grants
 * are dropped; the token endpoint reads grants from that cache, not the store.
 */
export class ApiRegistry {
  private readonly grants: ReadThroughCache<number, ApiGrant[]>;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly clock: Clock,
    /** The `aud` of tokens asked for without `resource`. */
    readonly defaultAudience: string,
  ) {
    this.grants = bus.caches.register(
      'api_grants',
      new ReadThroughCache((id: number) => store.apis.grantsOf(id), clock, { negativeMs: 30_000, maxEntries: 100_000 }),
      { 'application.changed': (e) => ({ key: e.applicationId }) },
    );
  }

  /** The APIs an application is granted, from the cache. */
  async grantsOf(applicationId: number): Promise<ApiGrant[]> {
    return (await this.grants.get(applicationId)) ?? [];
  }

  list(): Promise<Api[]> {
    return this.store.apis.list();
  }

  async create(input: { identifier?: unknown; name?: unknown; scopes?: unknown; self_service_scopes?: unknown }, who: Actor): Promise<Api> {
    const problem = identifierProblem(input.identifier) ?? nameProblem(input.name) ?? scopeProblem(input.scopes ?? []);
    if (problem) throw ApiError.validation('invalid-api', problem);
    const scopes = (input.scopes ?? []) as string[];
    const selfServiceScopes = selfServiceProblemOrScopes(input.self_service_scopes ?? [], scopes);
    return this.store.transaction(async (tx) => {
      const created = await tx.apis.create(
        { identifier: input.identifier as string, name: (input.name as string).trim(), scopes, selfServiceScopes },
        this.clock.now(),
      );
      if (created === 'exists') throw ApiError.conflict('api-exists', `an API with the identifier ${JSON.stringify(input.identifier)} is already registered`);
      await tx.audit.recordChange(this.clock.now(), who, 'api.created', { type: 'api', id: created.id }, null, {
        identifier: created.identifier,
        scopes: created.scopes,
        self_service_scopes: created.selfServiceScopes,
      });
      return created;
    });
  }

  /** Sets which of an API's scopes organizations may grant their own apps in the portal ([]: none, the default). */
  async setSelfServiceScopes(id: number, input: { self_service_scopes?: unknown }, who: Actor): Promise<Api> {
    return this.store.transaction(async (tx) => {
      const api = await tx.apis.get(id);
      if (!api) throw ApiError.notFound(`API ${id}`);
      const updated = await tx.apis.setSelfServiceScopes(id, selfServiceProblemOrScopes(input.self_service_scopes, api.scopes));
      if (!updated) throw ApiError.notFound(`API ${id}`);
      await tx.audit.recordChange(this.clock.now(), who, 'api.self_service_changed', { type: 'api', id }, null, {
        identifier: api.identifier,
        self_service_scopes: updated.selfServiceScopes,
      });
      return updated;
    });
  }

  /** The scopes of the default audience (tokens without `resource`) that portal apps may take themselves. */
  async defaultSelfServiceScopes(): Promise<string[]> {
    return JSON.parse((await this.store.settings.get(DEFAULT_SELF_SERVICE_SETTING)) ?? '[]') as string[];
  }

  async setDefaultSelfServiceScopes(input: { self_service_scopes?: unknown }, who: Actor): Promise<string[]> {
    const problem = scopeProblem(input.self_service_scopes);
    if (problem) throw ApiError.validation('invalid-self_service_scopes', problem.replace(/^scopes/, 'self_service_scopes'));
    const scopes = input.self_service_scopes as string[];
    await this.store.transaction(async (tx) => {
      await tx.settings.set(DEFAULT_SELF_SERVICE_SETTING, JSON.stringify(scopes));
      await tx.audit.recordChange(this.clock.now(), who, 'default_audience.self_service_changed', { type: 'audience', id: this.defaultAudience }, null, {
        self_service_scopes: scopes,
      });
    });
    return scopes;
  }

  /** The APIs published to the portal: those with at least one scope open to self-service apps. */
  async published(): Promise<Api[]> {
    return (await this.store.apis.list()).filter((a) => a.selfServiceScopes.length > 0);
  }

  /**
   * The portal's grant: sets the self-service part of an application's grant of an API to
   * `input.scopes` (each must be open to self-service), keeping scopes an operator granted
   * beyond those; with nothing left, the grant is removed.
   */
  async grantSelfService(applicationId: number, apiId: number, input: { scopes?: unknown }, who: Actor): Promise<ApiGrant | undefined> {
    const problem = scopeProblem(input.scopes);
    if (problem) throw ApiError.validation('invalid-scopes', problem);
    const chosen = input.scopes as string[];
    const api = await this.store.apis.get(apiId);
    // An API not published to the portal is unknown there, though its self-service scopes can still be dropped.
    if (!api || (api.selfServiceScopes.length === 0 && chosen.length > 0)) throw ApiError.notFound(`API ${apiId}`);
    const closed = chosen.find((s) => !api.selfServiceScopes.includes(s));
    if (closed !== undefined) throw notSelfService(closed, api.identifier);
    const current = (await this.store.apis.grantsOf(applicationId)).find((g) => g.apiId === apiId);
    const kept = (current?.scopes ?? []).filter((s) => !api.selfServiceScopes.includes(s));
    const scopes = api.scopes.filter((s) => kept.includes(s) || chosen.includes(s));
    if (scopes.length === 0) {
      if (current) await this.revokeGrant(applicationId, apiId, who);
      return undefined;
    }
    return this.grant(applicationId, apiId, { scopes }, who);
  }

  async remove(id: number, who: Actor): Promise<Api> {
    const { api, applications } = await this.store.transaction(async (tx) => {
      const api = await tx.apis.get(id);
      const applications = api && (await tx.apis.delete(id));
      if (!api || !applications) throw ApiError.notFound(`API ${id}`);
      await tx.audit.recordChange(this.clock.now(), who, 'api.deleted', { type: 'api', id }, null, { identifier: api.identifier });
      return { api, applications };
    });
    for (const applicationId of applications) await this.bus.publish({ type: 'application.changed', applicationId });
    return api;
  }

  /** Grants an application an API with some of its scopes (all of them when `scopes` is not given). */
  async grant(applicationId: number, apiId: number, input: { scopes?: unknown }, who: Actor): Promise<ApiGrant> {
    const [application, api] = await Promise.all([this.store.applications.get(applicationId), this.store.apis.get(apiId)]);
    if (!application) throw ApiError.notFound(`application ${applicationId}`);
    if (!api) throw ApiError.notFound(`API ${apiId}`);
    const problem = input.scopes === undefined ? undefined : scopeProblem(input.scopes);
    if (problem) throw ApiError.validation('invalid-scopes', problem);
    const scopes = (input.scopes as string[] | undefined) ?? api.scopes;
    const foreign = scopes.find((s) => !api.scopes.includes(s));
    if (foreign !== undefined) throw ApiError.validation('invalid-scopes', `the API ${api.identifier} defines no scope ${JSON.stringify(foreign)}`);
    await this.store.transaction(async (tx) => {
      await tx.apis.grant(applicationId, apiId, scopes, this.clock.now());
      await tx.audit.recordChange(this.clock.now(), who, 'api.granted', { type: 'application', id: applicationId }, application.organizationId, {
        api: api.identifier,
        scopes,
      });
    });
    await this.bus.publish({ type: 'application.changed', applicationId });
    return { apiId, identifier: api.identifier, name: api.name, scopes };
  }

  async revokeGrant(applicationId: number, apiId: number, who: Actor): Promise<void> {
    await this.store.transaction(async (tx) => {
      const application = await tx.applications.get(applicationId);
      if (!application || !(await tx.apis.revokeGrant(applicationId, apiId)))
        throw ApiError.notFound(`a grant of API ${apiId} to application ${applicationId}`);
      await tx.audit.recordChange(this.clock.now(), who, 'api.grant_revoked', { type: 'application', id: applicationId }, application.organizationId, {
        api_id: apiId,
      });
    });
    await this.bus.publish({ type: 'application.changed', applicationId });
  }
}
