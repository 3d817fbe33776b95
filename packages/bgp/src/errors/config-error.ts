/**
 * The typed error for anything misconfigured in the RIB or the speaker: bad ASNs, router ids, prefixes,
 * policies, peers or listen addresses. Thrown synchronously where the configuration is accepted.
 *
 * @packageDocumentation
 */

/** Brand of {@link BgpConfigError} (`Symbol.for`, shared across module copies of a dual install). */
export const BGP_CONFIG_ERROR_BRAND: unique symbol = Symbol.for("@margay/bgp/config-error") as never;

/** What was wrong. */
export type BgpConfigErrorCode =
  | "config-invalid"
  | "config-duplicate-peer"
  | "config-unknown-peer"
  | "config-closed";

/** Structured context of a {@link BgpConfigError}. */
export interface BgpConfigErrorDetails {
  /** The offending option, e.g. `peers[0].holdTime`. */
  field?: string;
  /** The offending value, as text. */
  value?: string;
  /** The peer concerned, as `address` or `address:port`. */
  peer?: string;
}

/** A configuration the RIB or speaker cannot accept. Never retryable: fix the configuration. */
export class BgpConfigError extends Error {
  /** Always true; see {@link isBgpConfigError}. */
  readonly [BGP_CONFIG_ERROR_BRAND] = true as const;
  override readonly name = "BgpConfigError";
  readonly code: BgpConfigErrorCode;
  readonly retryable = false as const;
  readonly details: BgpConfigErrorDetails;

  constructor(
    code: BgpConfigErrorCode,
    message: string,
    details: BgpConfigErrorDetails = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
  }
}

/** True if `e` is a {@link BgpConfigError} from any copy of this package, optionally with one of `codes`. */
export function isBgpConfigError(e: unknown, ...codes: BgpConfigErrorCode[]): e is BgpConfigError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [BGP_CONFIG_ERROR_BRAND]?: unknown })[BGP_CONFIG_ERROR_BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as { code: BgpConfigErrorCode }).code);
}

/** Shorthand for an invalid option. */
export function invalid(field: string, value: unknown, why: string): BgpConfigError {
  return new BgpConfigError("config-invalid", `${field}: ${why} (got ${String(value)})`, {
    field,
    value: String(value),
  });
}
