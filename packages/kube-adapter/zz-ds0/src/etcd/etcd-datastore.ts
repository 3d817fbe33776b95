/**
 * The etcd v3 backend over the `etcd3` client.
 *
 * Every call is one etcd request (one `Range` or one `Txn`), except an `update` whose object lacks the
 * server-owned `uid`/`creationTimestamp` (read first, then CAS on the revision read). `resourceVersion` is
 * the key's `mod_revision`, so it is never stored in the value.
 */

import { randomUUID } from "node:crypto";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  noop,
} from "cockatiel";
import {
  Etcd3,
  type ICompare,
  type IKeyValue,
  type IOptions,
  type IRequestOp,
  type ITxnResponse,
  isRecoverableError,
  type Watcher,
} from "etcd3";
import {
  alreadyExistsError,
  closedError,
  compactedError,
  conflictError,
  type DatastoreErrorDetails,
  abortedError,
  invalidError,
  notFoundError,
  throwIfAborted,
} from "../errors.js";
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
  WatchEvent,
  WatchOptions,
} from "../types.js";
import {
  type CheckedOp,
  checkKey,
  checkNamePrefix,
  checkNamespaceFilter,
  checkObject,
  checkTxnOps,
  compareObjects,
  parseFromRevision,
  parseRevision,
  type ValidationOptions,
} from "../validation.js";
import { WatchStream } from "../watch-stream.js";
import { isCompactedMessage, isFutureRevisionMessage, mapEtcdError } from "./etcd-errors.js";
import { DEFAULT_PREFIX, objectKey, parseObjectKey, rangePrefix } from "./keys.js";

/** TLS material (PEM), passed as data: the library never reads files itself. */
export interface EtcdTlsOptions {
  /** CA certificate(s) that sign the etcd server certificate. */
  ca: Buffer | string;
  /** Client certificate, for etcd's `--client-cert-auth`. */
  cert?: Buffer | string | undefined;
  /** Private key of `cert`. */
  key?: Buffer | string | undefined;
}

/** Options of {@link createEtcdDatastore}. */
export interface EtcdDatastoreOptions extends ValidationOptions {
  /** etcd client URLs, e.g. `["http://127.0.0.1:2379"]` (`https://` with `tls`). Required. */
  endpoints: readonly string[];
  /** TLS; default: plaintext unless an endpoint is `https://` (then the system CAs). */
  tls?: EtcdTlsOptions | undefined;
  /** etcd user for authentication (with `password`). Default: none. */
  username?: string | undefined;
  /** Password of `username`. Default: none. */
  password?: string | undefined;
  /** Key prefix (no trailing `/`). Default `/margay/v1`. */
  prefix?: string | undefined;
  /** Connection establishment timeout, ms. Default 5 000. */
  dialTimeoutMs?: number | undefined;
  /** Deadline of each unary request, ms (a timed-out call fails `unavailable`). Default 10 000. */
  requestTimeoutMs?: number | undefined;
  /**
   * Attempts of an idempotent read (get, list) on connection failures, each on a randomly picked endpoint.
   * Writes are never retried blindly: a write whose outcome is unknown fails `unavailable`. Default 3.
   */
  readAttempts?: number | undefined;
  /** Longest delay between watch stream reconnection attempts, ms. Default 2 000. */
  watchReconnectMaxDelayMs?: number | undefined;
  /** Events one watch may have queued before it fails with `compacted` (slow consumer). Default 10 000. */
  watchQueueLimit?: number | undefined;
  /** Clock for `creationTimestamp`. Default `() => new Date()`. */
  now?: (() => Date) | undefined;
}

/** The etcd backend's own surface: the {@link Datastore} plus its prefix and the raw client. */
export interface EtcdDatastore extends Datastore {
  /** Key prefix in use. */
  readonly prefix: string;
  /** The underlying `etcd3` client (for compaction, health, leases); owned by the datastore. */
  readonly client: Etcd3;
}

const BACKEND = "etcd";
const MAX_UNCONDITIONAL_ATTEMPTS = 50;
const DEFAULTS = Object.freeze({
  prefix: DEFAULT_PREFIX,
  dialTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  readAttempts: 3,
  watchReconnectMaxDelayMs: 2_000,
  watchQueueLimit: 10_000,
});

/** Creates an etcd-backed {@link Datastore}. The connection is opened lazily by the first call. */
export function createEtcdDatastore(options: EtcdDatastoreOptions): EtcdDatastore {
  return new EtcdStore(options);
}

const toBuf = (s: string) => Buffer.from(s, "utf8");

/** The smallest key greater than every key starting with `prefix` (etcd's prefix `range_end`). */
function prefixEnd(prefix: string): Buffer {
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

function posInt(v: number | undefined, def: number, field: string): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < 1) throw invalidError(`${field} must be a positive integer`, { field });
  return v;
}

class EtcdStore implements EtcdDatastore {
  readonly prefix: string;
  readonly client: Etcd3;
  readonly #opts: ValidationOptions;
  readonly #readAttempts: number;
  readonly #watchQueueLimit: number;
  readonly #now: () => Date;
  readonly #watches = new Set<WatchStream>();
  #closed = false;

  constructor(options: EtcdDatastoreOptions) {
    if (!Array.isArray(options?.endpoints) || options.endpoints.length === 0) {
      throw invalidError("endpoints must list at least one etcd URL", {
        field: "endpoints",
        backend: BACKEND,
      });
    }
    const prefix = options.prefix ?? DEFAULTS.prefix;
    if (!/^\/[\x21-\x7e]*[^/]$/.test(prefix) || prefix.includes("//")) {
      throw invalidError(`invalid prefix ${JSON.stringify(prefix)}: starts with "/", no trailing "/"`, {
        field: "prefix",
        backend: BACKEND,
      });
    }
    this.prefix = prefix;
    this.#opts = { kindScopes: options.kindScopes, validate: options.validate };
    this.#readAttempts = posInt(options.readAttempts, DEFAULTS.readAttempts, "readAttempts");
    this.#watchQueueLimit = posInt(options.watchQueueLimit, DEFAULTS.watchQueueLimit, "watchQueueLimit");
    this.#now = options.now ?? (() => new Date());
    const requestTimeout = posInt(options.requestTimeoutMs, DEFAULTS.requestTimeoutMs, "requestTimeoutMs");
    const reconnectMax = posInt(
      options.watchReconnectMaxDelayMs,
      DEFAULTS.watchReconnectMaxDelayMs,
      "watchReconnectMaxDelayMs",
    );
    const clientOptions: IOptions = {
      hosts: [...options.endpoints],
      dialTimeout: posInt(options.dialTimeoutMs, DEFAULTS.dialTimeoutMs, "dialTimeoutMs"),
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeout }),
      grpcOptions: { "grpc.max_receive_message_length": 256 * 1024 * 1024 },
      faultHandling: {
        // No blind global retry: re-sending a Txn whose reply was lost could apply it twice. A host whose
        // circuit is open is skipped before anything is sent, which is the safe kind of fail-over.
        global: noop,
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 1_000,
            breaker: new ConsecutiveBreaker(3),
          }),
        // etcd3 types this as an IBackoff but uses it exactly as its own default, an ExponentialBackoff.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: reconnectMax,
        }) as unknown as IBackoff<unknown>,
      },
    };
    if (options.tls !== undefined) {
      const { ca, cert, key } = options.tls;
      clientOptions.credentials = {
        rootCertificate: Buffer.from(ca),
        ...(key === undefined ? {} : { privateKey: Buffer.from(key) }),
        ...(cert === undefined ? {} : { certChain: Buffer.from(cert) }),
      };
    }
    if (options.username !== undefined || options.password !== undefined) {
      if (!options.username || options.password === undefined) {
        throw invalidError("username and password go together", { field: "username", backend: BACKEND });
      }
      clientOptions.auth = { username: options.username, password: options.password };
    }
    this.client = new Etcd3(clientOptions);
  }

  async get<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options?: { signal?: AbortSignal },
  ): Promise<T> {
    this.#enter(options?.signal);
    const k = checkKey(key, this.#opts);
    const res = await this.#read(
      () => this.client.kv.range({ key: toBuf(objectKey(this.prefix, k)) }),
      options?.signal,
      { ...k },
    );
    const kv = res.kvs[0];
    if (kv === undefined) throw notFoundError({ ...k, backend: BACKEND });
    return this.#decode(kv) as T;
  }

  async list<T extends StoredObject = StoredObject>(
    kind: string,
    options: ListOptions = {},
  ): Promise<ListResult<T>> {
    this.#enter(options.signal);
    checkNamespaceFilter(kind, options.namespace, this.#opts);
    checkNamePrefix(options.namePrefix);
    const p = rangePrefix(this.prefix, kind, options.namespace, options.namePrefix);
    // One linearizable Range: the items and the header revision describe the same instant.
    const res = await this.#read(
      () => this.client.kv.range({ key: toBuf(p), range_end: prefixEnd(p) }),
      options.signal,
      { kind },
    );
    const items: T[] = [];
    for (const kv of res.kvs) {
      const obj = this.#decode(kv);
      if (options.namePrefix !== undefined && !obj.metadata.name.startsWith(options.namePrefix)) continue;
      items.push(obj as T);
    }
    items.sort(compareObjects);
    return { items, revision: res.header.revision };
  }

  async create<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    const { key, copy } = checkObject(object, this.#opts);
    const k = objectKey(this.prefix, key);
    copy.metadata.uid = randomUUID();
    copy.metadata.creationTimestamp = this.#now().toISOString();
    const res = await this.#write(
      () =>
        this.client.kv.txn({
          compare: [{ key: toBuf(k), target: "Create", result: "Equal", create_revision: 0 }],
          success: [{ request_put: { key: toBuf(k), value: this.#encode(copy) } }],
        }),
      options?.signal,
      key,
    );
    if (!res.succeeded) throw alreadyExistsError({ ...key, backend: BACKEND });
    copy.metadata.resourceVersion = res.header.revision;
    return copy as T;
  }

  async update<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    const { key, copy } = checkObject(object, this.#opts);
    const k = objectKey(this.prefix, key);
    const meta = copy.metadata;
    const expected = meta.resourceVersion === undefined ? undefined : parseRevision(meta.resourceVersion);
    // Fast path, one round trip: a CAS whose caller read the object (and so carries its uid).
    if (expected !== undefined && meta.uid !== undefined && meta.creationTimestamp !== undefined) {
      return (await this.#casPut(k, key, copy, expected, options?.signal, true)) as T;
    }
    for (let attempt = 1; ; attempt++) {
      const cur = (
        await this.#read(() => this.client.kv.range({ key: toBuf(k) }), options?.signal, { ...key })
      ).kvs[0];
      if (cur === undefined) throw notFoundError({ ...key, backend: BACKEND });
      const curRev = Number(cur.mod_revision);
      if (expected !== undefined && curRev !== expected) {
        throw conflictError({
          ...key,
          reason: "revision-mismatch",
          expectedRevision: String(expected),
          actualRevision: cur.mod_revision,
          backend: BACKEND,
        });
      }
      const stored = this.#decode(cur).metadata;
      if (meta.uid !== undefined && stored.uid !== undefined && meta.uid !== stored.uid) {
        throw conflictError({
          ...key,
          reason: "uid-mismatch",
          actualRevision: cur.mod_revision,
          backend: BACKEND,
        });
      }
      const next = structuredClone(copy);
      if (stored.uid !== undefined) next.metadata.uid ??= stored.uid;
      if (stored.creationTimestamp !== undefined)
        next.metadata.creationTimestamp ??= stored.creationTimestamp;
      // An unconditional update that keeps losing races reports it instead of spinning forever.
      const strict = expected !== undefined || attempt >= MAX_UNCONDITIONAL_ATTEMPTS;
      const out = await this.#casPut(k, key, next, curRev, options?.signal, strict);
      if (out !== undefined) return out as T;
      // Unconditional update raced another writer: re-read and apply again (last writer wins).
    }
  }

  /** CAS put on `mod_revision == rev`. On failure throws (strict) or returns undefined (to retry). */
  async #casPut(
    k: string,
    key: ObjectKey,
    obj: StoredObject,
    rev: number,
    signal: AbortSignal | undefined,
    strict: true,
  ): Promise<StoredObject>;
  async #casPut(
    k: string,
    key: ObjectKey,
    obj: StoredObject,
    rev: number,
    signal: AbortSignal | undefined,
    strict: boolean,
  ): Promise<StoredObject | undefined>;
  async #casPut(
    k: string,
    key: ObjectKey,
    obj: StoredObject,
    rev: number,
    signal: AbortSignal | undefined,
    strict: boolean,
  ): Promise<StoredObject | undefined> {
    const res = await this.#write(
      () =>
        this.client.kv.txn({
          compare: [{ key: toBuf(k), target: "Mod", result: "Equal", mod_revision: rev }],
          success: [{ request_put: { key: toBuf(k), value: this.#encode(obj) } }],
          failure: [{ request_range: { key: toBuf(k) } }],
        }),
      signal,
      key,
    );
    if (res.succeeded) {
      obj.metadata.resourceVersion = res.header.revision;
      return obj;
    }
    const cur = res.responses[0]?.response_range?.kvs[0];
    if (cur === undefined) throw notFoundError({ ...key, backend: BACKEND });
    if (!strict) return undefined;
    throw conflictError({
      ...key,
      reason: "revision-mismatch",
      expectedRevision: String(rev),
      actualRevision: cur.mod_revision,
      backend: BACKEND,
    });
  }

  async delete<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options: DeleteOptions = {},
  ): Promise<T> {
    this.#enter(options.signal);
    const k = checkKey(key, this.#opts);
    const sk = toBuf(objectKey(this.prefix, k));
    const expected =
      options.resourceVersion === undefined ? undefined : parseRevision(options.resourceVersion);
    const res = await this.#write(
      () =>
        this.client.kv.txn({
          compare:
            expected === undefined
              ? [{ key: sk, target: "Version", result: "Greater", version: 0 }]
              : [{ key: sk, target: "Mod", result: "Equal", mod_revision: expected }],
          success: [{ request_delete_range: { key: sk, prev_kv: true } }],
          failure: [{ request_range: { key: sk } }],
        }),
      options.signal,
      k,
    );
    if (!res.succeeded) {
      const cur = res.responses[0]?.response_range?.kvs[0];
      if (cur === undefined) throw notFoundError({ ...k, backend: BACKEND });
      throw conflictError({
        ...k,
        reason: "revision-mismatch",
        expectedRevision: String(expected),
        actualRevision: cur.mod_revision,
        backend: BACKEND,
      });
    }
    const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
    if (prev === undefined) throw notFoundError({ ...k, backend: BACKEND });
    return this.#decode(prev) as T;
  }

  async transaction(ops: readonly TxnOp[], options?: { signal?: AbortSignal }): Promise<TxnResult> {
    this.#enter(options?.signal);
    const checked = checkTxnOps(ops, this.#opts);
    await this.#fillServerFields(checked, options?.signal);
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const now = this.#now().toISOString();
    for (const op of checked) {
      const key = toBuf(objectKey(this.prefix, op.key));
      switch (op.op) {
        case "create":
          op.object.metadata.uid = randomUUID();
          op.object.metadata.creationTimestamp = now;
          compare.push({ key, target: "Create", result: "Equal", create_revision: 0 });
          success.push({ request_put: { key, value: this.#encode(op.object) } });
          break;
        case "update":
          compare.push({ key, target: "Mod", result: "Equal", mod_revision: op.revision });
          success.push({ request_put: { key, value: this.#encode(op.object) } });
          break;
        case "delete":
          compare.push(
            op.revision === undefined
              ? { key, target: "Version", result: "Greater", version: 0 }
              : { key, target: "Mod", result: "Equal", mod_revision: op.revision },
          );
          success.push({ request_delete_range: { key } });
          break;
        case "check":
          compare.push(
            op.absent
              ? { key, target: "Version", result: "Equal", version: 0 }
              : op.revision === undefined
                ? { key, target: "Version", result: "Greater", version: 0 }
                : { key, target: "Mod", result: "Equal", mod_revision: op.revision },
          );
          break;
      }
    }
    // On failure, read every key back in the same txn so the failed precondition can be named exactly.
    const failure: IRequestOp[] = checked.map((op) => ({
      request_range: { key: toBuf(objectKey(this.prefix, op.key)), keys_only: true },
    }));
    const res = await this.#write(
      () => this.client.kv.txn({ compare, success, failure }),
      options?.signal,
      {},
    );
    if (!res.succeeded) throw this.#txnConflict(checked, res);
    const results = checked.map((op) => {
      if (op.op !== "create" && op.op !== "update") return null;
      op.object.metadata.resourceVersion = res.header.revision;
      return op.object;
    });
    return { revision: res.header.revision, results };
  }

  /** Transaction updates without uid/creationTimestamp get them from the stored object (one read txn). */
  async #fillServerFields(ops: CheckedOp[], signal: AbortSignal | undefined): Promise<void> {
    const need = ops
      .map((op, i) => ({ op, i }))
      .filter(
        (x): x is { op: Extract<CheckedOp, { op: "update" }>; i: number } =>
          x.op.op === "update" &&
          (x.op.object.metadata.uid === undefined || x.op.object.metadata.creationTimestamp === undefined),
      );
    if (need.length === 0) return;
    const res = await this.#read(
      () =>
        this.client.kv.txn({
          success: need.map(({ op }) => ({ request_range: { key: toBuf(objectKey(this.prefix, op.key)) } })),
        }),
      signal,
      {},
    );
    need.forEach(({ op, i }, j) => {
      const kv = res.responses[j]?.response_range?.kvs[0];
      if (kv === undefined || Number(kv.mod_revision) !== op.revision) {
        throw conflictError({
          ...op.key,
          opIndex: i,
          reason: kv === undefined ? "missing" : "revision-mismatch",
          expectedRevision: String(op.revision),
          ...(kv === undefined ? {} : { actualRevision: kv.mod_revision }),
          backend: BACKEND,
        });
      }
      const stored = this.#decode(kv).metadata;
      if (stored.uid !== undefined) op.object.metadata.uid ??= stored.uid;
      if (stored.creationTimestamp !== undefined)
        op.object.metadata.creationTimestamp ??= stored.creationTimestamp;
    });
  }

  #txnConflict(ops: CheckedOp[], res: ITxnResponse) {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const kv: IKeyValue | undefined = res.responses[i]?.response_range?.kvs[0];
      const actual = kv === undefined ? undefined : Number(kv.mod_revision);
      let reason: string | undefined;
      if (op.op === "create" || (op.op === "check" && op.absent)) {
        if (actual !== undefined) reason = "exists";
      } else if (actual === undefined) reason = "missing";
      else if (op.revision !== undefined && actual !== op.revision) {
        reason = "revision-mismatch";
      }
      if (reason !== undefined) {
        const d: DatastoreErrorDetails = { ...op.key, opIndex: i, reason, backend: BACKEND };
        if (op.op !== "create" && op.revision !== undefined) d.expectedRevision = String(op.revision);
        if (kv !== undefined) d.actualRevision = kv.mod_revision;
        return conflictError(d);
      }
    }
    return conflictError({ reason: "unknown", backend: BACKEND });
  }

  watch<T extends StoredObject = StoredObject>(kind: string, options: WatchOptions = {}): Watch<T> {
    this.#enter(undefined);
    checkNamespaceFilter(kind, options.namespace, this.#opts);
    const from = options.fromRevision === undefined ? undefined : parseFromRevision(options.fromRevision);
    const p = rangePrefix(this.prefix, kind, options.namespace);
    let watcher: Watcher | undefined;
    // Set once etcd itself cancelled the watcher: cancelling it again would wait for a reply that never
    // comes (etcd ignores a cancel of an unknown watch id).
    let cancelledByServer = false;
    const stream: WatchStream = new WatchStream({
      queueLimit: this.#watchQueueLimit,
      signal: options.signal,
      backend: BACKEND,
      onStop: async () => {
        this.#watches.delete(stream);
        if (watcher === undefined || cancelledByServer) return;
        await boundedWait(watcher.cancel(), 2_000);
      },
    });
    if (stream.stopped) return stream as unknown as Watch<T>;
    this.#watches.add(stream);
    // The last revision handed to the consumer. Every (re)connection resumes right after it, whatever
    // the client library's own bookkeeping says: etcd3 resumes from the last *header* revision, which
    // during a catch-up batch is ahead of the events delivered so far (and could skip some).
    let last = from;
    const builder = this.client
      .watch()
      .inRange({ start: toBuf(p), end: prefixEnd(p) })
      .withPreviousKV();
    if (from !== undefined) builder.startRevision(String(from + 1));
    // `watcher()` attaches synchronously, so our listeners are in place before any response arrives.
    const w = builder.watcher();
    watcher = w;
    const pin = () => {
      if (last !== undefined) (w.request as { start_revision?: string }).start_revision = String(last + 1);
    };
    w.on("connected", (res) => {
      // A watch "from now" starts after the revision etcd reports when it registers the watch.
      if (last === undefined) last = Number(res.header.revision);
      pin();
    });
    w.on("disconnected", pin);
    w.on("data", (res) => {
      try {
        if (res.events.length === 0) {
          // A progress notification (sent only to watchers that are in sync): nothing up to the header
          // revision is pending, so a later resume may start after it (avoids needless `compacted`).
          const h = Number(res.header.revision);
          if (last !== undefined && h > last) last = h;
          pin();
          return;
        }
        const out: WatchEvent[] = [];
        let max = last ?? 0;
        for (const ev of res.events) {
          const rev = Number(ev.kv.mod_revision);
          if (last !== undefined && rev <= last) continue; // replay after a reconnect: already delivered
          const e = this.#toEvent(ev.type, ev.kv, ev.prev_kv);
          if (e !== undefined) out.push(e);
          if (rev > max) max = rev;
        }
        last = max;
        pin();
        stream.push(out);
      } catch (e) {
        stream.fail(mapEtcdError(e, { kind }));
      }
    });
    w.on("error", (err) => {
      cancelledByServer = true;
      void this.#watchFailed(err, last, kind).then((e) => stream.fail(e));
    });
    return stream as unknown as Watch<T>;
  }

  /** Works out why etcd cancelled a watch: a compaction past our position, or something else. */
  async #watchFailed(err: unknown, last: number | undefined, kind: string) {
    if (this.#closed) return closedError({ backend: BACKEND });
    const next = (last ?? 0) + 1;
    let compacted = isCompactedMessage(err);
    if (!compacted) {
      try {
        // etcd 3.4 cancels a compacted watch without a reason; probe the revision it was resuming from.
        await this.client.kv.range({ key: toBuf(this.prefix), revision: next, keys_only: true, limit: 1 });
      } catch (probe) {
        compacted = isCompactedMessage(probe);
        if (!compacted && !isFutureRevisionMessage(probe)) return mapEtcdError(probe, { kind });
      }
    }
    if (compacted) {
      return compactedError({ kind, revision: String(next - 1), backend: BACKEND }, err);
    }
    return mapEtcdError(err, { kind });
  }

  #toEvent(type: "Put" | "Delete", kv: IKeyValue, prev: IKeyValue | undefined): WatchEvent | undefined {
    const revision = kv.mod_revision;
    if (type === "Put") {
      const object = this.#decode(kv);
      const ev: WatchEvent = { type: kv.version === "1" ? "added" : "modified", object, revision };
      if (prev !== undefined && prev !== null && kv.version !== "1") ev.previous = this.#decode(prev);
      return ev;
    }
    if (prev !== undefined && prev !== null) {
      return { type: "deleted", object: this.#decode(prev), previous: this.#decode(prev), revision };
    }
    // Without prev_kv (not expected: we always ask for it) the key alone still identifies the object.
    const key = parseObjectKey(this.prefix, kv.key.toString("utf8"));
    if (key === undefined) return undefined;
    const metadata =
      key.namespace === undefined ? { name: key.name } : { name: key.name, namespace: key.namespace };
    return { type: "deleted", object: { kind: key.kind, metadata }, revision };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const watches = [...this.#watches];
    for (const s of watches) s.fail(closedError({ backend: BACKEND }));
    await Promise.all(watches.map((s) => s.close()));
    this.client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ----

  #enter(signal: AbortSignal | undefined): void {
    if (this.#closed) throw closedError({ backend: BACKEND });
    throwIfAborted(signal);
  }

  #encode(obj: StoredObject): Buffer {
    const { resourceVersion: _rv, ...metadata } = obj.metadata;
    return toBuf(JSON.stringify({ ...obj, metadata }));
  }

  #decode(kv: IKeyValue): StoredObject {
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
    if (
      typeof obj !== "object" ||
      obj === null ||
      typeof obj.metadata !== "object" ||
      obj.metadata === null
    ) {
      throw invalidError(`etcd key ${kv.key.toString("utf8")} does not hold a stored object`, {
        reason: "corrupt-value",
        backend: BACKEND,
      });
    }
    obj.metadata.resourceVersion = kv.mod_revision;
    return obj;
  }

  /** An idempotent read: retried on connection failures (each attempt may pick another endpoint). */
  async #read<R>(call: () => Promise<R>, signal: AbortSignal | undefined, details: DatastoreErrorDetails) {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.#readAttempts; attempt++) {
      if (attempt > 0) await sleep(50 * 2 ** attempt, signal);
      try {
        return await withSignal(call(), signal);
      } catch (e) {
        const mapped = this.#mapCallError(e, details);
        if (mapped.code !== "unavailable" || signal?.aborted) throw mapped;
        lastError = mapped;
      }
    }
    throw lastError;
  }

  /** A write: sent once; if its outcome is unknown the caller gets `unavailable` and must re-read. */
  async #write<R>(call: () => Promise<R>, signal: AbortSignal | undefined, details: DatastoreErrorDetails) {
    try {
      return await withSignal(call(), signal);
    } catch (e) {
      throw this.#mapCallError(e, details);
    }
  }

  #mapCallError(e: unknown, details: DatastoreErrorDetails) {
    if (this.#closed) return closedError({ backend: BACKEND });
    return mapEtcdError(e, details);
  }
}

/** Races a call against the caller's signal (the request itself cannot be recalled once sent). */
function withSignal<R>(p: Promise<R>, signal: AbortSignal | undefined): Promise<R> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortedError(signal));
  }
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Waits for `p` (errors ignored) but no longer than `ms`: used where a peer may never answer. */
async function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
