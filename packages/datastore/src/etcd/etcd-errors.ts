/** Mapping of `etcd3` / gRPC failures to {@link DatastoreError} codes. */

import {
  DatastoreError,
  type DatastoreErrorDetails,
  isDatastoreError,
  permissionDeniedError,
  unauthenticatedError,
  unavailableError,
} from "../errors.js";
import { redactUrlCredentials } from "./tls-diagnosis.js";
import { DatastoreErrorCode } from "../types.js";

const BACKEND = "etcd";

/** True if `e` says the requested revision has been compacted away. */
export function isCompactedMessage(e: unknown): boolean {
  return e instanceof Error && /required revision has been compacted/.test(e.message);
}

/** True if `e` says the requested revision is in the future. */
export function isFutureRevisionMessage(e: unknown): boolean {
  return e instanceof Error && /required revision is a future revision/.test(e.message);
}

/**
 * Maps an etcd client failure. Connection-level failures (unreachable, timed out, circuit open, stream
 * ended) become `unavailable`; refused credentials `unauthenticated`; a role that does not grant the
 * request `permission-denied`; etcd's other refusals `invalid`. A write that fails `unavailable` may
 * or may not have been applied: the caller must re-read before assuming either.
 */
export function mapEtcdError(e: unknown, details: DatastoreErrorDetails = {}): DatastoreError {
  if (isDatastoreError(e)) return e;
  const d = { ...details, backend: BACKEND };
  const name = e instanceof Error ? e.constructor.name : "";
  // Nothing the client says may echo credentials from an endpoint URL.
  const message = redactUrlCredentials(e instanceof Error ? e.message : String(e));
  if (isCompactedMessage(e)) {
    return new DatastoreError(DatastoreErrorCode.Compacted, "compacted: relist and watch again", {
      details: d,
      cause: e,
    });
  }
  if (name === "ClientClosedError") {
    return new DatastoreError(DatastoreErrorCode.Closed, "datastore is closed", { details: d, cause: e });
  }
  if (name === "EtcdPermissionDeniedError" || /etcdserver: permission denied/i.test(message)) {
    return permissionDeniedError(
      `etcd denied the request: the user's roles do not grant it (${message})`,
      d,
      e,
    );
  }
  if (/invalid auth token/i.test(message)) {
    // A token that expired (etcd's simple tokens do after idling): the client authenticates afresh.
    return unavailableError(`etcd dropped the auth token: ${message}`, { ...d, reason: "auth-token" }, e);
  }
  if (/authentication failed|user name is empty|user name not found/i.test(message)) {
    return unauthenticatedError(`etcd refused the credentials: ${message}`, d, e);
  }
  if (
    name === "GRPCInvalidArgumentError" ||
    name === "GRPCFailedPreconditionError" ||
    name === "GRPCOutOfRangeError" ||
    /request is too large|too many operations in txn|duplicate key given in txn/.test(message)
  ) {
    return new DatastoreError(DatastoreErrorCode.Invalid, `etcd refused the request: ${message}`, {
      details: d,
      cause: e,
    });
  }
  return unavailableError(`etcd unavailable: ${message}`, d, e);
}
