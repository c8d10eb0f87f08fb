import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';

/**
 * Which peers may tell us the client's address in X-Forwarded-For. The client address is the
 * rightmost entry that a trusted peer did not write: entries to its left are the client's own
 * words and can name anything.
 */
export type TrustedProxies =
  | { kind: 'none' }
  /** The last `hops` peers (the socket's peer first) are proxies: with 1, the client is the entry the proxy appended. */
  | { kind: 'hops'; hops: number }
  /** Peers at these addresses or CIDR ranges are proxies, however many there are in a row. */
  | { kind: 'addresses'; addresses: string[] }
  /** The old `true`: every peer is trusted, so the leftmost entry, which the client writes, wins. */
  | { kind: 'all' };

function isAddressOrRange(entry: string): boolean {
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Reads PORTCULLIS_TRUST_PROXY: `false` (default), a hop count, or a comma list of proxy
 * addresses and CIDR ranges (`10.0.0.0/8, 192.168.1.4`); `true` keeps its old meaning. Throws an
 * Error naming what is wrong, which config.ts turns into a ConfigError.
 */
export function parseTrustedProxies(raw: string | undefined): TrustedProxies {
  const text = raw?.trim() ?? '';
  if (text === '' || text.toLowerCase() === 'false' || text === '0') return { kind: 'none' };
  if (text.toLowerCase() === 'true') return { kind: 'all' };
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 20) throw new Error(`must be a hop count of at most 20, got ${hops}`);
    return { kind: 'hops', hops };
  }
  const addresses = text.split(',').map((s) => s.trim());
  const bad = addresses.find((a) => !isAddressOrRange(a));
  if (bad !== undefined) {
    throw new Error(`must be false, a hop count, or a comma list of IP addresses and CIDR ranges; "${bad.slice(0, 60)}" is none of these`);
  }
  return { kind: 'addresses', addresses };
}

/** Fastify's `trustProxy` for these proxies: its proxy-addr walk returns the rightmost untrusted address. */
export function fastifyTrustProxy(proxies: TrustedProxies): boolean | string[] | ((address: string, hop: number) => boolean) {
  switch (proxies.kind) {
    case 'none':
      return false;
    case 'hops': {
      // Hop 0 is the socket's peer; the first `hops` peers counting from it are proxies.
      const { hops } = proxies;
      return (_address, hop) => hop < hops;
    }
    case 'addresses':
      return proxies.addresses;
    case 'all':
      return true;
  }
}

/** The start-up warning for a setting that lets clients choose their address, or undefined. */
export function trustWarning(proxies: TrustedProxies): string | undefined {
  if (proxies.kind !== 'all') return undefined;
  return 'PORTCULLIS_TRUST_PROXY=true trusts every X-Forwarded-For entry, so a client can choose the address its limits and audit entries use; set the number of proxies in front (1 for one nginx) or their addresses instead';
}

type TrustFn = (address: string, hop: number) => boolean;

const lastEntry = (value: string) => {
  const comma = value.lastIndexOf(',');
  return comma === -1 ? value.trim() : value.slice(comma + 1).trim();
};

/**
 * The client's address, Host and protocol of a raw request by the rules Fastify applies for
 * `fastifyTrustProxy(proxies)` (its request.ip, .host and .protocol), for requests served
 * outside Fastify (the gateway). Without trusted proxies it is the socket's peer.
 */
export class ClientAddresses {
  private readonly trust: TrustFn | undefined;

  constructor(proxies: TrustedProxies) {
    const setting = fastifyTrustProxy(proxies);
    this.trust = setting === false ? undefined : setting === true ? () => true : typeof setting === 'function' ? setting : proxyAddr.compile(setting);
  }

  /** Whether X-Forwarded-For from the peer in front is kept at all. */
  get trustsProxies(): boolean {
    return this.trust !== undefined;
  }

  address(req: IncomingMessage): string {
    if (this.trust === undefined) return req.socket.remoteAddress ?? '';
    const all = proxyAddr.all(req, this.trust);
    return all[all.length - 1] ?? '';
  }

  host(req: IncomingMessage): string {
    const forwarded = req.headers['x-forwarded-host'];
    if (this.trust !== undefined && forwarded && this.trust(req.socket.remoteAddress ?? '', 0)) return lastEntry(forwarded as string);
    return req.headers.host ?? '';
  }

  protocol(req: IncomingMessage): string {
    const forwarded = req.headers['x-forwarded-proto'];
    if (this.trust !== undefined && forwarded && this.trust(req.socket.remoteAddress ?? '', 0)) return lastEntry(forwarded as string);
    return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }
}
