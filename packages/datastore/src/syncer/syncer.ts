/**
 * The syncer: several kinds of a {@link Datastore} followed as one ordered stream of typed updates with
 * a single in-sync barrier, the way Calico's `watchersyncer` feeds Felix, confd and the BGP daemon.
 *
 * Semantics taken from libcalico-go `lib/backend/watchersyncer`:
 * - one watcher per kind (Calico's `watcherCache`), all feeding one stream consumed by one reader;
 * - each kind first lists, then watches from the list's revision; the barrier (`in-sync`, Calico's
 *   `InSync` status) is delivered once, after the initial list of every kind has been delivered;
 * - each kind remembers the revision of every key it delivered, so a relist (after `compacted`) emits
 *   only the differences: a delete for each key gone, an upsert for each changed revision, nothing for
 *   an unchanged one (Calico's `oldResources` revalidation);
 * - any other watch failure restarts the watch from the last revision seen, with back-off; if that
 *   revision has been compacted away meanwhile, the kind relists.
 *
 * @packageDocumentation
 */

import { defaultMaxListeners, setMaxListeners } from "node:events";
import { type BackoffOptions, createBackoff, type Logger, silentLogger, sleep } from "@margay/api";
import { positiveInt } from "../backend-common.js";
import { type DatastoreError, invalidError, isDatastoreError, unavailableError } from "../errors.js";
import type { Datastore, ListResult, ObjectKey, StoredObject, Watch, WatchEvent } from "../types.js";
import { keyId } from "../validation.js";

/** States of a {@link Syncer}: Calico's `WaitForDatastore`, `ResyncInProgress`, `InSync`, plus `closed`. */
export const SyncerState = {
  /** No kind has been listed yet (the datastore may be unreachable). */
  WaitForDatastore: "wait-for-datastore",
  /** Lists are in progress: before the barrier, or a relist after it. */
  Resyncing: "resyncing",
  /** Every kind has been listed and is being watched. */
  InSync: "in-sync",
  /** The syncer was closed (or its signal aborted, or it failed for good). */
  Closed: "closed",
} as const;
/** Union of {@link SyncerState} values. */
export type SyncerState = (typeof SyncerState)[keyof typeof SyncerState];

/** An object of a watched kind was created or changed (or is reported by the initial list or a relist). */
export interface SyncerUpsert<T extends StoredObject = StoredObject> {
  /** Discriminant. */
  type: "upsert";
  /** The object's kind (one of the syncer's kinds). */
  kind: string;
  /** The object's identity. */
  key: ObjectKey;
  /** The object's revision (`metadata.resourceVersion`). */
  revision: string;
  /** The object as stored at `revision`. */
  object: T;
}

/**
 * An object of a watched kind is gone. Carries the key only (as Calico's `KVDeleted`): after a relist the
 * last state is not known, and a consumer keyed by identity needs nothing more.
 */
export interface SyncerDelete {
  /** Discriminant. */
  type: "delete";
  /** The object's kind. */
  kind: string;
  /** The object's identity. */
  key: ObjectKey;
  /** The revision of the deletion, or of the relist that found the object gone. */
  revision: string;
}

/** The barrier: every kind's initial list has been delivered before it. Delivered exactly once. */
export interface SyncerInSync {
  /** Discriminant. */
  type: "in-sync";
}

/** One element of the syncer's stream. */
export type SyncerEvent<T extends StoredObject = StoredObject> =
  | SyncerUpsert<T>
  | SyncerDelete
  | SyncerInSync;

/** What a syncer is doing; see {@link Syncer.status}. */
export interface SyncerStatus {
  /** The current state. After the barrier, a relist shows as `resyncing` until it has been applied. */
  readonly state: SyncerState;
  /** True once the barrier has been queued; never reverts. */
  readonly synced: boolean;
  /** The most recent datastore failure the syncer recovered from (or ended with), if any. */
  readonly lastError: DatastoreError | undefined;
  /** Relists done after a kind's initial list (each after a `compacted`). */
  readonly relists: number;
  /** Watches restarted from their last revision after a failure other than `compacted`. */
  readonly watchRestarts: number;
}

/** Options of {@link createSyncer}. */
export interface SyncerOptions {
  /** The datastore to follow. The syncer does not close it. */
  datastore: Datastore;
  /** The kinds to follow (at least one, no repeats). Cluster-wide: every namespace. */
  kinds: readonly string[];
  /** Structured logger; records carry `component: "syncer"`. Default silent. */
  logger?: Logger | undefined;
  /** Aborting closes the syncer, as {@link Syncer.close} does. */
  signal?: AbortSignal | undefined;
  /** Called synchronously on every change of {@link Syncer.status}. Must not throw. */
  onStatus?: ((status: SyncerStatus) => void) | undefined;
  /** Back-off between failed lists or watch restarts. Default 200 ms doubling to 5 s, ±50 % jitter. */
  retry?: BackoffOptions | undefined;
  /**
   * Events queued for the reader before the kinds stop pulling from their watches. A reader that stays
   * behind makes the datastore's watch queue overflow; that surfaces as `compacted` and is cured by a
   * relist, so memory stays bounded. Default 1 000.
   */
  highWaterMark?: number | undefined;
}

/**
 * A running syncer: an async iterable of batches of {@link SyncerEvent}s (one reader). A batch is what
 * was queued since the previous read; the barrier is the last element of the batch it ends. Iteration
 * ends after {@link Syncer.close}; it throws the {@link DatastoreError} that stopped the syncer for good
 * (`closed` datastore, `invalid` kind).
 */
export interface Syncer<T extends StoredObject = StoredObject> extends AsyncIterable<SyncerEvent<T>[]> {
  /** A snapshot of the current status. */
  readonly status: SyncerStatus;
  /** Stops every watch; iteration ends and queued events are dropped. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link Syncer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_RETRY: Readonly<BackoffOptions> = Object.freeze({ initialMs: 200, maxMs: 5_000, jitter: 0.5 });
const DEFAULT_HIGH_WATER_MARK = 1_000;

/** Per-kind bookkeeping (Calico's `watcherCache`). */
interface KindState {
  readonly kind: string;
  /** Every key delivered as present, with the revision delivered. */
  cache: Map<string, { key: ObjectKey; revision: string }>;
  /** Highest revision this kind has seen (list or event); the watch resumes after it. */
  last: string | undefined;
  listed: boolean;
  relisting: boolean;
  watch: Watch | undefined;
}

/**
 * Starts a syncer over `options.kinds` of `options.datastore`. Lists begin at once; read the stream with
 * `for await (const batch of syncer)`.
 *
 * @throws DatastoreError `invalid` for an empty or repeated kind list, a bad `highWaterMark` or `retry`.
 */
export function createSyncer<T extends StoredObject = StoredObject>(options: SyncerOptions): Syncer<T> {
  return new SyncerImpl(options) as unknown as Syncer<T>;
}

class SyncerImpl implements Syncer {
  readonly #ds: Datastore;
  readonly #kinds: KindState[];
  readonly #log: Logger;
  readonly #onStatus: ((s: SyncerStatus) => void) | undefined;
  readonly #retry: BackoffOptions;
  readonly #highWater: number;
  readonly #ac = new AbortController();
  readonly #external: AbortSignal | undefined;
  readonly #onExternalAbort = () => void this.close();
  #queue: SyncerEvent[] = [];
  #wakeReader: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #reading = false;
  #barrier = false;
  #closed = false;
  #fatal: DatastoreError | undefined;
  #lastError: DatastoreError | undefined;
  #relists = 0;
  #watchRestarts = 0;
  #status: SyncerStatus;
  readonly #pumps: Promise<void>[];

  constructor(options: SyncerOptions) {
    const kinds = options.kinds;
    if (!Array.isArray(kinds) || kinds.length === 0) {
      throw invalidError("syncer needs at least one kind", { field: "kinds" });
    }
    const seen = new Set<string>();
    for (const k of kinds) {
      if (typeof k !== "string" || k === "")
        throw invalidError("syncer kind must be a non-empty string", { field: "kinds" });
      if (seen.has(k)) throw invalidError(`syncer kind ${k} is listed twice`, { field: "kinds", kind: k });
      seen.add(k);
    }
    this.#highWater = positiveInt(options.highWaterMark, DEFAULT_HIGH_WATER_MARK, "highWaterMark");
    this.#ds = options.datastore;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    try {
      createBackoff(this.#retry); // validates the options once, at construction
    } catch (e) {
      throw invalidError(
        `bad retry options: ${e instanceof Error ? e.message : String(e)}`,
        { field: "retry" },
        e,
      );
    }
    // Every kind's list and watch listen on the one internal signal: a node agent follows a dozen kinds,
    // which is not the leak Node's default limit (10) warns about.
    setMaxListeners(Math.max(defaultMaxListeners, 2 * kinds.length + 2), this.#ac.signal);
    this.#log = (options.logger ?? silentLogger).child({ component: "syncer" });
    this.#onStatus = options.onStatus;
    this.#kinds = kinds.map((kind) => ({
      kind,
      cache: new Map(),
      last: undefined,
      listed: false,
      relisting: false,
      watch: undefined,
    }));
    this.#status = this.#computeStatus();
    this.#external = options.signal;
    if (this.#external?.aborted) {
      this.#closed = true;
      this.#status = this.#computeStatus();
      this.#pumps = [];
      return;
    }
    this.#external?.addEventListener("abort", this.#onExternalAbort, { once: true });
    this.#log.info({ kinds: [...kinds] }, "syncer starting");
    this.#pumps = this.#kinds.map((k) =>
      this.#run(k).catch((e: unknown) => {
        // Only a throwing `onStatus` or a bug gets here; end the stream with it rather than hang.
        this.#fail(unavailableError("syncer failed", { kind: k.kind }, e));
      }),
    );
  }

  get status(): SyncerStatus {
    return this.#status;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#external?.removeEventListener("abort", this.#onExternalAbort);
      this.#ac.abort();
      this.#queue = [];
      this.#releaseRoom();
      this.#wakeReader?.();
      this.#updateStatus();
      this.#log.info({}, "syncer closed");
    }
    await Promise.all(this.#kinds.map((k) => k.watch?.close()));
    await Promise.all(this.#pumps);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<SyncerEvent[]> {
    if (this.#reading) throw invalidError("a syncer has one reader; it is already being iterated", {});
    this.#reading = true;
    const next = async (): Promise<IteratorResult<SyncerEvent[]>> => {
      for (;;) {
        if (this.#queue.length > 0) {
          const batch = this.#queue;
          this.#queue = [];
          this.#releaseRoom();
          return { value: batch, done: false };
        }
        if (this.#fatal !== undefined) throw this.#fatal;
        if (this.#closed) return { value: undefined, done: true };
        await new Promise<void>((resolve) => {
          this.#wakeReader = resolve;
        });
        this.#wakeReader = undefined;
      }
    };
    return {
      next,
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** One kind's loop: list (or relist), watch from the last revision, recover from failures. */
  async #run(k: KindState): Promise<void> {
    const signal = this.#ac.signal;
    const backoff = createBackoff(this.#retry);
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          k.relisting = true;
          this.#updateStatus();
          const res = await this.#ds.list(k.kind, { signal });
          if (signal.aborted) return;
          await this.#room();
          if (signal.aborted) return;
          this.#applyList(k, res);
          needList = false;
          k.relisting = false;
          this.#updateStatus();
        }
        const w = this.#ds.watch(
          k.kind,
          k.last === undefined ? { signal } : { fromRevision: k.last, signal },
        );
        k.watch = w;
        for await (const ev of w) {
          await this.#room();
          if (signal.aborted) return;
          this.#applyEvent(k, ev);
          backoff.reset();
        }
        if (signal.aborted) return;
        // A watch only ends quietly when closed; if one ever does otherwise, resume it.
        throw unavailableError("watch ended unexpectedly", { kind: k.kind, backend: "syncer" });
      } catch (e) {
        if (signal.aborted) return;
        const err = isDatastoreError(e)
          ? e
          : unavailableError("datastore call failed unexpectedly", { kind: k.kind }, e);
        this.#lastError = err;
        if (err.code === "closed" || err.code === "invalid") {
          this.#log.error(
            { kind: k.kind, code: err.code, error: err.message },
            "syncer stopped: datastore failed",
          );
          this.#fail(err);
          return;
        }
        if (err.code === "compacted") {
          // The watch's history is gone (or it fell behind): list again and emit only the differences.
          needList = true;
          this.#relists++;
          this.#log.info(
            { kind: k.kind, revision: k.last, reason: err.details.reason ?? "compacted" },
            "syncer relisting after compaction",
          );
          this.#updateStatus();
          continue;
        }
        const delay = backoff.next();
        if (needList) {
          this.#log.warn(
            { kind: k.kind, code: err.code, error: err.message, delayMs: delay },
            "syncer list failed; retrying",
          );
        } else {
          this.#watchRestarts++;
          this.#log.warn(
            { kind: k.kind, code: err.code, error: err.message, revision: k.last, delayMs: delay },
            "syncer watch failed; restarting from last revision",
          );
        }
        this.#updateStatus();
        try {
          await sleep(delay, signal);
        } catch {
          return;
        }
      } finally {
        const w = k.watch;
        k.watch = undefined;
        await w?.close();
      }
    }
  }

  /** Applies a (re)list: deletes for keys gone, upserts for new or changed revisions, nothing else. */
  #applyList(k: KindState, res: ListResult): void {
    const old = k.cache;
    const fresh = new Map<string, { key: ObjectKey; revision: string }>();
    const upserts: SyncerEvent[] = [];
    for (const object of res.items) {
      const key = keyOf(k.kind, object);
      const id = keyId(key);
      const revision = object.metadata.resourceVersion ?? res.revision;
      fresh.set(id, { key, revision });
      if (old.get(id)?.revision !== revision)
        upserts.push({ type: "upsert", kind: k.kind, key, revision, object });
    }
    // Deletes first, so a consumer never holds an old and a new object that conflict (e.g. two blocks
    // claiming one CIDR) between them.
    const out: SyncerEvent[] = [];
    for (const [id, entry] of old) {
      if (!fresh.has(id)) out.push({ type: "delete", kind: k.kind, key: entry.key, revision: res.revision });
    }
    const deletes = out.length;
    out.push(...upserts);
    k.cache = fresh;
    k.last = res.revision;
    const initial = !k.listed;
    k.listed = true;
    if (initial) {
      this.#log.debug({ kind: k.kind, revision: res.revision, items: res.items.length }, "syncer listed");
    } else {
      this.#log.info(
        { kind: k.kind, revision: res.revision, upserts: upserts.length, deletes },
        "syncer relist applied",
      );
    }
    if (!this.#barrier && this.#kinds.every((s) => s.listed)) {
      this.#barrier = true;
      out.push({ type: "in-sync" });
      this.#log.info({ kinds: this.#kinds.map((s) => s.kind) }, "syncer in sync");
    }
    this.#emit(out);
  }

  #applyEvent(k: KindState, ev: WatchEvent): void {
    const key = keyOf(k.kind, ev.object);
    const id = keyId(key);
    if (k.last === undefined || Number(ev.revision) > Number(k.last)) k.last = ev.revision;
    if (ev.type === "deleted") {
      // A delete of a key never delivered (or already deleted) says nothing new.
      if (!k.cache.delete(id)) return;
      this.#emit([{ type: "delete", kind: k.kind, key, revision: ev.revision }]);
      return;
    }
    const revision = ev.object.metadata.resourceVersion ?? ev.revision;
    // The same revision twice (a replay after a resume) is delivered once.
    if (k.cache.get(id)?.revision === revision) return;
    k.cache.set(id, { key, revision });
    this.#emit([{ type: "upsert", kind: k.kind, key, revision, object: ev.object }]);
  }

  #emit(events: SyncerEvent[]): void {
    if (events.length === 0 || this.#closed) return;
    for (const e of events) this.#queue.push(e);
    this.#wakeReader?.();
  }

  /** Waits while the reader is behind by the high-water mark (or more). */
  async #room(): Promise<void> {
    while (this.#queue.length >= this.#highWater && !this.#ac.signal.aborted) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  #releaseRoom(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiters) w();
  }

  #fail(err: DatastoreError): void {
    if (this.#fatal !== undefined || this.#closed) return;
    this.#fatal = err;
    this.#closed = true;
    this.#ac.abort();
    this.#releaseRoom();
    this.#wakeReader?.();
    this.#updateStatus();
  }

  #computeStatus(): SyncerStatus {
    let state: SyncerState;
    if (this.#closed) state = SyncerState.Closed;
    else if (!this.#kinds.some((k) => k.listed)) state = SyncerState.WaitForDatastore;
    else if (!this.#barrier || this.#kinds.some((k) => k.relisting)) state = SyncerState.Resyncing;
    else state = SyncerState.InSync;
    return Object.freeze({
      state,
      synced: this.#barrier,
      lastError: this.#lastError,
      relists: this.#relists,
      watchRestarts: this.#watchRestarts,
    });
  }

  #updateStatus(): void {
    const next = this.#computeStatus();
    const prev = this.#status;
    if (
      next.state === prev.state &&
      next.synced === prev.synced &&
      next.lastError === prev.lastError &&
      next.relists === prev.relists &&
      next.watchRestarts === prev.watchRestarts
    ) {
      return;
    }
    this.#status = next;
    if (prev.state !== next.state)
      this.#log.debug({ from: prev.state, to: next.state }, "syncer state changed");
    this.#onStatus?.(next);
  }
}

function keyOf(kind: string, object: StoredObject): ObjectKey {
  const ns = object.metadata.namespace;
  return ns === undefined
    ? { kind, name: object.metadata.name }
    : { kind, namespace: ns, name: object.metadata.name };
}
