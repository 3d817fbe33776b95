/**
 * The `Datastore` contract: the one seam every Margay component reads and writes the model through.
 *
 * Semantics follow etcd v3 (which Calico's own etcd backend also follows): a single, store-wide,
 * monotonically increasing revision; every write bumps it; each stored object carries the revision
 * of its last modification as `metadata.resourceVersion` (a decimal string).
 *
 * @packageDocumentation
 */

/** Metadata every stored object carries. Mirrors Kubernetes/Calico `ObjectMeta`. */
export interface StoredObjectMeta {
  /** Object name; unique per (kind, namespace). */
  name: string;
  /** Namespace for namespaced kinds; absent for cluster-scoped kinds. */
  namespace?: string;
  /**
   * Revision of the last write to this object, set by the datastore. On `update`/`delete` a caller
   * passes the value it read to get compare-and-swap semantics.
   */
  resourceVersion?: string;
  /** Unique id assigned by the datastore at creation. */
  uid?: string;
  /** RFC 3339 creation time assigned by the datastore at creation. */
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/**
 * Anything the datastore stores: a kind plus metadata. `@margay/api` resources satisfy this, and so do
 * internal kinds such as IPAM blocks. The datastore never interprets `spec`.
 */
export interface StoredObject {
  apiVersion?: string;
  kind: string;
  metadata: StoredObjectMeta;
}

/** Identifies one object. `namespace` is omitted for cluster-scoped kinds. */
export interface ObjectKey {
  kind: string;
  name: string;
  namespace?: string;
}

/** Options for {@link Datastore.list}. */
export interface ListOptions {
  /** Only objects in this namespace. Omit for all namespaces (and for cluster-scoped kinds). */
  namespace?: string;
  /** Only objects whose name starts with this prefix. */
  namePrefix?: string;
  signal?: AbortSignal;
}

/** The result of a list: the objects (sorted by namespace, then name) and the revision they were read at. */
export interface ListResult<T extends StoredObject = StoredObject> {
  items: T[];
  /** Store revision at which the list is consistent; pass to {@link Datastore.watch} to follow on. */
  revision: string;
}

/** Options for {@link Datastore.delete}. */
export interface DeleteOptions {
  /** Compare-and-swap precondition: delete only if the object's resourceVersion still equals this. */
  resourceVersion?: string;
  signal?: AbortSignal;
}

/** One operation inside {@link Datastore.transaction}. */
export type TxnOp =
  /** Create; fails the transaction if the object exists. */
  | { op: "create"; object: StoredObject }
  /** Update; `object.metadata.resourceVersion` must equal the stored one (required). */
  | { op: "update"; object: StoredObject }
  /** Delete; `resourceVersion` (optional) must equal the stored one. */
  | { op: "delete"; key: ObjectKey; resourceVersion?: string }
  /** Assert only: the object exists at exactly this revision (or, with `absent: true`, does not exist). */
  | { op: "check"; key: ObjectKey; resourceVersion?: string; absent?: boolean };

/** Result of a successful transaction: the written objects in op order (`null` for delete/check). */
export interface TxnResult {
  revision: string;
  results: (StoredObject | null)[];
}

/** Event types of a watch, as in Kubernetes/Calico watchers. */
export type WatchEventType = "added" | "modified" | "deleted";

/** One change seen by a watch. */
export interface WatchEvent<T extends StoredObject = StoredObject> {
  type: WatchEventType;
  /** The new object (for `deleted`, the last state before deletion). */
  object: T;
  /** The object before this change (for `modified` and `deleted`), when the backend knows it. */
  previous?: T;
  /**
   * Store revision of this change. Revisions never decrease across one watch: they strictly increase from
   * one write to the next, and the events of one {@link Datastore.transaction} share its revision (they
   * are delivered together, in op order).
   */
  revision: string;
}

/** Options for {@link Datastore.watch}. */
export interface WatchOptions {
  /** Restrict to one namespace. */
  namespace?: string;
  /**
   * Deliver every change *after* this revision (exclusive): pass a `ListResult.revision` to follow a list
   * without a gap. Omit to start from now. A revision older than the store's compaction point fails the
   * watch with a `compacted` error: the caller must relist.
   */
  fromRevision?: string;
  signal?: AbortSignal;
}

/**
 * A running watch: an async iterable of ordered events. Iteration ends when `close()` is called or the
 * signal aborts; it throws a {@link DatastoreError} (e.g. code `compacted`) when the watch cannot continue.
 */
export interface Watch<T extends StoredObject = StoredObject> extends AsyncIterable<WatchEvent<T>> {
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The storage seam. Every method is safe to call concurrently; writes are linearizable.
 * Errors are always {@link DatastoreError}s with one of the {@link DatastoreErrorCode}s.
 */
export interface Datastore {
  /** Fetches one object; fails with `not-found` if absent. */
  get<T extends StoredObject = StoredObject>(key: ObjectKey, options?: { signal?: AbortSignal }): Promise<T>;
  /** Lists objects of a kind at one consistent revision. */
  list<T extends StoredObject = StoredObject>(kind: string, options?: ListOptions): Promise<ListResult<T>>;
  /** Creates an object; fails with `already-exists`. Returns the stored copy with resourceVersion set. */
  create<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T>;
  /**
   * Replaces an object. If `object.metadata.resourceVersion` is set, the write happens only if it matches
   * (else `conflict`); if unset, the write is unconditional. Fails with `not-found` if absent.
   */
  update<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T>;
  /** Deletes an object and returns its last state; fails with `not-found` or (precondition) `conflict`. */
  delete<T extends StoredObject = StoredObject>(key: ObjectKey, options?: DeleteOptions): Promise<T>;
  /** All-or-nothing multi-object compare-and-swap. Fails with `conflict` naming the first failed key. */
  transaction(ops: readonly TxnOp[], options?: { signal?: AbortSignal }): Promise<TxnResult>;
  /** Watches one kind. See {@link WatchOptions.fromRevision}. */
  watch<T extends StoredObject = StoredObject>(kind: string, options?: WatchOptions): Watch<T>;
  /** Releases connections and timers. Further calls fail with `closed`. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Error codes of the datastore contract. */
export const DatastoreErrorCode = {
  NotFound: "not-found",
  AlreadyExists: "already-exists",
  Conflict: "conflict",
  Invalid: "invalid",
  Compacted: "compacted",
  Unavailable: "unavailable",
  Closed: "closed",
  Aborted: "aborted",
} as const;
/** Union of {@link DatastoreErrorCode} values. */
export type DatastoreErrorCode = (typeof DatastoreErrorCode)[keyof typeof DatastoreErrorCode];
