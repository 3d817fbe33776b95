/**
 * The one error type of `@margay/datastore`.
 *
 * Guards check a process-wide brand (`Symbol.for`) plus the `code`, never `instanceof`: a dual ESM/CJS
 * install can load two copies of this module, and an error built by one copy must still be recognised by
 * the other (a vendor backend may even build its errors with a different copy of the package).
 *
 * @packageDocumentation
 */

import { DatastoreErrorCode } from "./types.js";

/** Brand set on every {@link DatastoreError} (`Symbol.for`, so it is shared across module copies). */
export const DATASTORE_ERROR_BRAND: unique symbol = Symbol.for("@margay/datastore/error") as never;

/** Structured context of a {@link DatastoreError}; every field is optional and only set when known. */
export interface DatastoreErrorDetails {
  /** Kind of the object concerned. */
  kind?: string;
  /** Namespace of the object concerned. */
  namespace?: string;
  /** Name of the object concerned. */
  name?: string;
  /** The revision the caller expected (a CAS precondition), as a decimal string. */
  expectedRevision?: string;
  /** The revision actually stored (absent when the object does not exist). */
  actualRevision?: string;
  /** For `compacted`: the oldest revision a watch can still start after (`fromRevision` ≥ this − 1). */
  compactRevision?: string;
  /** The revision the failing request asked for (e.g. a watch's `fromRevision`). */
  revision?: string;
  /** Index of the failing op inside a transaction. */
  opIndex?: number;
  /** Machine-readable sub-reason, e.g. `exists`, `missing`, `revision-mismatch`, `slow-consumer`. */
  reason?: string;
  /** For `invalid`: the offending field, e.g. `metadata.name`. */
  field?: string;
  /** The backend that raised the error (`memory`, `etcd`, or a vendor's). */
  backend?: string;
  /** The backend endpoint concerned (a URL, never with credentials). */
  endpoint?: string;
}

/** Codes for which retrying the same call (after a re-read, for `conflict`) can succeed. */
const RETRYABLE: ReadonlySet<DatastoreErrorCode> = new Set<DatastoreErrorCode>([
  DatastoreErrorCode.Unavailable,
  DatastoreErrorCode.Conflict,
]);

/** Options of the {@link DatastoreError} constructor. */
export interface DatastoreErrorOptions {
  /** Structured context. Default `{}`. */
  details?: DatastoreErrorDetails | undefined;
  /** The underlying failure (e.g. the etcd client's error). */
  cause?: unknown;
  /**
   * Overrides the code's default retryability, for failures whose code is retryable in general but not
   * in this instance.
   */
  retryable?: boolean | undefined;
}

/**
 * Every failure of a {@link Datastore} call. `code` says what happened; `retryable` is true for
 * `unavailable` (retry as is) and `conflict` (re-read, re-apply, retry).
 */
export class DatastoreError extends Error {
  /** Always true; see {@link isDatastoreError}. */
  readonly [DATASTORE_ERROR_BRAND] = true as const;
  /** Always `"DatastoreError"`. */
  override readonly name = "DatastoreError";
  /** What happened. */
  readonly code: DatastoreErrorCode;
  /** True for `unavailable` and `conflict`, unless the failure says otherwise. */
  readonly retryable: boolean;
  /** What the failure concerns (key, revisions, op index, reason). */
  readonly details: DatastoreErrorDetails;

  /**
   * @param code - what happened.
   * @param message - human-readable description.
   * @param options - details and cause.
   */
  constructor(code: DatastoreErrorCode, message: string, options: DatastoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE.has(code);
    this.details = options.details ?? {};
  }
}

/**
 * True if `e` is a {@link DatastoreError} (from any copy of this package), optionally with one of `codes`.
 */
export function isDatastoreError(e: unknown, ...codes: DatastoreErrorCode[]): e is DatastoreError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [DATASTORE_ERROR_BRAND]?: unknown })[DATASTORE_ERROR_BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as { code: DatastoreErrorCode }).code);
}

function describeKey(d: DatastoreErrorDetails): string {
  if (d.kind === undefined) return "object";
  return d.namespace === undefined ? `${d.kind} ${d.name ?? ""}` : `${d.kind} ${d.namespace}/${d.name ?? ""}`;
}

/** `not-found`: the object does not exist. */
export function notFoundError(details: DatastoreErrorDetails, cause?: unknown): DatastoreError {
  return new DatastoreError(DatastoreErrorCode.NotFound, `${describeKey(details)} not found`, {
    details,
    cause,
  });
}

/** `already-exists`: `create` of an object that exists. */
export function alreadyExistsError(details: DatastoreErrorDetails, cause?: unknown): DatastoreError {
  return new DatastoreError(DatastoreErrorCode.AlreadyExists, `${describeKey(details)} already exists`, {
    details,
    cause,
  });
}

/** `conflict`: a compare-and-swap precondition failed; re-read and retry. */
export function conflictError(details: DatastoreErrorDetails, cause?: unknown): DatastoreError {
  const why =
    details.reason === "exists"
      ? "exists"
      : details.reason === "missing"
        ? "does not exist"
        : `is at revision ${details.actualRevision ?? "?"}, expected ${details.expectedRevision ?? "?"}`;
  const where = details.opIndex === undefined ? "" : ` (transaction op ${details.opIndex})`;
  return new DatastoreError(DatastoreErrorCode.Conflict, `conflict: ${describeKey(details)} ${why}${where}`, {
    details,
    cause,
  });
}

/** `invalid`: a malformed key, object, option or revision. */
export function invalidError(message: string, details: DatastoreErrorDetails = {}, cause?: unknown) {
  return new DatastoreError(DatastoreErrorCode.Invalid, message, { details, cause });
}

/** `compacted`: the requested history is gone (or the watcher fell too far behind); relist, then watch. */
export function compactedError(details: DatastoreErrorDetails, cause?: unknown): DatastoreError {
  const why =
    details.reason === "slow-consumer"
      ? "watch fell too far behind (its event queue is full)"
      : `revision ${details.revision ?? "?"} is older than the compaction point ${details.compactRevision ?? "?"}`;
  return new DatastoreError(DatastoreErrorCode.Compacted, `compacted: ${why}; relist and watch again`, {
    details,
    cause,
  });
}

/** `unavailable`: the backend cannot be reached (or timed out); retry later. */
export function unavailableError(message: string, details: DatastoreErrorDetails = {}, cause?: unknown) {
  return new DatastoreError(DatastoreErrorCode.Unavailable, message, { details, cause });
}

/**
 * `tls`: the TLS handshake failed. Not retryable: the same certificates fail the same way. `reason` is one
 * of `unknown-ca`, `hostname-mismatch`, `certificate-expired`, `client-certificate-rejected`, `protocol-mismatch`, `handshake`.
 */
export function tlsError(message: string, details: DatastoreErrorDetails = {}, cause?: unknown) {
  return new DatastoreError(DatastoreErrorCode.Tls, message, { details, cause });
}

/** `unauthenticated`: the backend refused our credentials (or their absence). Not retryable. */
export function unauthenticatedError(message: string, details: DatastoreErrorDetails = {}, cause?: unknown) {
  return new DatastoreError(DatastoreErrorCode.Unauthenticated, message, { details, cause });
}

/** `permission-denied`: authenticated, but not allowed to do this. Not retryable. */
export function permissionDeniedError(message: string, details: DatastoreErrorDetails = {}, cause?: unknown) {
  return new DatastoreError(DatastoreErrorCode.PermissionDenied, message, { details, cause });
}

/** `closed`: the datastore (or the watch) was closed. */
export function closedError(details: DatastoreErrorDetails = {}): DatastoreError {
  return new DatastoreError(DatastoreErrorCode.Closed, "datastore is closed", { details });
}

/** `aborted`: the caller's signal aborted. For a write, the outcome is unknown (as with a timeout). */
export function abortedError(signal: AbortSignal | undefined, details: DatastoreErrorDetails = {}) {
  return new DatastoreError(DatastoreErrorCode.Aborted, "operation aborted", {
    details,
    cause: signal?.reason,
  });
}

/** Throws `aborted` if `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}
