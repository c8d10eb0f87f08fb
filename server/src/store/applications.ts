import type { Db } from './db.js';

export interface Application {
  id: number;
  organizationId: number;
  name: string;
  description: string;
  scopes: string[];
  createdAt: number;
}

type Row = { id: number; organization_id: number; name: string; description: string; scopes: string; created_at: number };
const toApplication = (r: Row): Application => ({
  id: Number(r.id),
  organizationId: Number(r.organization_id),
  name: r.name,
  description: r.description,
  scopes: JSON.parse(r.scopes) as string[],
  createdAt: Number(r.created_at),
});

export class ApplicationRepository {
  constructor(private readonly db: Db) {}

  async create(input: { organizationId: number; name: string; description: string; scopes: string[] }, now: number): Promise<Application> {
    const row = await this.db
      .insertInto('applications')
      .values({
        organization_id: input.organizationId,
        name: input.name,
        description: input.description,
        scopes: JSON.stringify(input.scopes),
        created_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toApplication(row);
  }

  async get(id: number): Promise<Application | undefined> {
    const row = await this.db.selectFrom('applications').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toApplication(row);
  }

  /** A page in id order: at most `limit` applications of the organization after the id `after`. */
  async listByOrganization(organizationId: number, limit = 1000, after = 0): Promise<Application[]> {
    const rows = await this.db
      .selectFrom('applications')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toApplication);
  }

  async update(id: number, changes: { name?: string; description?: string; scopes?: string[] }): Promise<Application | undefined> {
    const values: Partial<Row> = {};
    if (changes.name !== undefined) values.name = changes.name;
    if (changes.description !== undefined) values.description = changes.description;
    if (changes.scopes !== undefined) values.scopes = JSON.stringify(changes.scopes);
    if (Object.keys(values).length === 0) return this.get(id);
    const row = await this.db.updateTable('applications').set(values).where('id', '=', id).returningAll().executeTakeFirst();
    return row && toApplication(row);
  }
}
