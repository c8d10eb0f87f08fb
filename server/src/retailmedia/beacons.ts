import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { BatchedWrites } from '../store/batched-writes.js';
import type { PlacementRepository } from '../store/placements.js';
import type { BeaconLedger } from './beacon-ledger.js';

export type BeaconKind = 'load' | 'view' | 'click';
export const BEACON_KINDS: readonly BeaconKind[] = ['load', 'view', 'click'];

export interface Beacon {
  partnerId: number;
  /** 0 for the page-level load beacon. */
  placementId: number;
  /** The placement's event type; '' for the page-level load beacon (any page of the partner). */
  eventType: string;
  /** '' for a placement-level beacon. */
  productId: string;
  kind: BeaconKind;
}

/** One delivery response: its beacons count once each, until `expiresAt` (ms). */
export interface Impression {
  partnerId: number;
  eventType: string;
  id: string;
  expiresAt: number;
}

export type BeaconHit = { ok: true; beacon: Beacon; impression: Impression; counted: boolean } | { ok: false; reason: 'invalid' | 'expired' };

const SIGNATURE_LENGTH = 22; // 128 bits of HMAC-SHA-256, base64url
export const BEACON_TTL_SECONDS = 3_600;
const EVENT_TYPE = /^[A-Za-z]{1,40}$/;
const IMPRESSION_ID = /^[A-Za-z0-9_-]{1,40}$/;
const MAX_KNOWN_BEACONS = 50_000;
/** The router's maxParamLength must allow this (app.ts). */
export const MAX_BEACON_PART = 512;

/**
 * Beacon URLs are `/delivery/beacons/<impression>/<beacon>`, both parts signed with a key
 * derived from the pepper. The beacon part (partner, placement, event type, product, kind) is
 * fixed per placement, so it is signed once and cached; the impression part (partner, event
 * type, a unique id, an expiry) is signed once per response. Counting reads nothing from the
 * store; the ledger makes each (impression, beacon) count once until the impression expires.
 */
export class Beacons {
  private readonly key: Buffer;
  private readonly counts: BatchedWrites<string, Beacon & { count: number }>;
  private readonly prefix: string;
  private readonly node = randomBytes(6).toString('base64url');
  private sequence = 0;
  /** Beacon parts already verified (or made here): verifying a repeat is one map lookup. Cleared when full. */
  private readonly known = new Map<string, Beacon>();

  constructor(
    pepper: Buffer,
    baseUrl: string,
    repository: PlacementRepository,
    readonly clock: Clock,
    private readonly ledger: BeaconLedger,
    readonly ttlSeconds = BEACON_TTL_SECONDS,
  ) {
    this.key = createHmac('sha256', pepper).update('portcullis beacon signing key').digest();
    this.prefix = `${baseUrl}/delivery/beacons/`;
    this.counts = new BatchedWrites(
      (batch) => repository.addBeaconCounts(batch),
      (a, b) => ({ ...a, count: a.count + b.count }),
    );
  }

  /** The start of every beacon URL. */
  get urlPrefix(): string {
    return this.prefix;
  }

  private sign(domain: 'b' | 'i', payload: string): string {
    return createHmac('sha256', this.key).update(domain).update(payload).digest('base64url').slice(0, SIGNATURE_LENGTH);
  }

  private verified(domain: 'b' | 'i', payload: string, signature: string): boolean {
    const given = Buffer.from(signature);
    const expected = Buffer.from(this.sign(domain, payload));
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The signed, per-placement part of a beacon URL (the same for every response). */
  beaconPart(beacon: Beacon): string {
    // Compact (no JSON escaping): the longest part, a 100-character product id, stays under 500 characters.
    const payload = Buffer.from(`${beacon.partnerId}|${beacon.placementId}|${beacon.eventType}|${beacon.kind}|${beacon.productId}`).toString('base64url');
    const part = `${payload}.${this.sign('b', payload)}`;
    this.remember(part, beacon);
    return part;
  }

  /** A new impression, signed: one per delivery response. */
  impressionPart(partnerId: number, eventType: string): string {
    const expires = Math.floor(this.clock.now() / 1000) + this.ttlSeconds;
    const payload = `${partnerId}.${eventType}.${this.node}${(this.sequence++).toString(36)}.${expires}`;
    return `${payload}.${this.sign('i', payload)}`;
  }

  url(impressionPart: string, beaconPart: string): string {
    return `${this.prefix}${impressionPart}/${beaconPart}`;
  }

  private remember(part: string, beacon: Beacon): void {
    if (this.known.size >= MAX_KNOWN_BEACONS) this.known.clear();
    this.known.set(part, beacon);
  }

  private readBeacon(part: string): Beacon | undefined {
    const known = this.known.get(part);
    if (known) return known;
    const dot = part.lastIndexOf('.');
    if (dot <= 0 || part.length > MAX_BEACON_PART || !this.verified('b', part.slice(0, dot), part.slice(dot + 1))) return undefined;
    const text = Buffer.from(part.slice(0, dot), 'base64url').toString('utf8');
    const fields = text.split('|', 4);
    if (fields.length !== 4) return undefined;
    const [partnerId, placementId, eventType, kind] = fields as [string, string, string, BeaconKind];
    const beacon = { partnerId: Number(partnerId), placementId: Number(placementId), eventType, kind, productId: text.slice(fields.join('|').length + 1) };
    this.remember(part, beacon);
    return beacon;
  }

  private readImpression(part: string): Impression | undefined {
    if (part.length > 200) return undefined;
    const fields = part.split('.');
    if (fields.length !== 5) return undefined;
    const [partner, eventType, id, expires, signature] = fields as [string, string, string, string, string];
    if (!/^\d{1,16}$/.test(partner) || !EVENT_TYPE.test(eventType) || !IMPRESSION_ID.test(id) || !/^\d{1,12}$/.test(expires)) return undefined;
    if (!this.verified('i', part.slice(0, part.length - signature.length - 1), signature)) return undefined;
    return { partnerId: Number(partner), eventType, id, expiresAt: Number(expires) * 1000 };
  }

  /**
   * Counts the beacon of a URL's two last segments: the first time for its impression only.
   * Invalid when either part is not one the server signed, or they do not belong together.
   */
  async hit(impressionPart: string, beaconPart: string): Promise<BeaconHit> {
    const impression = this.readImpression(impressionPart);
    const beacon = impression && this.readBeacon(beaconPart);
    if (!impression || !beacon) return { ok: false, reason: 'invalid' };
    if (beacon.partnerId !== impression.partnerId || (beacon.eventType !== '' && beacon.eventType !== impression.eventType)) {
      return { ok: false, reason: 'invalid' };
    }
    if (impression.expiresAt <= this.clock.now()) return { ok: false, reason: 'expired' };
    // The beacon part's signature names it uniquely (128 bits), so it stands for the beacon in the key.
    const counted = await this.ledger.firstSighting(`${impression.id}:${beaconPart.slice(beaconPart.lastIndexOf('.') + 1)}`, impression.expiresAt);
    if (counted) this.counts.add(beaconPart, { ...beacon, count: 1 });
    return { ok: true, beacon, impression, counted };
  }

  flush(): Promise<void> {
    return this.counts.flush();
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.counts.start(intervalMs, onError);
  }

  async stop(): Promise<void> {
    await this.counts.stop();
    await this.ledger.close();
  }
}
