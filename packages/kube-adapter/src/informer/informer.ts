/**
 * The list+watch engine (an informer, after client-go's Reflector + Store): a paginated list, a watch
 * from the list's resourceVersion with bookmarks, resume from the last seen resourceVersion after a
 * dropped connection, a full relist (diffed against the cache, so vanished objects become deletes) when
 * the server answers 410 Gone, and exponential back-off with jitter between failures.
 *
 * One run loop per informer; the cache changes only on that loop, so handlers see a consistent order.
 *
 * @packageDocumentation
 */

import { httpError, isKubeAdapterError, KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import type { KubeList, KubeObject, KubeStatus, KubeWatchEvent } from "../kube-types.js";
import { objectKey } from "../kube-types.js";
import { type Logger, silentLogger } from "../logger.js";
import { collectionPath, type KubeResourceType } from "../resources.js";
import { JsonLineFramer } from "../transport/json-lines.js";
import { type KubeResponse, type KubeTransport, readBody } from "../transport/transport.js";
import { type Backoff, type BackoffOptions, createBackoff } from "./backoff.js";
import { type IndexFunc, ObjectCache, type ObjectCacheReader } from "./object-cache.js";

/** Phases of an informer's run loop. */
export const InformerPhase = {
  /** Not started yet. */
  Idle: "idle",
  /** Reading the paginated list. */
  Listing: "listing",
  /** Following the watch stream. */
  Watching: "watching",
  /** Waiting before the next attempt after a failure. */
  BackingOff: "backing-off",
  /** Closed for good. */
  Closed: "closed",
} as const;
/** Union of {@link InformerPhase} values. */
export type InformerPhase = (typeof InformerPhase)[keyof typeof InformerPhase];

/** Why the informer changed phase. */
export type InformerTransitionReason =
  | "start"
  | "listed"
  | "watch-ended"
  | "watch-dropped"
  | "gone"
  | "list-failed"
  | "watch-failed"
  | "backoff-elapsed"
  | "closed";

/** A phase change, reported to {@link InformerOptions.onTransition}. */
export interface InformerTransition {
  from: InformerPhase;
  to: InformerPhase;
  reason: InformerTransitionReason;
  /** The resourceVersion the informer holds at this moment. */
  resourceVersion: string | undefined;
  /** For failures: the error. */
  error?: unknown;
  /** For `backing-off`: the delay chosen, ms. */
  delayMs?: number;
}

/** Types of change an informer reports. */
export type InformerEventType = "added" | "modified" | "deleted";

/** One change of the cache. */
export interface InformerEvent<T extends KubeObject> {
  type: InformerEventType;
  /** Cache key (`namespace/name` or `name`). */
  key: string;
  /** The new object (for `deleted`: the last state known). */
  object: T;
  /** The object before the change (for `modified` and `deleted`). */
  previous?: T | undefined;
  /** True when a relist produced the change (e.g. a delete missed while the history was compacted). */
  fromRelist: boolean;
}

/** Options of {@link createInformer}. */
export interface InformerOptions<T extends KubeObject> {
  /** Where to send requests. Required. */
  transport: KubeTransport;
  /** What to list and watch. Required. */
  resource: KubeResourceType;
  /** Only this namespace (namespaced types). Default: all namespaces. */
  namespace?: string | undefined;
  /** Only objects matching this label selector (`app=web,tier!=db`), on list and watch. Default: all. */
  labelSelector?: string | undefined;
  /** Only objects matching this field selector (`spec.nodeName=node-1`), on list and watch. Default: all. */
  fieldSelector?: string | undefined;
  /**
   * Applied to every object (listed, or from a watch event) before it is cached and handed to `onEvent`,
   * as client-go's `TransformFunc`: drop what the consumer never reads, so thousands of cached objects stay
   * small. It may mutate and return its argument (each object is freshly parsed) and must keep
   * `metadata.name`, `namespace` and `resourceVersion`; it must not throw (a throw fails that list or
   * watch, which is then retried). Default {@link dropManagedFields}; pass `(o) => o` to keep objects whole.
   */
  transform?: ((object: T) => T) | undefined;
  /** Items per list page (`limit`). Default 500, as client-go. */
  pageSize?: number | undefined;
  /**
   * Watch `timeoutSeconds`; each watch picks a value in [t, 2t) as client-go does, so watches of many
   * clients do not expire together. A watch still open min(t, 30) s after its own timeout is taken for a
   * dead connection, cut and resumed. Default 300.
   */
  watchTimeoutSeconds?: number | undefined;
  /** Ask for BOOKMARK events. Default true. */
  allowWatchBookmarks?: boolean | undefined;
  /** Back-off between failed attempts. Defaults of {@link createBackoff}. */
  backoff?: BackoffOptions | undefined;
  /** Extra cache indexes by name (the `namespace` index is built in). */
  indexers?: Readonly<Record<string, IndexFunc<T>>> | undefined;
  /** Called synchronously after each cache change. Exceptions are logged and ignored. */
  onEvent?: ((event: InformerEvent<T>) => void) | undefined;
  /** Called on each phase change. */
  onTransition?: ((transition: InformerTransition) => void) | undefined;
  /** Structured logger. Default silent. */
  logger?: Logger | undefined;
  /** Aborting closes the informer. */
  signal?: AbortSignal | undefined;
}

/** Counters of an informer. */
export interface InformerStats {
  /** Complete lists (initial and relists). */
  lists: number;
  /** List pages read. */
  listPages: number;
  /** Watch requests made (the first and every resume). */
  watches: number;
  /** Watch events applied (ADDED, MODIFIED, DELETED). */
  events: number;
  /** BOOKMARK events seen. */
  bookmarks: number;
  /** 410 Gone answers (each led to a relist). */
  gone: number;
  /** Other failures (each led to a back-off). */
  failures: number;
  /** Deletes synthesized by relists for objects that vanished unseen. */
  relistDeletes: number;
}

/** A running informer. */
export interface Informer<T extends KubeObject> {
  /** The resource type followed. */
  readonly resource: KubeResourceType;
  /** The cache (read-only view). */
  readonly cache: ObjectCacheReader<T>;
  /** Current phase. */
  readonly phase: InformerPhase;
  /** The last resourceVersion seen (list, event or bookmark); where a resumed watch starts. */
  readonly resourceVersion: string | undefined;
  /** Counters. */
  readonly stats: Readonly<InformerStats>;
  /** True once the first list has been applied. */
  hasSynced(): boolean;
  /** Resolves once the first list has been applied; rejects with `closed` if closed first. */
  waitForSync(options?: { signal?: AbortSignal | undefined }): Promise<void>;
  /** Stops the loop and aborts the open request. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The default informer transform: removes `metadata.managedFields` (server-side apply bookkeeping). */
export function dropManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata !== undefined && "managedFields" in object.metadata)
    delete object.metadata.managedFields;
  return object;
}

/** A watch that ends cleanly sooner than this without any event counts as a failure (client-go: 1 s). */
const SHORT_WATCH_MS = 1000;

/** How long past its `timeoutSeconds` a watch may run before it is taken for stalled (at most). */
const WATCH_GRACE_S = 30;

function parseJson<T>(text: string, what: string, path: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new KubeAdapterError(KubeAdapterErrorCode.Decode, `malformed JSON in ${what}`, {
      details: { path },
      cause,
    });
  }
}

async function failure(res: KubeResponse, path: string, kind: string): Promise<KubeAdapterError> {
  let status: KubeStatus = {};
  try {
    status = JSON.parse((await readBody(res)).toString("utf8")) as KubeStatus;
  } catch {
    // A non-JSON error body (a proxy's HTML page) still fails with its HTTP status.
  } finally {
    res.destroy();
  }
  return httpError(res.status, status.message ?? `HTTP ${res.status}`, {
    path,
    kind,
    reason: status.reason,
  });
}

/** True for a watch ERROR Status that means "relist". */
function isGoneStatus(s: KubeStatus): boolean {
  return s.code === 410 || s.reason === "Expired" || s.reason === "Gone";
}

class InformerImpl<T extends KubeObject> implements Informer<T> {
  readonly resource: KubeResourceType;
  readonly stats: InformerStats = {
    lists: 0,
    listPages: 0,
    watches: 0,
    events: 0,
    bookmarks: 0,
    gone: 0,
    failures: 0,
    relistDeletes: 0,
  };
  private readonly store: ObjectCache<T>;
  private readonly transport: KubeTransport;
  private readonly path: string;
  private readonly selectors: string;
  private readonly transform: (object: T) => T;
  private readonly pageSize: number;
  private readonly watchTimeout: number;
  private readonly bookmarks: boolean;
  private readonly backoff: Backoff;
  private readonly logger: Logger;
  private readonly options: InformerOptions<T>;
  private readonly abort = new AbortController();
  private currentPhase: InformerPhase = InformerPhase.Idle;
  private rv: string | undefined;
  private synced = false;
  private goneStreak = 0;
  /** Whether the current (or last) watch applied any event: a drop after progress resumes at once. */
  private watchProgressed = false;
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (e: unknown) => void }>();
  private readonly loop: Promise<void>;
  private readonly onOuterAbort = () => void this.close();

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.resource = options.resource;
    this.transport = options.transport;
    this.path = collectionPath(options.resource, options.namespace);
    const sel = new URLSearchParams();
    if (options.labelSelector !== undefined && options.labelSelector !== "") {
      sel.set("labelSelector", options.labelSelector);
    }
    if (options.fieldSelector !== undefined && options.fieldSelector !== "") {
      sel.set("fieldSelector", options.fieldSelector);
    }
    this.selectors = sel.size === 0 ? "" : `&${sel}`;
    this.transform = options.transform ?? dropManagedFields;
    this.pageSize = options.pageSize ?? 500;
    this.watchTimeout = options.watchTimeoutSeconds ?? 300;
    this.bookmarks = options.allowWatchBookmarks ?? true;
    this.backoff = createBackoff(options.backoff);
    this.logger = options.logger ?? silentLogger;
    this.store = new ObjectCache<T>(options.indexers ?? {});
    if (!(this.pageSize >= 1) || !(this.watchTimeout >= 1)) {
      throw new RangeError("pageSize and watchTimeoutSeconds must be at least 1");
    }
    options.signal?.addEventListener("abort", this.onOuterAbort, { once: true });
    if (options.signal?.aborted) this.abort.abort();
    this.loop = this.run();
  }

  get cache(): ObjectCacheReader<T> {
    return this.store;
  }

  get phase(): InformerPhase {
    return this.currentPhase;
  }

  get resourceVersion(): string | undefined {
    return this.rv;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.currentPhase === InformerPhase.Closed) return Promise.reject(this.closedError());
    return new Promise<void>((resolve, reject) => {
      const signal = options.signal;
      const waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        this.syncWaiters.delete(waiter);
        reject(new KubeAdapterError(KubeAdapterErrorCode.Aborted, "wait aborted", { cause: signal?.reason }));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.syncWaiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.options.signal?.removeEventListener("abort", this.onOuterAbort);
    await this.loop;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private closedError(): KubeAdapterError {
    return new KubeAdapterError(KubeAdapterErrorCode.Closed, "informer closed before its first list", {
      details: { kind: this.resource.kind },
    });
  }

  private transition(
    to: InformerPhase,
    reason: InformerTransitionReason,
    extra: Partial<InformerTransition>,
  ) {
    const t: InformerTransition = { from: this.currentPhase, to, reason, resourceVersion: this.rv, ...extra };
    this.currentPhase = to;
    try {
      this.options.onTransition?.(t);
    } catch (error) {
      this.logger.warn({ kind: this.resource.kind, error }, "informer transition handler threw");
    }
  }

  private emit(event: InformerEvent<T>): void {
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      this.logger.warn({ kind: this.resource.kind, key: event.key, error }, "informer event handler threw");
    }
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let needList = true;
    let reason: InformerTransitionReason = "start";
    while (!this.closed) {
      try {
        if (needList) {
          this.transition(InformerPhase.Listing, reason, {});
          await this.list();
          needList = false;
          reason = "listed";
        }
        this.transition(InformerPhase.Watching, reason, {});
        const started = performance.now();
        const progressed = await this.watchOnce();
        reason = "watch-ended";
        // A watch the server ends at its timeout is a success even if the resource stayed quiet (and no
        // bookmarks were asked for): resume at once, as client-go does. Only a watch that ends empty
        // almost at once (a proxy closing it, a server in trouble) backs off, so it is not hammered.
        if (progressed || performance.now() - started >= SHORT_WATCH_MS) {
          this.backoff.reset();
        } else {
          await this.pause(reason, undefined);
          reason = "backoff-elapsed";
        }
      } catch (error) {
        if (this.closed) break;
        if (isKubeAdapterError(error, KubeAdapterErrorCode.Gone)) {
          this.stats.gone++;
          this.logger.info(
            { kind: this.resource.kind, resourceVersion: this.rv },
            "resource version too old: relisting",
          );
          needList = true;
          reason = "gone";
          // The first 410 relists at once; a server that keeps answering 410 must not be hammered.
          if (this.goneStreak++ > 0) {
            await this.pause(reason, error);
            reason = "backoff-elapsed";
          }
          continue;
        }
        this.stats.failures++;
        const progressed = !needList && this.watchProgressed;
        reason = needList ? "list-failed" : progressed ? "watch-dropped" : "watch-failed";
        this.logger.warn({ kind: this.resource.kind, reason, error }, "informer request failed");
        if (progressed) this.backoff.reset();
        else {
          await this.pause(reason, error);
          reason = "backoff-elapsed";
        }
      }
    }
    this.transition(InformerPhase.Closed, "closed", {});
    for (const w of this.syncWaiters) w.reject(this.closedError());
    this.syncWaiters.clear();
  }

  private async pause(reason: InformerTransitionReason, error: unknown): Promise<void> {
    const delayMs = this.backoff.next();
    this.transition(InformerPhase.BackingOff, reason, { delayMs, ...(error === undefined ? {} : { error }) });
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, delayMs);
      this.abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  private async list(): Promise<void> {
    const items: T[] = [];
    let listRv: string | undefined;
    let cont: string | undefined;
    do {
      const query = `limit=${this.pageSize}${this.selectors}${cont === undefined ? "" : `&continue=${encodeURIComponent(cont)}`}`;
      const path = `${this.path}?${query}`;
      const res = await this.transport.get(path, { signal: this.abort.signal });
      if (res.status !== 200) throw await failure(res, path, this.resource.kind);
      const list = parseJson<KubeList<T>>((await readBody(res)).toString("utf8"), "list", path);
      if (!Array.isArray(list.items) || typeof list.metadata?.resourceVersion !== "string") {
        throw new KubeAdapterError(
          KubeAdapterErrorCode.Decode,
          "list answer without items or resourceVersion",
          {
            details: { path, kind: this.resource.kind },
          },
        );
      }
      this.stats.listPages++;
      listRv ??= list.metadata.resourceVersion;
      for (const item of list.items) items.push(this.transform(item));
      cont = list.metadata.continue === "" ? undefined : list.metadata.continue;
    } while (cont !== undefined);
    if (this.closed) return;
    this.replace(items, listRv);
    this.stats.lists++;
    this.goneStreak = 0;
    this.backoff.reset();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters) w.resolve();
      this.syncWaiters.clear();
    }
  }

  /** Applies a complete list: changed objects become adds/modifies, objects now absent become deletes. */
  private replace(items: T[], rv: string): void {
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      const previous = this.store.upsert(item);
      if (previous === undefined) {
        this.emit({ type: "added", key, object: item, fromRelist: this.stats.lists > 0 });
      } else if (previous.metadata.resourceVersion !== item.metadata.resourceVersion) {
        this.emit({ type: "modified", key, object: item, previous, fromRelist: this.stats.lists > 0 });
      }
    }
    const vanished: string[] = [];
    for (const key of this.store.keys()) if (!seen.has(key)) vanished.push(key);
    for (const key of vanished) {
      const previous = this.store.remove(key)!;
      this.stats.relistDeletes++;
      this.emit({ type: "deleted", key, object: previous, previous, fromRelist: true });
    }
    this.rv = rv;
  }

  /**
   * One watch request, followed until the server ends it (returns whether anything arrived) or it fails
   * (throws; `watchProgressed` then says whether events arrived first).
   */
  private async watchOnce(): Promise<boolean> {
    const timeout = this.watchTimeout + Math.floor(Math.random() * this.watchTimeout);
    const path =
      `${this.path}?watch=1${this.selectors}&resourceVersion=${encodeURIComponent(this.rv ?? "")}` +
      `&timeoutSeconds=${timeout}${this.bookmarks ? "&allowWatchBookmarks=true" : ""}`;
    this.stats.watches++;
    this.watchProgressed = false;
    const res = await this.transport.get(path, { signal: this.abort.signal });
    if (res.status !== 200) throw await failure(res, path, this.resource.kind);
    const framer = new JsonLineFramer();
    // The server ends the watch after `timeout`; one that outlives it by far sits on a dead connection
    // (a peer gone without FIN or RST), which TCP keep-alive would notice only after minutes.
    let overdue = false;
    const deadline = setTimeout(
      () => {
        overdue = true;
        res.destroy();
      },
      // Beyond 2³¹−1 ms Node would fire the timer at once.
      Math.min((timeout + Math.min(timeout, WATCH_GRACE_S)) * 1000, 2 ** 31 - 1),
    );
    try {
      for await (const chunk of res.body) {
        for (const line of framer.push(chunk)) {
          this.apply(parseJson<KubeWatchEvent<T>>(line, "watch event", path), path);
          this.watchProgressed = true;
        }
      }
    } catch (error) {
      if (!overdue) throw error;
    } finally {
      clearTimeout(deadline);
      res.destroy();
    }
    if (overdue) {
      throw new KubeAdapterError(
        KubeAdapterErrorCode.Network,
        `watch outlived its timeoutSeconds=${timeout}; reconnecting`,
        { details: { path, kind: this.resource.kind }, retryable: true },
      );
    }
    return this.watchProgressed;
  }

  private apply(event: KubeWatchEvent<T>, path: string): void {
    switch (event.type) {
      case "ADDED":
      case "MODIFIED": {
        const obj = this.transform(event.object as T);
        const key = objectKey(obj);
        const previous = this.store.upsert(obj);
        this.rv = obj.metadata.resourceVersion ?? this.rv;
        this.stats.events++;
        this.emit({
          type: previous === undefined ? "added" : "modified",
          key,
          object: obj,
          previous,
          fromRelist: false,
        });
        return;
      }
      case "DELETED": {
        const obj = this.transform(event.object as T);
        const key = objectKey(obj);
        const previous = this.store.remove(key);
        this.rv = obj.metadata.resourceVersion ?? this.rv;
        this.stats.events++;
        if (previous !== undefined)
          this.emit({ type: "deleted", key, object: obj, previous, fromRelist: false });
        return;
      }
      case "BOOKMARK":
        this.rv = (event.object as KubeObject).metadata?.resourceVersion ?? this.rv;
        this.stats.bookmarks++;
        return;
      case "ERROR": {
        const status = event.object as KubeStatus;
        const details = { path, kind: this.resource.kind, reason: status.reason, resourceVersion: this.rv };
        if (isGoneStatus(status)) {
          throw new KubeAdapterError(
            KubeAdapterErrorCode.Gone,
            status.message ?? "resource version too old",
            {
              details: { ...details, status: 410 },
            },
          );
        }
        throw httpError(status.code ?? 500, status.message ?? "watch error", details);
      }
      default:
        throw new KubeAdapterError(
          KubeAdapterErrorCode.Decode,
          `unknown watch event type ${JSON.stringify((event as { type?: unknown }).type)}`,
          { details: { path, kind: this.resource.kind } },
        );
    }
  }
}

/** Starts an informer; it lists, then watches, until closed. */
export function createInformer<T extends KubeObject = KubeObject>(options: InformerOptions<T>): Informer<T> {
  return new InformerImpl<T>(options);
}
