import type { Clock } from '../domain/clock.js';
import { OAuthError } from '../domain/errors.js';
import type { Application } from '../store/applications.js';
import type { AuditRepository } from '../store/audit.js';
import type { Credential } from '../store/credentials.js';
import { MINUTE_MS, type RateLimiter, type RateLimitOutcome } from '../ratelimit/limiter.js';
import { parseBasic } from '../http/form.js';
import type { TokenIssuer } from './tokens.js';

/** Too many requests: RFC 6749's error shape with the status and Retry-After of RFC 6585. */
export class RateLimitedError extends OAuthError {
  constructor(
    readonly outcome: RateLimitOutcome,
    readonly retryAfter: number,
    what: string,
  ) {
    super('temporarily_unavailable', `${what}; retry after ${retryAfter} seconds`, 429);
  }
}

export interface ClientAuthLimits {
  /** Failed authentications a minute from one address, whatever the client_id; then that address waits. */
  failuresPerIp: number;
  /** Failed authentications a minute for one client_id from one address; then that pair waits. */
  failuresPerClientIp: number;
  /** Failed authentications a minute for one client_id from every address that raise an alert (never a refusal). */
  failureAlertPerClient: number;
}

/** How the client authenticated (RFC 6749 §2.3.1): `basic` says the Authorization header was used, which shapes a 401. */
export type ClientAuthOutcome =
  | { ok: true; credential: Credential; application: Application; basic: boolean }
  | { ok: false; error: OAuthError; basic: boolean };

/** Told when one client's failures from everywhere cross the alert threshold (at most once a minute per client). */
export type FailureSpikeListener = (spike: { clientId: string; applicationId: number; failures: number; ip: string }) => void;

const ALERT_EVERY_MS = MINUTE_MS;
const MAX_ALERTED = 10_000;

/**
 * Client authentication for the token, revocation and introspection endpoints, with its limits.
 * Failures are counted per address and per (client_id, address) in sliding one-minute windows,
 * and only those are refused: a client_id is public, so a count per client_id alone would let
 * anyone lock its owner out, while 256-bit secrets need no such lock. A client's own correct
 * secret from a clean address therefore always works. Failures per client_id from everywhere
 * only raise an alert (a metric and an audit event).
 */
export class ClientAuthenticator {
  private readonly alerted = new Map<string, number>();
  private readonly spikeListeners: FailureSpikeListener[] = [];

  constructor(
    private readonly tokens: TokenIssuer,
    private readonly limiter: RateLimiter,
    private readonly limits: ClientAuthLimits,
    private readonly clock: Clock,
  ) {}

  onFailureSpike(listener: FailureSpikeListener): void {
    this.spikeListeners.push(listener);
  }

  /** client_secret_basic or client_secret_post (one of them), checked against the limits, then the secret. */
  async authenticate(authorization: string | undefined, params: Map<string, string>, ip: string): Promise<ClientAuthOutcome> {
    const basic = authorization !== undefined;
    const presented = presentedCredentials(authorization, params);
    if (!presented.ok) return { ok: false, error: presented.error, basic };
    const { clientId, clientSecret } = presented;

    const blocked = this.blocked(clientId, ip);
    if (blocked) return { ok: false, error: blocked, basic };

    const auth = await this.tokens.authenticate(clientId, clientSecret);
    if (auth.ok) return { ok: true, credential: auth.credential, application: auth.application, basic };
    this.failed(clientId, ip, auth.credential);
    return { ok: false, error: new OAuthError('invalid_client', 'client authentication failed'), basic };
  }

  /** A 429 when this address, or this client_id from this address, has failed too often lately. */
  private blocked(clientId: string, ip: string): RateLimitedError | undefined {
    const { failuresPerIp, failuresPerClientIp } = this.limits;
    const over =
      (failuresPerIp > 0 ? this.limiter.over(`auth-failures:ip:${ip}`, MINUTE_MS, failuresPerIp) : undefined) ??
      (failuresPerClientIp > 0 ? this.limiter.over(pairKey(clientId, ip), MINUTE_MS, failuresPerClientIp) : undefined);
    return over && new RateLimitedError(over, this.limiter.retryAfter(over), 'too many failed client authentications from this address');
  }

  private failed(clientId: string, ip: string, credential: Credential | undefined): void {
    if (this.limits.failuresPerIp > 0) this.limiter.count(`auth-failures:ip:${ip}`, MINUTE_MS);
    // Only ids that exist get counters of their own, so made-up ids cannot fill the store.
    if (!credential) return;
    if (this.limits.failuresPerClientIp > 0) this.limiter.count(pairKey(clientId, ip), MINUTE_MS);
    const threshold = this.limits.failureAlertPerClient;
    if (threshold <= 0) return;
    const failures = this.limiter.count(`auth-failures:client:${clientId}`, MINUTE_MS);
    if (failures < threshold) return;
    const now = this.clock.now();
    const last = this.alerted.get(clientId);
    if (last !== undefined && now - last < ALERT_EVERY_MS) return;
    if (this.alerted.size >= MAX_ALERTED) for (const [id, at] of this.alerted) if (now - at >= ALERT_EVERY_MS) this.alerted.delete(id);
    this.alerted.set(clientId, now);
    for (const listener of this.spikeListeners) listener({ clientId, applicationId: credential.applicationId, failures: Math.round(failures), ip });
  }
}

const pairKey = (clientId: string, ip: string) => `auth-failures:client-ip:${clientId}:${ip}`;

type Presented = { ok: true; clientId: string; clientSecret: string } | { ok: false; error: OAuthError };

/** The client_id and secret from HTTP Basic or the form body; sending the secret both ways is an error (RFC 6749 §2.3.1). */
function presentedCredentials(authorization: string | undefined, params: Map<string, string>): Presented {
  let clientId = params.get('client_id');
  let clientSecret = params.get('client_secret');
  if (authorization !== undefined) {
    if (!/^basic(\s|$)/i.test(authorization)) {
      return { ok: false, error: new OAuthError('invalid_client', 'the Authorization header of this request must use the Basic scheme', 401) };
    }
    if (clientSecret !== undefined) {
      return { ok: false, error: new OAuthError('invalid_request', 'send the client secret either in the Authorization header or in the body, not both') };
    }
    let basic: { clientId: string; clientSecret: string };
    try {
      basic = parseBasic(authorization);
    } catch (err) {
      if (err instanceof OAuthError) return { ok: false, error: err };
      throw err;
    }
    if (clientId !== undefined && clientId !== basic.clientId) {
      return { ok: false, error: new OAuthError('invalid_request', 'client_id in the body differs from the one in the Authorization header') };
    }
    clientId = basic.clientId;
    clientSecret = basic.clientSecret;
  }
  if (!clientId || !clientSecret) {
    return { ok: false, error: new OAuthError('invalid_client', 'client authentication is required: send client_id and client_secret') };
  }
  return { ok: true, clientId, clientSecret };
}

/** Writes each spike as an audit event of the credential's organization, so its owners see someone guessing. */
export function auditFailureSpikes(
  audit: AuditRepository,
  organizationOf: (applicationId: number) => Promise<number | undefined>,
  clock: Clock,
  onError: (err: unknown) => void,
): FailureSpikeListener {
  return (spike) => {
    void (async () => {
      const organizationId = (await organizationOf(spike.applicationId)) ?? null;
      await audit.recordChange(
        clock.now(),
        { actor: 'system', ip: spike.ip },
        'credential.authentication_failure_spike',
        { type: 'credential', id: spike.clientId },
        organizationId,
        { failures_last_minute: spike.failures },
      );
    })().catch(onError);
  };
}
