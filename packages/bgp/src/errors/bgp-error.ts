/**
 * One guard over every error this package throws: configuration ({@link BgpConfigError}), malformed
 * received messages ({@link BgpWireError}) and values the wire format cannot carry
 * ({@link BgpEncodeError}). Each has a kebab-case `code`, `retryable` and structured `details`.
 *
 * @packageDocumentation
 */

import {
  type BgpEncodeError,
  type BgpEncodeErrorCode,
  type BgpWireError,
  type BgpWireErrorCode,
  isBgpEncodeError,
  isBgpWireError,
} from "../wire/errors.js";
import { type BgpConfigError, type BgpConfigErrorCode, isBgpConfigError } from "./config-error.js";

/** Any error of `@margay/bgp`. */
export type BgpError = BgpConfigError | BgpWireError | BgpEncodeError;

/** The `code` of any {@link BgpError}. */
export type BgpErrorCode = BgpConfigErrorCode | BgpWireErrorCode | BgpEncodeErrorCode;

/**
 * True if `e` is an error of this package (from any copy of it: brands, not `instanceof`), optionally
 * with one of `codes`.
 */
export function isBgpError(e: unknown, ...codes: BgpErrorCode[]): e is BgpError {
  if (!isBgpConfigError(e) && !isBgpWireError(e) && !isBgpEncodeError(e)) return false;
  return codes.length === 0 || (codes as string[]).includes(e.code);
}
