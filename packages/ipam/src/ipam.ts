/**
 * The I/O layer: `createIpam` drives the pure core over a {@link Datastore}. Every change is one
 * multi-key compare-and-swap transaction (blocks, affinities and the handle together); a `conflict`
 * means another writer got there first, so the client re-reads what it had cached and retries.
 */
import type { ObjectKey, StoredObject, TxnOp } from "@margay/datastore";
import {
  type AllocateRequest,
  addressOrdinal,
  affinityNode,
  allocateFromBlock,
  assignOrdinal,
  availableCount,
  handleAdd,
  handleRemove,
  hostAffinity,
  inUseCount,
  newBlock,
  ordinalAddress,
  type ReleaseItem,
  releaseFromBlock,
  releaseHandleFromBlock,
} from "./block.js";
import { fnv1a64, freeBlockWalk, occupiedRanges } from "./block-walk.js";
import { allocationInScope, buildCheckReport, type IpamCheckReport, type LeakedHandle } from "./check.js";
import {
  type Cidr,
  cidrContains,
  cidrContainsCidr,
  cidrName,
  cidrSize,
  cidrsOverlap,
  enclosingCidr,
  type IpAddr,
  type IpFamily,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
} from "./cidr.js";
import type {
  AssignedAddress,
  AutoAssignArgs,
  AutoAssignResult,
  BlockUtilisation,
  CheckOptions,
  ClaimAffinityResult,
  EffectiveIpamConfig,
  GcOptions,
  GcResult,
  Ipam,
  IpamOptions,
  IpamScope,
  PoolUtilisation,
  ReleaseAffinitiesResult,
  ReleaseIpsResult,
  ReleaseRequest,
} from "./client-types.js";
import { DEFAULT_IPAM_CONFIG } from "./client-types.js";
import { IpamError, IpamErrorCode, isIpamError } from "./errors.js";
import { defaultNodeSelectorMatches, findOverlaps, type NormalizedPool, normalizePool } from "./pools.js";
import {
  AffinityState,
  type AllocationAttributes,
  type BlockAffinityObject,
  type IpamBlockObject,
  type IpamBlockSpec,
  type IpamConfigSpec,
  type IpamHandleObject,
  type IpamHandleSpec,
  IpamKind,
  type IpPoolResource,
  IpPoolUse,
  type IpReservationSpec,
} from "./types.js";
import { checkCount, checkName, checkScope, secondaryOf } from "./validate.js";

export type {
  AssignedAddress,
  AutoAssignArgs,
  AutoAssignResult,
  BlockUtilisation,
  CheckOptions,
  ClaimAffinityResult,
  EffectiveIpamConfig,
  GcOptions,
  GcResult,
  Ipam,
  IpamLogger,
  IpamOptions,
  IpamScope,
  PoolUtilisation,
  ReleaseAffinitiesResult,
  ReleaseIpsResult,
  ReleaseRequest,
} from "./client-types.js";
export { DEFAULT_IPAM_CONFIG } from "./client-types.js";

const DEFAULTS = Object.freeze({
  maxAttempts: 100,
  backoffMs: 2,
  reuseCooldownMs: 0,
  reclaimEmptyBlockAfterMs: 15 * 60_000,
  configTtlMs: 2000,
});

interface ConfigSnapshot {
  pools: NormalizedPool[];
  invalidPools: { name: string; error: string }[];
  overlaps: [string, string][];
  config: EffectiveIpamConfig;
  reservations: Cidr[];
  loadedAt: number;
  /**
   * Every pool's name and revision. Equal keys mean no pool changed in between (revisions only grow),
   * so no block of another grid (an old block size, a deleted pool) can have appeared meanwhile.
   */
  poolsKey: string;
}

interface CachedBlock {
  obj: IpamBlockObject;
  cidr: Cidr;
}

interface PlannedBlock {
  cidr: Cidr;
  /** The stored object this plan started from (absent when the plan creates the block). */
  orig: IpamBlockObject | undefined;
  spec: IpamBlockSpec;
  /** Delete the block instead of writing it. */
  remove: boolean;
}

/** The writes of one attempt, committed as one transaction. */
class Plan {
  readonly blocks = new Map<string, PlannedBlock>();
  readonly ops: TxnOp[] = [];
  readonly pools = new Map<string, NormalizedPool>();
  /** handleId → block CIDR → delta (positive: allocated, negative: released). */
  readonly handles = new Map<string, Map<string, number>>();

  addHandleDelta(handleId: string, block: string, delta: number): void {
    let m = this.handles.get(handleId);
    if (!m) this.handles.set(handleId, (m = new Map()));
    m.set(block, (m.get(block) ?? 0) + delta);
  }
}

const HANDLE_CACHE_MAX = 10_000;
const MAX_CLAIM_BLOCKS = 1024;
/** Addresses per release transaction (see `releaseIPs`). */
const RELEASE_CHUNK = 32;

function dsCode(e: unknown): string | undefined {
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): IpamError {
  return new IpamError(IpamErrorCode.Aborted, "operation aborted", { cause: signal.reason });
}

/**
 * A block object to write. An update carries the stored metadata (uid, creationTimestamp, revision):
 * a backend then needs no read to preserve the server-owned fields.
 */
function blockObject(
  name: string,
  spec: IpamBlockSpec,
  stored?: IpamBlockObject["metadata"],
): IpamBlockObject {
  const metadata: IpamBlockObject["metadata"] = stored ? { ...stored, name } : { name };
  return { apiVersion: IpamKind.apiVersion, kind: IpamKind.Block, metadata, spec };
}

/** Name of the `BlockAffinity` of a node for a block, as Calico forms it. */
export function affinityName(node: string, blockCidr: Cidr): string {
  return `${node}-${cidrName(blockCidr)}`;
}

/**
 * Creates an IPAM client over a datastore.
 *
 * @example
 * ```ts
 * const ipam = createIpam({ datastore });
 * const { ipv4, ipv6 } = await ipam.autoAssign({ handleId: "net.c1", node: "n1", num4: 1, num6: 1 });
 * await ipam.releaseByHandle("net.c1");
 * ```
 */
export function createIpam(options: IpamOptions): Ipam {
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
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const matches = options.nodeSelectorMatches ?? defaultNodeSelectorMatches;
  const log = options.logger;
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

  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  let snapshot: ConfigSnapshot | undefined;
  /** Block name → last known stored state. */
  let blocks = new Map<string, CachedBlock>();
  /** True once `blocks` holds a full listing taken during the current attempt. */
  let blocksFresh = false;
  let blocksListed = false;
  /** `poolsKey` of the config snapshot current when `blocks` was last listed in full. */
  let listedPoolsKey: string | undefined;
  /** The block named by the last conflict: on retry, re-read only it instead of listing all. */
  let staleBlock: string | undefined;
  /** Block name → conflicts on it during the current operation (see `fillAffine`). */
  const contended = new Map<string, number>();
  /** Per family, the block this client last allocated from (see `fillAffine`). */
  const preferredBlock = new Map<IpFamily, string>();
  /** Affinity names a transaction found already present: read them before writing next time. */
  const suspectAffinities = new Set<string>();
  /** Handle name → last known stored state (null: known absent). */
  const handles = new Map<string, IpamHandleObject | null>();

  const nodeLabels =
    options.nodeLabels ??
    (async (node: string, opts: { signal?: AbortSignal }) => {
      try {
        const n = await ds.get({ kind: "Node", name: node }, opts);
        return n.metadata.labels ?? {};
      } catch (e) {
        if (dsCode(e) === "not-found") return {};
        throw e;
      }
    });

  /** Runs `fn` after every earlier operation of this client: one serialised loop per client. */
  function serialised<T>(fn: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new IpamError(IpamErrorCode.Closed, "IPAM client closed"));
    const start = () => {
      // A listing is only "fresh" within the operation that took it.
      blocksFresh = false;
      contended.clear();
      return fn();
    };
    const run = queue.then(start, start);
    queue = run.catch(() => undefined);
    return run;
  }

  /** Runs one attempt after another until it commits, re-reading on conflict. */
  async function retrying<T>(
    op: string,
    signal: AbortSignal | undefined,
    attempt: (n: number) => Promise<T>,
  ): Promise<T> {
    let last: unknown;
    for (let n = 1; n <= maxAttempts; n++) {
      if (signal?.aborted) throw abortError(signal);
      blocksFresh = false;
      try {
        return await attempt(n);
      } catch (e) {
        if (!isConflict(e)) throw wrap(e, signal);
        last = e;
        const kind = conflictKind(e);
        log?.debug(
          { op, attempt: n, kind, name: (e as { details?: { name?: unknown } }).details?.name },
          "ipam conflict",
        );
        if (kind === undefined || kind === IpamKind.Pool) snapshot = undefined;
        const name = (e as { details?: { name?: unknown } }).details?.name;
        staleBlock = kind === IpamKind.Block && typeof name === "string" ? name : undefined;
        if (staleBlock !== undefined) contended.set(staleBlock, (contended.get(staleBlock) ?? 0) + 1);
        // Lost a race on the block this client prefers: let the next attempt pick another one.
        for (const [family, block] of preferredBlock) if (block === staleBlock) preferredBlock.delete(family);
        if (kind === IpamKind.Affinity && typeof name === "string") suspectAffinities.add(name);
        if (kind === undefined || kind === IpamKind.Handle) handles.clear();
        if (n > 1) {
          const cap = Math.min(100, backoffMs * 2 ** Math.min(n, 10));
          await sleep(Math.floor(random() * cap), signal);
        }
      }
    }
    throw new IpamError(IpamErrorCode.ConflictRetriesExhausted, `${op}: too many concurrent updates`, {
      details: { op, attempts: maxAttempts },
      cause: last,
    });
  }

  function wrap(e: unknown, signal: AbortSignal | undefined): unknown {
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

  // ---------------------------------------------------------------- reads

  async function loadConfig(signal: AbortSignal | undefined, force = false): Promise<ConfigSnapshot> {
    if (!force && snapshot && now() - snapshot.loadedAt < configTtlMs) return snapshot;
    const opts = signal ? { signal } : {};
    const [poolList, reservationList, cfgObj] = await Promise.all([
      ds.list<IpPoolResource>(IpamKind.Pool, opts),
      ds.list<StoredObject & { spec?: IpReservationSpec }>(IpamKind.Reservation, opts),
      ds
        .get<StoredObject & { spec?: IpamConfigSpec }>({ kind: IpamKind.Config, name: "default" }, opts)
        .catch((e) => {
          if (dsCode(e) === "not-found") return undefined;
          throw e;
        }),
    ]);
    const pools: NormalizedPool[] = [];
    const invalidPools: ConfigSnapshot["invalidPools"] = [];
    for (const p of poolList.items) {
      try {
        pools.push(normalizePool(p.metadata.name, p.spec, p.metadata.resourceVersion));
      } catch (e) {
        invalidPools.push({ name: p.metadata.name, error: (e as Error).message });
        log?.warn({ pool: p.metadata.name, error: (e as Error).message }, "ipam ignores invalid pool");
      }
    }
    const reservations: Cidr[] = [];
    for (const r of reservationList.items) {
      for (const c of r.spec?.reservedCIDRs ?? []) {
        try {
          reservations.push(parseCidr(c, { mask: true }));
        } catch {
          log?.warn({ reservation: r.metadata.name, cidr: c }, "ipam ignores invalid reservation");
        }
      }
    }
    const spec = cfgObj?.spec ?? {};
    const config: EffectiveIpamConfig = {
      strictAffinity: spec.strictAffinity ?? DEFAULT_IPAM_CONFIG.strictAffinity,
      autoAllocateBlocks: spec.autoAllocateBlocks ?? DEFAULT_IPAM_CONFIG.autoAllocateBlocks,
      maxBlocksPerHost: spec.maxBlocksPerHost ?? DEFAULT_IPAM_CONFIG.maxBlocksPerHost,
    };
    const poolsKey = poolList.items
      .map((p) => `${p.metadata.name}@${p.metadata.resourceVersion ?? "?"}`)
      .sort()
      .join(",");
    snapshot = {
      pools,
      invalidPools,
      overlaps: findOverlaps(pools),
      config,
      reservations,
      loadedAt: now(),
      poolsKey,
    };
    return snapshot;
  }

  async function listBlocks(signal: AbortSignal | undefined): Promise<Map<string, CachedBlock>> {
    if (blocksFresh) return blocks;
    // Taken before the read: the snapshot was loaded before this listing starts.
    const key = snapshot?.poolsKey;
    const res = await ds.list<IpamBlockObject>(IpamKind.Block, signal ? { signal } : {});
    const next = new Map<string, CachedBlock>();
    for (const obj of res.items) {
      try {
        next.set(obj.metadata.name, { obj, cidr: parseCidr(obj.spec.cidr) });
      } catch {
        log?.warn({ block: obj.metadata.name }, "ipam ignores malformed block");
      }
    }
    blocks = next;
    blocksFresh = true;
    blocksListed = true;
    listedPoolsKey = key;
    return blocks;
  }

  /**
   * The cached blocks, relisted unless the last full listing was taken under the same pools as `cfg`.
   * Creating a block asserts only that no block of the *same* name exists; a block of another grid
   * (made before the pool's block size changed, or by a deleted pool) must be seen in a listing, or
   * the new block could overlap it and hand out its addresses a second time. Such a block predates
   * the pools of `cfg`, so a listing taken under them has it.
   */
  async function coveringBlocks(
    cfg: ConfigSnapshot,
    signal: AbortSignal | undefined,
  ): Promise<Map<string, CachedBlock>> {
    if (!blocksListed || listedPoolsKey !== cfg.poolsKey) return listBlocks(signal);
    return blocks;
  }

  /** A known block overlapping `cidr` under another name, if any. */
  function overlappingBlock(view: Map<string, CachedBlock>, cidr: Cidr): CachedBlock | undefined {
    const name = cidrName(cidr);
    for (const [n, e] of view) if (n !== name && cidrsOverlap(e.cidr, cidr)) return e;
    return undefined;
  }

  async function knownBlocks(
    signal: AbortSignal | undefined,
    attempt: number,
  ): Promise<Map<string, CachedBlock>> {
    if (!blocksListed) return listBlocks(signal);
    if (attempt === 1) return blocks;
    const stale = staleBlock === undefined ? undefined : blocks.get(staleBlock);
    if (stale === undefined) return listBlocks(signal);
    await getBlock(stale.cidr, signal, attempt);
    return blocks;
  }

  /** The stored block of that CIDR (cached on the first attempt), or undefined. */
  async function getBlock(
    cidr: Cidr,
    signal: AbortSignal | undefined,
    attempt: number,
  ): Promise<CachedBlock | undefined> {
    const name = cidrName(cidr);
    const cached = blocks.get(name);
    if (cached && attempt === 1) return cached;
    if (blocksFresh) return cached;
    try {
      const obj = await ds.get<IpamBlockObject>({ kind: IpamKind.Block, name }, signal ? { signal } : {});
      const entry = { obj, cidr };
      blocks.set(name, entry);
      return entry;
    } catch (e) {
      if (dsCode(e) !== "not-found") throw e;
      blocks.delete(name);
      return undefined;
    }
  }

  /**
   * First sequence number of a block created now: the clock in its high part, so a block deleted and
   * created again starts above every number its previous incarnation handed out (that one would have
   * had to hand out more than 1024 addresses per millisecond of its life to get there), and random
   * low bits for two incarnations created within one millisecond.
   */
  function sequenceStart(t: number): number {
    return Math.max(0, Math.floor(t)) * 1024 + Math.floor(random() * 1024);
  }

  function rememberHandle(name: string, obj: IpamHandleObject | null): void {
    handles.delete(name);
    handles.set(name, obj);
    if (handles.size > HANDLE_CACHE_MAX) handles.delete(handles.keys().next().value!);
  }

  /**
   * The stored handle. With `optimistic`, an unknown handle is assumed absent: the transaction then
   * creates it, and fails with a conflict if it did exist, after which the handle is read.
   */
  async function getHandle(
    handleId: string,
    signal: AbortSignal | undefined,
    optimistic: boolean,
  ): Promise<IpamHandleObject | null> {
    const cached = handles.get(handleId);
    // A cached object is safe to use: its revision is asserted on write. A cached "absent" is only safe
    // for a create (which asserts absence); anything else re-reads.
    if (cached) return cached;
    if (optimistic) return null;
    try {
      const obj = await ds.get<IpamHandleObject>(
        { kind: IpamKind.Handle, name: handleId },
        signal ? { signal } : {},
      );
      rememberHandle(handleId, obj);
      return obj;
    } catch (e) {
      if (dsCode(e) !== "not-found") throw e;
      rememberHandle(handleId, null);
      return null;
    }
  }

  /**
   * Refuses to allocate while a stored pool fails validation: its space is unknown, so it may overlap
   * a valid pool, and skipping it would hide the operator's mistake. Releases, `check` and `gc` still
   * work (the report lists such pools).
   */
  function requireValidPools(cfg: ConfigSnapshot): void {
    if (cfg.invalidPools.length === 0) return;
    const names = cfg.invalidPools.map((p) => p.name);
    throw new IpamError(
      IpamErrorCode.InvalidPool,
      `stored IP pool(s) fail validation: ${cfg.invalidPools.map((p) => `${p.name} (${p.error})`).join("; ")}`,
      { details: { pool: names[0], pools: names, problems: cfg.invalidPools } },
    );
  }

  function isReservedFn(cfg: ConfigSnapshot): ((v: bigint) => boolean) | undefined {
    if (cfg.reservations.length === 0) return undefined;
    const rs = cfg.reservations;
    return (v) => rs.some((r) => v >= r.base && v < r.base + cidrSize(r));
  }

  function poolOf(cfg: ConfigSnapshot, addr: IpAddr): NormalizedPool | undefined {
    return cfg.pools.find((p) => cidrContains(p.cidr, addr));
  }

  // ---------------------------------------------------------------- commit

  async function commit(
    plan: Plan,
    signal: AbortSignal | undefined,
    optimisticHandles: boolean,
  ): Promise<void> {
    const ops: TxnOp[] = [];
    const kinds: ("block" | "handle" | "other")[] = [];
    for (const [name, b] of plan.blocks) {
      if (b.remove) {
        if (!b.orig) continue;
        const op: TxnOp = { op: "delete", key: { kind: IpamKind.Block, name } };
        if (b.orig.metadata.resourceVersion !== undefined)
          op.resourceVersion = b.orig.metadata.resourceVersion;
        ops.push(op);
      } else if (b.orig) {
        if (b.orig.spec === b.spec) {
          // Unchanged, but the decision was taken on this state (e.g. "not allocated"): assert it.
          const check: TxnOp = { op: "check", key: { kind: IpamKind.Block, name } };
          if (b.orig.metadata.resourceVersion !== undefined)
            check.resourceVersion = b.orig.metadata.resourceVersion;
          ops.push(check);
          kinds.push("other");
          continue;
        }
        ops.push({ op: "update", object: blockObject(name, b.spec, b.orig.metadata) });
      } else {
        ops.push({ op: "create", object: blockObject(name, b.spec) });
      }
      kinds.push("block");
    }
    for (const op of plan.ops) {
      ops.push(op);
      kinds.push("other");
    }
    for (const p of plan.pools.values()) {
      if (p.resourceVersion === undefined) continue;
      ops.push({
        op: "check",
        key: { kind: IpamKind.Pool, name: p.name },
        resourceVersion: p.resourceVersion,
      });
      kinds.push("other");
    }
    const handleWrites: { name: string; removed: boolean }[] = [];
    for (const [handleId, deltas] of plan.handles) {
      const cur = await getHandle(handleId, signal, optimisticHandles);
      let spec: IpamHandleSpec | null = cur?.spec ?? null;
      for (const [block, d] of deltas) {
        if (d > 0) spec = handleAdd(spec ?? undefined, handleId, block, d);
        else if (d < 0 && spec) spec = handleRemove(spec, block, -d);
      }
      const key: ObjectKey = { kind: IpamKind.Handle, name: handleId };
      if (cur && spec === null) {
        const op: TxnOp = { op: "delete", key };
        if (cur.metadata.resourceVersion !== undefined) op.resourceVersion = cur.metadata.resourceVersion;
        ops.push(op);
      } else if (spec !== null) {
        const metadata: IpamHandleObject["metadata"] = cur ? { ...cur.metadata } : { name: handleId };
        const object: IpamHandleObject = {
          apiVersion: IpamKind.apiVersion,
          kind: IpamKind.Handle,
          metadata,
          spec,
        };
        ops.push(cur ? { op: "update", object } : { op: "create", object });
      } else {
        // Released addresses of a handle that has no object: assert it still has none.
        ops.push({ op: "check", key, absent: true });
        kinds.push("other");
        continue;
      }
      kinds.push("handle");
      handleWrites.push({ name: handleId, removed: spec === null });
    }
    if (ops.length === 0) return;
    const res = await ds.transaction(ops, signal ? { signal } : {});
    // Refresh the caches from what was written, so the next call needs no read.
    let hw = 0;
    ops.forEach((op, i) => {
      const kind = kinds[i];
      if (kind === "other") return;
      const written = res.results[i] ?? null;
      if (kind === "block") {
        const name = op.op === "delete" ? op.key.name : (op as { object: StoredObject }).object.metadata.name;
        const planned = plan.blocks.get(name)!;
        if (op.op === "delete" || written === null) blocks.delete(name);
        else blocks.set(name, { obj: written as IpamBlockObject, cidr: planned.cidr });
      } else {
        const w = handleWrites[hw++]!;
        if (w.removed) rememberHandle(w.name, null);
        else if (written !== null) rememberHandle(w.name, written as IpamHandleObject);
        else handles.delete(w.name);
      }
    });
  }

  function planned(plan: Plan, name: string, entry: CachedBlock): PlannedBlock {
    let p = plan.blocks.get(name);
    if (!p) {
      p = { cidr: entry.cidr, orig: entry.obj, spec: entry.obj.spec, remove: false };
      plan.blocks.set(name, p);
    }
    return p;
  }

  function take(
    plan: Plan,
    pb: PlannedBlock,
    pool: NormalizedPool,
    req: AllocateRequest,
    out: AssignedAddress[],
  ): number {
    const r = allocateFromBlock(pb.spec, pb.cidr, req);
    if (r.ordinals.length === 0) return 0;
    pb.spec = r.spec;
    plan.pools.set(pool.name, pool);
    if (req.handleId !== null) plan.addHandleDelta(req.handleId, pb.spec.cidr, r.ordinals.length);
    for (const o of r.ordinals) {
      out.push({
        ip: formatIp(pb.cidr.family, ordinalAddress(pb.cidr, o)),
        family: pb.cidr.family,
        pool: pool.name,
        block: pb.spec.cidr,
        sequenceNumber: r.sequenceNumber,
      });
    }
    return r.ordinals.length;
  }

  /** Like {@link take} on a stored block, but a block with nothing to give stays out of the plan. */
  function takeExisting(
    plan: Plan,
    name: string,
    entry: CachedBlock,
    pool: NormalizedPool,
    req: AllocateRequest,
    out: AssignedAddress[],
  ): number {
    const current = plan.blocks.get(name);
    if (availableCount(current?.spec ?? entry.obj.spec, entry.cidr, req) === 0) return 0;
    return take(plan, current ?? planned(plan, name, entry), pool, req, out);
  }

  // ---------------------------------------------------------------- autoAssign

  async function eligiblePools(
    cfg: ConfigSnapshot,
    family: IpFamily,
    args: AutoAssignArgs,
    signal: AbortSignal | undefined,
  ): Promise<NormalizedPool[]> {
    const use = args.use ?? "Workload";
    let candidates = cfg.pools.filter((p) => p.cidr.family === family);
    if (args.pools && args.pools.length > 0) {
      const wanted = args.pools;
      candidates = candidates.filter((p) => wanted.includes(p.name) || wanted.includes(p.cidrText));
    } else {
      candidates = candidates.filter((p) => p.assignmentMode === "Automatic");
    }
    candidates = candidates.filter((p) => !p.disabled && p.allowedUses.includes(use));
    const overlapping = new Set(cfg.overlaps.flat());
    const bad = candidates.filter((p) => overlapping.has(p.name));
    if (bad.length > 0) {
      throw new IpamError(
        IpamErrorCode.OverlappingPools,
        "IP pools overlap: refusing to allocate from them",
        {
          details: { pools: bad.map((p) => p.name), pairs: cfg.overlaps },
        },
      );
    }
    if (candidates.some((p) => p.nodeSelector !== "all()")) {
      const labels = await nodeLabels(args.node, signal ? { signal } : {});
      candidates = candidates.filter((p) => {
        try {
          return matches(p.nodeSelector, labels);
        } catch (e) {
          // An unparsable selector selects nothing (the API rejects them on write anyway).
          log?.warn(
            { pool: p.name, selector: p.nodeSelector, error: (e as Error).message },
            "ipam ignores pool",
          );
          return false;
        }
      });
    }
    return candidates;
  }

  async function allocateFamily(
    plan: Plan,
    cfg: ConfigSnapshot,
    pools: NormalizedPool[],
    family: IpFamily,
    num: number,
    args: AutoAssignArgs,
    attempt: number,
  ): Promise<AssignedAddress[]> {
    const signal = args.signal;
    const out: AssignedAddress[] = [];
    const affinity = hostAffinity(args.node);
    const req: AllocateRequest = {
      num,
      handleId: args.handleId,
      secondary: secondaryOf(args.attrs, args.node),
      now: now(),
      isReserved: isReservedFn(cfg),
      cooldownMs,
    };
    const poolFor = (c: Cidr) => pools.find((p) => cidrContainsCidr(p.cidr, c));
    /**
     * With `avoidContended`, skips blocks this operation has already lost two races on: another
     * client of this host is hammering them, and claiming a block of our own (step 2) beats queueing
     * behind it. They are used again (step 2b) before anything else is tried.
     */
    const fillAffine = (all: Map<string, CachedBlock>, avoidContended = true) => {
      const candidates: [string, CachedBlock, NormalizedPool][] = [];
      for (const [name, entry] of all) {
        if (entry.obj.spec.affinity !== affinity || entry.cidr.family !== family) continue;
        if (avoidContended && (contended.get(name) ?? 0) >= 2) continue;
        if (entry.obj.spec.unallocated.length === 0) continue; // full: the cheap test first
        const pool = poolFor(entry.cidr);
        if (pool) candidates.push([name, entry, pool]);
      }
      // Several clients of one host (several processes, say) would all pick the same first block and
      // serialise on its CAS. Each client sticks to the block it last used and otherwise starts at a
      // random affine block, so they drift apart; the order does not change what "fill first" means.
      const sticky = preferredBlock.get(family);
      const start = candidates.length === 0 ? 0 : Math.floor(random() * candidates.length);
      const ordered = [...candidates.slice(start), ...candidates.slice(0, start)];
      const at = ordered.findIndex(([name]) => name === sticky);
      if (at > 0) ordered.unshift(...ordered.splice(at, 1));
      for (const [name, entry, pool] of ordered) {
        if (req.num === 0) return;
        req.num -= takeExisting(plan, name, entry, pool, req, out);
      }
    };

    // 1. This host's blocks, as cached: the common case needs no read at all.
    fillAffine(await knownBlocks(signal, attempt));
    if (req.num === 0) return out;
    // 1b. This host's blocks as stored: its affinities name them (one small range read), so blocks
    // another client of this host claimed meanwhile are found without listing every block.
    const own = await ds.list<BlockAffinityObject>(IpamKind.Affinity, {
      namePrefix: `${args.node}-`,
      ...(signal ? { signal } : {}),
    });
    // As in Calico, `maxBlocksPerHost` counts the blocks of one IP version: IPv6 blocks must not
    // starve IPv4 allocation, nor the reverse.
    let ownCount = 0;
    for (const a of own.items) {
      if (a.spec?.node !== args.node) continue;
      let cidr: Cidr;
      try {
        cidr = parseCidr(a.spec.cidr);
      } catch {
        continue;
      }
      if (cidr.family !== family) continue;
      ownCount++;
      if (!blocks.has(cidrName(cidr))) await getBlock(cidr, signal, Math.max(2, attempt));
    }
    /** Blocks of this family affine to this host: stored (the larger of `known` and `view`'s) plus planned. */
    const ownBlocks = (view: Map<string, CachedBlock>, known: number) => {
      let n = 0;
      for (const e of view.values()) if (e.obj.spec.affinity === affinity && e.cidr.family === family) n++;
      n = Math.max(n, known);
      for (const b of plan.blocks.values())
        if (!b.orig && b.spec.affinity === affinity && b.cidr.family === family) n++;
      return n;
    };
    fillAffine(blocks);
    if (req.num === 0) return out;

    // 2. Claim new blocks. First on the cached view (a block created meanwhile by someone else makes
    // the create fail, and the retry lists everything), then, if that found no room, on a full listing.
    const claim = async (view: Map<string, CachedBlock>, knownOwn: number) => {
      let affineCount = ownBlocks(view, knownOwn);
      const max = cfg.config.maxBlocksPerHost;
      for (const pool of pools) {
        if (req.num === 0) break;
        const existing: Cidr[] = [];
        for (const e of view.values()) existing.push(e.cidr);
        for (const b of plan.blocks.values()) existing.push(b.cidr);
        const walk = freeBlockWalk(
          pool.cidr,
          pool.blockSize,
          fnv1a64(`${args.node}|${pool.cidrText}`),
          occupiedRanges(pool.cidr, pool.blockSize, existing, cfg.reservations),
        );
        while (req.num > 0 && (max === 0 || affineCount < max)) {
          const next = walk.next();
          if (next.done) break;
          const cidr = next.value;
          const name = cidrName(cidr);
          const pb: PlannedBlock = {
            cidr,
            orig: undefined,
            spec: newBlock(cidr, affinity, req.now, formatCidr(cidr), sequenceStart(req.now)),
            remove: false,
          };
          if (availableCount(pb.spec, cidr, req) === 0) continue;
          plan.blocks.set(name, pb);
          plan.ops.push(await affinityWrite(args.node, cidr, signal));
          affineCount++;
          req.num -= take(plan, pb, pool, req, out);
        }
      }
    };
    if (cfg.config.autoAllocateBlocks && blocksListed && listedPoolsKey === cfg.poolsKey) {
      await claim(blocks, ownCount);
      if (req.num === 0) return out;
    }
    const all = await listBlocks(signal);
    fillAffine(all);
    if (req.num === 0) return out;
    if (cfg.config.autoAllocateBlocks) {
      await claim(all, ownCount);
      if (req.num === 0) return out;
    }
    // 2b. No room of our own: back to the contended blocks of this host.
    fillAffine(all, false);
    if (req.num === 0) return out;

    // 3. Take over an empty block another host has held unused for a while, or an empty block no host
    // holds (kept only because its addresses are cooling down: the cool-down still applies to them).
    {
      const max = cfg.config.maxBlocksPerHost;
      let affineCount = ownBlocks(all, ownCount);
      for (const [name, entry] of all) {
        if (req.num === 0 || (max !== 0 && affineCount >= max) || !cfg.config.autoAllocateBlocks) break;
        const spec = entry.obj.spec;
        const other = affinityNode(spec.affinity);
        const unaffine = spec.affinity === null;
        if (
          (other === undefined && !unaffine) ||
          other === args.node ||
          entry.cidr.family !== family ||
          plan.blocks.has(name)
        )
          continue;
        if (inUseCount(spec) !== 0) continue;
        if (!unaffine && (spec.emptySince == null || req.now - spec.emptySince < reclaimAfterMs)) continue;
        if (availableCount(spec, entry.cidr, req) === 0) continue;
        const pool = poolFor(entry.cidr);
        if (!pool) continue;
        const pb = planned(plan, name, entry);
        pb.spec = { ...pb.spec, affinity };
        const oldKey: ObjectKey | undefined =
          other === undefined
            ? undefined
            : { kind: IpamKind.Affinity, name: affinityName(other, entry.cidr) };
        const oldAff = !oldKey
          ? undefined
          : await ds.get(oldKey, signal ? { signal } : {}).catch((e) => {
              if (dsCode(e) === "not-found") return undefined;
              throw e;
            });
        if (oldKey && oldAff) {
          const del: TxnOp = { op: "delete", key: oldKey };
          if (oldAff.metadata.resourceVersion !== undefined)
            del.resourceVersion = oldAff.metadata.resourceVersion;
          plan.ops.push(del);
        }
        plan.ops.push(await affinityWrite(args.node, entry.cidr, signal));
        affineCount++;
        log?.debug({ block: spec.cidr, from: other, to: args.node }, "ipam reclaims empty block");
        req.num -= take(plan, pb, pool, req, out);
      }
      if (req.num === 0) return out;
    }

    // 4. Borrow from other hosts' blocks.
    if (!cfg.config.strictAffinity) {
      for (const [name, entry] of all) {
        if (req.num === 0) break;
        if (entry.obj.spec.affinity === affinity || entry.cidr.family !== family) continue;
        const pool = poolFor(entry.cidr);
        if (!pool) continue;
        req.num -= takeExisting(plan, name, entry, pool, req, out);
      }
      if (req.num === 0) return out;
    }

    // Nothing more to be had: say why, with the numbers (addresses as stored plus this plan's takes).
    const hostBlocks = ownBlocks(all, ownCount);
    const max = cfg.config.maxBlocksPerHost;
    const poolFree = pools.map((pool) => {
      let inUse = 0n;
      for (const [name, e] of all) {
        if (cidrContainsCidr(pool.cidr, e.cidr))
          inUse += BigInt(inUseCount(plan.blocks.get(name)?.spec ?? e.obj.spec));
      }
      for (const [name, b] of plan.blocks)
        if (!all.has(name) && cidrContainsCidr(pool.cidr, b.cidr)) inUse += BigInt(inUseCount(b.spec));
      const capacity = cidrSize(pool.cidr);
      return { pool: pool.name, free: (capacity - inUse).toString(), capacity: capacity.toString() };
    });
    const atLimit = max !== 0 && hostBlocks >= max;
    const roomInPools = poolFree.some((p) => p.free !== "0");
    const reason = atLimit && roomInPools ? "host-block-limit" : "pool-exhausted";
    const facts =
      `host ${args.node} has ${hostBlocks} of ${max === 0 ? "unlimited" : max} IPv${family} blocks; ` +
      poolFree.map((p) => `pool ${p.pool}: ${p.free} of ${p.capacity} free`).join("; ");
    const why =
      reason === "host-block-limit"
        ? cfg.config.strictAffinity
          ? "host block limit reached and strictAffinity forbids borrowing"
          : "host block limit reached and no other block has a free address"
        : roomInPools
          ? cfg.config.strictAffinity
            ? "no free address in this host's blocks and strictAffinity forbids borrowing"
            : cfg.config.autoAllocateBlocks
              ? "no free address this host may use"
              : "no free address in this host's blocks and autoAllocateBlocks is off"
          : "pool exhausted";
    throw new IpamError(
      reason === "host-block-limit" ? IpamErrorCode.HostBlockLimit : IpamErrorCode.PoolExhausted,
      `cannot assign ${num} IPv${family} address(es): ${why} (${facts})`,
      {
        details: {
          reason,
          pools: pools.map((p) => p.name),
          poolFree,
          family,
          requested: num,
          available: num - req.num,
          node: args.node,
          hostBlocks,
          maxBlocksPerHost: max,
          strictAffinity: cfg.config.strictAffinity,
          autoAllocateBlocks: cfg.config.autoAllocateBlocks,
        },
      },
    );
  }

  /**
   * The write that records a confirmed affinity. Normally a plain create (no read); when an earlier
   * attempt found an object of that name in the way (a `pending` leftover of a crashed Calico-style
   * writer, say), it is read and confirmed in place under CAS, as Calico confirms a pending claim.
   */
  async function affinityWrite(node: string, cidr: Cidr, signal: AbortSignal | undefined): Promise<TxnOp> {
    const object = affinityObject(node, cidr);
    const name = object.metadata.name;
    if (!suspectAffinities.has(name)) return { op: "create", object };
    const cur = await ds.get({ kind: IpamKind.Affinity, name }, signal ? { signal } : {}).catch((e) => {
      if (dsCode(e) === "not-found") return undefined;
      throw e;
    });
    suspectAffinities.delete(name);
    if (!cur) return { op: "create", object };
    object.metadata = { ...cur.metadata, name };
    return { op: "update", object };
  }

  function affinityObject(node: string, cidr: Cidr): BlockAffinityObject {
    return {
      apiVersion: IpamKind.apiVersion,
      kind: IpamKind.Affinity,
      metadata: { name: affinityName(node, cidr) },
      spec: { node, cidr: formatCidr(cidr), state: AffinityState.Confirmed, deleted: false },
    };
  }

  async function autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult> {
    checkName("handleId", args.handleId);
    checkName("node", args.node);
    const num4 = checkCount("num4", args.num4);
    const num6 = checkCount("num6", args.num6);
    if (args.use !== undefined && !Object.values(IpPoolUse).includes(args.use)) {
      throw new IpamError(IpamErrorCode.Invalid, `unknown use ${JSON.stringify(args.use)}`, {
        details: { use: args.use, known: Object.values(IpPoolUse) },
      });
    }
    if (num4 + num6 === 0) {
      throw new IpamError(IpamErrorCode.Invalid, "nothing to assign: num4 and num6 are 0", { details: {} });
    }
    return serialised(() =>
      retrying("autoAssign", args.signal, async (attempt) => {
        const cfg = await loadConfig(args.signal, attempt > 1 && snapshot === undefined);
        requireValidPools(cfg);
        const plan = new Plan();
        const result: AutoAssignResult = { ipv4: [], ipv6: [] };
        for (const [family, num] of [
          [4, num4],
          [6, num6],
        ] as const) {
          if (num === 0) continue;
          const pools = await eligiblePools(cfg, family, args, args.signal);
          if (pools.length === 0) {
            throw new IpamError(IpamErrorCode.NoPools, `no usable IPv${family} pool for node ${args.node}`, {
              details: { family, node: args.node, pools: args.pools ?? [] },
            });
          }
          const got = await allocateFamily(plan, cfg, pools, family, num, args, attempt);
          if (family === 4) result.ipv4 = got;
          else result.ipv6 = got;
        }
        await commit(plan, args.signal, attempt === 1);
        for (const got of [result.ipv4, result.ipv6]) {
          const last = got.at(-1);
          if (last) preferredBlock.set(last.family, cidrName(parseCidr(last.block)));
        }
        return result;
      }),
    );
  }

  // ---------------------------------------------------------------- assignIP

  async function assignIP(
    ip: string,
    args: {
      handleId: string;
      attrs?: AllocationAttributes | undefined;
      node?: string | undefined;
      signal?: AbortSignal | undefined;
    },
  ): Promise<AssignedAddress> {
    const addr = parseIp(ip);
    checkName("handleId", args.handleId);
    if (args.node !== undefined) checkName("node", args.node);
    const signal = args.signal;
    return serialised(() =>
      retrying("assignIP", signal, async (attempt) => {
        const cfg = await loadConfig(signal, attempt > 1);
        requireValidPools(cfg);
        const pool = poolOf(cfg, addr);
        if (!pool)
          throw new IpamError(IpamErrorCode.NotInPool, `address ${ip} is not in any IP pool`, {
            details: { ip },
          });
        if (cfg.overlaps.some(([a, b]) => a === pool.name || b === pool.name)) {
          throw new IpamError(
            IpamErrorCode.OverlappingPools,
            "IP pools overlap: refusing to allocate from them",
            {
              details: { pools: [pool.name], pairs: cfg.overlaps },
            },
          );
        }
        const cidr = enclosingCidr(addr, pool.blockSize);
        const name = cidrName(cidr);
        const plan = new Plan();
        let entry = await getBlock(cidr, signal, attempt);
        let entryName = name;
        if (!entry) {
          // A block of another grid may hold the address (the pool's block size changed). After a
          // conflict the cached copy of such a block is what went stale: list afresh.
          const view = attempt > 1 ? await listBlocks(signal) : await coveringBlocks(cfg, signal);
          const other = overlappingBlock(view, cidr);
          if (other && !cidrContains(other.cidr, addr)) {
            throw new IpamError(IpamErrorCode.BlockInUse, "address's block would overlap an existing block", {
              details: { ip, block: formatCidr(cidr), existing: other.obj.spec.cidr },
            });
          }
          if (other) {
            entry = other;
            entryName = cidrName(other.cidr);
          }
        }
        let pb: PlannedBlock;
        const t = now();
        if (entry) {
          pb = planned(plan, entryName, entry);
        } else {
          // Like Calico, the first specific assignment in a block claims it for the node asking.
          let affinity: string | null = null;
          if (args.node !== undefined) {
            const labels =
              pool.nodeSelector === "all()" ? {} : await nodeLabels(args.node, signal ? { signal } : {});
            if (matches(pool.nodeSelector, labels)) affinity = hostAffinity(args.node);
          }
          pb = {
            cidr,
            orig: undefined,
            spec: newBlock(cidr, affinity, t, formatCidr(cidr), sequenceStart(t)),
            remove: false,
          };
          plan.blocks.set(name, pb);
          if (affinity !== null) plan.ops.push(await affinityWrite(args.node!, cidr, signal));
        }
        const ordinal = addressOrdinal(pb.cidr, addr);
        const heldIdx = pb.spec.allocations[ordinal];
        if (heldIdx !== null && heldIdx !== undefined) {
          const holder = pb.spec.attributes[heldIdx]?.handleId ?? null;
          // Asserting the block's revision makes the answer as fresh as a write would: a stale cached
          // copy conflicts, and the retry decides on the stored block.
          await commit(plan, signal, false);
          if (holder !== args.handleId) {
            throw new IpamError(
              IpamErrorCode.AlreadyAllocated,
              `address ${formatIp(addr.family, addr.value)} is in use by another handle`,
              {
                details: {
                  ip,
                  pool: pool.name,
                  block: pb.spec.cidr,
                  handleId: holder,
                  requestedBy: args.handleId,
                },
              },
            );
          }
          // The same handle asking again (a runtime resending its request): the address is already its own.
          return {
            ip: formatIp(addr.family, addr.value),
            family: addr.family,
            pool: pool.name,
            block: pb.spec.cidr,
            sequenceNumber: pb.spec.sequenceNumberForAllocation[String(ordinal)] ?? pb.spec.sequenceNumber,
          };
        }
        // Checked after the "already yours" answer: a disabled pool keeps the addresses it gave out.
        if (pool.disabled) {
          throw new IpamError(IpamErrorCode.PoolDisabled, `address ${ip} is in disabled pool ${pool.name}`, {
            details: { ip, pool: pool.name },
          });
        }
        // As in Calico, strict affinity also binds specific assignments to the node's own blocks.
        if (
          cfg.config.strictAffinity &&
          (args.node === undefined || pb.spec.affinity !== hostAffinity(args.node))
        ) {
          throw new IpamError(IpamErrorCode.BlockInUse, "strictAffinity: block is not affine to this node", {
            details: { ip, block: pb.spec.cidr, affinity: pb.spec.affinity, node: args.node ?? null },
          });
        }
        const r = assignOrdinal(pb.spec, ordinal, {
          handleId: args.handleId,
          secondary: secondaryOf(args.attrs, args.node),
          now: t,
        });
        pb.spec = r.spec;
        plan.pools.set(pool.name, pool);
        plan.addHandleDelta(args.handleId, pb.spec.cidr, 1);
        await commit(plan, signal, attempt === 1);
        return {
          ip: formatIp(addr.family, addr.value),
          family: addr.family,
          pool: pool.name,
          block: pb.spec.cidr,
          sequenceNumber: r.sequenceNumber,
        };
      }),
    );
  }

  // ---------------------------------------------------------------- release

  /**
   * After a release, an empty block that no host holds is deleted, as in Calico; unless some of its
   * addresses are cooling down: the cool-down lives in the block, and a block created afresh in its
   * place would hand them out at once. The block stays, unaffine, until a host takes it over.
   */
  function settle(pb: PlannedBlock, t: number): void {
    if (pb.spec.affinity === null && inUseCount(pb.spec) === 0 && !coolingDown(pb.spec, t)) pb.remove = true;
  }

  function coolingDown(spec: IpamBlockSpec, t: number): boolean {
    if (cooldownMs <= 0 || !spec.releasedAt) return false;
    return Object.values(spec.releasedAt).some((at) => t - at < cooldownMs);
  }

  async function blockForAddress(
    cfg: ConfigSnapshot,
    addr: IpAddr,
    signal: AbortSignal | undefined,
    attempt: number,
  ): Promise<[string, CachedBlock] | undefined> {
    const pool = poolOf(cfg, addr);
    if (pool) {
      const cidr = enclosingCidr(addr, pool.blockSize);
      const entry = await getBlock(cidr, signal, attempt);
      if (entry) return [cidrName(cidr), entry];
    }
    // The pool may be gone or resized: look through every block (a listing taken under the current
    // pools has every block of an old grid, see `coveringBlocks`).
    if (
      !blocksFresh &&
      (attempt > 1 || !blocksListed || pool === undefined || listedPoolsKey !== cfg.poolsKey)
    )
      await listBlocks(signal);
    for (const [name, e] of blocks) if (cidrContains(e.cidr, addr)) return [name, e];
    return undefined;
  }

  async function releaseIPs(
    items: readonly (string | ReleaseRequest)[],
    options: { signal?: AbortSignal } = {},
  ): Promise<ReleaseIpsResult> {
    const reqs = items.map((i) => (typeof i === "string" ? { ip: i } : i));
    for (const r of reqs) {
      if (typeof r !== "object" || r === null) {
        throw new IpamError(IpamErrorCode.Invalid, "invalid release request", { details: { request: r } });
      }
      const seq = r.sequenceNumber;
      if (seq !== undefined && (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0)) {
        throw new IpamError(IpamErrorCode.Invalid, "sequenceNumber must be an integer >= 0", {
          details: { ip: r.ip, sequenceNumber: seq },
        });
      }
      if (r.handleId !== undefined) checkName("handleId", r.handleId);
    }
    const parsed = reqs.map((r) => ({ req: r, addr: parseIp(r.ip) }));
    const signal = options.signal;
    // etcd caps a transaction at 128 operations by default: commit large releases in chunks, each
    // one transaction (a chunk touches at most RELEASE_CHUNK blocks and as many handles).
    const chunks: (typeof parsed)[] = [];
    for (let i = 0; i < parsed.length; i += RELEASE_CHUNK) chunks.push(parsed.slice(i, i + RELEASE_CHUNK));
    return serialised(async () => {
      const total: ReleaseIpsResult = { released: [], unallocated: [], skipped: [] };
      for (const chunk of chunks) {
        const r = await releaseChunk(chunk, signal);
        total.released.push(...r.released);
        total.unallocated.push(...r.unallocated);
        total.skipped.push(...r.skipped);
      }
      return total;
    });
  }

  function releaseChunk(
    parsed: readonly { req: ReleaseRequest; addr: IpAddr }[],
    signal: AbortSignal | undefined,
  ): Promise<ReleaseIpsResult> {
    return retrying("releaseIPs", signal, async (attempt) => {
      const cfg = await loadConfig(signal);
      const plan = new Plan();
      const result: ReleaseIpsResult = { released: [], unallocated: [], skipped: [] };
      const byBlock = new Map<string, { entry: CachedBlock; items: ReleaseItem[]; ips: string[] }>();
      for (const { req, addr } of parsed) {
        const found = await blockForAddress(cfg, addr, signal, attempt);
        if (!found) {
          result.unallocated.push(req.ip);
          continue;
        }
        const [name, entry] = found;
        let g = byBlock.get(name);
        if (!g) byBlock.set(name, (g = { entry, items: [], ips: [] }));
        g.items.push({
          ordinal: addressOrdinal(entry.cidr, addr),
          handleId: req.handleId,
          sequenceNumber: req.sequenceNumber,
        });
        g.ips.push(req.ip);
      }
      const t = now();
      for (const [name, g] of byBlock) {
        const pb = planned(plan, name, g.entry);
        const r = releaseFromBlock(pb.spec, g.items, t, cooldownMs);
        pb.spec = r.spec;
        for (const rel of r.released) {
          result.released.push({
            ip: formatIp(pb.cidr.family, ordinalAddress(pb.cidr, rel.ordinal)),
            handleId: rel.handleId,
          });
          if (rel.handleId !== null) plan.addHandleDelta(rel.handleId, pb.spec.cidr, -1);
        }
        for (const s of r.skipped) {
          const ip = formatIp(pb.cidr.family, ordinalAddress(pb.cidr, s.ordinal));
          if (s.reason === "not-allocated") result.unallocated.push(ip);
          else result.skipped.push({ ip, reason: s.reason });
        }
        settle(pb, t);
      }
      await commit(plan, signal, false);
      return result;
    });
  }

  /**
   * Releases every address of `handleId` in the given blocks (and in the handle's own list), and the
   * handle, in one transaction. `guard` may veto the release after the fresh read (GC re-verification).
   */
  async function releaseHandleIn(
    handleId: string,
    extraBlocks: readonly string[],
    signal: AbortSignal | undefined,
    attempt: number,
    guard?: (spec: IpamBlockSpec) => boolean,
  ): Promise<string[] | undefined> {
    const handle = await getHandle(handleId, signal, false);
    const cidrs = new Set<string>(extraBlocks);
    for (const c of Object.keys(handle?.spec.block ?? {})) cidrs.add(c);
    const plan = new Plan();
    const ips: string[] = [];
    const t = now();
    // Read the blocks concurrently: the shorter the read-to-commit window, the fewer lost races.
    const parsed = [...cidrs].map((c) => parseCidr(c));
    const entries = await Promise.all(parsed.map((cidr) => getBlock(cidr, signal, attempt)));
    for (const [i, cidr] of parsed.entries()) {
      const entry = entries[i];
      if (!entry) continue;
      if (guard && !guard(entry.obj.spec)) return undefined;
      const pb = planned(plan, cidrName(cidr), entry);
      const r = releaseHandleFromBlock(pb.spec, handleId, t, cooldownMs);
      pb.spec = r.spec;
      for (const rel of r.released) ips.push(formatIp(cidr.family, ordinalAddress(cidr, rel.ordinal)));
      settle(pb, t);
    }
    const handleKey = { kind: IpamKind.Handle, name: handleId };
    if (handle) {
      const del: TxnOp = { op: "delete", key: handleKey };
      if (handle.metadata.resourceVersion !== undefined)
        del.resourceVersion = handle.metadata.resourceVersion;
      plan.ops.push(del);
    } else {
      // The blocks read were chosen because no handle object said otherwise: a handle created since
      // (the same id allocated again) may hold addresses elsewhere, and the release must not split it.
      plan.ops.push({ op: "check", key: handleKey, absent: true });
    }
    await commit(plan, signal, false);
    if (handle) rememberHandle(handleId, null);
    return ips;
  }

  async function releaseByHandle(
    handleId: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<string[]> {
    checkName("handleId", handleId);
    const signal = options.signal;
    return serialised(() =>
      retrying("releaseByHandle", signal, async (attempt) => {
        if (attempt > 1) handles.delete(handleId);
        return (await releaseHandleIn(handleId, [], signal, attempt)) ?? [];
      }),
    );
  }

  async function ipsByHandle(handleId: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    checkName("handleId", handleId);
    const signal = options.signal;
    return serialised(async () => {
      handles.delete(handleId);
      const handle = await getHandle(handleId, signal, false);
      const out: string[] = [];
      for (const c of Object.keys(handle?.spec.block ?? {})) {
        const cidr = parseCidr(c);
        const entry = await getBlock(cidr, signal, 2);
        if (!entry) continue;
        entry.obj.spec.allocations.forEach((idx, o) => {
          if (idx !== null && entry.obj.spec.attributes[idx]?.handleId === handleId) {
            out.push(formatIp(cidr.family, ordinalAddress(cidr, o)));
          }
        });
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- affinities

  async function claimAffinity(
    cidrText: string,
    node: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ClaimAffinityResult> {
    checkName("node", node);
    const target = parseCidr(cidrText);
    const signal = options.signal;
    return serialised(async () => {
      const cfg = await loadConfig(signal, true);
      requireValidPools(cfg);
      const pool = cfg.pools.find((p) => cidrContainsCidr(p.cidr, target));
      if (!pool)
        throw new IpamError(IpamErrorCode.NotInPool, "CIDR is not inside one IP pool", {
          details: { cidr: cidrText },
        });
      const out: ClaimAffinityResult = { claimed: [], failed: [] };
      const blockCidrs: Cidr[] = [];
      if (target.prefix >= pool.blockSize)
        blockCidrs.push(enclosingCidr({ family: target.family, value: target.base }, pool.blockSize));
      else {
        const n = 1n << BigInt(pool.blockSize - target.prefix);
        if (n > BigInt(MAX_CLAIM_BLOCKS)) {
          throw new IpamError(IpamErrorCode.Invalid, "CIDR spans too many blocks", {
            details: { cidr: cidrText, max: MAX_CLAIM_BLOCKS },
          });
        }
        const step = cidrSize({ family: target.family, base: 0n, prefix: pool.blockSize });
        for (let i = 0n; i < n; i++)
          blockCidrs.push({ family: target.family, base: target.base + i * step, prefix: pool.blockSize });
      }
      for (const cidr of blockCidrs) {
        const text = formatCidr(cidr);
        try {
          await retrying("claimAffinity", signal, async (attempt) => {
            const name = cidrName(cidr);
            const entry = await getBlock(cidr, signal, attempt);
            const plan = new Plan();
            const affinity = hostAffinity(node);
            const overlap = entry ? undefined : overlappingBlock(await coveringBlocks(cfg, signal), cidr);
            if (overlap) {
              throw new IpamError(IpamErrorCode.BlockInUse, "block would overlap an existing block", {
                details: { block: text, existing: overlap.obj.spec.cidr },
              });
            } else if (!entry) {
              plan.blocks.set(name, {
                cidr,
                orig: undefined,
                spec: newBlock(cidr, affinity, now(), text, sequenceStart(now())),
                remove: false,
              });
              plan.ops.push(await affinityWrite(node, cidr, signal));
            } else if (entry.obj.spec.affinity === affinity) {
              const key = { kind: IpamKind.Affinity, name: affinityName(node, cidr) };
              const aff = await ds.get<BlockAffinityObject>(key, signal ? { signal } : {}).catch((e) => {
                if (dsCode(e) === "not-found") return undefined;
                throw e;
              });
              if (aff?.spec.state === AffinityState.Confirmed) return;
              const obj = affinityObject(node, cidr);
              if (aff) obj.metadata = { ...aff.metadata };
              plan.ops.push(aff ? { op: "update", object: obj } : { op: "create", object: obj });
              plan.ops.push({
                op: "check",
                key: { kind: IpamKind.Block, name },
                resourceVersion: entry.obj.metadata.resourceVersion!,
              });
            } else {
              throw new IpamError(IpamErrorCode.BlockInUse, "block is held by another host or unaffine", {
                details: { block: text, affinity: entry.obj.spec.affinity },
              });
            }
            await commit(plan, signal, false);
          });
          out.claimed.push(text);
        } catch (e) {
          if (!isIpamError(e, IpamErrorCode.BlockInUse)) throw e;
          out.failed.push({ cidr: text, reason: e.message });
        }
      }
      return out;
    });
  }

  async function releaseHostAffinities(
    node: string,
    options: { requireEmpty?: boolean; signal?: AbortSignal } = {},
  ): Promise<ReleaseAffinitiesResult> {
    checkName("node", node);
    const signal = options.signal;
    return serialised(async () => {
      const affinity = hostAffinity(node);
      const affs = await ds.list<BlockAffinityObject>(IpamKind.Affinity, signal ? { signal } : {});
      const all = await listBlocks(signal);
      const targets = new Set<string>();
      for (const a of affs.items) if (a.spec?.node === node) targets.add(a.spec.cidr);
      for (const e of all.values()) if (e.obj.spec.affinity === affinity) targets.add(e.obj.spec.cidr);
      const out: ReleaseAffinitiesResult = { released: [], nonEmpty: [] };
      for (const c of targets) {
        const cidr = parseCidr(c);
        const done = await retrying("releaseHostAffinities", signal, async (attempt) => {
          const plan = new Plan();
          const entry = await getBlock(cidr, signal, attempt);
          const key = { kind: IpamKind.Affinity, name: affinityName(node, cidr) };
          const aff = await ds.get(key, signal ? { signal } : {}).catch((e) => {
            if (dsCode(e) === "not-found") return undefined;
            throw e;
          });
          let nonEmpty = false;
          if (!entry) {
            // Decided on "no such block": assert it, as for any state the decision rests on.
            plan.ops.push({ op: "check", key: { kind: IpamKind.Block, name: cidrName(cidr) }, absent: true });
          } else if (entry.obj.spec.affinity !== affinity) {
            // Not this node's block (as read): asserted unchanged, or the host may have taken it meanwhile.
            planned(plan, cidrName(cidr), entry);
          } else {
            const pb = planned(plan, cidrName(cidr), entry);
            nonEmpty = inUseCount(pb.spec) > 0;
            if (nonEmpty && options.requireEmpty) return undefined;
            if (nonEmpty || coolingDown(pb.spec, now())) pb.spec = { ...pb.spec, affinity: null };
            else pb.remove = true;
          }
          if (aff) {
            const del: TxnOp = { op: "delete", key };
            if (aff.metadata.resourceVersion !== undefined)
              del.resourceVersion = aff.metadata.resourceVersion;
            plan.ops.push(del);
          }
          await commit(plan, signal, false);
          return { nonEmpty };
        });
        if (!done) continue;
        out.released.push(c);
        if (done.nonEmpty) out.nonEmpty.push(c);
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- reports

  async function utilisation(options: { signal?: AbortSignal } = {}): Promise<PoolUtilisation[]> {
    const signal = options.signal;
    return serialised(async () => {
      blocksFresh = false;
      const cfg = await loadConfig(signal, true);
      const all = await listBlocks(signal);
      return cfg.pools.map((pool) => {
        const bs: BlockUtilisation[] = [];
        let inUse = 0;
        for (const e of all.values()) {
          if (!cidrContainsCidr(pool.cidr, e.cidr)) continue;
          const used = inUseCount(e.obj.spec);
          inUse += used;
          const capacity = e.obj.spec.allocations.length;
          bs.push({
            cidr: e.obj.spec.cidr,
            affinity: e.obj.spec.affinity,
            capacity,
            inUse: used,
            free: capacity - used,
          });
        }
        const capacity = cidrSize(pool.cidr);
        return {
          name: pool.name,
          cidr: pool.cidrText,
          family: pool.cidr.family,
          disabled: pool.disabled,
          capacity,
          inUse,
          free: capacity - BigInt(inUse),
          blocks: bs,
        };
      });
    });
  }

  async function readReport(
    live: Set<string>,
    scope: IpamScope | undefined,
    signal: AbortSignal | undefined,
  ): Promise<IpamCheckReport> {
    blocksFresh = false;
    const cfg = await loadConfig(signal, true);
    const opts = signal ? { signal } : {};
    const [blockList, handleList, affList] = await Promise.all([
      ds.list<IpamBlockObject>(IpamKind.Block, opts),
      ds.list<IpamHandleObject>(IpamKind.Handle, opts),
      ds.list<BlockAffinityObject>(IpamKind.Affinity, opts),
    ]);
    return buildCheckReport({
      blocks: blockList.items,
      handles: handleList.items,
      affinities: affList.items,
      pools: cfg.pools,
      invalidPools: cfg.invalidPools.map((p) => ({ pool: p.name, error: p.error })),
      liveHandles: live,
      scope,
    });
  }

  async function check(liveHandles: Iterable<string>, options: CheckOptions = {}): Promise<IpamCheckReport> {
    const scope = checkScope(options.scope);
    const live = new Set(liveHandles);
    return serialised(() => readReport(live, scope, options.signal));
  }

  async function gc(
    liveHandles: Iterable<string>,
    gracePeriodMs: number,
    options: GcOptions = {},
  ): Promise<GcResult> {
    if (typeof gracePeriodMs !== "number" || !(gracePeriodMs >= 0)) {
      throw new IpamError(IpamErrorCode.Invalid, "gracePeriodMs must be >= 0", {
        details: { gracePeriodMs },
      });
    }
    const scope = checkScope(options.scope);
    const live = new Set(liveHandles);
    const signal = options.signal;
    return serialised(async () => {
      const report = await readReport(live, scope, signal);
      const result: GcResult = { released: [], deferred: [], removedHandles: [], report };
      const t = now();
      const oldEnough = (leak: LeakedHandle) =>
        leak.newestAllocation !== undefined && t - leak.newestAllocation >= gracePeriodMs;
      for (const leak of report.leaks) {
        if (leak.handleId === null) continue;
        const handleId = leak.handleId;
        if (!oldEnough(leak)) {
          result.deferred.push(handleId);
          continue;
        }
        // Re-verify on the state the transaction compares against: every allocation of the handle must
        // still be older than the grace period and inside the scope (a handle allocated again since the
        // report, on any node, is left alone), or nothing of it is released.
        const guard = (spec: IpamBlockSpec) =>
          spec.allocations.every((idx) => {
            if (idx === null) return true;
            const a = spec.attributes[idx];
            if (a?.handleId !== handleId) return true;
            return (
              a.allocatedAt !== undefined &&
              t - a.allocatedAt >= gracePeriodMs &&
              allocationInScope(spec, a, scope)
            );
          });
        const ips = await retrying("gc", signal, async (attempt) => {
          handles.delete(handleId);
          return releaseHandleIn(handleId, leak.blocks, signal, attempt + 1, guard);
        });
        if (ips === undefined) result.deferred.push(handleId);
        else result.released.push({ handleId, ips });
      }
      // Handle objects holding no address: debris (allocation writes the handle and its block in one
      // transaction). Deleted under CAS, and only while every block the handle names still agrees.
      for (const handleId of report.handlesWithoutIps) {
        if (live.has(handleId)) continue;
        if (scope?.handlePrefix !== undefined && !handleId.startsWith(scope.handlePrefix)) continue;
        const holdsNone = (spec: IpamBlockSpec) =>
          spec.attributes.every((a, i) => a.handleId !== handleId || !spec.allocations.includes(i));
        const ips = await retrying("gc", signal, async (attempt) => {
          handles.delete(handleId);
          return releaseHandleIn(handleId, [], signal, attempt + 1, holdsNone);
        });
        if (ips !== undefined && ips.length === 0) result.removedHandles.push(handleId);
        else if (ips === undefined) result.deferred.push(handleId);
      }
      return result;
    });
  }

  async function close(): Promise<void> {
    closed = true;
    await queue;
  }

  return {
    autoAssign,
    assignIP,
    releaseIPs,
    releaseByHandle,
    ipsByHandle,
    claimAffinity,
    releaseHostAffinities,
    utilisation,
    check,
    gc,
    invalidate() {
      snapshot = undefined;
      blocks = new Map();
      blocksListed = false;
      blocksFresh = false;
      handles.clear();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
