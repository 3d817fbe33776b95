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
  /** Labels (selectors match on them); stored as given. */
  labels?: Record<string, string>;
  /** Free-form annotations; stored as given. */
  annotations?: Record<string, string>;
}

/**
 * Anything the datastore stores: a kind plus metadata. `@margay/api` resources satisfy this, and so do
 * internal kinds such as IPAM blocks. The datastore never interprets `spec`.
 */
export interface StoredObject {
  /** Group/version, e.g. `margay.io/v1`; stored as given. */
  apiVersion?: string;
  /** Kind, an identifier such as `IPPool`; one segment of the storage key. */
  kind: string;
  /** Name, namespace and the datastore-owned fields. */
  metadata: StoredObjectMeta;
}

/** Identifies one object. `namespace` is omitted for cluster-scoped kinds. */
export interface ObjectKey {
  /** The object's kind. */
  kind: string;
  /** The object's name. */
  name: string;
  /** The object's namespace; omit for cluster-scoped objects. */
  namespace?: string;
}

/** Options for {@link Datastore.list}. */
export interface ListOptions {
  /** Only objects in this namespace. Omit for all namespaces (and for cluster-scoped kinds). */
  namespace?: string;
  /** Only objects whose name starts with this prefix. */
  namePrefix?: string;
  /** Aborts the call (it then fails with `aborted`). */
  signal?: AbortSignal;
}

/** The result of a list: the objects (sorted by namespace, then name) and the revision they were read at. */
export interface ListResult<T extends StoredObject = StoredObject> {
  /** The matching objects, sorted by namespace (cluster-scoped first), then name. */
  items: T[];
  /** Store revision at which the list is consistent; pass to {@link Datastore.watch} to follow on. */
  revision: string;
}

/** Options for {@link Datastore.delete}. */
export interface DeleteOptions {
  /** Compare-and-swap precondition: delete only if the object's resourceVersion still equals this. */
  resourceVersion?: string;
  /** Aborts the call (it then fails with `aborted`; the delete may still have been applied). */
  signal?: AbortSignal;
}

/** One operation inside {@link Datastore.transaction}. */
export type TxnOp =
  /** Create; fails the transaction if the object exists. */
  | {
      /** Discriminant. */
      op: "create";
      /** The object to create. */
      object: StoredObject;
    }
  /** Update; `object.metadata.resourceVersion` must equal the stored one (required). */
  | {
      /** Discriminant. */
      op: "update";
      /** The new state, carrying the `resourceVersion` it was read at. */
      object: StoredObject;
    }
  /** Delete; `resourceVersion` (optional) must equal the stored one. */
  | {
      /** Discriminant. */
      op: "delete";
      /** The object to delete. */
      key: ObjectKey;
      /** Precondition: the stored revision. Omit to delete whatever revision is stored. */
      resourceVersion?: string;
    }
  /** Assert only: the object exists at exactly this revision (or, with `absent: true`, does not exist). */
  | {
      /** Discriminant. */
      op: "check";
      /** The object checked. */
      key: ObjectKey;
      /** Precondition: the stored revision. Omit to require existence at any revision. */
      resourceVersion?: string;
      /** Require the object to be absent instead. Default false. */
      absent?: boolean;
    };

/** Result of a successful transaction: the written objects in op order (`null` for delete/check). */
export interface TxnResult {
  /** The revision of the transaction's writes (the current revision if it only checked). */
  revision: string;
  /**
   * One entry per op: the stored object for `create`/`update`, `null` for `delete`/`check`. Read-only: a
   * backend may hand out the object it stores, frozen (the memory backend does, so a transaction costs
   * no copy of what it wrote), so copy an object before changing it.
   */
  results: (StoredObject | null)[];
}

/** Event types of a watch, as in Kubernetes/Calico watchers. */
export type WatchEventType = "added" | "modified" | "deleted";

/**
 * One change seen by a watch. Read-only: a backend may hand one deep-frozen event to every watcher
 * instead of a copy each (the memory backend does), so copy an object before changing it.
 */
export interface WatchEvent<T extends StoredObject = StoredObject> {
  /** `added`, `modified` or `deleted`. */
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
  /** Aborting ends the iteration, as `close()` does. */
  signal?: AbortSignal;
}

/**
 * A running watch: an async iterable of ordered events. Iteration ends when `close()` is called or the
 * signal aborts; it throws a {@link DatastoreError} (e.g. code `compacted`) when the watch cannot continue.
 */
export interface Watch<T extends StoredObject = StoredObject> extends AsyncIterable<WatchEvent<T>> {
  /** Stops the watch: iteration ends, queued events are dropped. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link Watch.close}, for `await using`. */
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
  /** Same as {@link Datastore.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Error codes of the datastore contract. */
export const DatastoreErrorCode = {
  /** The object does not exist. */
  NotFound: "not-found",
  /** `create` of an object that exists. */
  AlreadyExists: "already-exists",
  /** A compare-and-swap precondition failed: re-read, re-apply, retry. */
  Conflict: "conflict",
  /** A malformed key, object, revision or option. */
  Invalid: "invalid",
  /** The watch's history is gone (or it fell behind): relist, then watch again. */
  Compacted: "compacted",
  /** The backend cannot be reached or timed out; a write's outcome is unknown. Retryable. */
  Unavailable: "unavailable",
  /**
   * The TLS handshake with the backend failed (server certificate not signed by the configured CA, its
   * names do not match the endpoint, our client certificate missing or rejected, TLS spoken to a plaintext
   * port). A configuration error: not retryable. `details.reason` says which, when it can be told.
   */
  Tls: "tls",
  /**
   * The backend refused our identity: wrong user or password, none given while authentication is on, or
   * a token it no longer accepts. A configuration error: not retryable.
   */
  Unauthenticated: "unauthenticated",
  /**
   * The backend knows who we are but our role does not grant the request (e.g. a key outside the user's
   * permitted prefix). A configuration error: not retryable.
   */
  PermissionDenied: "permission-denied",
  /** The datastore (or the watch) was closed. */
  Closed: "closed",
  /** The caller's signal aborted. */
  Aborted: "aborted",
} as const;
/** Union of {@link DatastoreErrorCode} values. */
export type DatastoreErrorCode = (typeof DatastoreErrorCode)[keyof typeof DatastoreErrorCode];
