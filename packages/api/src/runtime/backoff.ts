/**
 * The one back-off of Margay's libraries: exponential growth to a cap with jitter, as client-go's
 * `wait.Backoff`, and an abortable `sleep`. Pure apart from `sleep`'s timer; randomness is injectable.
 *
 * @packageDocumentation
 */

/** Options of {@link backoffDelay} and {@link createBackoff}. */
export interface BackoffOptions {
  /** First delay, ms. Default 200. */
  initialMs?: number | undefined;
  /** Upper bound of the un-jittered delay, ms. Default 30 000. */
  maxMs?: number | undefined;
  /** Growth per attempt. Default 2. */
  factor?: number | undefined;
  /**
   * Spread. A fraction `j` in [0, 1] gives delay × (1 ± j·u) (u uniform in [0, 1)), so a fleet that lost
   * the same server does not come back in lock step; `"full"` gives u × delay (AWS's "full jitter", for
   * contended compare-and-swap retries). Default 0.5.
   */
  jitter?: number | "full" | undefined;
  /** Source of randomness in [0, 1). Default `Math.random`. */
  random?: (() => number) | undefined;
}

interface Resolved {
  initialMs: number;
  maxMs: number;
  factor: number;
  jitter: number | "full";
  random: () => number;
}

function resolve(options: BackoffOptions): Resolved {
  const initialMs = options.initialMs ?? 200;
  const maxMs = options.maxMs ?? 30_000;
  const factor = options.factor ?? 2;
  const jitter = options.jitter === "full" ? "full" : Math.min(1, Math.max(0, options.jitter ?? 0.5));
  if (!(initialMs > 0) || !(maxMs >= initialMs) || !(factor >= 1)) {
    throw new RangeError("backoff needs 0 < initialMs <= maxMs and factor >= 1");
  }
  return { initialMs, maxMs, factor, jitter, random: options.random ?? Math.random };
}

function delayOf(attempt: number, o: Resolved): number {
  const n = Math.max(0, Math.floor(attempt));
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** n);
  if (o.jitter === "full") return Math.floor(o.random() * base);
  const spread = base * o.jitter * (2 * o.random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/**
 * The delay before retry number `attempt` (0 for the first retry): `min(maxMs, initialMs × factor^attempt)`,
 * jittered. Throws `RangeError` on nonsensical options (0 < initialMs <= maxMs, factor >= 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  return delayOf(attempt, resolve(options));
}

/** A back-off sequence (a loop that resets after each success). */
export interface Backoff {
  /** The next delay in ms (and advances the sequence). */
  next(): number;
  /** Back to the initial delay (after a success). */
  reset(): void;
  /** Delays handed out since the last reset. */
  readonly attempts: number;
}

/** Creates a back-off sequence over {@link backoffDelay}; options are validated here, once. */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const o = resolve(options);
  let attempts = 0;
  return {
    next() {
      return delayOf(attempts++, o);
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}

/**
 * Waits `ms` milliseconds. With a `signal`, rejects with `signal.reason` as soon as it aborts (at once if
 * it already has) and leaves no timer behind; callers that own a typed abort error map it.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolvePromise();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
