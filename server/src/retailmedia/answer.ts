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
  slotKey: string;
  format: string;
  parts: Record<BeaconKind, string>;
  products: ProductTemplate[];
  rendering: string;
}

/** JSON string content without its quotes. */
const inner = (text: string) => JSON.stringify(text).slice(1, -1);

/**
 * Writes the delivery API's answer as JSON text from templates kept per cached placement (and
 * per cached partner): all that changes per response is the page id, the impression part of the
 * beacon URLs and the page of products, so a response costs one signature and string joins.
 * Templates live as long as the cached objects they hang from (WeakMaps), so they need no bound
 * of their own.
 */
export class DeliveryAnswers {
  private readonly placements = new WeakMap<Placement, PlacementTemplate>();
  private readonly pages = new WeakMap<PartnerAccess, string>();
  private readonly prefix: string;

  constructor(private readonly beacons: Beacons) {
    this.prefix = inner(beacons.urlPrefix);
  }

  private placementTemplate(p: Placement): PlacementTemplate {
    let template = this.placements.get(p);
    if (template) return template;
    const parts = (productId: string) => {
      const part = (kind: BeaconKind) => this.beacons.beaconPart({ partnerId: p.partnerId, placementId: p.id, eventType: p.eventType, productId, kind });
      return { load: part('load'), view: part('view'), click: part('click') };
    };
    template = {
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
    this.placements.set(p, template);
    return template;
  }

  private pagePart(partner: PartnerAccess): string {
    let part = this.pages.get(partner);
    if (part === undefined) {
      part = this.beacons.beaconPart({ partnerId: partner.id, placementId: 0, eventType: '', productId: '', kind: 'load' });
      this.pages.set(partner, part);
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
