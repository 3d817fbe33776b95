/**
 * The in-process backend: one global revision, every operation applied atomically on the event loop
 * (so linearizable by construction), a bounded event history for watches, and an optional snapshot file.
 */

import type { Logger } from "@margay/api";
import {
  backendLogger,
  DEFAULT_WATCH_QUEUE_LIMIT,
  enterCall,
  inheritServerFields,
  positiveInt,
  revisionMismatch,
} from "../backend-common.js";
import {
  alreadyExistsError,
  closedError,
  compactedError,
  conflictError,
  invalidError,
  notFoundError,
  unavailableError,
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
  WatchEventType,
  WatchOptions,
} from "../types.js";
import {
  type CheckedOp,
  checkKey,
  checkNamePrefix,
  checkNamespaceFilter,
  checkObject,
  checkTxnOps,
  parseFromRevision,
  parseRevision,
  type ValidationOptions,
} from "../validation.js";
import { freezeOwn, plainCopy } from "../json-copy.js";
import { type EventLog, LogWatch } from "./log-watch.js";
import { encodeSnapshot, loadSnapshotSync, type SnapshotEntry, writeSnapshotAtomic } from "./snapshot.js";
import { SortedKeys } from "./sorted-keys.js";
import { flatUuid } from "./uid.js";

/** When a write is acknowledged relative to the snapshot file. */
export type MemoryDurability = "sync" | "async";

/** Options of {@link createMemoryDatastore}. */
export interface MemoryDatastoreOptions extends ValidationOptions {
  /**
   * Watch history kept for resuming watches, in events. Older events are compacted away automatically
   * (a watch from before them fails with `compacted`). Default 10 000.
   */
  historyLimit?: number | undefined;
  /** Events one watch may have queued before it fails with `compacted` (slow consumer). Default 10 000. */
  watchQueueLimit?: number | undefined;
  /**
   * Snapshot file: loaded at construction (synchronously) and rewritten atomically after writes
   * (coalesced). Its directory must exist. Default: none (state is lost with the process).
   */
  snapshotPath?: string | undefined;
  /**
   * `sync` (default): a write is acknowledged only once a snapshot containing it is on disk, so a
   * restarted daemon never loses an acknowledged write (the contract every other backend keeps;
   * concurrent writes share one snapshot, so throughput stays reasonable). All or nothing: until its
   * snapshot is on disk a write is seen by no reader or watcher, and if the snapshot cannot be written the
   * write is dropped (revision and data unchanged, watchers told nothing) and fails with retryable
   * `unavailable` (`details.reason: "not-applied"`). `async`: acknowledge at once
   * and persist shortly after; a crash can lose the last writes. Ignored without `snapshotPath`.
   */
  durability?: MemoryDurability | undefined;
  /** Clock for `creationTimestamp` (tests inject one). Default `() => new Date()`. */
  now?: (() => Date) | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "datastore", backend: "memory"`. A
   * snapshot that cannot be written is logged (`error`; with `async` durability the log is the only place
   * it shows). Default: silent.
   */
  logger?: Logger | undefined;
}

/** The memory backend's own surface: the {@link Datastore} plus compaction, flushing and introspection. */
export interface MemoryDatastore extends Datastore {
  /**
   * Discards watch history before `revision` (as etcd's compact): a later watch whose `fromRevision` is
   * older than `revision - 1` fails with `compacted`. `revision` must not exceed the current revision.
   */
  compact(revision: string): Promise<void>;
  /** Waits until the snapshot file holds every write made so far (no-op without `snapshotPath`). */
  flush(): Promise<void>;
  /** The current store revision. */
  readonly revision: string;
  /** The compaction point: watches must start at or after it. */
  readonly compactRevision: string;
  /**
   * Events the store holds for watches: its history plus whatever a watch has not read yet. Every
   * watcher reads the same events where the store keeps them, so this does not grow with the number of
   * watchers; a watch more than `historyLimit` events behind keeps its unread events itself instead,
   * so this stays within `historyLimit` plus the last revision's events.
   */
  readonly retainedEvents: number;
}

/**
 * A stored object. The object itself is kept, not its JSON text: frozen (see `freezeShared`), so watch
 * events and transaction results share it, a read copies it without a parse, and a write that reuses
 * parts of it (an IPAM block whose attributes did not change) shares them instead of storing them again.
 */
interface Entry {
  kind: string;
  namespace: string | undefined;
  name: string;
  createRevision: number;
  modRevision: number;
  /** The stored object, frozen all the way down. */
  obj: StoredObject;
  /** Its JSON text, made when a snapshot first needs it (an entry never changes). */
  json?: string;
}

/** An entry's JSON text (cached on it). */
function entryJson(e: Entry): string {
  e.json ??= JSON.stringify(e.obj);
  return e.json;
}

interface HistoryEvent {
  revision: number;
  kind: string;
  namespace: string | undefined;
  type: WatchEventType;
  object: StoredObject;
  previous: StoredObject | undefined;
  /**
   * The event as watchers receive it, made when the first watcher needs it: every watcher (and every
   * replay from history) shares this one frozen object, and it holds the stored (frozen) objects
   * themselves, so a fan-out to many watchers costs a pointer per watcher, not a copy each.
   */
  event?: WatchEvent;
}

interface Change {
  key: ObjectKey;
  /** `entryId(key)`, made once per write. */
  id: string;
  next: Entry | undefined;
  prev: Entry | undefined;
}

const BACKEND = "memory";
const DEFAULTS = Object.freeze({
  historyLimit: 10_000,
  watchQueueLimit: DEFAULT_WATCH_QUEUE_LIMIT,
  durability: "sync" as const,
});

/**
 * An entry's id in its kind: namespace (empty for cluster-scoped), NUL, name. NUL sorts below every
 * character a namespace or name may hold, so the ids' string order is the order a list returns
 * (cluster-scoped first, then by namespace, then by name; `compareObjects`) and a name prefix within a
 * namespace is an id prefix.
 */
const scopeId = (namespace: string | undefined) => `${namespace ?? ""}\u0000`;
const entryId = (key: { namespace?: string | undefined; name: string }) =>
  `${scopeId(key.namespace)}${key.name}`;

/** A key's place in its kind: the id map and the ordered index share it; a write replaces `e` in place. */
interface Slot {
  e: Entry;
}

/**
 * The entries of one kind by id, with the ids kept in list order ({@link SortedKeys}) and a count of
 * entries per scope (namespace, or "" for cluster-scoped), so a list (of a namespace, of a name prefix)
 * walks exactly the entries it returns: no scan of the kind, no sort. Map and index share one
 * {@link Slot} per key, so a list reaches each entry from the index without a lookup in the map (at
 * 100,000 objects those lookups were most of what a list cost above a bare search, #20) and a write to
 * an existing key looks it up once.
 */
class KindTable {
  readonly #slots = new Map<string, Slot>();
  readonly order = new SortedKeys<Slot>();
  /** Scope id → number of entries in it. */
  readonly scopes = new Map<string, number>();

  get(id: string): Entry | undefined {
    return this.#slots.get(id)?.e;
  }

  set(id: string, e: Entry): void {
    const slot = this.#slots.get(id);
    if (slot !== undefined) {
      slot.e = e;
      return;
    }
    const added: Slot = { e };
    this.#slots.set(id, added);
    this.order.add(id, added);
    const scope = scopeId(e.namespace);
    this.scopes.set(scope, (this.scopes.get(scope) ?? 0) + 1);
  }

  delete(id: string): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    this.order.delete(id);
    const scope = scopeId(slot.e.namespace);
    const left = (this.scopes.get(scope) ?? 1) - 1;
    if (left === 0) this.scopes.delete(scope);
    else this.scopes.set(scope, left);
    return this.#slots.delete(id);
  }

  /** Every entry with its id (any order). */
  *entries(): Generator<[string, Entry], void, undefined> {
    for (const [id, slot] of this.#slots) yield [id, slot.e];
  }

  /**
   * Calls `fn` with the entries of `namespace` (every scope when undefined) whose name starts with
   * `namePrefix`, in list order.
   */
  forEachMatching(namespace: string | undefined, namePrefix: string, fn: (e: Entry) => void): void {
    const visit = (slot: Slot) => fn(slot.e);
    if (namespace !== undefined) {
      this.order.forEachWithPrefix(scopeId(namespace) + namePrefix, visit);
      return;
    }
    for (const scope of [...this.scopes.keys()].sort())
      this.order.forEachWithPrefix(scope + namePrefix, visit);
  }
}

/**
 * Creates an in-process {@link Datastore}. With `snapshotPath`, the previous state is loaded first (a
 * corrupt snapshot throws `invalid` rather than starting empty).
 */
export function createMemoryDatastore(options: MemoryDatastoreOptions = {}): MemoryDatastore {
  return new MemoryStore(options);
}

class MemoryStore implements MemoryDatastore {
  readonly #opts: ValidationOptions;
  readonly #historyLimit: number;
  readonly #watchQueueLimit: number;
  readonly #snapshotPath: string | undefined;
  readonly #log: Logger;
  readonly #durability: MemoryDurability;
  readonly #now: () => Date;

  #rev = 1;
  #compactRev = 1;
  /** The last creation timestamp made, and its time (see {@link #timestamp}). */
  #lastStampMs = Number.NaN;
  #lastStamp = "";
  readonly #kinds = new Map<string, KindTable>();
  /**
   * The event log: the watch history (from {@link #historyHead}) and, before it, events that watches
   * have not read yet. Watches read it through cursors ({@link LogWatch}), so an event queued to many
   * watchers is kept once. A watch's cursor is an absolute log position: index + {@link #logBase}.
   */
  #history: HistoryEvent[] = [];
  #historyHead = 0;
  #logBase = 0;
  readonly #watches = new Set<LogWatch>();
  #closed = false;

  #persistedRev = 0;
  /**
   * Sync durability with a snapshot stages writes: each waits here, invisible to readers and watchers,
   * until a snapshot holding it is on disk, and is dropped if that snapshot cannot be written (so a
   * failed write is never seen by anyone). Later writes check their preconditions against the staged
   * state, so concurrent writes still share one snapshot.
   */
  readonly #staging: boolean;
  #pending: { rev: number; changes: Change[] }[] = [];
  /**
   * Latest staged entry per kind and key (`null`: staged deletion), for preconditions of later writes;
   * keyed as {@link #kinds} is, so a snapshot merges the two without building a key per entry.
   */
  #overlay = new Map<string, Map<string, Entry | null>>();
  #flushing: Promise<void> | undefined;
  #flushWaiters: { rev: number; resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(options: MemoryDatastoreOptions) {
    this.#opts = { kindScopes: options.kindScopes, validate: options.validate };
    this.#historyLimit = positiveInt(options.historyLimit, DEFAULTS.historyLimit, "historyLimit");
    this.#watchQueueLimit = positiveInt(options.watchQueueLimit, DEFAULTS.watchQueueLimit, "watchQueueLimit");
    this.#durability = options.durability ?? DEFAULTS.durability;
    if (this.#durability !== "sync" && this.#durability !== "async") {
      throw invalidError(`durability must be "sync" or "async"`, { field: "durability" });
    }
    this.#now = options.now ?? (() => new Date());
    this.#snapshotPath = options.snapshotPath;
    this.#log = backendLogger(options.logger, BACKEND);
    this.#staging = this.#snapshotPath !== undefined && this.#durability === "sync";
    if (this.#snapshotPath !== undefined) {
      const state = loadSnapshotSync(this.#snapshotPath);
      if (state !== undefined) {
        this.#rev = state.revision;
        for (const e of state.entries) {
          const obj = freezeOwn(JSON.parse(e.json) as StoredObject);
          this.#kindMap(e.kind).set(entryId(e), { ...e, obj });
        }
        // History did not survive the restart: only a watch from the current revision can be served.
        this.#compactRev = state.revision + 1;
      }
      this.#persistedRev = this.#rev;
    }
  }

  get revision(): string {
    return String(this.#rev);
  }

  get compactRevision(): string {
    return String(this.#compactRev);
  }

  get retainedEvents(): number {
    let first = this.#historyHead + this.#logBase;
    for (const w of this.#watches) first = Math.min(first, w.cursor);
    return this.#history.length + this.#logBase - first;
  }

  async get<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options?: { signal?: AbortSignal },
  ): Promise<T> {
    this.#enter(options?.signal);
    const k = checkKey(key, this.#opts);
    await this.#settled();
    const e = this.#lookup(k);
    if (e === undefined) throw notFoundError({ ...k, backend: BACKEND });
    return plainCopy(e.obj as T);
  }

  async list<T extends StoredObject = StoredObject>(
    kind: string,
    options: ListOptions = {},
  ): Promise<ListResult<T>> {
    this.#enter(options.signal);
    checkNamespaceFilter(kind, options.namespace, this.#opts);
    checkNamePrefix(options.namePrefix);
    await this.#settled();
    const items: T[] = [];
    const table = this.#kinds.get(kind);
    if (table !== undefined) {
      // In list order already: the index walks only what the list returns.
      table.forEachMatching(options.namespace, options.namePrefix ?? "", (e) => {
        items.push(plainCopy(e.obj as T));
      });
    }
    return { items, revision: String(this.#rev) };
  }

  async create<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    const { key, copy } = checkObject(object, this.#opts);
    const id = entryId(key);
    if (this.#latest(key.kind, id) !== undefined) throw alreadyExistsError({ ...key, backend: BACKEND });
    const rev = this.#tip() + 1;
    const next = this.#entryFor(key, copy, rev, undefined);
    this.#write(rev, [{ key, id, next, prev: undefined }]);
    await this.#durable(rev);
    // The stored object is frozen and shared; the caller gets one of its own.
    return plainCopy(next.obj as T);
  }

  async update<T extends StoredObject>(object: T, options?: { signal?: AbortSignal }): Promise<T> {
    this.#enter(options?.signal);
    const { key, copy } = checkObject(object, this.#opts);
    const id = entryId(key);
    const prev = this.#latest(key.kind, id);
    if (prev === undefined) throw notFoundError({ ...key, backend: BACKEND });
    const rv = copy.metadata.resourceVersion;
    if (rv !== undefined && parseRevision(rv) !== prev.modRevision) {
      throw revisionMismatch(key, rv, prev.modRevision, BACKEND);
    }
    this.#checkUid(key, copy, prev, undefined);
    const rev = this.#tip() + 1;
    const next = this.#entryFor(key, copy, rev, prev);
    this.#write(rev, [{ key, id, next, prev }]);
    await this.#durable(rev);
    // The stored object is frozen and shared; the caller gets one of its own.
    return plainCopy(next.obj as T);
  }

  async delete<T extends StoredObject = StoredObject>(
    key: ObjectKey,
    options: DeleteOptions = {},
  ): Promise<T> {
    this.#enter(options.signal);
    const k = checkKey(key, this.#opts);
    const expected =
      options.resourceVersion === undefined ? undefined : parseRevision(options.resourceVersion);
    const id = entryId(k);
    const prev = this.#latest(k.kind, id);
    if (prev === undefined) throw notFoundError({ ...k, backend: BACKEND });
    if (expected !== undefined && expected !== prev.modRevision) {
      throw revisionMismatch(k, expected, prev.modRevision, BACKEND);
    }
    const rev = this.#tip() + 1;
    this.#write(rev, [{ key: k, id, next: undefined, prev }]);
    await this.#durable(rev);
    return plainCopy(prev.obj as T);
  }

  async transaction(ops: readonly TxnOp[], options?: { signal?: AbortSignal }): Promise<TxnResult> {
    this.#enter(options?.signal);
    const checked = checkTxnOps(ops, this.#opts);
    const n = checked.length;
    // Every precondition is evaluated against the state before the transaction, as etcd does. Plain
    // loops over preallocated arrays: this is the write path of every IPAM allocation (#20).
    const ids = new Array<string>(n);
    const current = new Array<Entry | undefined>(n);
    for (let i = 0; i < n; i++) {
      const op = checked[i] as CheckedOp;
      const id = entryId(op.key);
      ids[i] = id;
      const cur = this.#latest(op.key.kind, id);
      current[i] = cur;
      this.#checkPrecondition(op, i, cur);
    }
    const rev = this.#tip() + 1;
    const changes: Change[] = [];
    const results = new Array<StoredObject | null>(n);
    for (let i = 0; i < n; i++) {
      const op = checked[i] as CheckedOp;
      const prev = current[i];
      if (op.op === "create" || op.op === "update") {
        const next = this.#entryFor(op.key, op.object, rev, op.op === "update" ? prev : undefined);
        changes.push({ key: op.key, id: ids[i] as string, next, prev });
        results[i] = next.obj; // the stored object itself: frozen, read-only (see TxnResult.results)
      } else {
        if (op.op === "delete") changes.push({ key: op.key, id: ids[i] as string, next: undefined, prev });
        results[i] = null;
      }
    }
    if (changes.length === 0) return { revision: String(this.#rev), results };
    this.#write(rev, changes);
    await this.#durable(rev);
    return { revision: String(rev), results };
  }

  watch<T extends StoredObject = StoredObject>(kind: string, options: WatchOptions = {}): Watch<T> {
    this.#enter(undefined);
    checkNamespaceFilter(kind, options.namespace, this.#opts);
    const from = options.fromRevision === undefined ? this.#rev : parseFromRevision(options.fromRevision);
    const compacted = from + 1 < this.#compactRev;
    const start = compacted ? this.#history.length : this.#firstHistoryAfter(from);
    const w: LogWatch = new LogWatch({
      kind,
      namespace: options.namespace,
      after: from,
      from: start + this.#logBase,
      queueLimit: this.#watchQueueLimit,
      log: this.#eventLog,
      signal: options.signal,
      backend: BACKEND,
      onStop: () => {
        this.#watches.delete(w);
      },
    });
    if (compacted) {
      w.fail(
        compactedError({
          kind,
          revision: String(from),
          compactRevision: String(this.#compactRev),
          backend: BACKEND,
        }),
      );
      return w as unknown as Watch<T>;
    }
    // Replay and registration happen in the same synchronous step, so no write can slip between them.
    let backlog = 0;
    for (let i = start; i < this.#history.length; i++) if (wants(w, this.#history[i]!)) backlog++;
    w.advance(this.#history.length + this.#logBase, backlog);
    if (!w.stopped) this.#watches.add(w);
    return w as unknown as Watch<T>;
  }

  /** What watches read: the shared event at log position `seq`, if it is one for `w`. */
  readonly #eventLog: EventLog = {
    eventFor: (w: LogWatch, seq: number): WatchEvent | undefined => {
      const h = this.#history[seq - this.#logBase];
      return h !== undefined && wants(w, h) ? toEvent(h) : undefined;
    },
  };

  async compact(revision: string): Promise<void> {
    this.#enter(undefined);
    const rev = parseRevision(revision, "revision");
    if (rev > this.#rev) {
      throw invalidError(`cannot compact to ${rev}: the current revision is ${this.#rev}`, {
        revision,
        backend: BACKEND,
      });
    }
    this.#compactTo(rev);
  }

  async flush(): Promise<void> {
    await this.#persisted(this.#tip()).catch((e: unknown) => {
      // A staged write that could not be persisted was dropped and its writer told: nothing is owed.
      if (!this.#staging) throw e;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of [...this.#watches]) w.fail(closedError({ backend: BACKEND }));
    this.#watches.clear();
    await this.#persisted(this.#tip()).catch((e: unknown) => {
      if (!this.#staging) throw e;
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ----

  #enter(signal: AbortSignal | undefined): void {
    enterCall(this.#closed, signal, BACKEND);
  }

  #kindMap(kind: string): KindTable {
    let m = this.#kinds.get(kind);
    if (m === undefined) this.#kinds.set(kind, (m = new KindTable()));
    return m;
  }

  #lookup(key: ObjectKey): Entry | undefined {
    return this.#kinds.get(key.kind)?.get(entryId(key));
  }

  /** A caller-supplied uid is a precondition (as in Kubernetes): it must name the stored incarnation. */
  #checkUid(key: ObjectKey, obj: StoredObject, prev: Entry, opIndex: number | undefined): void {
    const uid = obj.metadata.uid;
    if (uid === undefined) return;
    const stored = prev.obj.metadata.uid;
    if (stored !== undefined && stored !== uid) {
      throw conflictError({
        ...key,
        reason: "uid-mismatch",
        actualRevision: String(prev.modRevision),
        backend: BACKEND,
        ...(opIndex === undefined ? {} : { opIndex }),
      });
    }
  }

  #checkPrecondition(op: CheckedOp, opIndex: number, cur: Entry | undefined): void {
    const fail = (reason: string, expected?: number) => {
      const details = { ...op.key, opIndex, reason, backend: BACKEND };
      throw conflictError({
        ...details,
        ...(expected === undefined ? {} : { expectedRevision: String(expected) }),
        ...(cur === undefined ? {} : { actualRevision: String(cur.modRevision) }),
      });
    };
    switch (op.op) {
      case "create":
        if (cur !== undefined) fail("exists");
        return;
      case "update":
        if (cur === undefined) fail("missing", op.revision);
        else if (cur.modRevision !== op.revision) fail("revision-mismatch", op.revision);
        else this.#checkUid(op.key, op.object, cur, opIndex);
        return;
      case "delete":
        if (cur === undefined) fail("missing", op.revision);
        else if (op.revision !== undefined && cur.modRevision !== op.revision)
          fail("revision-mismatch", op.revision);
        return;
      case "check":
        if (op.absent) {
          if (cur !== undefined) fail("exists");
        } else if (cur === undefined) fail("missing", op.revision);
        else if (op.revision !== undefined && cur.modRevision !== op.revision)
          fail("revision-mismatch", op.revision);
        return;
    }
  }

  /**
   * Builds the stored entry from our private copy `obj` (see `checkObject`): server-owned metadata set,
   * immutable fields carried over from `prev`, then frozen.
   */
  #entryFor(key: ObjectKey, obj: StoredObject, rev: number, prev: Entry | undefined): Entry {
    const meta = obj.metadata;
    if (prev === undefined) {
      meta.uid = flatUuid();
      meta.creationTimestamp = this.#timestamp();
    } else if (meta.uid === undefined || meta.creationTimestamp === undefined) {
      inheritServerFields(meta, prev.obj.metadata);
    }
    meta.resourceVersion = String(rev);
    return {
      kind: key.kind,
      namespace: key.namespace,
      name: key.name,
      createRevision: prev?.createRevision ?? rev,
      modRevision: rev,
      obj: freezeOwn(obj),
    };
  }

  /**
   * `now()` as an ISO timestamp. Objects created within the same millisecond share one string: a store
   * keeps every object's timestamp, and a burst of creates (an IPAM fill) would otherwise hold a
   * string per object.
   */
  #timestamp(): string {
    const d = this.#now();
    const ms = d.getTime();
    if (ms !== this.#lastStampMs) {
      this.#lastStamp = d.toISOString();
      this.#lastStampMs = ms;
    }
    return this.#lastStamp;
  }

  /**
   * Reads are linearizable, as etcd's are: while writes are staged (sync durability), a read waits until
   * they have landed or been dropped, so it sees every write that was checked before it. Without this a
   * read-modify-write loop reads the committed state, conflicts with the staged one and retries in
   * microtasks only, so the flush (a macrotask) never runs and the loop spins forever.
   */
  async #settled(): Promise<void> {
    if (!this.#staging || this.#pending.length === 0) return;
    // A dropped write has already failed its writer; the reader then sees the committed state.
    await this.#persisted(this.#tip()).catch(() => undefined);
  }

  /** The newest revision, staged or committed: the next write gets the one after it. */
  #tip(): number {
    return this.#pending.at(-1)?.rev ?? this.#rev;
  }

  /** What a write sees: the staged state over the committed one. Readers see only {@link #lookup}. */
  #latest(kind: string, id: string): Entry | undefined {
    if (this.#overlay.size > 0) {
      const staged = this.#overlay.get(kind)?.get(id);
      if (staged !== undefined) return staged ?? undefined;
    }
    return this.#kinds.get(kind)?.get(id);
  }

  /** Commits a write now, or stages it until a snapshot holds it (see {@link #staging}). */
  #write(rev: number, changes: Change[]): void {
    if (!this.#staging) {
      this.#commit(changes);
      return;
    }
    this.#pending.push({ rev, changes });
    this.#stage(changes);
    this.#scheduleFlush();
  }

  /** Records staged changes in {@link #overlay}. */
  #stage(changes: readonly Change[]): void {
    for (const c of changes) {
      let m = this.#overlay.get(c.key.kind);
      if (m === undefined) this.#overlay.set(c.key.kind, (m = new Map()));
      m.set(c.id, c.next ?? null);
    }
  }

  /** Applies changes as one revision, records their events and hands them to watchers. */
  #commit(changes: Change[]): void {
    const rev = ++this.#rev;
    // The events go straight into the history; watchers are handed its new tail.
    const first = this.#history.length;
    for (const c of changes) {
      const map = this.#kindMap(c.key.kind);
      const id = c.id;
      if (c.next !== undefined) {
        map.set(id, c.next);
      } else {
        map.delete(id);
      }
      this.#history.push({
        revision: rev,
        kind: c.key.kind,
        namespace: c.key.namespace,
        type: c.next === undefined ? "deleted" : c.prev === undefined ? "added" : "modified",
        object: c.next?.obj ?? c.prev!.obj,
        previous: c.prev?.obj,
      });
    }
    const events = this.#history;
    const end = events.length;
    const tip = end + this.#logBase;
    // A watch more than historyLimit behind in the log has its unread events copied out, so a watch holds
    // in the log at most what the history holds anyway, whatever its queue limit (a spill copies only
    // the watch's own events, so a watch with few of them pins nothing, as its own queue did before).
    const lagLimit = this.#historyLimit;
    for (const w of this.#watches) {
      let added = 0;
      for (let i = first; i < end; i++) if (wants(w, events[i] as HistoryEvent)) added++;
      w.advance(tip, added);
      if (w.stopped) this.#watches.delete(w);
      else if (tip - w.cursor > lagLimit) w.spill();
    }
    this.#trimHistory();
    if (this.#snapshotPath !== undefined) this.#scheduleFlush();
  }

  #trimHistory(): void {
    const live = this.#history.length - this.#historyHead;
    if (live <= this.#historyLimit) return;
    // Drop whole revisions only, so a watch never sees half a transaction.
    let i = this.#historyHead + (live - this.#historyLimit);
    const cut = this.#history[i - 1]!.revision;
    while (i < this.#history.length && this.#history[i]!.revision === cut) i++;
    this.#compactRev = Math.max(this.#compactRev, cut + 1);
    this.#dropHistoryBefore(i);
  }

  #compactTo(rev: number): void {
    if (rev <= this.#compactRev) return;
    this.#compactRev = rev;
    let i = this.#historyHead;
    while (i < this.#history.length && this.#history[i]!.revision < rev) i++;
    this.#dropHistoryBefore(i);
  }

  #dropHistoryBefore(index: number): void {
    this.#historyHead = index;
    // What is before the history stays while a watch has not read it.
    let cut = index;
    for (const w of this.#watches) cut = Math.min(cut, w.cursor - this.#logBase);
    if (cut > 4096 && cut * 2 > this.#history.length) {
      this.#history = this.#history.slice(cut);
      this.#historyHead -= cut;
      this.#logBase += cut;
    }
  }

  /** Index of the first history event with revision > `from`. */
  #firstHistoryAfter(from: number): number {
    let lo = this.#historyHead;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#history[mid]!.revision <= from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // ---- snapshot persistence ----

  /**
   * Acknowledgement point of a write at `rev`: at once (`async`), or once it is on disk (`sync`).
   * Not an async function: without a snapshot file there is nothing to wait for, and the writer's
   * `await` of `undefined` takes the same one tick as of a settled promise, without the promise and
   * the async frame made per write (#20).
   */
  #durable(rev: number): Promise<void> | undefined {
    if (this.#snapshotPath === undefined) return undefined;
    if (this.#durability === "async") {
      this.#scheduleFlush();
      return undefined;
    }
    return this.#persisted(rev);
  }

  /** Resolves once a snapshot covering `rev` is on disk. */
  async #persisted(rev: number): Promise<void> {
    if (this.#snapshotPath === undefined || this.#persistedRev >= rev) return;
    await new Promise<void>((resolve, reject) => {
      this.#flushWaiters.push({ rev, resolve, reject });
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = undefined;
    });
  }

  /** Writes snapshots until one covers the current revision; writes that arrive meanwhile share the next. */
  async #flushLoop(): Promise<void> {
    // Yield once so writes issued in the same tick join this snapshot (group commit).
    await new Promise<void>((r) => setImmediate(r));
    while (this.#persistedRev < this.#tip()) {
      const rev = this.#tip();
      const entries: SnapshotEntry[] = [];
      const add = (e: Entry) =>
        entries.push({
          kind: e.kind,
          namespace: e.namespace,
          name: e.name,
          createRevision: e.createRevision,
          modRevision: e.modRevision,
          json: entryJson(e),
        });
      for (const [kind, m] of this.#kinds) {
        const staged = this.#overlay.get(kind);
        for (const [id, e] of m.entries()) if (staged?.has(id) !== true) add(e);
      }
      for (const m of this.#overlay.values()) for (const e of m.values()) if (e !== null) add(e);
      const text = encodeSnapshot({ revision: rev, entries });
      try {
        await writeSnapshotAtomic(this.#snapshotPath!, text);
      } catch (cause) {
        // Staged writes are dropped, every one of them: later ones were checked against earlier ones.
        const staged = this.#staging;
        this.#pending = [];
        this.#overlay = new Map();
        this.#log.error(
          {
            path: this.#snapshotPath,
            revision: rev,
            reason: staged ? "not-applied" : "not-durable",
            error: cause instanceof Error ? cause.message : String(cause),
          },
          "datastore snapshot write failed",
        );
        const err = unavailableError(
          staged
            ? "cannot write the datastore snapshot; the write was not applied"
            : "cannot write the datastore snapshot; the write is applied in memory but not yet durable",
          { backend: BACKEND, revision: String(rev), reason: staged ? "not-applied" : "not-durable" },
          cause,
        );
        const waiters = this.#flushWaiters;
        this.#flushWaiters = [];
        for (const w of waiters) w.reject(err);
        return;
      }
      // On disk now: staged writes up to `rev` become visible, in revision order, and watchers hear of them.
      while (this.#pending.length > 0 && this.#pending[0]!.rev <= rev) {
        this.#commit(this.#pending.shift()!.changes);
      }
      this.#overlay = new Map();
      for (const p of this.#pending) this.#stage(p.changes);
      this.#persistedRev = rev;
      const done = this.#flushWaiters.filter((w) => w.rev <= rev);
      this.#flushWaiters = this.#flushWaiters.filter((w) => w.rev > rev);
      for (const w of done) w.resolve();
    }
  }
}

/** True when `e` is an event for watch `w`: its kind and namespace, after its start revision. */
function wants(w: LogWatch, e: HistoryEvent): boolean {
  return (
    e.revision > w.after && w.kind === e.kind && (w.namespace === undefined || w.namespace === e.namespace)
  );
}

/** The shared, frozen event of a history entry (made on first use; see {@link HistoryEvent.event}). */
function toEvent(h: HistoryEvent): WatchEvent {
  if (h.event !== undefined) return h.event;
  const ev: WatchEvent = { type: h.type, object: h.object, revision: String(h.revision) };
  if (h.previous !== undefined) ev.previous = h.previous;
  h.event = Object.freeze(ev);
  return h.event;
}
