import { createHash, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Bus } from '../bus/index.js';
import type { SigningAlg } from '../config.js';
import { WholeTableCache } from '../directory/cache.js';
import type { Clock } from '../domain/clock.js';
import { ApiError } from '../domain/errors.js';
import type { AuditRepository } from '../store/audit.js';
import type { SigningKeyRepository, StoredSigningKey } from '../store/signing-keys.js';
import { encodeSegment, TOKEN_TYPE } from './jwt.js';
import type { Sealer } from './master-rotation.js';

const generate = promisify(generateKeyPair);
const SCHEDULER = { actor: 'system', ip: null };
/** A verifier meeting an unknown kid reads the keys again at most once per this period (as jose's remote JWKS does). */
export const UNKNOWN_KID_COOLDOWN_MS = 1_000;
/** Rotations asked for within this window, with the same activation, make one key. */
export const ROTATION_WINDOW_MS = 10_000;
const KID_SHAPE = /^[A-Za-z0-9_-]{43}$/; // an RFC 7638 SHA-256 thumbprint

/** How long verifiers may cache the JWKS document (its Cache-Control max-age). */
export function jwksMaxAgeSeconds(prepublishSeconds: number): number {
  return Math.min(300, prepublishSeconds);
}

export interface Rotation {
  key: SigningKey;
  /** False when a rotation asked for moments before, with the same activation, made this key. */
  created: boolean;
  warnings: string[];
}

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  createdAt: number;
  activatesAt: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JsonWebKey;
  /** The protected header of every token this key signs, already base64url-encoded. */
  encodedHeader: string;
}

export type KeyStatus = 'pending' | 'active' | 'retiring' | 'expired';

export interface KeyRingOptions {
  alg: SigningAlg;
  /** Longest lifetime of a token, plus the verifiers' clock skew: how long a retired key stays published. */
  tokenLifetimeSeconds: number;
  prepublishSeconds: number;
  rotationDays: number;
  /** How long verifiers may cache JWKS: an activation sooner than this needs `force`. */
  jwksMaxAgeSeconds: number;
  /** Runs a function under a lock every node shares, so one node rotates at a time. */
  lock: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

interface KeyState {
  signing: SigningKey | undefined;
  published: Map<string, SigningKey>;
  jwks: string;
  /** The state holds until this time (ms); then a pending key activates or a retired one expires. */
  validUntil: number;
}

/** A JSON Web Key (RFC 7517) as node:crypto exports it, with the members Portcullis adds (kid, alg, use). */
export interface JsonWebKey {
  kty?: string;
  [member: string]: unknown;
}

/**
 * RFC 7638 §3: a public JWK's SHA-256 thumbprint, over the JSON of its required members in
 * lexicographic order (RSA: e, kty, n; EC: crv, kty, x, y; OKP: crv, kty, x), base64url. It is the kid.
 */
export function jwkThumbprint(jwk: JsonWebKey): string {
  let members: Record<string, unknown>;
  if (jwk.kty === 'RSA') members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  else if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  else if (jwk.kty === 'OKP') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  else throw new Error(`no RFC 7638 members for key type ${String(jwk.kty)}`);
  for (const [name, value] of Object.entries(members)) {
    if (typeof value !== 'string' || value === '') throw new Error(`the JWK has no ${name}`);
  }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

async function newKeyPair(alg: SigningAlg): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  if (alg === 'RS256') return generate('rsa', { modulusLength: 2048 });
  if (alg === 'ES256') return generate('ec', { namedCurve: 'P-256' });
  return generate('ed25519');
}

/**
 * The signing keys: which one signs now, which are published in JWKS, and rotation.
 * A new key is published `prepublishSeconds` before it signs; a superseded key stays published
 * until every token it signed has expired. All of it is derived from two timestamps per key,
 * so every node that reads the same rows reaches the same answer.
 */
export class KeyRing {
  private keys: SigningKey[] = []; // newest activation first
  private state: KeyState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rotating: Promise<unknown> | undefined;
  private readonly cache: WholeTableCache;
  /** Told of a failed background reload of the key rows (the registry reloads them; see startSchedule). */
  private onReloadError: (err: unknown) => void = () => {};
  private lastUnknownKidReload = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly repo: SigningKeyRepository,
    private readonly audit: AuditRepository,
    private readonly sealer: Sealer,
    private readonly clock: Clock,
    private readonly options: KeyRingOptions,
    private readonly bus: Bus,
  ) {
    this.cache = bus.caches.register(
      'signing_keys',
      new WholeTableCache(
        () => this.read(),
        () => this.keys.length,
        (err) => this.onReloadError(err),
      ),
      {
        'keys.changed': () => 'all',
      },
    );
  }

  /** Reads every key from the store (one read at a time; the registry also calls it on events and on its period). */
  load(): Promise<void> {
    return this.cache.reload();
  }

  private async read(): Promise<void> {
    const stored = await this.repo.list();
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    this.keys = stored.map((s) => known.get(s.kid) ?? this.open(s));
    this.state = undefined;
  }

  /** At first start there is no key: make one that signs at once. */
  async ensureKey(): Promise<void> {
    await this.load();
    if (this.keys.length > 0) return;
    // Nodes starting together on an empty store: the first makes the key, the others load it.
    await this.exclusive(async () => {
      await this.load();
      return this.keys.length === 0 ? this.createKey(0, SCHEDULER) : undefined;
    });
  }

  private open(s: StoredSigningKey): SigningKey {
    const privateKey = createPrivateKey({ key: this.sealer.unseal(s.privateKey, s.kid), format: 'der', type: 'pkcs8' });
    const publicJwk = JSON.parse(s.publicJwk) as JsonWebKey;
    const alg = s.alg as SigningAlg;
    return {
      kid: s.kid,
      alg,
      createdAt: s.createdAt,
      activatesAt: s.activatesAt,
      privateKey,
      publicKey: createPublicKey(privateKey),
      publicJwk,
      encodedHeader: encodeSegment({ alg, kid: s.kid, typ: TOKEN_TYPE }),
    };
  }

  /**
   * Creates a key that is published now and signs after `activateAfterSeconds`; audited as `who`.
   * An activation sooner than verifiers may cache JWKS is refused unless `force`d. A rotation
   * asked for within ROTATION_WINDOW_MS of another, with the same activation, returns that key.
   */
  async rotate(
    activateAfterSeconds = this.options.prepublishSeconds,
    who: { actor: string; ip: string | null } = SCHEDULER,
    options: { force?: boolean } = {},
  ): Promise<Rotation> {
    const cacheSeconds = this.options.jwksMaxAgeSeconds;
    const early = activateAfterSeconds < cacheSeconds;
    if (early && !options.force) {
      throw ApiError.validation(
        'activation-sooner-than-jwks-cache',
        `activate_after_seconds ${activateAfterSeconds} is sooner than verifiers may cache the key set (${cacheSeconds} s): tokens signed by the new key could be refused until they refetch it; use at least ${cacheSeconds}, or send "force": true`,
      );
    }
    const warnings = early
      ? [
          `the new key signs ${activateAfterSeconds} s from now, before verifiers that cached the key set (up to ${cacheSeconds} s) refetch it: they may refuse its tokens until then`,
        ]
      : [];
    let created = false;
    const key = await this.exclusive(async () => {
      await this.load();
      const now = this.clock.now();
      const wanted = now + activateAfterSeconds * 1000;
      // The first key is never a rotation's, however young.
      const oldest = this.keys.reduce<SigningKey | undefined>((a, k) => (a && a.createdAt <= k.createdAt ? a : k), undefined);
      const recent = this.keys.find((k) => k !== oldest && now - k.createdAt <= ROTATION_WINDOW_MS && Math.abs(k.activatesAt - wanted) <= ROTATION_WINDOW_MS);
      if (recent) return recent;
      created = true;
      return this.createKey(activateAfterSeconds, who);
    });
    return { key, created, warnings };
  }

  /**
   * The published key for a kid; one this node does not know makes it read the keys again (at
   * most once per UNKNOWN_KID_COOLDOWN_MS), so a key made on another node moments ago verifies
   * even when its event was lost.
   */
  async findVerificationKey(kid: string): Promise<SigningKey | undefined> {
    const known = this.verificationKey(kid);
    if (known || !KID_SHAPE.test(kid)) return known;
    const now = this.clock.now();
    if (now - this.lastUnknownKidReload < UNKNOWN_KID_COOLDOWN_MS) return undefined;
    this.lastUnknownKidReload = now;
    await this.load().catch(() => {});
    return this.verificationKey(kid);
  }

  /** One rotation at a time: in this process by a shared promise, across nodes by the store's lock. */
  private exclusive<T extends SigningKey | undefined>(fn: () => Promise<T>): Promise<T> {
    const run = (this.rotating ?? Promise.resolve()).catch(() => {}).then(() => this.options.lock('key-rotation', fn));
    this.rotating = run;
    return run;
  }

  private async createKey(activateAfterSeconds: number, who: { actor: string; ip: string | null }): Promise<SigningKey> {
    const alg = this.options.alg;
    const { privateKey, publicKey } = await newKeyPair(alg);
    const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey;
    const kid = jwkThumbprint(jwk);
    const publicJwk: JsonWebKey = { ...jwk, kid, alg, use: 'sig' };
    const now = this.clock.now();
    const stored: StoredSigningKey = {
      kid,
      alg,
      publicJwk: JSON.stringify(publicJwk),
      privateKey: await this.sealer.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), kid),
      createdAt: now,
      activatesAt: now + activateAfterSeconds * 1000,
    };
    await this.repo.insert(stored);
    await this.audit.recordChange(now, who, 'key.rotated', { type: 'signing_key', id: kid }, null, {
      alg,
      activates_at: new Date(stored.activatesAt).toISOString(),
    });
    await this.load();
    await this.bus.publish({ type: 'keys.changed' });
    return this.keys.find((k) => k.kid === kid) as SigningKey;
  }

  private current(): KeyState {
    const now = this.clock.now();
    if (this.state && now < this.state.validUntil) return this.state;
    const lifetime = this.options.tokenLifetimeSeconds * 1000;
    const published = new Map<string, SigningKey>();
    let signing: SigningKey | undefined;
    let validUntil = Number.POSITIVE_INFINITY;
    // Walk from newest to oldest: the first active key signs; each older key is published
    // until the key after it has been signing for a whole token lifetime.
    let supersededAt: number | undefined;
    for (const key of this.keys) {
      if (key.activatesAt > now) {
        published.set(key.kid, key);
        validUntil = Math.min(validUntil, key.activatesAt);
        continue;
      }
      if (supersededAt === undefined) {
        signing ??= key;
        published.set(key.kid, key);
      } else if (supersededAt + lifetime > now) {
        published.set(key.kid, key);
        validUntil = Math.min(validUntil, supersededAt + lifetime);
      }
      supersededAt = key.activatesAt;
    }
    const jwks = JSON.stringify({ keys: [...published.values()].map((k) => k.publicJwk) });
    this.state = { signing, published, jwks, validUntil };
    return this.state;
  }

  /** The key that signs tokens now. */
  signingKey(): SigningKey {
    const key = this.current().signing;
    if (!key) throw new Error('no signing key is active');
    return key;
  }

  /** A published key by kid, for verification; unknown and expired kids give undefined. */
  verificationKey(kid: string): SigningKey | undefined {
    return this.current().published.get(kid);
  }

  /** The JWKS document (RFC 7517), serialised once per change. */
  jwks(): string {
    return this.current().jwks;
  }

  list(): Array<{ kid: string; alg: SigningAlg; createdAt: number; activatesAt: number; status: KeyStatus }> {
    const state = this.current();
    const now = this.clock.now();
    return this.keys.map((k) => ({
      kid: k.kid,
      alg: k.alg,
      createdAt: k.createdAt,
      activatesAt: k.activatesAt,
      status: k.activatesAt > now ? 'pending' : state.signing === k ? 'active' : state.published.has(k.kid) ? 'retiring' : 'expired',
    }));
  }

  /**
   * Scheduled rotation: a new key once the newest one is older than the rotation period. The
   * check runs again under the lock on freshly read keys, so when every node finds rotation due
   * at once, only the first rotates.
   */
  async rotateIfDue(): Promise<SigningKey | undefined> {
    if (this.options.rotationDays <= 0 || !this.due()) return undefined;
    return this.exclusive(async () => {
      await this.load();
      return this.due() ? this.createKey(this.options.prepublishSeconds, SCHEDULER) : undefined;
    });
  }

  private due(): boolean {
    const newest = this.keys.reduce<SigningKey | undefined>((a, k) => (a && a.createdAt >= k.createdAt ? a : k), undefined);
    return newest === undefined || this.clock.now() - newest.createdAt >= this.options.rotationDays * 86_400_000;
  }

  /** Rotation is checked hourly; the keys themselves are reloaded by the cache registry, whose failures go to `onError` as 'reload'. */
  startSchedule(onError: (err: unknown, task: 'rotation' | 'reload') => void, intervalMs = 3_600_000): void {
    this.onReloadError = (err) => onError(err, 'reload');
    this.timer = setInterval(() => this.rotateIfDue().catch((err: unknown) => onError(err, 'rotation')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
