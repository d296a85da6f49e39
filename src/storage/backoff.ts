// Retry delays: exponential backoff with "full jitter" (a random delay in [0, min(cap, base·2^n)]), so that
// many clients throttled at once (DigitalOcean's 503 SlowDown, AWS's 503/429) spread out instead of
// retrying in lockstep.
export interface BackoffOptions {
  /** Delay ceiling of the first retry, in ms. */
  baseMs: number;
  /** Upper bound of any single delay, in ms. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 5_000 };

/** Delay before retry number `attempt` (1 = first retry). `random` returns [0, 1). */
export function jitteredBackoffMs(
  attempt: number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
