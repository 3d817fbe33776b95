/**
 * Storage key layout of the etcd backend: `<prefix>/<kind>/<namespace or "_cluster">/<name>`.
 *
 * Unambiguous under prefix listing because every segment is validated: kinds are identifiers, namespaces
 * RFC 1123 labels (so never `_cluster`), names contain no `/`. A range over `<prefix>/<kind>/` therefore
 * returns exactly that kind (not `<kind>Foo`), and `<prefix>/<kind>/<ns>/` exactly that namespace.
 */

import type { ObjectKey } from "../types.js";

/** Segment standing in for the namespace of cluster-scoped objects. */
export const CLUSTER_SEGMENT = "_cluster";

/** Default key prefix. The version segment leaves room for a later layout change. */
export const DEFAULT_PREFIX = "/margay/v1";

/** The key of one object. */
export function objectKey(prefix: string, key: ObjectKey): string {
  return `${prefix}/${key.kind}/${key.namespace ?? CLUSTER_SEGMENT}/${key.name}`;
}

/** The prefix covering one kind (all namespaces and cluster scope), or one namespace of it. */
export function rangePrefix(prefix: string, kind: string, namespace?: string, namePrefix?: string): string {
  if (namespace === undefined) return `${prefix}/${kind}/`;
  return `${prefix}/${kind}/${namespace}/${namePrefix ?? ""}`;
}

/** Parses a storage key back into an object key; undefined for a key not in our layout. */
export function parseObjectKey(prefix: string, raw: string): ObjectKey | undefined {
  if (!raw.startsWith(`${prefix}/`)) return undefined;
  const parts = raw.slice(prefix.length + 1).split("/");
  if (parts.length !== 3) return undefined;
  const [kind, ns, name] = parts as [string, string, string];
  return ns === CLUSTER_SEGMENT ? { kind, name } : { kind, namespace: ns, name };
}
