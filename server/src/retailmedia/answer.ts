import type { PartnerAccess } from '../store/partners.js';
import type { Placement } from '../store/placements.js';
import type { BeaconKind, Beacons } from './beacons.js';

/** A product's JSON up to its beacons, and its beacon parts. */
interface ProductTemplate {
  open: string;
  idJson: string;
  parts: Record<BeaconKind, string>;
}

/** Everything of a placement's answer that is the same for every response, as JSON text. */
interface PlacementTemplate {
  /** The cached placement it was made from, and what it was made of (to reuse it for a reloaded copy). */
  source: Placement;
  made: string;
  slotKey: string;
  format: string;
  parts: Record<BeaconKind, string>;
  products: ProductTemplate[];
  rendering: string;
}

/** Everything a template depends on: a reloaded placement with the same text reuses its template. */
const madeOf = (p: Placement) => JSON.stringify([p.partnerId, p.eventType, p.slot, p.format, p.products, p.rendering]);

/** JSON string content without its quotes. */
const inner = (text: string) => JSON.stringify(text).slice(1, -1);

/** Templates kept at most; past it they are dropped together and rebuilt as asked for. */
export const MAX_TEMPLATES = 100_000;

/**
 * Writes the delivery API's answer as JSON text from templates kept per placement (by id; a cache
 * refresh that reloads an unchanged placement reuses its template) and per partner: all that changes per response is the page id, the impression part of the beacon URLs
 * and the page of products, so a response costs one signature and string joins.
 */
export class DeliveryAnswers {
  private readonly placements = new Map<number, PlacementTemplate>();
  private readonly pages = new Map<number, string>();
  private readonly prefix: string;

  constructor(private readonly beacons: Beacons) {
    this.prefix = inner(beacons.urlPrefix);
  }

  private placementTemplate(p: Placement): PlacementTemplate {
    let template = this.placements.get(p.id);
    if (template?.source === p) return template;
    const made = madeOf(p);
    if (template && template.made === made) {
      template.source = p;
      return template;
    }
    const parts = (productId: string) => {
      const part = (kind: BeaconKind) => this.beacons.beaconPart({ partnerId: p.partnerId, placementId: p.id, eventType: p.eventType, productId, kind });
      return { load: part('load'), view: part('view'), click: part('click') };
    };
    template = {
      source: p,
      made,
      slotKey: inner(`-${p.slot}`),
      format: JSON.stringify(p.format),
      parts: parts(''),
      products: p.products.map((product) => ({
        open: `${JSON.stringify(product).slice(0, -1)},`,
        idJson: JSON.stringify(product.ProductId),
        parts: parts(product.ProductId as string),
      })),
      rendering: JSON.stringify(p.rendering),
    };
    if (this.placements.size >= MAX_TEMPLATES) this.placements.clear();
    this.placements.set(p.id, template);
    return template;
  }

  private pagePart(partner: PartnerAccess): string {
    let part = this.pages.get(partner.id);
    if (part === undefined) {
      part = this.beacons.beaconPart({ partnerId: partner.id, placementId: 0, eventType: '', productId: '', kind: 'load' });
      if (this.pages.size >= MAX_TEMPLATES) this.pages.clear();
      this.pages.set(partner.id, part);
    }
    return part;
  }

  private beaconFields(impression: string, parts: Record<BeaconKind, string>): string {
    const at = `"${this.prefix}${impression}/`;
    return `"OnLoadBeacon":${at}${parts.load}","OnViewBeacon":${at}${parts.view}","OnClickBeacon":${at}${parts.click}"`;
  }

  /**
   * The answer for a page (its id is checked to need no JSON escaping) showing `placements`,
   * with products from `first` (0-based) and at most `size` of them when given.
   */
  render(partner: PartnerAccess, eventType: string, pageId: string, placements: readonly Placement[], first: number, size: number | undefined): string {
    const impression = this.beacons.impressionPart(partner.id, eventType);
    let out = `{"status":"OK","onLoadBeacon":"${this.prefix}${impression}/${this.pagePart(partner)}","placements":[`;
    for (let i = 0; i < placements.length; i++) {
      const t = this.placementTemplate(placements[i] as Placement);
      const end = size === undefined ? t.products.length : Math.min(t.products.length, first + size);
      let products = '';
      let order = '';
      for (let j = size === undefined ? 0 : first; j < end; j++) {
        const product = t.products[j] as ProductTemplate;
        const comma = products === '' ? '' : ',';
        products += `${comma}${product.open}${this.beaconFields(impression, product.parts)}}`;
        order += `${comma}${product.idJson}`;
      }
      out += `${i === 0 ? '' : ','}{"${pageId}${t.slotKey}":[{"format":${t.format},${this.beaconFields(impression, t.parts)},"products":[${products}],"products_order":[${order}],"rendering":${t.rendering}}]}`;
    }
    return `${out}]}`;
  }
}
