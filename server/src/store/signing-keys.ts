import type { Db } from './db.js';

export interface StoredSigningKey {
  kid: string;
  alg: string;
  publicJwk: string;
  privateKey: string;
  createdAt: number;
  activatesAt: number;
}

export class SigningKeyRepository {
  constructor(private readonly db: Db) {}

  async insert(k: StoredSigningKey): Promise<void> {
    await this.db
      .insertInto('signing_keys')
      .values({
        kid: k.kid,
        alg: k.alg,
        public_jwk: k.publicJwk,
        private_key: k.privateKey,
        created_at: k.createdAt,
        activates_at: k.activatesAt,
      })
      .execute();
  }

  /** Every key, newest activation first. */
  async list(): Promise<StoredSigningKey[]> {
    const rows = await this.db.selectFrom('signing_keys').selectAll().orderBy('activates_at', 'desc').orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      publicJwk: r.public_jwk,
      privateKey: r.private_key,
      createdAt: Number(r.created_at),
      activatesAt: Number(r.activates_at),
    }));
  }
}
