/**
 * CNI error objects: the well-known numeric codes of the specification and the typed error the
 * toolkit throws and prints.
 *
 * Guards check a process-wide brand, never `instanceof`: a dual ESM/CJS install can load two copies of
 * this module and an error built by one copy must still be recognised by the other.
 *
 * @packageDocumentation
 */

/** Brand set on every {@link CniError} (`Symbol.for`, so it is shared across module copies). */
export const CNI_ERROR_BRAND: unique symbol = Symbol.for("@margay/cni/error") as never;

/**
 * The well-known error codes of the CNI specification (section "Error"). Codes 0-99 are reserved for
 * the specification; plugins may use 100 and above for their own errors.
 */
export const CniErrorCode = {
  /** Incompatible CNI version. */
  IncompatibleVersion: 1,
  /** Unsupported field in network configuration; the message must name the key and value. */
  UnsupportedField: 2,
  /** Container unknown or does not exist; the runtime need not clean up (e.g. call DEL). */
  UnknownContainer: 3,
  /** Invalid necessary environment variables; the message must name them. */
  InvalidEnvironmentVariables: 4,
  /** I/O failure, e.g. failed to read the network configuration from stdin. */
  IoFailure: 5,
  /** Failed to decode content, e.g. stdin is not JSON. */
  DecodingFailure: 6,
  /** Invalid network configuration. */
  InvalidNetworkConfig: 7,
  /** A transient condition: the runtime should retry later. */
  TryAgainLater: 11,
  /** The plugin is not available: it cannot service ADD requests (STATUS). */
  PluginNotAvailable: 50,
  /** The plugin is not available and existing containers may have limited connectivity (STATUS). */
  PluginNotAvailableLimitedConnectivity: 51,
  /** Not in the specification: what libcni's skeleton reports for an error that carries no CNI code. */
  Internal: 999,
} as const;
/** Union of {@link CniErrorCode} values (a plugin may also use any integer ≥ 100). */
export type CniErrorCode = (typeof CniErrorCode)[keyof typeof CniErrorCode];

/** First code a plugin may use for its own errors. */
export const PLUGIN_SPECIFIC_ERROR_BASE = 100;

/**
 * String-literal name of an error, derived from its numeric CNI code, so `code` in logs and guards is
 * readable while {@link CniError.cniCode} stays the number the spec defines.
 */
export type CniErrorName =
  | "incompatible-version"
  | "unsupported-field"
  | "unknown-container"
  | "invalid-environment-variables"
  | "io-failure"
  | "decoding-failure"
  | "invalid-network-config"
  | "try-again-later"
  | "plugin-not-available"
  | "plugin-not-available-limited-connectivity"
  | "plugin-specific"
  | "reserved";

const NAMES: Readonly<Record<number, CniErrorName>> = {
  1: "incompatible-version",
  2: "unsupported-field",
  3: "unknown-container",
  4: "invalid-environment-variables",
  5: "io-failure",
  6: "decoding-failure",
  7: "invalid-network-config",
  11: "try-again-later",
  50: "plugin-not-available",
  51: "plugin-not-available-limited-connectivity",
};

/** Returns the {@link CniErrorName} of a numeric CNI error code. */
export function cniErrorName(code: number): CniErrorName {
  return NAMES[code] ?? (code >= PLUGIN_SPECIFIC_ERROR_BASE ? "plugin-specific" : "reserved");
}

/** The error object a plugin prints on stdout (with a non-zero exit status) when an operation fails. */
export interface CniErrorObject {
  /** The spec version of the output; the version the runtime asked for, when known. */
  cniVersion?: string;
  /** Numeric error code: 1-99 well-known, 100+ plugin-specific. */
  code: number;
  /** Short message. */
  msg: string;
  /** Longer explanation (optional). */
  details?: string;
}

/** Options of {@link CniError}. */
export interface CniErrorOptions {
  /** Longer explanation printed as `details`. */
  details?: string | undefined;
  /** Structured context for logs (never printed to the runtime). */
  context?: Readonly<Record<string, unknown>> | undefined;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * A CNI error: what a plugin prints and exits non-zero with, and what the runtime side throws when a
 * plugin reports one. `cniCode` is the spec's number; `code` its string name.
 */
export class CniError extends Error {
  /** Brand checked by {@link isCniError}. */
  readonly [CNI_ERROR_BRAND] = true as const;
  /** String name of the code (e.g. `"invalid-network-config"`). */
  readonly code: CniErrorName;
  /** Numeric code as defined by the specification. */
  readonly cniCode: number;
  /** Longer explanation, printed as `details`. */
  readonly details: string | undefined;
  /** Structured context for logs. */
  readonly context: Readonly<Record<string, unknown>>;
  /** True for code 11 (try again later): the runtime may retry the same call. */
  readonly retryable: boolean;

  constructor(cniCode: number, msg: string, options: CniErrorOptions = {}) {
    super(msg, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CniError";
    this.cniCode = cniCode;
    this.code = cniErrorName(cniCode);
    this.details = options.details;
    this.context = options.context ?? {};
    this.retryable = cniCode === CniErrorCode.TryAgainLater;
  }

  /** The spec's error object for this error, stamped with `cniVersion` when given. */
  toErrorObject(cniVersion?: string): CniErrorObject {
    const out: CniErrorObject =
      cniVersion === undefined
        ? { code: this.cniCode, msg: this.message }
        : { cniVersion, code: this.cniCode, msg: this.message };
    if (this.details !== undefined && this.details !== "") out.details = this.details;
    return out;
  }
}

/**
 * Returns true if `e` is a {@link CniError} (by brand), and, if `codes` are given, has one of them. A
 * code is either the string name (`"try-again-later"`, compared with {@link CniError.code}) or the
 * spec's number (`11`, compared with {@link CniError.cniCode}), so the former numeric form still works.
 * The same signature as every other `isXError(e, ...codes)` of Margay; an `undefined` code means "any".
 */
export function isCniError(e: unknown, ...codes: Array<CniErrorName | number>): e is CniError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [CNI_ERROR_BRAND]?: unknown })[CNI_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  if (wanted.length === 0) return true;
  const err = e as CniError;
  return wanted.some((c) => (typeof c === "number" ? err.cniCode === c : err.code === c));
}

/**
 * Reads a spec error object out of parsed JSON (a plugin's stdout), or returns undefined if `v` is not
 * one. Lenient about extra keys, strict about `code` and `msg`.
 */
export function parseErrorObject(v: unknown): CniErrorObject | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.code !== "number" || !Number.isInteger(o.code)) return undefined;
  const out: CniErrorObject = { code: o.code, msg: typeof o.msg === "string" ? o.msg : "" };
  if (typeof o.cniVersion === "string") out.cniVersion = o.cniVersion;
  if (typeof o.details === "string") out.details = o.details;
  return out;
}
