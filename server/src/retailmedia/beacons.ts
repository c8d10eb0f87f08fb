import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { BatchedWrites } from '../store/batched-writes.js';
import type { PlacementRepository } from '../store/placements.js';

export type BeaconKind = 'load' | 'view' | 'click';
export const BEACON_KINDS: readonly BeaconKind[] = ['load', 'view', 'click'];

export interface Beacon {
  partnerId: number;
  /** 0 for the page-level load beacon. */
  placementId: number;
  /** '' for a placement-level beacon. */
  productId: string;
  kind: BeaconKind;
}

const SIGNATURE_LENGTH = 22; // 128 bits of HMAC-SHA-256, base64url

/**
 * Beacon URLs carry what they count, signed with a key derived from the pepper, so the server
 * needs no lookup to count one and nobody can forge counts for placements that were not served.
 */
export class Beacons {
  private readonly key: Buffer;
  private readonly counts: BatchedWrites<string, Beacon & { count: number }>;

  constructor(
    pepper: Buffer,
    private readonly baseUrl: string,
    repository: PlacementRepository,
    readonly clock: Clock,
  ) {
    this.key = createHmac('sha256', pepper).update('portcullis beacon signing key').digest();
    this.counts = new BatchedWrites(
      (batch) => repository.addBeaconCounts(batch),
      (a, b) => ({ ...a, count: a.count + b.count }),
    );
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url').slice(0, SIGNATURE_LENGTH);
  }

  url(beacon: Beacon): string {
    const payload = Buffer.from(JSON.stringify([beacon.partnerId, beacon.placementId, beacon.productId, beacon.kind])).toString('base64url');
    return `${this.baseUrl}/delivery/beacons/${payload}.${this.sign(payload)}`;
  }

  /** The beacon a URL's last segment stands for, or undefined when it is not one the server made. */
  read(segment: string): Beacon | undefined {
    const dot = segment.lastIndexOf('.');
    if (dot <= 0 || segment.length > 2048) return undefined;
    const payload = segment.slice(0, dot);
    const given = Buffer.from(segment.slice(dot + 1));
    const expected = Buffer.from(this.sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      const [partnerId, placementId, productId, kind] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as [number, number, string, BeaconKind];
      return { partnerId, placementId, productId, kind };
    } catch {
      return undefined;
    }
  }

  count(beacon: Beacon): void {
    this.counts.add(JSON.stringify([beacon.partnerId, beacon.placementId, beacon.productId, beacon.kind]), { ...beacon, count: 1 });
  }

  flush(): Promise<void> {
    return this.counts.flush();
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.counts.start(intervalMs, onError);
  }

  stop(): Promise<void> {
    return this.counts.stop();
  }
}
