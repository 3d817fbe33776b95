/**
 * Exponential back-off with jitter, as client-go's `wait.Backoff`: each failure multiplies the delay by
 * `factor` up to `maxMs`, and every delay is spread by up to ±`jitter` of itself so a fleet of watchers
 * that lost the same API server does not come back in lock step.
 *
 * @packageDocumentation
 */

/** Options of {@link createBackoff}. */
export interface BackoffOptions {
  /** First delay, ms. Default 200. */
  initialMs?: number | undefined;
  /** Upper bound of the un-jittered delay, ms. Default 30 000. */
  maxMs?: number | undefined;
  /** Growth per failure. Default 2. */
  factor?: number | undefined;
  /** Spread as a fraction of the delay (0–1): delay × (1 ± jitter·u), u uniform in [0, 1). Default 0.5. */
  jitter?: number | undefined;
  /** Source of randomness in [0, 1). Default `Math.random`. */
  random?: (() => number) | undefined;
}

/** A back-off sequence. */
export interface Backoff {
  /** The next delay in ms (and advances the sequence). */
  next(): number;
  /** Back to the initial delay (after a success). */
  reset(): void;
  /** Failures since the last reset. */
  readonly attempts: number;
}

/** Creates a back-off sequence. */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initial = options.initialMs ?? 200;
  const max = options.maxMs ?? 30_000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const random = options.random ?? Math.random;
  if (!(initial > 0) || !(max >= initial) || !(factor >= 1)) {
    throw new RangeError("backoff needs 0 < initialMs <= maxMs and factor >= 1");
  }
  let attempts = 0;
  return {
    next() {
      const base = Math.min(max, initial * factor ** attempts);
      attempts++;
      const spread = base * jitter * (2 * random() - 1);
      return Math.max(0, Math.round(base + spread));
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}
