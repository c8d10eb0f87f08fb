import { type Db, inTransaction } from './db.js';

export interface Api {
  id: number;
  identifier: string;
  name: string;
  scopes: string[];
  /** The scopes an organization's owner or admin may grant its own apps in the portal. */
  selfServiceScopes: string[];
  createdAt: number;
}

/** An application's grant of an API: the API and the scopes of it the application may ask for. */
export interface ApiGrant {
  apiId: number;
  identifier: string;
  name: string;
  scopes: string[];
}

type Row = { id: number; identifier: string; name: string; scopes: string; self_service_scopes: string; created_at: number };
const toApi = (r: Row): Api => ({
  id: Number(r.id),
  identifier: r.identifier,
  name: r.name,
  scopes: JSON.parse(r.scopes) as string[],
  selfServiceScopes: JSON.parse(r.self_service_scopes) as string[],
  createdAt: Number(r.created_at),
});

export class ApiRepository {
  constructor(private readonly db: Db) {}

  /** Inserts an API, or answers `'exists'` when its identifier is taken. */
  async create(input: { identifier: string; name: string; scopes: string[]; selfServiceScopes: string[] }, now: number): Promise<Api | 'exists'> {
    return inTransaction(this.db, async (trx) => {
      const taken = await trx.selectFrom('apis').select('id').where('identifier', '=', input.identifier).executeTakeFirst();
      if (taken) return 'exists' as const;
      const row = await trx
        .insertInto('apis')
        .values({
          identifier: input.identifier,
          name: input.name,
          scopes: JSON.stringify(input.scopes),
          self_service_scopes: JSON.stringify(input.selfServiceScopes),
          created_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toApi(row);
    });
  }

  async get(id: number): Promise<Api | undefined> {
    const row = await this.db.selectFrom('apis').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toApi(row);
  }

  /** Sets the scopes self-service apps may take; undefined when there is no such API. */
  async setSelfServiceScopes(id: number, scopes: string[]): Promise<Api | undefined> {
    const row = await this.db
      .updateTable('apis')
      .set({ self_service_scopes: JSON.stringify(scopes) })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row && toApi(row);
  }

  async list(): Promise<Api[]> {
    return (await this.db.selectFrom('apis').selectAll().orderBy('id').execute()).map(toApi);
  }

  /** Deletes an API and its grants; answers the applications that had it. */
  async delete(id: number): Promise<number[] | undefined> {
    return inTransaction(this.db, async (trx) => {
      const grants = await trx.selectFrom('application_apis').select('application_id').where('api_id', '=', id).execute();
      await trx.deleteFrom('application_apis').where('api_id', '=', id).execute();
      const deleted = await trx.deleteFrom('apis').where('id', '=', id).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) return undefined;
      return grants.map((g) => Number(g.application_id));
    });
  }

  /** Grants an application an API with these scopes, replacing an earlier grant. */
  async grant(applicationId: number, apiId: number, scopes: string[], now: number): Promise<void> {
    await this.db
      .insertInto('application_apis')
      .values({ application_id: applicationId, api_id: apiId, scopes: JSON.stringify(scopes), created_at: now })
      .onConflict((oc) => oc.columns(['application_id', 'api_id']).doUpdateSet({ scopes: JSON.stringify(scopes) }))
      .execute();
  }

  async revokeGrant(applicationId: number, apiId: number): Promise<boolean> {
    const result = await this.db.deleteFrom('application_apis').where('application_id', '=', applicationId).where('api_id', '=', apiId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async grantsOf(applicationId: number): Promise<ApiGrant[]> {
    const rows = await this.db
      .selectFrom('application_apis')
      .innerJoin('apis', 'apis.id', 'application_apis.api_id')
      .select(['apis.id as api_id', 'apis.identifier', 'apis.name', 'application_apis.scopes'])
      .where('application_apis.application_id', '=', applicationId)
      .orderBy('apis.id')
      .execute();
    return rows.map((r) => ({ apiId: Number(r.api_id), identifier: r.identifier, name: r.name, scopes: JSON.parse(r.scopes) as string[] }));
  }
}
