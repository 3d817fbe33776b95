/**
 * The etcd v3 backend over the `etcd3` client.
 *
 * Every call is one etcd request (one `Range` or one `Txn`), except an `update` whose object lacks the
 * server-owned `uid`/`creationTimestamp` (read first, then CAS on the revision read). `resourceVersion` is
 * the key's `mod_revision`, so it is never stored in the value.
 */

import { randomUUID, X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { inspect } from "node:util";
import { backoffDelay, type Logger, silentLogger, sleep } from "@margay/api";
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
  DatastoreError,
  type DatastoreErrorDetails,
  abortedError,
  isDatastoreError,
  tlsError,
  unavailableError,
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
import { type DiagnosisTls, diagnoseEndpoint, redactUrlCredentials } from "./tls-diagnosis.js";
import { DEFAULT_PREFIX, objectKey, parseObjectKey, rangePrefix } from "./keys.js";

/**
 * TLS material (PEM), passed as data: the library never reads files itself. Checked at construction:
 * a certificate without its key (or the reverse), a key that does not match the certificate, or data that
 * is not PEM fail `invalid` naming the field.
 */
export interface EtcdTlsOptions {
  /** CA certificate(s) that sign the etcd server certificate. */
  ca: Buffer | string;
  /** Client certificate, for etcd's `--client-cert-auth`; requires `key`. */
  cert?: Buffer | string | undefined;
  /** Private key of `cert`; requires `cert`. Never printed. */
  key?: Buffer | string | undefined;
}

/** Options of {@link createEtcdDatastore}. */
export interface EtcdDatastoreOptions extends ValidationOptions {
  /**
   * etcd client URLs, e.g. `["http://127.0.0.1:2379"]` (`https://` with `tls`). Required. URLs carrying
   * credentials (`https://user:pw@host`) are refused `invalid`: use `username`/`password`.
   */
  endpoints: readonly string[];
  /** TLS; default: plaintext unless an endpoint is `https://` (then the system CAs). */
  tls?: EtcdTlsOptions | undefined;
  /** etcd user for authentication (with `password`). Default: none. */
  username?: string | undefined;
  /** Password of `username`. Default: none. Never printed (not by `util.inspect`, not in errors). */
  password?: string | undefined;
  /** Key prefix (no trailing `/`). Default `/margay/v1`. */
  prefix?: string | undefined;
  /** Connection establishment timeout, ms. Default 5 000. */
  dialTimeoutMs?: number | undefined;
  /** Deadline of each unary request, ms (a timed-out call fails `unavailable`). Default 10 000. */
  requestTimeoutMs?: number | undefined;
  /**
   * Attempts of an idempotent read (get, list) on retryable failures (`unavailable`), each on a randomly
   * picked endpoint; `tls`, `unauthenticated`, `permission-denied` and other non-retryable failures are
   * never retried. Writes are never retried blindly: a write whose outcome is unknown fails `unavailable`.
   * Default 3.
   */
  readAttempts?: number | undefined;
  /** Longest delay between watch stream reconnection attempts, ms. Default 2 000. */
  watchReconnectMaxDelayMs?: number | undefined;
  /** Events one watch may have queued before it fails with `compacted` (slow consumer). Default 10 000. */
  watchQueueLimit?: number | undefined;
  /** Clock for `creationTimestamp`. Default `() => new Date()`. */
  now?: (() => Date) | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "datastore", backend: "etcd"`. Watch
   * disconnects and reconnects, read retries and endpoints the circuit breaker takes out of (and back into)
   * service are logged. Default: silent.
   */
  logger?: Logger | undefined;
}

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

const BACKEND = "etcd";
/** Delays between attempts of an idempotent read: 100 ms, 200 ms, … (no jitter: each may pick another endpoint). */
const READ_RETRY = Object.freeze({ initialMs: 100, maxMs: 2_000, factor: 2, jitter: 0 });
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

/** Sets `obj[key] = value` as a non-enumerable property: `util.inspect` and JSON skip it. */
function hide<T extends object>(obj: T, key: string, value: unknown): T {
  Object.defineProperty(obj, key, { value, enumerable: false, writable: false, configurable: false });
  return obj;
}

function checkEndpoints(endpoints: unknown): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw invalidError("endpoints must list at least one etcd URL", { field: "endpoints", backend: BACKEND });
  }
  return endpoints.map((e: unknown, i) => {
    const field = `endpoints[${i}]`;
    let url: URL;
    try {
      if (typeof e !== "string") throw new TypeError("not a string");
      url = new URL(e);
    } catch {
      throw invalidError(`${field} is not a URL`, { field, backend: BACKEND });
    }
    if (url.username !== "" || url.password !== "") {
      throw invalidError(
        `${field} (${redactUrlCredentials(url.href)}) carries credentials; pass username and password instead`,
        { field, backend: BACKEND },
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw invalidError(`${field} must be an http:// or https:// URL`, { field, backend: BACKEND });
    }
    return e as string;
  });
}

/** Checks the TLS material once, naming the faulty field (gRPC would throw a bare `Error`). */
function checkTls(tls: EtcdTlsOptions): DiagnosisTls {
  const pem = (v: unknown, field: string): Buffer | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string" && !Buffer.isBuffer(v)) {
      throw invalidError(`${field} must be PEM data (a string or a Buffer)`, { field, backend: BACKEND });
    }
    return Buffer.from(v);
  };
  const ca = pem(tls.ca, "tls.ca");
  const cert = pem(tls.cert, "tls.cert");
  const key = pem(tls.key, "tls.key");
  if (cert !== undefined && key === undefined) {
    throw invalidError("tls.cert is given without tls.key", { field: "tls.key", backend: BACKEND });
  }
  if (key !== undefined && cert === undefined) {
    throw invalidError("tls.key is given without tls.cert", { field: "tls.cert", backend: BACKEND });
  }
  // OpenSSL's messages name the problem, never the material; they go into the message as they are.
  const tryContext = (field: string, o: Parameters<typeof createSecureContext>[0]) => {
    try {
      createSecureContext(o);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalidError(`${field} is unusable: ${why}`, { field, backend: BACKEND });
    }
  };
  const tryCert = (field: string, pemData: Buffer) => {
    try {
      new X509Certificate(pemData); // OpenSSL silently skips a CA bundle that holds no certificate
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalidError(`${field} is not a PEM certificate: ${why}`, { field, backend: BACKEND });
    }
  };
  if (ca !== undefined) {
    tryCert("tls.ca", ca);
    tryContext("tls.ca", { ca });
  }
  if (cert !== undefined && key !== undefined) {
    tryCert("tls.cert", cert);
    tryContext("tls.cert", { cert });
    tryContext("tls.key", { cert, key });
  }
  const out: DiagnosisTls = {};
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) hide(out, "key", key);
  return out;
}

function posInt(v: number | undefined, def: number, field: string): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < 1) throw invalidError(`${field} must be a positive integer`, { field });
  return v;
}

class EtcdStore implements EtcdDatastore {
  readonly prefix: string;
  readonly #client: Etcd3;
  readonly #endpoints: readonly string[];
  readonly #tls: DiagnosisTls | undefined;
  readonly #username: string | undefined;
  readonly #diagnoseTimeoutMs: number;
  /** The last connection-level failure, for calls the circuit breaker turns away without trying. */
  #lastFailure: DatastoreError | undefined;
  #diagnosis: { at: number; result: Promise<DatastoreError | undefined> } | undefined;
  readonly #opts: ValidationOptions;
  readonly #readAttempts: number;
  readonly #watchQueueLimit: number;
  readonly #now: () => Date;
  readonly #log: Logger;
  readonly #watches = new Set<WatchStream>();
  #closed = false;

  constructor(options: EtcdDatastoreOptions) {
    this.#endpoints = checkEndpoints(options?.endpoints);
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
    const log = (options.logger ?? silentLogger).child({ component: "datastore", backend: BACKEND });
    this.#log = log;
    const requestTimeout = posInt(options.requestTimeoutMs, DEFAULTS.requestTimeoutMs, "requestTimeoutMs");
    const reconnectMax = posInt(
      options.watchReconnectMaxDelayMs,
      DEFAULTS.watchReconnectMaxDelayMs,
      "watchReconnectMaxDelayMs",
    );
    const dialTimeout = posInt(options.dialTimeoutMs, DEFAULTS.dialTimeoutMs, "dialTimeoutMs");
    this.#diagnoseTimeoutMs = Math.min(dialTimeout, 5_000);
    const clientOptions: IOptions = {
      hosts: [...this.#endpoints],
      dialTimeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeout }),
      grpcOptions: { "grpc.max_receive_message_length": 256 * 1024 * 1024 },
      faultHandling: {
        // No blind global retry: re-sending a Txn whose reply was lost could apply it twice. A host whose
        // circuit is open is skipped before anything is sent, which is the safe kind of fail-over.
        global: noop,
        host: (host) => {
          const breaker = circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 1_000,
            breaker: new ConsecutiveBreaker(3),
          });
          breaker.onBreak(() => log.warn({ host }, "etcd endpoint unreachable; circuit open"));
          breaker.onReset(() => log.info({ host }, "etcd endpoint reachable; circuit closed"));
          return breaker;
        },
        // etcd3 types this as an IBackoff but uses it exactly as its own default, an ExponentialBackoff.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: reconnectMax,
        }) as unknown as IBackoff<unknown>,
      },
    };
    this.#tls = options.tls === undefined ? undefined : checkTls(options.tls);
    if (this.#tls !== undefined) {
      const { ca, cert, key } = this.#tls;
      const credentials = { rootCertificate: ca ?? Buffer.alloc(0) } as NonNullable<IOptions["credentials"]>;
      if (ca === undefined) delete (credentials as { rootCertificate?: Buffer }).rootCertificate;
      if (cert !== undefined) credentials.certChain = cert;
      if (key !== undefined) hide(credentials, "privateKey", key);
      clientOptions.credentials = credentials;
    }
    if (options.username !== undefined || options.password !== undefined) {
      if (!options.username || typeof options.password !== "string") {
        throw invalidError("username and password go together", {
          field: options.username ? "password" : "username",
          backend: BACKEND,
        });
      }
      this.#username = options.username;
      clientOptions.auth = hide({ username: options.username }, "password", options.password) as {
        username: string;
        password: string;
      };
    }
    try {
      this.#client = new Etcd3(clientOptions);
    } catch (e) {
      // Whatever gRPC still refuses: an option problem, and a DatastoreError like every other failure.
      const why = e instanceof Error ? e.message : String(e);
      throw invalidError(`etcd client options refused: ${redactUrlCredentials(why)}`, { backend: BACKEND });
    }
  }

  /** The underlying `etcd3` client (a getter, so printing the datastore does not print it). */
  get client(): Etcd3 {
    return this.#client;
  }

  /** What `util.inspect` (and so `console.log`) shows: no password, no key, no client internals. */
  [inspect.custom](): string {
    const shown = {
      prefix: this.prefix,
      endpoints: this.#endpoints,
      tls: this.#tls === undefined ? false : { clientCertificate: this.#tls.cert !== undefined },
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
    const k = checkKey(key, this.#opts);
    const res = await this.#read(
      () => this.#client.kv.range({ key: toBuf(objectKey(this.prefix, k)) }),
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
      () => this.#client.kv.range({ key: toBuf(p), range_end: prefixEnd(p) }),
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
        this.#client.kv.txn({
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
        await this.#read(() => this.#client.kv.range({ key: toBuf(k) }), options?.signal, { ...key })
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
        this.#client.kv.txn({
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
        this.#client.kv.txn({
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
      () => this.#client.kv.txn({ compare, success, failure }),
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
        this.#client.kv.txn({
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
        if (watcher !== undefined && !cancelledByServer) await boundedWait(watcher.cancel(), 2_000);
        this.#releaseIdleWatchStream();
      },
    });
    if (stream.stopped) return stream as unknown as Watch<T>;
    this.#watches.add(stream);
    // The last revision handed to the consumer. Every (re)connection resumes right after it, whatever
    // the client library's own bookkeeping says: etcd3 resumes from the last *header* revision, which
    // during a catch-up batch is ahead of the events delivered so far (and could skip some).
    let last = from;
    const builder = this.#client
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
    let disconnected = false;
    w.on("connected", (res) => {
      // A watch "from now" starts after the revision etcd reports when it registers the watch.
      if (last === undefined) last = Number(res.header.revision);
      pin();
      if (disconnected) {
        disconnected = false;
        this.#log.info({ kind, revision: last }, "etcd watch reconnected");
      }
    });
    w.on("disconnected", (err: unknown) => {
      pin();
      disconnected = true;
      this.#log.warn(
        { kind, revision: last, error: errorText(err) },
        "etcd watch disconnected; reconnecting",
      );
      // etcd3 reconnects forever; a failure that reconnecting cannot cure (wrong password, no permission,
      // TLS misconfiguration) ends the watch instead, and detaching the watcher stops the reconnect loop.
      void this.#classify(err, { kind }).then((e) => {
        if (!e.retryable && e.code !== "closed") {
          this.#log.error({ kind, code: e.code }, "etcd watch failed; not reconnecting");
          stream.fail(e);
        }
      });
    });
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
      void this.#watchFailed(err, last, kind).then((e) => {
        if (e.code !== "closed")
          this.#log.warn({ kind, code: e.code, revision: last }, "etcd watch cancelled");
        stream.fail(e);
      });
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
        // The probed key is `<prefix>/`, inside the grant of a user restricted to `<prefix>/`.
        // A read like any other (retried when unavailable): etcd3 may be resetting its channel right
        // now, having just torn down the watch stream etcd cancelled.
        await this.#read(
          () =>
            this.#client.kv.range({
              key: toBuf(`${this.prefix}/`),
              revision: next,
              keys_only: true,
              limit: 1,
            }),
          undefined,
          { kind },
        );
      } catch (probe) {
        const raw = isDatastoreError(probe) ? probe.cause : probe;
        compacted = isDatastoreError(probe, "compacted") || isCompactedMessage(raw);
        if (!compacted && !isFutureRevisionMessage(raw)) return this.#classify(probe, { kind });
      }
    }
    if (compacted) {
      return compactedError({ kind, revision: String(next - 1), backend: BACKEND }, err);
    }
    return this.#classify(err, { kind });
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
    this.#releaseIdleWatchStream();
    this.#client.close();
  }

  /**
   * Ends etcd3's shared watch stream once no watcher uses it. etcd3 leaves it open when etcd cancelled
   * the last watcher at creation (e.g. permission denied), and closing the client does not end open
   * streams: the socket would keep the process alive.
   */
  #releaseIdleWatchStream(): void {
    const manager = (this.#client as unknown as { watchManager?: WatchManagerInternals }).watchManager;
    if (manager === undefined || manager.watchers.length > 0 || manager.stream === undefined) return;
    try {
      manager.stream.cancel();
    } catch {
      // Already ended.
    }
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
      if (attempt > 0) {
        // An abort ends the wait early; the call below then fails `aborted`.
        await sleep(backoffDelay(attempt - 1, READ_RETRY), signal).catch(() => {});
      }
      try {
        return await withSignal(call(), signal);
      } catch (e) {
        const mapped = await this.#classify(e, details);
        if (!mapped.retryable || mapped.code === "conflict" || signal?.aborted) throw mapped;
        lastError = mapped;
        if (attempt + 1 < this.#readAttempts) {
          this.#log.warn(
            { ...details, attempt: attempt + 1, code: mapped.code },
            "etcd read failed; retrying",
          );
        }
      }
    }
    throw lastError;
  }

  /** A write: sent once; if its outcome is unknown the caller gets `unavailable` and must re-read. */
  async #write<R>(call: () => Promise<R>, signal: AbortSignal | undefined, details: DatastoreErrorDetails) {
    try {
      return await withSignal(call(), signal);
    } catch (e) {
      throw await this.#classify(e, details);
    }
  }

  /**
   * Maps a failure to a {@link DatastoreError}. A connection failure gRPC cannot explain is checked for a
   * TLS misconfiguration; a call the circuit breaker turned away reports the failure that opened it.
   */
  async #classify(e: unknown, details: DatastoreErrorDetails): Promise<DatastoreError> {
    if (this.#closed) return closedError({ backend: BACKEND });
    if (isBrokenCircuit(e)) {
      const last = this.#lastFailure;
      if (last === undefined) {
        return unavailableError(
          "etcd unavailable: circuit breaker is open",
          { ...details, backend: BACKEND },
          e,
        );
      }
      return new DatastoreError(last.code, `${last.message} (circuit breaker is open)`, {
        details: { ...last.details, ...details },
        cause: last,
        retryable: last.retryable,
      });
    }
    let mapped = mapEtcdError(e, details);
    if (mapped.code === "unavailable" && isConnectionFailure(e)) {
      const tls = await this.#diagnose();
      if (tls !== undefined) {
        mapped = new DatastoreError(tls.code, tls.message, {
          details: { ...tls.details, ...details },
          cause: e,
          retryable: false,
        });
      }
    }
    if (mapped.code === "unavailable" || mapped.code === "tls") this.#lastFailure = mapped;
    if (this.#closed) return closedError({ backend: BACKEND });
    return mapped;
  }

  /** One TLS handshake per endpoint (at most once a second); the first misconfiguration found, if any. */
  #diagnose(): Promise<DatastoreError | undefined> {
    const now = Date.now();
    if (this.#diagnosis !== undefined && now - this.#diagnosis.at < 1_000) return this.#diagnosis.result;
    const result = Promise.all(
      this.#endpoints.map((ep) => diagnoseEndpoint(ep, this.#tls, this.#diagnoseTimeoutMs)),
    ).then((all) => {
      const d = all.find((x) => x !== undefined);
      if (d === undefined) return undefined;
      return tlsError(`etcd TLS failure at ${d.endpoint}: ${d.description}`, {
        reason: d.reason,
        endpoint: d.endpoint,
        backend: BACKEND,
      });
    });
    this.#diagnosis = { at: now, result };
    return result;
  }
}

/** The parts of etcd3's (internal) WatchManager that {@link EtcdStore} touches to release its stream. */
interface WatchManagerInternals {
  watchers: unknown[];
  stream?: { cancel(): void } | undefined;
}

function isBrokenCircuit(e: unknown): boolean {
  return (
    typeof e === "object" &&
    e !== null &&
    (e as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true
  );
}

/** A failure to reach the server at all (not a timeout of a call that may have been applied). */
function isConnectionFailure(e: unknown): boolean {
  if (isDatastoreError(e)) return false;
  const name = e instanceof Error ? e.constructor.name : "";
  const message = e instanceof Error ? e.message : String(e);
  return (
    name === "GRPCUnavailableError" ||
    name === "GRPCInternalError" ||
    /No connection established|Failed to connect|Connection dropped|socket hang up|ECONNRESET/i.test(message)
  );
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

/** A failure as log text; never the object itself, which may hold request options. */
function errorText(e: unknown): string {
  return redactUrlCredentials(e instanceof Error ? e.message : String(e));
}
