import { windowOf } from '../../src/ratelimit/store.js';

/**
 * Rate-limit windows (windowOf) are aligned to whole multiples of their length since the epoch. A test that
 * counts a few events against a limit on the real clock calls this first: when the current window
 * ends within `marginMs`, it waits until that end has passed. An end crossed in the middle of the
 * test would start a new fixed window, or weigh the last window's events a little under whole in a
 * sliding one, and let one more request through than the test expects.
 */
export async function clearOfWindowEdge(windowMs: number, marginMs: number): Promise<void> {
  const now = Date.now();
  const left = windowOf(now, windowMs).resetAt - now;
  if (left < marginMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
