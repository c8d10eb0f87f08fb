import { createServer as createNetServer } from 'node:net';
import { startTestServer, type TestServer } from 'portcullis/dist/test/helpers/server.js';
import type { FetchLike } from '../../src/discovery.js';

export interface CountingFetch extends FetchLike {
  /** Every request made, as `METHOD path`. */
  calls: string[];
  /** How many requests went to a path. */
  count(path: string): number;
}

/** The real global fetch, counting what goes through it: the network calls stay real. */
export function countingFetch(): CountingFetch {
  const calls: string[] = [];
  const counting = ((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push(`${init?.method ?? (input instanceof Request ? input.method : 'GET')} ${url.pathname}`);
    return fetch(input, init);
  }) as CountingFetch;
  counting.calls = calls;
  counting.count = (path) => calls.filter((c) => c.endsWith(` ${path}`)).length;
  return counting;
}

/** A loopback port nothing listens on (just now). */
export async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/**
 * A test server whose issuer is its own URL, so that discovery from the issuer works (the usual
 * test server names a fixed issuer that does not resolve). Retries if the free port is taken meanwhile.
 */
export async function startDiscoverableServer(env: Record<string, string> = {}): Promise<TestServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await startTestServer({ PORT: String(port), PORTCULLIS_ISSUER: `http://127.0.0.1:${port}`, ...env });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

/** Waits until `condition` holds, checking every few milliseconds, for at most `ms`. */
export async function eventually(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
