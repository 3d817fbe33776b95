/**
 * Ownership of model objects written by the adapter. Every object it writes carries annotations naming
 * the owner and the Kubernetes source, and the adapter only ever updates or deletes objects that carry
 * its owner annotation: objects written by a person or another component are left alone.
 *
 * @packageDocumentation
 */

import type { StoredObject } from "@margay/datastore";

/** Annotation naming the component that owns an object. */
export const OWNER_ANNOTATION = "margay.io/owner";
/** Annotation naming the Kubernetes source of an object: `<Kind>/<namespace>/<name>` or `<Kind>/<name>`. */
export const SOURCE_ANNOTATION = "margay.io/source";
/** Annotation with the Kubernetes uid of the source object. */
export const SOURCE_UID_ANNOTATION = "margay.io/source-uid";
/** Default owner value of the adapter. */
export const DEFAULT_OWNER = "kube-adapter";

/** True if `object` carries `owner` in its owner annotation. */
export function isOwnedBy(object: StoredObject, owner: string): boolean {
  return object.metadata.annotations?.[OWNER_ANNOTATION] === owner;
}

/** Returns a copy of `object` with ownership annotations (owner, source and source uid) added. */
export function withOwnership<T extends StoredObject>(
  object: T,
  owner: string,
  source: string,
  sourceUid: string | undefined,
): T {
  const annotations: Record<string, string> = { ...(object.metadata.annotations ?? {}) };
  annotations[OWNER_ANNOTATION] = owner;
  annotations[SOURCE_ANNOTATION] = source;
  if (sourceUid !== undefined && sourceUid !== "") annotations[SOURCE_UID_ANNOTATION] = sourceUid;
  return { ...object, metadata: { ...object.metadata, annotations } };
}
