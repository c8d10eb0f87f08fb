import { nameProblem } from '../domain/names.js';
import type { Placement } from '../store/placements.js';

/** The page types of the delivery API and the parameter each one needs besides the common ones. */
export const EVENT_TYPES: Record<string, string | undefined> = {
  viewHome: undefined,
  viewSearchResult: 'keywords',
  viewCategory: 'category',
  viewSearchBar: 'page-uid',
  viewItem: 'item',
  viewBasket: undefined,
  viewMerchandising: undefined,
  viewDeals: undefined,
  viewConfirmation: undefined,
};

export const SLOT = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_PRODUCTS = 50;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MAX_FIELD_VALUE = 2000;
const MAX_FIELDS = 40;

export interface PlacementInput {
  format: string;
  products: Record<string, string>[];
  rendering: Record<string, unknown>;
}

/** Checks a placement body from the operator API; returns the problem, or the clean value. */
export function checkPlacement(body: Record<string, unknown>): { problem: string; field: string } | { value: PlacementInput } {
  const formatProblem = nameProblem(body.format, 'format');
  if (formatProblem) return { problem: formatProblem, field: 'format' };
  const products = body.products ?? [];
  if (!Array.isArray(products)) return { problem: 'products must be an array of objects', field: 'products' };
  if (products.length > MAX_PRODUCTS) return { problem: `products must have at most ${MAX_PRODUCTS} entries`, field: 'products' };
  const clean: Record<string, string>[] = [];
  const seen = new Set<string>();
  for (const [i, product] of products.entries()) {
    if (typeof product !== 'object' || product === null || Array.isArray(product)) return { problem: `products[${i}] must be an object`, field: 'products' };
    const entries = Object.entries(product as Record<string, unknown>);
    if (entries.length > MAX_FIELDS) return { problem: `products[${i}] has more than ${MAX_FIELDS} fields`, field: 'products' };
    const out: Record<string, string> = {};
    for (const [key, value] of entries) {
      if (!FIELD_NAME.test(key)) return { problem: `products[${i}] field ${JSON.stringify(key.slice(0, 64))} is not a valid field name`, field: 'products' };
      if (/Beacon$/i.test(key)) return { problem: `products[${i}].${key}: beacon URLs are made by the server`, field: 'products' };
      if (typeof value !== 'string' && typeof value !== 'number') return { problem: `products[${i}].${key} must be a string or a number`, field: 'products' };
      const text = String(value);
      if (text.length > MAX_FIELD_VALUE) return { problem: `products[${i}].${key} must be at most ${MAX_FIELD_VALUE} characters`, field: 'products' };
      out[key] = text;
    }
    const id = out.ProductId;
    if (id === undefined || id === '' || id.length > 100) return { problem: `products[${i}].ProductId is required (1 to 100 characters)`, field: 'products' };
    if (seen.has(id)) return { problem: `products[${i}].ProductId ${JSON.stringify(id)} is repeated`, field: 'products' };
    seen.add(id);
    out.ParentSKU ??= id;
    clean.push(out);
  }
  const rendering = body.rendering ?? {};
  if (typeof rendering !== 'object' || rendering === null || Array.isArray(rendering))
    return { problem: 'rendering must be a JSON object', field: 'rendering' };
  if (JSON.stringify(rendering).length > 10_000) return { problem: 'rendering must be at most 10000 characters of JSON', field: 'rendering' };
  return { value: { format: (body.format as string).trim(), products: clean, rendering: rendering as Record<string, unknown> } };
}

/** A partner's placements by event type (each list in slot order): a delivery call reads one list. */
export type Catalogue = ReadonlyMap<string, readonly Placement[]>;

export function catalogueOf(placements: Placement[]): Catalogue {
  const byEvent = new Map<string, Placement[]>();
  for (const p of placements) {
    const list = byEvent.get(p.eventType);
    if (list) list.push(p);
    else byEvent.set(p.eventType, [p]);
  }
  return byEvent;
}
