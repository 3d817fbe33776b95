/**
 * Key, object and revision validation shared by every backend, so both backends reject exactly the same
 * inputs with `invalid` (the conformance suite checks it).
 */

import { invalidError } from "./errors.js";
import { isShared, jsonCopy } from "./json-copy.js";
import type { ObjectKey, StoredObject, TxnOp } from "./types.js";

/** Scope of a kind: namespaced objects need a namespace, cluster-scoped ones must not have one. */
export type KindScope = "namespaced" | "cluster";

/** Options every backend accepts for validation. */
export interface ValidationOptions {
  /**
   * Known kinds and their scope. A listed kind rejects (`invalid`) a key whose namespace is on the wrong
   * side; an unlisted kind accepts both (the key layout keeps them apart). Default: none listed.
   */
  kindScopes?: Readonly<Record<string, KindScope>> | undefined;
  /**
   * Extra validation run on every object before it is written (`create`, `update`, transaction writes).
   * Whatever it throws becomes an `invalid` error with the thrown value as `cause`. Default: none.
   */
  validate?: ((object: StoredObject) => void) | undefined;
}

/** Kinds are identifiers (`IPPool`, `BlockAffinity`): they become one path segment of a storage key. */
const KIND_RE = /^[A-Za-z][A-Za-z0-9]{0,62}$/;
/** Namespaces are RFC 1123 labels, as in Kubernetes; this cannot collide with the `_cluster` segment. */
const NAMESPACE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/**
 * Names: printable ASCII without `/` (a name is one key segment) nor whitespace. Broader than a DNS
 * subdomain so IPAM block names (`10-0-0-0-26`, `fd00::-122`) and Calico endpoint names fit.
 */
const NAME_RE = /^[A-Za-z0-9._:@+=~-]{1,253}$/;
const REVISION_RE = /^[1-9][0-9]{0,18}$/;

/** Validates an object key and returns a normalised copy (no `namespace` property when absent). */
export function checkKey(key: ObjectKey, opts: ValidationOptions, field = ""): ObjectKey {
  if (typeof key !== "object" || key === null) throw invalidError("key must be an object", { field });
  return checkKeyParts(key.kind, key.name, key.namespace, opts, field);
}

/**
 * {@link checkKey} of a key given as its parts: a write checks the key of its object without building
 * an object for it first (#20).
 */
function checkKeyParts(
  kind: unknown,
  name: unknown,
  namespace: unknown,
  opts: ValidationOptions,
  field: string,
): ObjectKey {
  // The field's name is built only for the error (this runs for every key of every write).
  if (typeof kind !== "string" || !KIND_RE.test(kind)) checkKind(kind, `${field}kind`);
  if (typeof name !== "string" || !NAME_RE.test(name) || name === "." || name === "..") {
    throw invalidError(
      `invalid name ${JSON.stringify(name)}: 1-253 of [A-Za-z0-9._:@+=~-], not "." or ".."`,
      {
        kind,
        field: `${field}name`,
      },
    );
  }
  if (namespace !== undefined) checkNamespace(namespace, kind, `${field}namespace`);
  const scope = opts.kindScopes?.[kind];
  if (scope === "namespaced" && namespace === undefined) {
    throw invalidError(`${kind} is namespaced: a namespace is required`, {
      kind,
      name,
      field: `${field}namespace`,
    });
  }
  if (scope === "cluster" && namespace !== undefined) {
    throw invalidError(`${kind} is cluster-scoped: it takes no namespace`, {
      kind,
      name,
      namespace,
      field: `${field}namespace`,
    });
  }
  return namespace === undefined ? { kind, name } : { kind, name, namespace };
}

/** Validates a kind name. */
export function checkKind(kind: unknown, field = "kind"): asserts kind is string {
  if (typeof kind !== "string" || !KIND_RE.test(kind)) {
    throw invalidError(`invalid kind ${JSON.stringify(kind)}: an identifier [A-Za-z][A-Za-z0-9]*`, { field });
  }
}

/** Validates a namespace name. */
export function checkNamespace(
  namespace: unknown,
  kind: string,
  field = "namespace",
): asserts namespace is string {
  if (typeof namespace !== "string" || !NAMESPACE_RE.test(namespace)) {
    throw invalidError(`invalid namespace ${JSON.stringify(namespace)}: an RFC 1123 label`, { kind, field });
  }
}

/** Validates a list/watch namespace filter against the kind's scope. */
export function checkNamespaceFilter(
  kind: string,
  namespace: string | undefined,
  opts: ValidationOptions,
): void {
  checkKind(kind);
  if (namespace === undefined) return;
  checkNamespace(namespace, kind);
  if (opts.kindScopes?.[kind] === "cluster") {
    throw invalidError(`${kind} is cluster-scoped: it takes no namespace`, {
      kind,
      namespace,
      field: "namespace",
    });
  }
}

/** Parses a decimal revision string; `invalid` unless it is a positive integer. */
export function parseRevision(value: unknown, field = "metadata.resourceVersion"): number {
  if (typeof value !== "string" || !REVISION_RE.test(value)) {
    throw invalidError(`invalid revision ${JSON.stringify(value)}: a positive decimal integer`, { field });
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw invalidError(`revision ${value} out of range`, { field });
  return n;
}

/** Parses a watch `fromRevision` (which may be `0`, meaning "from the beginning"). */
export function parseFromRevision(value: string): number {
  return value === "0" ? 0 : parseRevision(value, "fromRevision");
}

/** Parses a `namePrefix` filter (a name prefix may be empty but must not contain `/`). */
export function checkNamePrefix(prefix: string | undefined): void {
  if (prefix === undefined || prefix === "") return;
  if (!/^[A-Za-z0-9._:@+=~-]{1,253}$/.test(prefix)) {
    throw invalidError(`invalid namePrefix ${JSON.stringify(prefix)}`, { field: "namePrefix" });
  }
}

/**
 * Validates an object for writing and returns its key plus a JSON-clean deep copy (what will be stored:
 * values that JSON cannot represent are dropped exactly as a real serialising backend would drop them).
 * Parts of the object that a backend froze and handed out (see `freezeShared`) are shared, not copied;
 * the copy itself and its metadata are always new.
 */
export function checkObject(
  object: StoredObject,
  opts: ValidationOptions,
): { key: ObjectKey; copy: StoredObject } {
  if (typeof object !== "object" || object === null) throw invalidError("object must be an object");
  if (typeof object.metadata !== "object" || object.metadata === null) {
    throw invalidError("object.metadata is required", { field: "metadata" });
  }
  // Checked as parts, not as a key object built for the check: this runs for every object written (#20).
  const key = checkKeyParts(object.kind, object.metadata.name, object.metadata.namespace, opts, "");
  const rv = object.metadata.resourceVersion;
  if (rv !== undefined) parseRevision(rv);
  let copy: StoredObject;
  try {
    copy = jsonCopy(object);
  } catch (cause) {
    throw invalidError("object is not JSON-serialisable", { ...key }, cause);
  }
  // The copy's metadata is the backend's to fill in (revision, uid): never a shared, frozen one.
  if (isShared(copy.metadata)) copy.metadata = { ...copy.metadata };
  if (opts.validate !== undefined) {
    try {
      opts.validate(copy);
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw invalidError(`object failed validation: ${msg}`, { ...key }, cause);
    }
  }
  return { key, copy };
}

/** Identity of a key inside one store (kind, namespace or cluster marker, name), used for maps and dedup. */
export function keyId(key: ObjectKey): string {
  return `${key.kind}/${key.namespace ?? "_cluster"}/${key.name}`;
}

/** Stable order of list results: namespace (cluster-scoped first), then name, by code unit. */
export function compareObjects(a: StoredObject, b: StoredObject): number {
  const na = a.metadata.namespace ?? "";
  const nb = b.metadata.namespace ?? "";
  if (na !== nb) return na < nb ? -1 : 1;
  const ma = a.metadata.name;
  const mb = b.metadata.name;
  return ma < mb ? -1 : ma > mb ? 1 : 0;
}

/** A validated transaction op: keys normalised, revisions parsed, objects deep-copied. */
export type CheckedOp =
  | { op: "create"; key: ObjectKey; object: StoredObject }
  | { op: "update"; key: ObjectKey; object: StoredObject; revision: number }
  | { op: "delete"; key: ObjectKey; revision: number | undefined }
  | { op: "check"; key: ObjectKey; revision: number | undefined; absent: boolean };

/**
 * Validates the ops of a transaction. A key may be written by at most one op (etcd refuses a txn that
 * writes a key twice, and "create then update" in one atomic step has no useful meaning); checks may
 * name any key, including one that is written.
 */
export function checkTxnOps(ops: readonly TxnOp[], opts: ValidationOptions): CheckedOp[] {
  if (!Array.isArray(ops)) throw invalidError("transaction ops must be an array");
  if (ops.length === 0) throw invalidError("transaction needs at least one op");
  const out = new Array<CheckedOp>(ops.length);
  // The keys written so far; a transaction writes a few keys, so they are compared pairwise rather
  // than through a set of key strings built per op (#20). Many ops fall back to the set.
  const written: ObjectKey[] = [];
  const many = ops.length > 16 ? new Set<string>() : undefined;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as TxnOp;
    let checked: CheckedOp;
    switch (op?.op) {
      case "create": {
        const { key, copy } = checkObject(op.object, opts);
        checked = { op: "create", key, object: copy };
        break;
      }
      case "update": {
        const { key, copy } = checkObject(op.object, opts);
        if (op.object.metadata.resourceVersion === undefined) {
          throw invalidError("a transaction update needs metadata.resourceVersion", {
            ...key,
            opIndex: i,
            field: `ops[${i}].object.metadata.resourceVersion`,
          });
        }
        checked = {
          op: "update",
          key,
          object: copy,
          revision: parseRevision(op.object.metadata.resourceVersion),
        };
        break;
      }
      case "delete":
        checked = {
          op: "delete",
          key: checkKey(op.key, opts, `ops[${i}].key.`),
          revision: op.resourceVersion === undefined ? undefined : parseRevision(op.resourceVersion),
        };
        break;
      case "check":
        if (op.absent === true && op.resourceVersion !== undefined) {
          throw invalidError("a check takes either absent or resourceVersion, not both", { opIndex: i });
        }
        checked = {
          op: "check",
          key: checkKey(op.key, opts, `ops[${i}].key.`),
          revision: op.resourceVersion === undefined ? undefined : parseRevision(op.resourceVersion),
          absent: op.absent === true,
        };
        break;
      default:
        throw invalidError(`unknown transaction op ${JSON.stringify((op as { op?: unknown })?.op)}`, {
          opIndex: i,
          field: `ops[${i}].op`,
        });
    }
    if (checked.op !== "check") {
      const k = checked.key;
      let dup: boolean;
      if (many !== undefined) {
        const id = keyId(k);
        dup = many.has(id);
        many.add(id);
      } else {
        dup = false;
        for (let j = 0; j < written.length && !dup; j++) {
          const w = written[j] as ObjectKey;
          dup = w.name === k.name && w.kind === k.kind && w.namespace === k.namespace;
        }
        written.push(k);
      }
      if (dup) throw invalidError("a transaction may write each key only once", { ...k, opIndex: i });
    }
    out[i] = checked;
  }
  return out;
}
