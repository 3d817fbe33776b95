/**
 * Shared plumbing for the typed errors of `@margay/api`.
 *
 * Guards check a process-wide brand plus the `code`, never `instanceof`: a dual ESM/CJS install can load
 * two copies of this module, and an error built by one copy must still be recognised by the other.
 *
 * @packageDocumentation
 */

import type { InterfaceNameError } from "./interface-name.js";
import type { ManifestError } from "./io/errors.js";
import type { IpParseError } from "./net/ip.js";
import type { SelectorParseError } from "./selector/errors.js";
import type { ValidationError } from "./validation/errors.js";

/** Brand set on every error this package throws (`Symbol.for`, so it is shared across module copies). */
export const API_ERROR_BRAND: unique symbol = Symbol.for("@margay/api/error") as never;

/** Error codes of `@margay/api`. */
export const ApiErrorCode = {
  /** A selector expression failed to tokenize or parse. */
  InvalidSelector: "invalid-selector",
  /** A resource failed validation. */
  InvalidResource: "invalid-resource",
  /** A manifest document could not be read (syntax, structure, unsupported kind or version). */
  InvalidManifest: "invalid-manifest",
  /** A string is not an IP address (see `parseIp`). */
  InvalidIpAddress: "invalid-ip-address",
  /** A string is not a CIDR, or has host bits set where they are not allowed (see `parseCidr`). */
  InvalidCidr: "invalid-cidr",
  /** An interface name, workload interface prefix or endpoint identity is not acceptable. */
  InvalidInterfaceName: "invalid-interface-name",
} as const;
/** Union of {@link ApiErrorCode} values. */
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/**
 * Every error `@margay/api` throws. Each has a kebab-case `code`, `retryable` (always false: api errors
 * are about the input, which fails the same way twice) and structured `details`.
 */
export type ApiError =
  | SelectorParseError
  | ValidationError
  | ManifestError
  | IpParseError
  | InterfaceNameError;

/**
 * True if `e` is an error of `@margay/api` (by brand, so two module copies agree), and, if `codes` are
 * given, has one of them. The same signature as every other `isXError(e, ...codes)` of Margay; the
 * per-class guards (`isValidationError`, ...) remain for the common case.
 */
export function isApiError(e: unknown, ...codes: ApiErrorCode[]): e is ApiError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [API_ERROR_BRAND]?: unknown })[API_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as { code: ApiErrorCode }).code);
}

/** Returns true if `e` is an error thrown by this package with the given code. */
export function hasApiErrorCode(e: unknown, code: ApiErrorCode): boolean {
  return isApiError(e, code);
}
