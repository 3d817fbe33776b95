/**
 * Content fingerprints of model objects: canonical JSON (keys sorted at every level) of everything but
 * the datastore's own bookkeeping (`resourceVersion`, `uid`, `creationTimestamp`). Two objects with the
 * same fingerprint need no write.
 *
 * @packageDocumentation
 */

import type { StoredObject } from "@margay/datastore";

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")}}`;
}

/** The fingerprint of an object's content (excluding datastore-assigned metadata). */
export function fingerprint(object: StoredObject): string {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ts, ...meta } = object.metadata;
  return canonical({ ...object, metadata: meta });
}
