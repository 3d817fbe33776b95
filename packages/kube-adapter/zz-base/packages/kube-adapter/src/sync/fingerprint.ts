/**
 * Content fingerprints of model objects: their JSON without the datastore's own bookkeeping
 * (`resourceVersion`, `uid`, `creationTimestamp`). Two objects with the same fingerprint need no write.
 *
 * Plain `JSON.stringify` (key order as built) rather than a canonical form: desired objects come from
 * deterministic converters, and what the writer reads back is a JSON round-trip of what it wrote, so the
 * orders agree. An object someone else rewrote in another key order merely compares unequal and is
 * rewritten once: a harmless extra write, never a missed one.
 *
 * @packageDocumentation
 */

import type { StoredObject } from "@margay/datastore";

/** The fingerprint of an object's content (excluding datastore-assigned metadata). */
export function fingerprint(object: StoredObject): string {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ts, ...meta } = object.metadata;
  return JSON.stringify({ ...object, metadata: meta });
}
