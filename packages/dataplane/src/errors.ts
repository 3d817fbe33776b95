/**
 * Typed errors of `@margay/dataplane`.
 *
 * Guards check a process-wide brand plus the `code`, never `instanceof`: a dual ESM/CJS install can load
 * two copies of this module, and an error built by one copy must still be recognised by the other.
 */

/** Brand set on every error this package throws (`Symbol.for`, so it is shared across module copies). */
export const DATAPLANE_ERROR_BRAND: unique symbol = Symbol.for("@margay/dataplane/error") as never;

/** Error codes of `@margay/dataplane`. */
export const DataplaneErrorCode = {
  /** An update in a batch is malformed (bad CIDR, unknown kind, missing field). Not retryable. */
  InvalidUpdate: "invalid-update",
  /** A name that would reach the kernel (interface, netns, path) failed validation. */
  InvalidName: "invalid-name",
  /** An option passed to a factory is out of range. */
  InvalidOptions: "invalid-options",
  /** A kernel command (ip, nft, sysctl, nsenter) exited non-zero. Usually retryable. */
  CommandFailed: "command-failed",
  /** nftables rejected a transaction; the previous ruleset is still in place. */
  NftablesRejected: "nftables-rejected",
  /** A feature the kernel lacks (e.g. the ipip module). */
  Unsupported: "unsupported",
  /** The driver (or the remote peer) is closed. */
  Closed: "closed",
  /** A framed protocol message failed to decode or violated the protocol. */
  Protocol: "protocol",
  /** The remote driver reported an error for a request. */
  Remote: "remote",
  /** The operation was aborted through its `AbortSignal`. */
  Aborted: "aborted",
} as const;
/** Union of {@link DataplaneErrorCode} values. */
export type DataplaneErrorCode = (typeof DataplaneErrorCode)[keyof typeof DataplaneErrorCode];

/** Structured details carried by a {@link DataplaneError}. */
export type DataplaneErrorDetails = Readonly<Record<string, unknown>>;

/** Construction options of a {@link DataplaneError}. */
export interface DataplaneErrorOptions {
  /** Whether retrying the same operation later may succeed. Default: `false`. */
  readonly retryable?: boolean | undefined;
  /** Structured context: ifname, netns, route, argv, stderr... */
  readonly details?: DataplaneErrorDetails | undefined;
  /** The underlying error. */
  readonly cause?: unknown;
}

/** The one error class of this package; branch on `code`. */
export class DataplaneError extends Error {
  /** Brand used by {@link isDataplaneError}. */
  readonly [DATAPLANE_ERROR_BRAND] = true as const;
  /** What failed. */
  readonly code: DataplaneErrorCode;
  /** Whether retrying may succeed. */
  readonly retryable: boolean;
  /** Structured context. */
  readonly details: DataplaneErrorDetails;

  constructor(code: DataplaneErrorCode, message: string, options: DataplaneErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DataplaneError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/**
 * True if `e` is a {@link DataplaneError} (from any copy of this module), and, if `codes` are given, has
 * one of them. The same signature as every other `isXError(e, ...codes)` of Margay; an `undefined` code
 * (the former `code?` form) means "any code".
 */
export function isDataplaneError(e: unknown, ...codes: DataplaneErrorCode[]): e is DataplaneError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [DATAPLANE_ERROR_BRAND]?: unknown })[DATAPLANE_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as DataplaneError).code);
}

/** Throws a `aborted` {@link DataplaneError} if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new DataplaneError(DataplaneErrorCode.Aborted, "operation aborted", { cause: signal.reason });
  }
}
