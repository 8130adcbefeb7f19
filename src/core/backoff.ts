// The retry-delay formulas, in one place (docs/adr/1030-errors-backoff-dependencies.md). Pure: the random source is
// passed in, so decide steps and tests can pin it; waiting is src/runtime/clock.ts's `sleep`.

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** Relative jitter, e.g. 0.1 for ±10 %; 0 for none. */
  jitter: number;
}

/**
 * Exponential backoff with relative jitter, as client-go's rate limiter: `initialMs·2^(failures-1)` capped at
 * `maxMs`, then ±`jitter` of that. `failures` counts from 1 (the first retry waits about `initialMs`).
 */
export function backoffDelay(failures: number, b: Backoff, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.max(0, Math.round(base * (1 + b.jitter * (2 * random() - 1))));
}

/**
 * The AWS SDKs' "full jitter" (standard retry mode): uniform in [0, min(maxMs, initialMs·2^attempt)). `attempt`
 * counts from 1, the attempt that just failed.
 */
export function fullJitterDelay(
  attempt: number,
  b: Omit<Backoff, 'jitter'>,
  random: () => number = Math.random,
): number {
  return random() * Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, attempt));
}
