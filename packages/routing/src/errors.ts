/**
 * Typed errors of `@margay/routing`. Guards check a process-wide brand plus the `code`, never
 * `instanceof` (a dual ESM/CJS install may load two copies of this module).
 *
 * @packageDocumentation
 */

/** Brand set on every error this package throws (`Symbol.for`, shared across module copies). */
export const ROUTING_ERROR_BRAND: unique symbol = Symbol.for("@margay/routing/error") as never;

/** Error codes of `@margay/routing`. */
export const RoutingErrorCode = {
  /** A change given to the calculator is malformed (bad CIDR or address, unknown kind, bad ordinal). */
  InvalidChange: "invalid-change",
  /** The calculator's options are malformed (e.g. an empty node name). */
  InvalidOptions: "invalid-options",
} as const;
/** Union of {@link RoutingErrorCode} values. */
export type RoutingErrorCode = (typeof RoutingErrorCode)[keyof typeof RoutingErrorCode];

/** Structured details of a {@link RoutingError}. */
export interface RoutingErrorDetails {
  /** The change's kind, when the error is about a change. */
  readonly kind?: string | undefined;
  /** Which field is wrong, e.g. `block.allocations[3]`. */
  readonly field?: string | undefined;
  /** The offending value, when it helps. */
  readonly value?: unknown;
  /** Any further context. */
  readonly [key: string]: unknown;
}

/** The single error type this package throws. A rejected change leaves the calculator unchanged. */
export class RoutingError extends Error {
  /** What failed. */
  readonly code: RoutingErrorCode;
  /** Routing errors are deterministic: the same input fails the same way. */
  readonly retryable = false;
  /** Where and what. */
  readonly details: RoutingErrorDetails;
  /** Brand checked by {@link isRoutingError}. */
  readonly [ROUTING_ERROR_BRAND] = true;

  /**
   * @param code - what failed.
   * @param message - human-readable text.
   * @param details - structured context.
   * @param options - optional `cause`.
   */
  constructor(
    code: RoutingErrorCode,
    message: string,
    details: RoutingErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RoutingError";
    this.code = code;
    this.details = details;
  }
}

/**
 * True if `e` is a {@link RoutingError}, and, if `codes` are given, has one of them; by brand, never
 * `instanceof`. The same signature as every other `isXError(e, ...codes)` of Margay.
 */
export function isRoutingError(e: unknown, ...codes: RoutingErrorCode[]): e is RoutingError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [ROUTING_ERROR_BRAND]?: unknown })[ROUTING_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as RoutingError).code);
}
