import { createHash } from 'node:crypto';
import type { Bus } from '../bus/index.js';
import type { Clock } from '../domain/clock.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { TokenDenylist } from './denylist.js';

/** The revocation feed's document, as resource servers read it (times in seconds since the epoch). */
export interface RevocationDocument {
  issuer: string;
  /** Tokens revoked one by one (RFC 7009): refuse a token with this `jti` until `exp`. */
  tokens: Array<{ jti: string; exp: number }>;
  /** Credentials revoked now: refuse every token of `client_id` issued at or before `revoked_at`, until `exp`. */
  credentials: Array<{ client_id: string; revoked_at: number; exp: number }>;
}

export interface RevocationSnapshot {
  body: string;
  /** A strong validator derived from the body, so every node of a fleet gives the same one for the same list. */
  etag: string;
}

const REBUILD_AFTER_MS = 30_000; // entries past their expiry leave the document within this time

/**
 * What a resource server needs to refuse revoked tokens: the jti denylist (owned by
 * {@link TokenDenylist}) and the credentials revoked "now" whose tokens may still be alive. Both
 * are in memory; the document and its ETag are built once per change, so a poll costs a string
 * comparison (304) or sending the cached body (200).
 */
export class RevocationList {
  private readonly credentials = new Map<string, number>(); // client_id → revoked at (ms)
  private credentialsVersion = 0;
  private built: (RevocationSnapshot & { versions: string; at: number }) | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly denylist: TokenDenylist,
    private readonly repository: CredentialRepository,
    private readonly bus: Bus,
    private readonly clock: Clock,
    private readonly options: {
      issuer: string;
      /** How long after its revocation a credential is listed: the longest a token issued before can live, skew included. */
      horizonMs: number;
    },
  ) {}

  /** Loads the recent revocations and follows changes; call {@link stop} to stop following. */
  async start(refreshMs: number, onError: (err: unknown) => void): Promise<void> {
    this.unsubscribe = this.bus.subscribe((event) => {
      if (event.type === 'credential.changed') void this.reread(event.clientId).catch(onError);
      else if (event.type === 'resync') void this.load().catch(onError);
    });
    await this.load();
    // A safety net for a missed event, as the caches have.
    this.timer = setInterval(() => this.load().catch(onError), refreshMs);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
  }

  async load(): Promise<void> {
    // Expired entries go here too, not only when the feed is read: a node nobody polls must not
    // keep every credential ever revoked.
    this.dropExpired(this.clock.now());
    const revoked = await this.repository.revokedSince(this.clock.now() - this.options.horizonMs);
    let changed = false;
    for (const { clientId, revokedAt } of revoked) {
      if (this.credentials.get(clientId) !== revokedAt) {
        this.credentials.set(clientId, revokedAt);
        changed = true;
      }
    }
    if (changed) this.credentialsVersion++;
  }

  private async reread(clientId: string): Promise<void> {
    const credential = await this.repository.get(clientId);
    if (credential?.revokedAt == null || this.credentials.get(clientId) === credential.revokedAt) return;
    // Keyed by the row's own string: the event's client_id can be a slice of the operator's request
    // URL, and a key that is a slice keeps the whole URL alive for as long as the entry lives.
    this.credentials.set(credential.clientId, credential.revokedAt);
    this.credentialsVersion++;
  }

  /** Credentials whose tokens issued before the revocation have all expired. */
  private dropExpired(now: number): void {
    for (const [clientId, revokedAt] of this.credentials) {
      if (revokedAt + this.options.horizonMs <= now) {
        this.credentials.delete(clientId);
        this.credentialsVersion++;
      }
    }
  }

  /** Credentials listed now (expired ones leave at the next refresh or read). */
  get size(): number {
    return this.credentials.size;
  }

  /** The document and its ETag, rebuilt only when something changed or entries may have expired. */
  snapshot(): RevocationSnapshot {
    const now = this.clock.now();
    const version = () => `${this.denylist.version}.${this.credentialsVersion}`;
    if (this.built && this.built.versions === version() && now - this.built.at < REBUILD_AFTER_MS) return this.built;
    this.dropExpired(now);
    const versions = version();
    const seconds = (ms: number) => Math.ceil(ms / 1000);
    const tokens: RevocationDocument['tokens'] = [];
    for (const [jti, expiresAt] of this.denylist.entries()) if (expiresAt > now) tokens.push({ jti, exp: seconds(expiresAt) });
    const credentials: RevocationDocument['credentials'] = [];
    for (const [clientId, revokedAt] of this.credentials) {
      credentials.push({ client_id: clientId, revoked_at: seconds(revokedAt), exp: seconds(revokedAt + this.options.horizonMs) });
    }
    // Sorted, so the same list gives the same bytes and ETag on every node.
    tokens.sort((a, b) => (a.jti < b.jti ? -1 : a.jti > b.jti ? 1 : 0));
    credentials.sort((a, b) => (a.client_id < b.client_id ? -1 : a.client_id > b.client_id ? 1 : 0));
    const document: RevocationDocument = { issuer: this.options.issuer, tokens, credentials };
    const body = JSON.stringify(document);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    this.built = { body, etag, versions, at: now };
    return this.built;
  }
}
