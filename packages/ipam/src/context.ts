/**
 * The state one IPAM client shares between its modules (libcalico-go's `ipamClient` struct): the
 * datastore, the resolved options, the caches, the logger, and the two loops every operation runs
 * in: {@link IpamContext.serialised} (one operation of a client at a time) and
 * {@link IpamContext.retrying} (re-read and retry on a lost compare-and-swap).
 */
import { type BackoffOptions, backoffDelay, sleep } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import { BlockCache } from "./block-cache.js";
import type { IpamLogger, IpamOptions } from "./client-types.js";
import type { IpFamily } from "./cidr.js";
import type { ConfigSnapshot } from "./config-cache.js";
import { IpamError, IpamErrorCode, isIpamError } from "./errors.js";
import { defaultNodeSelectorMatches, type NodeSelectorMatcher } from "./pools.js";
import { RecentMap } from "./recent-map.js";
import { type IpamHandleObject, IpamKind } from "./types.js";

/** Handles the client keeps (see {@link IpamContext.handles}). */
const HANDLE_CACHE_MAX = 10_000;

/** Nodes whose allocation attributes the client keeps (see {@link IpamContext.nodeSecondary}). */
export const NODE_SECONDARY_MAX = 16_384;

/** What the allocations of one node share (see {@link IpamContext.nodeSecondary}). */
export interface NodeShared {
  readonly affinity: string;
  readonly secondary: Readonly<Record<string, string>>;
}

/** Upper bound of the wait between two attempts, ms. */
const MAX_BACKOFF_MS = 100;

const DEFAULTS = Object.freeze({
  maxAttempts: 100,
  backoffMs: 2,
  reuseCooldownMs: 0,
  reclaimEmptyBlockAfterMs: 15 * 60_000,
  configTtlMs: 2000,
});

/** Labels of a node, for pool node selectors (see {@link IpamOptions.nodeLabels}). */
type NodeLabelsFn = NonNullable<IpamOptions["nodeLabels"]>;

/** The datastore error code of `e`, if it carries one. */
export function dsCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string") {
    return (e as { code: string }).code;
  }
  return undefined;
}

function isDatastoreLike(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "DatastoreError";
}

/** A conflict-type failure of a transaction: re-read and retry. */
function isConflict(e: unknown): boolean {
  if (isIpamError(e)) return false;
  const code = dsCode(e);
  return code === "conflict" || code === "already-exists";
}

function conflictKind(e: unknown): string | undefined {
  const details = (e as { details?: { kind?: unknown } }).details;
  return typeof details?.kind === "string" ? details.kind : undefined;
}

/** The `aborted` error of an operation whose signal fired. */
function abortError(signal: AbortSignal): IpamError {
  return new IpamError(IpamErrorCode.Aborted, "operation aborted", { cause: signal.reason });
}

/** `{ signal }` when there is one: datastore options never carry `signal: undefined`. */
export function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

/** One client's shared state. Built by {@link createIpamContext}; every module works on one. */
export class IpamContext {
  /** Set by `close()`: later calls fail with `closed`. */
  closed = false;
  /** Tail of the serialised operations of this client. */
  queue: Promise<unknown> = Promise.resolve();
  /** Pools, IPAM config and reservations as last loaded (see `config-cache.ts`). */
  snapshot: ConfigSnapshot | undefined;
  /** Block name → last known stored state. */
  blocks = new BlockCache();
  /** True once `blocks` holds a full listing taken during the current attempt. */
  blocksFresh = false;
  blocksListed = false;
  /** `poolsKey` of the config snapshot current when `blocks` was last listed in full. */
  listedPoolsKey: string | undefined;
  /** The block named by the last conflict: on retry, re-read only it instead of listing all. */
  staleBlock: string | undefined;
  /** Block name → conflicts on it during the current operation (see `fillAffine` in `allocate.ts`). */
  readonly contended = new Map<string, number>();
  /** Per family, the block this client last allocated from (see `fillAffine` in `allocate.ts`). */
  readonly preferredBlock = new Map<IpFamily, string>();
  /** Affinity names a transaction found already present: read them before writing next time. */
  readonly suspectAffinities = new Set<string>();
  /**
   * Node → what its allocations without `attrs` share: its affinity string (`host:<node>`) and the
   * secondary attributes (`{ node }`), frozen for the datastore (see `freezeShared`). Every allocation
   * of a node shares one attributes object, so a stored block holds one per node instead of one per
   * address, and a write neither checks nor freezes it again; the affinity string is the one its
   * blocks are indexed under (no string built and hashed per allocation). Emptied when it reaches
   * {@link NODE_SECONDARY_MAX} nodes.
   */
  readonly nodeSecondary = new Map<string, NodeShared>();
  /** Handle name → last known stored state (null: known absent), the most recent 10,000 or so. */
  readonly handles = new RecentMap<string, IpamHandleObject | null>(HANDLE_CACHE_MAX);
  /** Back-off between conflicting attempts (undefined: `backoffMs` is 0). */
  private readonly backoff: BackoffOptions | undefined;

  constructor(
    readonly ds: Datastore,
    readonly maxAttempts: number,
    readonly backoffMs: number,
    /** A released address is not handed out again for this long, ms. */
    readonly cooldownMs: number,
    /** An empty block of another host may be taken over after this long, ms. */
    readonly reclaimAfterMs: number,
    readonly configTtlMs: number,
    readonly now: () => number,
    readonly random: () => number,
    readonly matches: NodeSelectorMatcher,
    readonly nodeLabels: NodeLabelsFn,
    readonly log: IpamLogger | undefined,
  ) {
    this.backoff =
      backoffMs > 0
        ? { initialMs: Math.min(backoffMs, MAX_BACKOFF_MS), maxMs: MAX_BACKOFF_MS, jitter: "full", random }
        : undefined;
  }

  /** Operations of this client queued or running (see {@link serialised}). */
  private inFlight = 0;
  /** True while an operation started on an idle client runs synchronously inside `serialised`. */
  private startingSync = false;
  /**
   * Made only when a call re-enters `serialised` while {@link startingSync} (caller code such as
   * `nodeLabels` run synchronously by the operation): the tail the re-entrant calls queue behind,
   * settled once the operation that was starting settles.
   */
  private syncGate: ((after: Promise<unknown>) => void) | undefined;
  /** Counts an operation as finished: one function for all of them, not a closure per call. */
  private readonly settled = (): void => {
    this.inFlight--;
  };

  /**
   * Runs `fn` after every earlier operation of this client: one serialised loop per client. When no
   * earlier operation is queued or running, `fn` starts at once, not a turn of the microtask queue
   * later behind a chain of promises and closures built for nothing (the common case: one caller
   * awaiting each call). The operation counts as running before it starts: caller code it runs
   * synchronously (`nodeLabels`) that calls this client again queues behind it.
   */
  serialised<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new IpamError(IpamErrorCode.Closed, "IPAM client closed"));
    if (this.inFlight === 0) {
      this.inFlight++;
      this.startingSync = true;
      let run: Promise<T>;
      try {
        run = this.startOperation(fn);
      } catch (e) {
        run = Promise.reject(e);
      }
      this.startingSync = false;
      const after = run.then(this.settled, this.settled);
      const gate = this.syncGate;
      if (gate === undefined) this.queue = after;
      else {
        // Re-entrant calls already queued behind the gate (and moved the tail past it): release it.
        this.syncGate = undefined;
        gate(after);
      }
      return run;
    }
    if (this.startingSync && this.syncGate === undefined) {
      // The running operation's promise does not exist yet: queue behind a gate it settles.
      this.queue = new Promise<unknown>((resolve) => {
        this.syncGate = resolve;
      });
    }
    this.inFlight++;
    // Inline arrows, not a named `start`: a dev build (tsx's keepNames) names each function created,
    // a defineProperty per operation.
    const run = this.queue.then(
      () => this.startOperation(fn),
      () => this.startOperation(fn),
    );
    this.queue = run.then(this.settled, this.settled);
    return run;
  }

  private startOperation<T>(fn: () => Promise<T>): Promise<T> {
    // A listing is only "fresh" within the operation that took it.
    this.blocksFresh = false;
    // Only when there is something to clear: clearing a Map allocates it a new table.
    if (this.contended.size > 0) this.contended.clear();
    return fn();
  }

  /** Runs one attempt after another until it commits, re-reading on conflict. */
  async retrying<T>(
    op: string,
    signal: AbortSignal | undefined,
    attempt: (n: number) => Promise<T>,
  ): Promise<T> {
    let last: unknown;
    for (let n = 1; n <= this.maxAttempts; n++) {
      if (signal?.aborted) throw abortError(signal);
      this.blocksFresh = false;
      try {
        return await attempt(n);
      } catch (e) {
        if (!isConflict(e)) throw this.wrap(e, signal);
        last = e;
        this.forgetAfterConflict(op, n, e);
        if (n > 1) await this.pause(n, signal);
      }
    }
    throw new IpamError(IpamErrorCode.ConflictRetriesExhausted, `${op}: too many concurrent updates`, {
      details: { op, attempts: this.maxAttempts },
      cause: last,
    });
  }

  /**
   * The wait before attempt `n + 1`: @margay/api's back-off with full jitter (contended CAS), growing
   * from `backoffMs` by 2 per attempt to 100 ms. `backoffMs: 0` waits one timer turn only.
   */
  private async pause(n: number, signal: AbortSignal | undefined): Promise<void> {
    const ms = this.backoff === undefined ? 0 : backoffDelay(Math.min(n, 10), this.backoff);
    try {
      await sleep(ms, signal);
    } catch {
      throw abortError(signal!);
    }
  }

  /** Drops what the conflict `e` proved stale, so the next attempt re-reads only that. */
  private forgetAfterConflict(op: string, n: number, e: unknown): void {
    const kind = conflictKind(e);
    const name = (e as { details?: { name?: unknown } }).details?.name;
    this.log?.debug({ op, attempt: n, kind, name }, "ipam conflict");
    if (kind === undefined || kind === IpamKind.Pool) this.snapshot = undefined;
    this.staleBlock = kind === IpamKind.Block && typeof name === "string" ? name : undefined;
    const stale = this.staleBlock;
    if (stale !== undefined) this.contended.set(stale, (this.contended.get(stale) ?? 0) + 1);
    // Lost a race on the block this client prefers: let the next attempt pick another one.
    for (const [family, block] of this.preferredBlock)
      if (block === stale) this.preferredBlock.delete(family);
    if (kind === IpamKind.Affinity && typeof name === "string") this.suspectAffinities.add(name);
    if (kind === undefined || kind === IpamKind.Handle) this.handles.clear();
  }

  /** A datastore failure as a typed `datastore` error (an abort as `aborted`); IPAM errors pass. */
  wrap(e: unknown, signal: AbortSignal | undefined): unknown {
    if (isIpamError(e)) return e;
    if (signal?.aborted) return abortError(signal);
    if (isDatastoreLike(e) || dsCode(e) !== undefined) {
      return new IpamError(IpamErrorCode.Datastore, `datastore: ${(e as Error).message}`, {
        retryable: dsCode(e) === "unavailable",
        details: { datastoreCode: dsCode(e) },
        cause: e,
      });
    }
    return e;
  }

  /** Drops cached state; the next operation re-reads the datastore. */
  invalidate(): void {
    this.snapshot = undefined;
    this.blocks = new BlockCache();
    this.blocksListed = false;
    this.blocksFresh = false;
    this.handles.clear();
  }

  /** Stops accepting calls and waits for the queued ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
  }
}

/** Validates `options` once, applies the documented defaults and builds the client's context. */
export function createIpamContext(options: IpamOptions): IpamContext {
  const ds = options.datastore;
  if (!ds || typeof ds.transaction !== "function") {
    throw new IpamError(IpamErrorCode.Invalid, "a datastore is required", {
      details: { option: "datastore" },
    });
  }
  const maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts;
  const backoffMs = options.backoffMs ?? DEFAULTS.backoffMs;
  const cooldownMs = options.reuseCooldownMs ?? DEFAULTS.reuseCooldownMs;
  const reclaimAfterMs = options.reclaimEmptyBlockAfterMs ?? DEFAULTS.reclaimEmptyBlockAfterMs;
  const configTtlMs = options.configTtlMs ?? DEFAULTS.configTtlMs;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new IpamError(IpamErrorCode.Invalid, "maxAttempts must be a positive integer", {
      details: { maxAttempts },
    });
  }
  for (const [option, value] of Object.entries({
    backoffMs,
    reuseCooldownMs: cooldownMs,
    reclaimEmptyBlockAfterMs: reclaimAfterMs,
    configTtlMs,
  })) {
    // Only the reclaim delay may be infinite (reclaiming off); NaN and negatives are always mistakes.
    const finite = option !== "reclaimEmptyBlockAfterMs";
    if (typeof value !== "number" || !(value >= 0) || (finite && !Number.isFinite(value))) {
      throw new IpamError(IpamErrorCode.Invalid, `${option} must be a number >= 0`, {
        details: { option, [option]: value },
      });
    }
  }
  const nodeLabels: NodeLabelsFn =
    options.nodeLabels ??
    (async (node, opts) => {
      try {
        const n = await ds.get({ kind: "Node", name: node }, opts);
        return n.metadata.labels ?? {};
      } catch (e) {
        if (dsCode(e) === "not-found") return {};
        throw e;
      }
    });
  return new IpamContext(
    ds,
    maxAttempts,
    backoffMs,
    cooldownMs,
    reclaimAfterMs,
    configTtlMs,
    options.now ?? Date.now,
    options.random ?? Math.random,
    options.nodeSelectorMatches ?? defaultNodeSelectorMatches,
    nodeLabels,
    options.logger?.child({ component: "ipam" }),
  );
}
