/**
 * Typed errors of `@margay/policy`. Guards check a process-wide brand plus the `code`, never
 * `instanceof` (a dual ESM/CJS install may load two copies of this module).
 *
 * @packageDocumentation
 */

/** Brand set on every error this package throws (`Symbol.for`, shared across module copies). */
export const POLICY_ERROR_BRAND: unique symbol = Symbol.for("@margay/policy/error") as never;

/** Error codes of `@margay/policy`. */
export const PolicyErrorCode = {
  /** A resource or packet given to the package is malformed (bad CIDR, port, protocol, selector). */
  InvalidInput: "invalid-input",
  /** A conversion met a field it does not support (e.g. an AdminNetworkPolicy `nodes` peer). */
  Unsupported: "unsupported",
  /** The evaluator was asked about an endpoint that is not in the model. */
  UnknownEndpoint: "unknown-endpoint",
  /** An update stream broke its ordering contract (e.g. a policy named an IP set not yet sent). */
  StreamViolation: "stream-violation",
} as const;
/** Union of {@link PolicyErrorCode} values. */
export type PolicyErrorCode = (typeof PolicyErrorCode)[keyof typeof PolicyErrorCode];

/** Structured details of a {@link PolicyError}. */
export interface PolicyErrorDetails {
  /** Where the problem is, e.g. `NetworkPolicy/ns/name spec.ingress[2].destination.ports[0]`. */
  readonly path?: string | undefined;
  /** The offending value, when it helps. */
  readonly value?: unknown;
  /** Any further context. */
  readonly [key: string]: unknown;
}

/** The single error type this package throws. */
export class PolicyError extends Error {
  /** What failed. */
  readonly code: PolicyErrorCode;
  /** Policy errors are deterministic: the same input fails the same way. */
  readonly retryable = false;
  /** Where and what. */
  readonly details: PolicyErrorDetails;
  /** Brand checked by {@link isPolicyError}. */
  readonly [POLICY_ERROR_BRAND] = true;

  /**
   * @param code - what failed.
   * @param message - human-readable text.
   * @param details - structured context.
   * @param options - optional `cause`.
   */
  constructor(
    code: PolicyErrorCode,
    message: string,
    details: PolicyErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "PolicyError";
    this.code = code;
    this.details = details;
  }
}

/**
 * True if `e` is a {@link PolicyError}, and, if `codes` are given, has one of them; by brand, never
 * `instanceof`. The same signature as every other `isXError(e, ...codes)` of Margay; an `undefined`
 * code (the former `code?` form) means "any code".
 */
export function isPolicyError(e: unknown, ...codes: PolicyErrorCode[]): e is PolicyError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [POLICY_ERROR_BRAND]?: unknown })[POLICY_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as PolicyError).code);
}
