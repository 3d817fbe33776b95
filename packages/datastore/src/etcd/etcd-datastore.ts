/**
 * The etcd v3 backend over the `etcd3` client: the facade. Options are checked in `etcd-options.ts`,
 * the client built in `etcd-client.ts`, calls made and their failures classified in `etcd-calls.ts`,
 * writes in `etcd-writes.ts`, watches in `etcd-watch.ts`.
 *
 * Every call is one etcd request (one `Range` or one `Txn`), except an `update` whose object lacks the
 * server-owned `uid`/`creationTimestamp` (read first, then CAS on the revision read). `resourceVersion` is
 * the key's `mod_revision`, so it is never stored in the value.
 */

import { inspect } from "node:util";
import type { Etcd3 } from "etcd3";
import { enterCall } from "../backend-common.js";
import { closedError, notFoundError } from "../errors.js";
import type {
  Datastore,
  DeleteOptions,
  ListOptions,
  ListResult,
  ObjectKey,
  StoredObject,
  TxnOp,
  TxnResult,
  Watch,
  WatchOptions,
} from "../types.js";
import { checkKey, checkNamePrefix, checkNamespaceFilter, compareObjects } from "../validation.js";
import type { WatchStream } from "../watch-stream.js";
import { EtcdCalls, type EtcdContext } from "./etcd-calls.js";
import { createEtcdClient } from "./etcd-client.js";
import { decodeObject, prefixEnd, toBuf } from "./etcd-codec.js";
import { BACKEND, checkEtcdOptions, type EtcdDatastoreOptions } from "./etcd-options.js";
import { openWatch, releaseIdleWatchStream } from "./etcd-watch.js";
import { createObject, deleteObject, runTransaction, updateObject } from "./etcd-writes.js";
import { objectKey, rangePrefix } from "./keys.js";

export type { EtcdDatastoreOptions, EtcdTlsOptions } from "./etcd-options.js";

/** The etcd backend's own surface: the {@link Datastore} plus its prefix and the raw client. */
export interface EtcdDatastore extends Datastore {
  /** Key prefix in use. */
  readonly prefix: string;
  /**
   * The underlying `etcd3` client (for compaction, health, leases); owned by the datastore. Its options
   * hold the password and private key as non-enumerable properties, so printing it shows neither.
   */
  readonly client: Etcd3;
}

/** Creates an etcd-backed {@link Datastore}. The connection is opened lazily by the first call. */
export function createEtcdDatastore(options: EtcdDatastoreOptions): EtcdDatastore {
  return new EtcdStore(options);
}

class EtcdStore implements EtcdDatastore {
  readonly prefix: string;
  readonly #ctx: EtcdContext;
  readonly #endpoints: readonly string[];
  readonly #hasClientCert: boolean | undefined;
  readonly #username: string | undefined;
  #closed = false;

  constructor(options: EtcdDatastoreOptions) {
    const o = checkEtcdOptions(options);
    this.prefix = o.prefix;
    this.#endpoints = o.endpoints;
    this.#hasClientCert = o.tls === undefined ? undefined : o.tls.cert !== undefined;
    this.#username = o.username;
    const isClosed = () => this.#closed;
    this.#ctx = {
      client: createEtcdClient(o),
      prefix: o.prefix,
      calls: new EtcdCalls({
        endpoints: o.endpoints,
        tls: o.tls,
        diagnoseTimeoutMs: o.diagnoseTimeoutMs,
        readAttempts: o.readAttempts,
        log: o.log,
        isClosed,
      }),
      validation: o.validation,
      now: o.now,
      log: o.log,
      watchQueueLimit: o.watchQueueLimit,
      watches: new Set<WatchStream>(),
      isClosed,
    };
  }

  /** The underlying `etcd3` client (a getter, so printing the datastore does not print it). */
  get client(): Etcd3 {
    return this.#ctx.client;
  }

  /** What `util.inspect` (and so `console.log`) shows: no password, no key, no client internals. */
  [inspect.custom](): string {
    const shown = {
      prefix: this.prefix,
      endpoints: this.#endpoints,
      tls: this.#hasClientCert === undefined ? false : { clientCertificate: this.#hasClientCert },
      ...(this.#username === undefined ? {} : { username: this.#username, password: "<hidden>" }),
      closed: this.#closed,
    };
    return `EtcdDatastore ${inspect(shown)}`;
  }

  toJSON(): unknown {
    return { backend: BACKEND, prefix: this.prefix, endpoints: this.#endpoints };
  }

  async get<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options?: { signal?: AbortSignal },
  ): Promise<T> {
    this.#enter(options?.signal);
    const ctx = this.#ctx;
    const k = checkKey(key, ctx.validation);
    const res = await ctx.calls.read(
      () => ctx.client.kv.range({ key: toBuf(objectKey(this.prefix, k)) }),
      options?.signal,
      { ...k },
    );
    const kv = res.kvs[0];
    if (kv === undefined) throw notFoundError({ ...k, backend: BACKEND });
    return decodeObject(kv) as T;
  }

  async list<T extends StoredObject = StoredObject>(
    kind: string,
    options: ListOptions = {},
  ): Promise<ListResult<T>> {
    this.#enter(options.signal);
    const ctx = this.#ctx;
    checkNamespaceFilter(kind, options.namespace, ctx.validation);
    checkNamePrefix(options.namePrefix);
    const p = rangePrefix(this.prefix, kind, options.namespace, options.namePrefix);
    // One linearizable Range: the items and the header revision describe the same instant.
    const res = await ctx.calls.read(
      () => ctx.client.kv.range({ key: toBuf(p), range_end: prefixEnd(p) }),
      options.signal,
      { kind },
    );
    const items: T[] = [];
    for (const kv of res.kvs) {
      const obj = decodeObject(kv);
      if (options.namePrefix !== undefined && !obj.metadata.name.startsWith(options.namePrefix)) continue;
      items.push(obj as T);
    }
    items.sort(compareObjects);
    return { items, revision: res.header.revision };
  }

  async create<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    return createObject(this.#ctx, object, options?.signal);
  }

  async update<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    return updateObject(this.#ctx, object, options?.signal);
  }

  async delete<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options: DeleteOptions = {},
  ): Promise<T> {
    this.#enter(options.signal);
    return deleteObject<T>(this.#ctx, key, options);
  }

  async transaction(ops: readonly TxnOp[], options?: { signal?: AbortSignal }): Promise<TxnResult> {
    this.#enter(options?.signal);
    return runTransaction(this.#ctx, ops, options?.signal);
  }

  watch<T extends StoredObject = StoredObject>(kind: string, options: WatchOptions = {}): Watch<T> {
    this.#enter(undefined);
    return openWatch<T>(this.#ctx, kind, options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const watches = [...this.#ctx.watches];
    for (const s of watches) s.fail(closedError({ backend: BACKEND }));
    await Promise.all(watches.map((s) => s.close()));
    releaseIdleWatchStream(this.#ctx.client);
    this.#ctx.client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #enter(signal: AbortSignal | undefined): void {
    enterCall(this.#closed, signal, BACKEND);
  }
}
