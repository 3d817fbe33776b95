/**
 * Typed errors of the IPAM: every failure carries a string-literal `code`, whether a retry may help
 * (`retryable`), structured `details` (pool, ip, handle, block) and the underlying `cause`.
 */

/** Error codes raised by `@margay/ipam`. */
export const IpamErrorCode = {
  /**
   * No free address this host may use in the eligible pool(s); `details.pools` names them and
   * `details.poolFree` gives each one's free and total addresses (decimal strings).
   */
  PoolExhausted: "pool-exhausted",
  /**
   * The host holds `maxBlocksPerHost` blocks of the family, they are full, and no other block could
   * be borrowed from (or `strictAffinity` forbids it), while the pool still has room; `details` has
   * the numbers.
   */
  HostBlockLimit: "host-block-limit",
  /** No enabled pool of the requested family selects this node (or none exists). */
  NoPools: "no-pools",
  /** A specific address is already allocated. */
  AlreadyAllocated: "already-allocated",
  /** The address is not inside any configured pool. */
  NotInPool: "not-in-pool",
  /** The pool holding the address is disabled. */
  PoolDisabled: "pool-disabled",
  /** Malformed input (address, CIDR, handle id, block size, options). */
  Invalid: "invalid",
  /** A stored `IPPool` fails validation; allocation refuses to run until it is fixed. `details.pools` names them. */
  InvalidPool: "invalid-pool",
  /** Two pools overlap; allocation refuses to guess which one owns the space. */
  OverlappingPools: "overlapping-pools",
  /** Optimistic concurrency failed too many times in a row. */
  ConflictRetriesExhausted: "conflict-retries-exhausted",
  /** A block is affine to another host (claim) or is not empty (release with `requireEmpty`). */
  BlockInUse: "block-in-use",
  /** The datastore failed (not a compare-and-swap conflict); see `cause`. */
  Datastore: "datastore",
  /** The caller aborted the operation through its `AbortSignal`. */
  Aborted: "aborted",
  /** The IPAM client was closed. */
  Closed: "closed",
} as const;
/** Union of {@link IpamErrorCode} values. */
export type IpamErrorCode = (typeof IpamErrorCode)[keyof typeof IpamErrorCode];

const BRAND = Symbol.for("@margay/ipam.IpamError");

/** Options of the {@link IpamError} constructor. */
export interface IpamErrorOptions {
  /** Structured facts about the failure (pool names, address, handle id, block CIDR...). */
  details?: Record<string, unknown>;
  /** Whether repeating the same call later may succeed. Defaults per code. */
  retryable?: boolean;
  /** The underlying error. */
  cause?: unknown;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<IpamErrorCode> = new Set<IpamErrorCode>([
  IpamErrorCode.ConflictRetriesExhausted,
  IpamErrorCode.Datastore,
]);

/** The one error class of `@margay/ipam`. Test with {@link isIpamError}, not `instanceof`. */
export class IpamError extends Error {
  /** What failed. */
  readonly code: IpamErrorCode;
  /** Whether a later retry of the same call may succeed. */
  readonly retryable: boolean;
  /** Structured facts about the failure. */
  readonly details: Readonly<Record<string, unknown>>;
  /** @internal brand checked by {@link isIpamError}. */
  readonly [BRAND] = true;

  constructor(code: IpamErrorCode, message: string, options: IpamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "IpamError";
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

/**
 * True when `e` is an {@link IpamError}, and, if `codes` are given, has one of them. Checks the brand, so
 * it works across the ESM and CJS copies of this package. The same signature as every other
 * `isXError(e, ...codes)` of Margay; an `undefined` code (the former `code?` form) means "any code".
 */
export function isIpamError(e: unknown, ...codes: IpamErrorCode[]): e is IpamError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [BRAND]?: unknown })[BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as IpamError).code);
}
