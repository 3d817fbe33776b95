/**
 * What every backend does the same way: option checks, its logger, the entry check of each call, the
 * server-owned fields an update carries over, and the `conflict` of a failed revision precondition.
 * Imports nothing backend-specific, so a bundle of one backend does not load the other.
 */

import { type Logger, silentLogger } from "@margay/api";
import { closedError, conflictError, type DatastoreError, invalidError, throwIfAborted } from "./errors.js";
import type { ObjectKey, StoredObjectMeta } from "./types.js";

/** Events one watch may have queued before it fails with `compacted`, unless configured. */
export const DEFAULT_WATCH_QUEUE_LIMIT = 10_000;

/** `value`, or `fallback` when unset; anything but a positive safe integer fails `invalid` naming `field`. */
export function positiveInt(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw invalidError(`${field} must be a positive integer`, { field });
  return value;
}

/** The backend's logger: the caller's (silent by default) with `component` and `backend` bound. */
export function backendLogger(logger: Logger | undefined, backend: string): Logger {
  return (logger ?? silentLogger).child({ component: "datastore", backend });
}

/** The check at the start of every call: the store is open and the caller has not aborted. */
export function enterCall(closed: boolean, signal: AbortSignal | undefined, backend: string): void {
  if (closed) throw closedError({ backend });
  throwIfAborted(signal);
}

/** Gives `meta` the stored `uid` and `creationTimestamp` it lacks (an update keeps both). */
export function inheritServerFields(
  meta: StoredObjectMeta,
  stored: { uid?: string | undefined; creationTimestamp?: string | undefined },
): void {
  if (stored.uid !== undefined) meta.uid ??= stored.uid;
  if (stored.creationTimestamp !== undefined) meta.creationTimestamp ??= stored.creationTimestamp;
}

/** The `conflict` of a write whose expected revision is not the stored one. */
export function revisionMismatch(
  key: ObjectKey,
  expected: number | string,
  actual: number | string,
  backend: string,
): DatastoreError {
  return conflictError({
    ...key,
    reason: "revision-mismatch",
    expectedRevision: String(expected),
    actualRevision: String(actual),
    backend,
  });
}
