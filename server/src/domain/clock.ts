/** Time as milliseconds since the epoch; injected so tests can move it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: for tests of grace periods, expiry and rotation. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.now()) {}
  now(): number {
    return this.ms;
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export const DAY_MS = 86_400_000;

let memoDay = Number.NaN;
let memoText = '';

/** The UTC day of a time as YYYY-MM-DD; the last answer is kept, since the token endpoint asks on every token. */
export function utcDay(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== memoDay) {
    memoText = new Date(day * DAY_MS).toISOString().slice(0, 10);
    memoDay = day;
  }
  return memoText;
}
