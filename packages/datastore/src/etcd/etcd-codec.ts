/**
 * Stored objects as etcd keys and values: JSON without `resourceVersion` (the key's `mod_revision` is
 * that), decoded defensively (a corrupt value fails `invalid`, never a crash), and watch events.
 */

import type { IKeyValue } from "etcd3";
import { invalidError } from "../errors.js";
import type { StoredObject, WatchEvent } from "../types.js";
import { BACKEND } from "./etcd-options.js";
import { parseObjectKey } from "./keys.js";

/** A string as the UTF-8 bytes etcd keys and values are. */
export const toBuf = (s: string) => Buffer.from(s, "utf8");

/** The smallest key greater than every key starting with `prefix` (etcd's prefix `range_end`). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix, "utf8");
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** The stored value of `obj`: its JSON without `resourceVersion`. */
export function encodeObject(obj: StoredObject): Buffer {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return toBuf(JSON.stringify({ ...obj, metadata }));
}

/** The object a key-value holds, `resourceVersion` set to its `mod_revision`. */
export function decodeObject(kv: IKeyValue): StoredObject {
  let obj: StoredObject;
  try {
    obj = JSON.parse(kv.value.toString("utf8")) as StoredObject;
  } catch (cause) {
    throw invalidError(
      `etcd key ${kv.key.toString("utf8")} does not hold a JSON object`,
      { reason: "corrupt-value", backend: BACKEND },
      cause,
    );
  }
  if (typeof obj !== "object" || obj === null || typeof obj.metadata !== "object" || obj.metadata === null) {
    throw invalidError(`etcd key ${kv.key.toString("utf8")} does not hold a stored object`, {
      reason: "corrupt-value",
      backend: BACKEND,
    });
  }
  obj.metadata.resourceVersion = kv.mod_revision;
  return obj;
}

/** One etcd watch event as a {@link WatchEvent}; undefined for a key outside our layout. */
export function toWatchEvent(
  prefix: string,
  type: "Put" | "Delete",
  kv: IKeyValue,
  prev: IKeyValue | undefined,
): WatchEvent | undefined {
  const revision = kv.mod_revision;
  if (type === "Put") {
    const object = decodeObject(kv);
    const ev: WatchEvent = { type: kv.version === "1" ? "added" : "modified", object, revision };
    if (prev !== undefined && prev !== null && kv.version !== "1") ev.previous = decodeObject(prev);
    return ev;
  }
  if (prev !== undefined && prev !== null) {
    return { type: "deleted", object: decodeObject(prev), previous: decodeObject(prev), revision };
  }
  // Without prev_kv (not expected: we always ask for it) the key alone still identifies the object.
  const key = parseObjectKey(prefix, kv.key.toString("utf8"));
  if (key === undefined) return undefined;
  const metadata =
    key.namespace === undefined ? { name: key.name } : { name: key.name, namespace: key.namespace };
  return { type: "deleted", object: { kind: key.kind, metadata }, revision };
}
