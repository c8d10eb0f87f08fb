import type { Db } from './db.js';

export interface Organization {
  id: number;
  name: string;
  createdAt: number;
}

type Row = { id: number; name: string; created_at: number };
const toOrganization = (r: Row): Organization => ({ id: Number(r.id), name: r.name, createdAt: Number(r.created_at) });

export class OrganizationRepository {
  constructor(private readonly db: Db) {}

  async create(name: string, now: number): Promise<Organization> {
    const row = await this.db.insertInto('organizations').values({ name, created_at: now }).returningAll().executeTakeFirstOrThrow();
    return toOrganization(row);
  }

  async get(id: number): Promise<Organization | undefined> {
    const row = await this.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toOrganization(row);
  }

  /** A page in id order: at most `limit` organizations after the id `after`. */
  async list(limit: number, after = 0): Promise<Organization[]> {
    const rows = await this.db.selectFrom('organizations').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute();
    return rows.map(toOrganization);
  }
}
