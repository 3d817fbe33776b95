/**
 * `@margay/datastore`: the {@link Datastore} seam every Margay component reads and writes the model
 * through, with an in-process backend ({@link createMemoryDatastore}) and an etcd v3 backend
 * ({@link createEtcdDatastore}). The shared conformance suite lives in `@margay/datastore/testing`.
 *
 * @packageDocumentation
 */

export type {
  Datastore,
  DeleteOptions,
  ListOptions,
  ListResult,
  ObjectKey,
  StoredObject,
  StoredObjectMeta,
  TxnOp,
  TxnResult,
  Watch,
  WatchEvent,
  WatchEventType,
  WatchOptions,
} from "./types.js";
export { DatastoreErrorCode } from "./types.js";
export { decorateDatastore } from "./decorate.js";
export type { DatastoreErrorDetails, DatastoreErrorOptions } from "./errors.js";
export {
  DATASTORE_ERROR_BRAND,
  DatastoreError,
  isDatastoreError,
  notFoundError,
  alreadyExistsError,
  conflictError,
  invalidError,
  compactedError,
  unavailableError,
  tlsError,
  unauthenticatedError,
  permissionDeniedError,
  closedError,
  abortedError,
} from "./errors.js";
export type { KindScope, ValidationOptions } from "./validation.js";
export { appendShared, freezeShared } from "./json-copy.js";
export type { MemoryDatastore, MemoryDatastoreOptions, MemoryDurability } from "./memory/memory-datastore.js";
export { createMemoryDatastore } from "./memory/memory-datastore.js";
export type { EtcdDatastore, EtcdDatastoreOptions, EtcdTlsOptions } from "./etcd/etcd-datastore.js";
export { createEtcdDatastore } from "./etcd/etcd-datastore.js";
export { CLUSTER_SEGMENT, DEFAULT_PREFIX as DEFAULT_ETCD_PREFIX } from "./etcd/keys.js";
export type {
  Syncer,
  SyncerDelete,
  SyncerEvent,
  SyncerInSync,
  SyncerOptions,
  SyncerStatus,
  SyncerUpsert,
} from "./syncer/syncer.js";
export { createSyncer, SyncerState } from "./syncer/syncer.js";
