import { type Db, inTransaction } from './db.js';

/** A sponsored-product slot of a partner's page type, with its products and creative fields. */
export interface Placement {
  id: number;
  partnerId: number;
  eventType: string;
  slot: string;
  format: string;
  products: Record<string, string>[];
  rendering: Record<string, unknown>;
  updatedAt: number;
}

export interface BeaconCount {
  placementId: number;
  productId: string;
  kind: string;
  count: number;
}

type Row = { id: number; partner_id: number; event_type: string; slot: string; format: string; products: string; rendering: string; updated_at: number };
const toPlacement = (r: Row): Placement => ({
  id: Number(r.id),
  partnerId: Number(r.partner_id),
  eventType: r.event_type,
  slot: r.slot,
  format: r.format,
  products: JSON.parse(r.products) as Record<string, string>[],
  rendering: JSON.parse(r.rendering) as Record<string, unknown>,
  updatedAt: Number(r.updated_at),
});

/** The per-partner catalogue of placements, and the counts of their beacons. */
export class PlacementRepository {
  constructor(private readonly db: Db) {}

  /** Creates or replaces the placement of a partner's page type and slot; atomic as PartnerRepository.upsert. */
  async upsert(input: Omit<Placement, 'id'>): Promise<{ placement: Placement; created: boolean }> {
    return inTransaction(this.db, async (trx) => {
      const values = {
        format: input.format,
        products: JSON.stringify(input.products),
        rendering: JSON.stringify(input.rendering),
        updated_at: input.updatedAt,
      };
      const inserted = await trx
        .insertInto('placements')
        .values({ partner_id: input.partnerId, event_type: input.eventType, slot: input.slot, ...values })
        .onConflict((oc) => oc.columns(['partner_id', 'event_type', 'slot']).doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) return { placement: toPlacement(inserted), created: true };
      const row = await trx
        .updateTable('placements')
        .set(values)
        .where('partner_id', '=', input.partnerId)
        .where('event_type', '=', input.eventType)
        .where('slot', '=', input.slot)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { placement: toPlacement(row), created: false };
    });
  }

  async listByPartner(partnerId: number): Promise<Placement[]> {
    const rows = await this.db.selectFrom('placements').selectAll().where('partner_id', '=', partnerId).orderBy('event_type').orderBy('slot').execute();
    return rows.map(toPlacement);
  }

  /** A page of a partner's placements in id order, after the placement id `after`. */
  async pageOfPartner(partnerId: number, limit: number, after = 0): Promise<Placement[]> {
    const rows = await this.db
      .selectFrom('placements')
      .selectAll()
      .where('partner_id', '=', partnerId)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toPlacement);
  }

  async remove(partnerId: number, eventType: string, slot: string): Promise<Placement | undefined> {
    const row = await this.db
      .deleteFrom('placements')
      .where('partner_id', '=', partnerId)
      .where('event_type', '=', eventType)
      .where('slot', '=', slot)
      .returningAll()
      .executeTakeFirst();
    return row && toPlacement(row);
  }

  /** Adds a batch of beacon hits collected in memory; keys are partner, placement, product and kind. */
  async addBeaconCounts(batch: Map<string, { partnerId: number; placementId: number; productId: string; kind: string; count: number }>): Promise<void> {
    if (batch.size === 0) return;
    await inTransaction(this.db, async (trx) => {
      for (const b of batch.values()) {
        await trx
          .insertInto('beacon_counts')
          .values({ partner_id: b.partnerId, placement_id: b.placementId, product_id: b.productId, kind: b.kind, count: b.count })
          .onConflict((oc) =>
            oc.columns(['partner_id', 'placement_id', 'product_id', 'kind']).doUpdateSet((eb) => ({ count: eb('beacon_counts.count', '+', b.count) })),
          )
          .execute();
      }
    });
  }

  async beaconCounts(partnerId: number): Promise<BeaconCount[]> {
    const rows = await this.db
      .selectFrom('beacon_counts')
      .selectAll()
      .where('partner_id', '=', partnerId)
      .orderBy('placement_id')
      .orderBy('product_id')
      .orderBy('kind')
      .execute();
    return rows.map((r) => ({ placementId: Number(r.placement_id), productId: r.product_id, kind: r.kind, count: Number(r.count) }));
  }
}
