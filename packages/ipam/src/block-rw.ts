/**
 * The block reader-writer (libcalico-go's `ipam_block_reader_writer.go`): reads blocks, handles and
 * affinities through the client's caches, and commits a {@link Plan} (blocks, affinities and handles
 * together) as ONE compare-and-swap transaction, refreshing the caches from what was written.
 */
import { freezeShared, type ObjectKey, type StoredObject, type TxnOp } from "@margay/datastore";
import { handleAdd, handleRemove, inUseCount } from "./block.js";
import { BlockCache } from "./block-cache.js";
import { type Cidr, cidrName, cidrsOverlap, formatCidr, parseCidr } from "./cidr.js";
import type { ConfigSnapshot } from "./config-cache.js";
import { dsCode, type IpamContext, withSignal } from "./context.js";
import type { NormalizedPool } from "./pools.js";
import {
  AffinityState,
  type BlockAffinityObject,
  type IpamBlockObject,
  type IpamBlockSpec,
  type IpamHandleObject,
  type IpamHandleSpec,
  IpamKind,
} from "./types.js";

/** A block as last read or written, with its parsed CIDR. */
export interface CachedBlock {
  obj: IpamBlockObject;
  cidr: Cidr;
}

/** A block as one attempt means to leave it. */
export interface PlannedBlock {
  cidr: Cidr;
  /** The stored object this plan started from (absent when the plan creates the block). */
  orig: IpamBlockObject | undefined;
  spec: IpamBlockSpec;
  /** Delete the block instead of writing it. */
  remove: boolean;
}

/** The pools of a plan that used none (shared, never changed: see {@link Plan.usePool}). */
const NO_POOLS: NormalizedPool[] = [];

/** A handle's address count changes in one block (see {@link Plan.handles}). */
export interface HandleDelta {
  block: string;
  delta: number;
}

/**
 * The writes of one attempt, committed as one transaction. Built on every allocation, so it holds
 * only what most attempts use (one block map, one handle map): pools and per-handle deltas are short
 * lists, the last blocks two fields (#20: the Maps of each plan were ~1 KB of every allocation's garbage).
 */
export class Plan {
  readonly blocks = new Map<string, PlannedBlock>();
  readonly ops: TxnOp[] = [];
  /** The pools addresses were taken from (by name, usually one): asserted unchanged on commit. */
  pools: NormalizedPool[] = NO_POOLS;
  /** handleId → per block CIDR, the delta (positive: allocated, negative: released), in first-use order. */
  readonly handles = new Map<string, HandleDelta[]>();
  /** The name of the block the last IPv4 address was taken from (see `autoAssign`). */
  lastBlock4: string | undefined;
  /** The name of the block the last IPv6 address was taken from. */
  lastBlock6: string | undefined;

  addHandleDelta(handleId: string, block: string, delta: number): void {
    const ds = this.handles.get(handleId);
    if (ds === undefined) {
      this.handles.set(handleId, [{ block, delta }]);
      return;
    }
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      if (d.block === block) {
        d.delta += delta;
        return;
      }
    }
    ds.push({ block, delta });
  }

  /** Records `pool` as used (the latest object of that name, in first-use order). */
  usePool(pool: NormalizedPool): void {
    const ps = this.pools;
    if (ps === NO_POOLS) {
      // A list of one, exactly: a push onto an empty list reserves room for 16.
      this.pools = [pool];
      return;
    }
    for (let i = 0; i < ps.length; i++) {
      if (ps[i]!.name === pool.name) {
        ps[i] = pool;
        return;
      }
    }
    ps.push(pool);
  }
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
  // The stored metadata itself when it names the block (always, but for a hand-made cache entry): a
  // backend copies what it is given (the memory backend makes one copy of a frozen metadata), so a
  // copy here would be the second one per write (#20).
  const metadata: IpamBlockObject["metadata"] =
    stored === undefined ? { name } : stored.name === name ? stored : { ...stored, name };
  return { apiVersion: IpamKind.apiVersion, kind: IpamKind.Block, metadata, spec };
}

/** Name of the `BlockAffinity` of a node for a block, as Calico forms it. */
export function affinityName(node: string, blockCidr: Cidr): string {
  return `${node}-${cidrName(blockCidr)}`;
}

/** The stored object, or undefined when there is none. */
export async function getOptional<T extends StoredObject>(
  ctx: IpamContext,
  key: ObjectKey,
  signal: AbortSignal | undefined,
): Promise<T | undefined> {
  try {
    return await ctx.ds.get<T>(key, withSignal(signal));
  } catch (e) {
    if (dsCode(e) === "not-found") return undefined;
    throw e;
  }
}

/** Every stored block (once per attempt: a listing stays fresh within the attempt that took it). */
export async function listBlocks(ctx: IpamContext, signal: AbortSignal | undefined): Promise<BlockCache> {
  if (ctx.blocksFresh) return ctx.blocks;
  // Taken before the read: the snapshot was loaded before this listing starts.
  const key = ctx.snapshot?.poolsKey;
  const res = await ctx.ds.list<IpamBlockObject>(IpamKind.Block, withSignal(signal));
  const next = new BlockCache();
  for (const obj of res.items) {
    try {
      next.set(obj.metadata.name, { obj, cidr: parseCidr(obj.spec.cidr) });
    } catch {
      ctx.log?.warn({ block: obj.metadata.name }, "ipam ignores malformed block");
    }
  }
  ctx.blocks = next;
  ctx.blocksFresh = true;
  ctx.blocksListed = true;
  ctx.listedPoolsKey = key;
  return next;
}

/**
 * The cached blocks, relisted unless the last full listing was taken under the same pools as `cfg`.
 * Creating a block asserts only that no block of the *same* name exists; a block of another grid
 * (made before the pool's block size changed, or by a deleted pool) must be seen in a listing, or
 * the new block could overlap it and hand out its addresses a second time. Such a block predates
 * the pools of `cfg`, so a listing taken under them has it.
 */
export async function coveringBlocks(
  ctx: IpamContext,
  cfg: ConfigSnapshot,
  signal: AbortSignal | undefined,
): Promise<BlockCache> {
  if (!ctx.blocksListed || ctx.listedPoolsKey !== cfg.poolsKey) return listBlocks(ctx, signal);
  return ctx.blocks;
}

/** A known block overlapping `cidr` under another name, if any. */
export function overlappingBlock(view: Map<string, CachedBlock>, cidr: Cidr): CachedBlock | undefined {
  const name = cidrName(cidr);
  for (const [n, e] of view) if (n !== name && cidrsOverlap(e.cidr, cidr)) return e;
  return undefined;
}

/**
 * The blocks as known: the cache on a first attempt; after a conflict the one block that went stale
 * is re-read, or everything is listed when the conflict named no cached block.
 */
export async function knownBlocks(
  ctx: IpamContext,
  signal: AbortSignal | undefined,
  attempt: number,
): Promise<BlockCache> {
  if (!ctx.blocksListed) return listBlocks(ctx, signal);
  if (attempt === 1) return ctx.blocks;
  const stale = ctx.staleBlock === undefined ? undefined : ctx.blocks.get(ctx.staleBlock);
  if (stale === undefined) return listBlocks(ctx, signal);
  await getBlock(ctx, stale.cidr, signal, attempt);
  return ctx.blocks;
}

/** The stored block of that CIDR (cached on the first attempt), or undefined. */
export async function getBlock(
  ctx: IpamContext,
  cidr: Cidr,
  signal: AbortSignal | undefined,
  attempt: number,
): Promise<CachedBlock | undefined> {
  const name = cidrName(cidr);
  const cached = ctx.blocks.get(name);
  if (cached && attempt === 1) return cached;
  if (ctx.blocksFresh) return cached;
  try {
    const obj = await ctx.ds.get<IpamBlockObject>({ kind: IpamKind.Block, name }, withSignal(signal));
    const entry = { obj, cidr };
    ctx.blocks.set(name, entry);
    return entry;
  } catch (e) {
    if (dsCode(e) !== "not-found") throw e;
    ctx.blocks.delete(name);
    return undefined;
  }
}

/**
 * First sequence number of a block created now: the clock in its high part, so a block deleted and
 * created again starts above every number its previous incarnation handed out (that one would have
 * had to hand out more than 1024 addresses per millisecond of its life to get there), and random
 * low bits for two incarnations created within one millisecond.
 */
export function sequenceStart(ctx: IpamContext, t: number): number {
  return Math.max(0, Math.floor(t)) * 1024 + Math.floor(ctx.random() * 1024);
}

/** Caches a handle's stored state (null: absent); the cache keeps the most recent ones. */
export function rememberHandle(ctx: IpamContext, name: string, obj: IpamHandleObject | null): void {
  ctx.handles.set(name, obj);
}

/**
 * The stored handle. With `optimistic`, an unknown handle is assumed absent: the transaction then
 * creates it, and fails with a conflict if it did exist, after which the handle is read.
 */
export async function getHandle(
  ctx: IpamContext,
  handleId: string,
  signal: AbortSignal | undefined,
  optimistic: boolean,
): Promise<IpamHandleObject | null> {
  const cached = ctx.handles.get(handleId);
  // A cached object is safe to use: its revision is asserted on write. A cached "absent" is only safe
  // for a create (which asserts absence); anything else re-reads.
  if (cached) return cached;
  if (optimistic) return null;
  try {
    const obj = await ctx.ds.get<IpamHandleObject>(
      { kind: IpamKind.Handle, name: handleId },
      withSignal(signal),
    );
    rememberHandle(ctx, handleId, obj);
    return obj;
  } catch (e) {
    if (dsCode(e) !== "not-found") throw e;
    rememberHandle(ctx, handleId, null);
    return null;
  }
}

/** The block's entry in `plan`, starting from the stored `entry` when the plan has none yet. */
export function planned(plan: Plan, name: string, entry: CachedBlock): PlannedBlock {
  let p = plan.blocks.get(name);
  if (!p) {
    p = { cidr: entry.cidr, orig: entry.obj, spec: entry.obj.spec, remove: false };
    plan.blocks.set(name, p);
  }
  return p;
}

/** True while some address of the block is inside the reuse cool-down. */
export function coolingDown(ctx: IpamContext, spec: IpamBlockSpec, t: number): boolean {
  if (ctx.cooldownMs <= 0 || !spec.releasedAt) return false;
  return Object.values(spec.releasedAt).some((at) => t - at < ctx.cooldownMs);
}

/**
 * After a release, an empty block that no host holds is deleted, as in Calico; unless some of its
 * addresses are cooling down: the cool-down lives in the block, and a block created afresh in its
 * place would hand them out at once. The block stays, unaffine, until a host takes it over.
 */
export function settle(ctx: IpamContext, pb: PlannedBlock, t: number): void {
  if (pb.spec.affinity === null && inUseCount(pb.spec) === 0 && !coolingDown(ctx, pb.spec, t))
    pb.remove = true;
}

/** A confirmed `BlockAffinity` of `node` for the block `cidr`. */
export function affinityObject(node: string, cidr: Cidr): BlockAffinityObject {
  return {
    apiVersion: IpamKind.apiVersion,
    kind: IpamKind.Affinity,
    metadata: { name: affinityName(node, cidr) },
    spec: { node, cidr: formatCidr(cidr), state: AffinityState.Confirmed, deleted: false },
  };
}

/**
 * The write that records a confirmed affinity. Normally a plain create (no read); when an earlier
 * attempt found an object of that name in the way (a `pending` leftover of a crashed Calico-style
 * writer, say), it is read and confirmed in place under CAS, as Calico confirms a pending claim.
 */
export async function affinityWrite(
  ctx: IpamContext,
  node: string,
  cidr: Cidr,
  signal: AbortSignal | undefined,
): Promise<TxnOp> {
  const object = affinityObject(node, cidr);
  const name = object.metadata.name;
  if (!ctx.suspectAffinities.has(name)) return { op: "create", object };
  const cur = await getOptional(ctx, { kind: IpamKind.Affinity, name }, signal);
  ctx.suspectAffinities.delete(name);
  if (!cur) return { op: "create", object };
  object.metadata = { ...cur.metadata, name };
  return { op: "update", object };
}

/** The delete of a stored object, guarded by its revision when it has one. */
export function guardedDelete(key: ObjectKey, stored: StoredObject): TxnOp {
  const op: TxnOp = { op: "delete", key };
  if (stored.metadata.resourceVersion !== undefined) op.resourceVersion = stored.metadata.resourceVersion;
  return op;
}

/**
 * Commits `plan` as one transaction: block writes under CAS (an unchanged block is asserted, as the
 * decision was taken on it), the plan's own ops, checks that its pools did not change, and the
 * handles' deltas. With `optimisticHandles`, unknown handles are assumed absent (see `getHandle`).
 */
export async function commit(
  ctx: IpamContext,
  plan: Plan,
  signal: AbortSignal | undefined,
  optimisticHandles: boolean,
): Promise<void> {
  const ops: TxnOp[] = [];
  // Ops [0, blocksEnd) are the blocks' (writes, and checks of unchanged ones), [handlesStart, end) the
  // handles' (writes, and checks of absent ones); the rest are other checks and the plan's own ops.
  for (const [name, b] of plan.blocks) {
    if (b.remove) {
      if (!b.orig) continue;
      ops.push(guardedDelete({ kind: IpamKind.Block, name }, b.orig));
    } else if (b.orig) {
      if (b.orig.spec === b.spec) {
        // Unchanged, but the decision was taken on this state (e.g. "not allocated"): assert it.
        const check: TxnOp = { op: "check", key: { kind: IpamKind.Block, name } };
        if (b.orig.metadata.resourceVersion !== undefined)
          check.resourceVersion = b.orig.metadata.resourceVersion;
        ops.push(check);
        continue;
      }
      // Frozen and marked: a backend may store the spec as is (the memory backend does), and the parts
      // it took over unchanged from the stored block are not copied again (see `freezeShared`).
      ops.push({ op: "update", object: blockObject(name, freezeShared(b.spec), b.orig.metadata) });
    } else {
      ops.push({ op: "create", object: blockObject(name, freezeShared(b.spec)) });
    }
  }
  const blocksEnd = ops.length;
  for (const op of plan.ops) ops.push(op);
  for (const p of plan.pools) if (p.resourceVersion !== undefined) ops.push(poolCheck(p, p.resourceVersion));
  const handlesStart = ops.length;
  for (const [handleId, deltas] of plan.handles) {
    // The cache (or, optimistically, "absent") without an await: this runs on every allocation.
    const cached = ctx.handles.get(handleId);
    const cur = cached
      ? cached
      : optimisticHandles
        ? null
        : await getHandle(ctx, handleId, signal, optimisticHandles);
    let spec: IpamHandleSpec | null = cur?.spec ?? null;
    for (let i = 0; i < deltas.length; i++) {
      const { block, delta: d } = deltas[i]!;
      if (d > 0) spec = handleAdd(spec ?? undefined, handleId, block, d);
      else if (d < 0 && spec) spec = handleRemove(spec, block, -d);
    }
    const key: ObjectKey = { kind: IpamKind.Handle, name: handleId };
    if (cur && spec === null) {
      ops.push(guardedDelete(key, cur));
    } else if (spec !== null) {
      const metadata: IpamHandleObject["metadata"] = cur ? { ...cur.metadata } : { name: handleId };
      const object: IpamHandleObject = {
        apiVersion: IpamKind.apiVersion,
        kind: IpamKind.Handle,
        metadata,
        // Frozen and marked, as a block's spec: the backend stores it as is instead of copying it
        // (and its per-block record, whose key is a block CIDR, a rare shape that is slow to build).
        spec: freezeShared(spec),
      };
      ops.push(cur ? { op: "update", object } : { op: "create", object });
    } else {
      // Released addresses of a handle that has no object: assert it still has none.
      ops.push({ op: "check", key, absent: true });
    }
  }
  if (ops.length === 0) return;
  const res = await ctx.ds.transaction(ops, signal ? { signal } : undefined);
  // Refresh the caches from what was written, so the next call needs no read.
  for (let i = 0; i < ops.length; i++) {
    if (i === blocksEnd) i = handlesStart;
    if (i >= ops.length) break;
    const op = ops[i]!;
    if (op.op === "check") continue;
    const written = res.results[i] ?? null;
    if (i < blocksEnd) {
      const name = op.op === "delete" ? op.key.name : (op as { object: StoredObject }).object.metadata.name;
      const plannedBlock = plan.blocks.get(name)!;
      if (op.op === "delete" || written === null) ctx.blocks.delete(name);
      else ctx.blocks.set(name, { obj: written as IpamBlockObject, cidr: plannedBlock.cidr });
    } else if (op.op === "delete") {
      // A handle's op: its delete (the handle is empty), or its create or update.
      rememberHandle(ctx, op.key.name, null);
    } else {
      const name = (op as { object: StoredObject }).object.metadata.name;
      if (written !== null) rememberHandle(ctx, name, written as IpamHandleObject);
      else ctx.handles.delete(name);
    }
  }
}

/** One frozen check op per pool revision, reused by every commit that allocates from the pool. */
const poolChecks = new WeakMap<NormalizedPool, TxnOp>();

/** The check that `pool` is still at `resourceVersion` (one frozen op per pool snapshot). */
function poolCheck(pool: NormalizedPool, resourceVersion: string): TxnOp {
  let op = poolChecks.get(pool);
  if (op === undefined) {
    op = Object.freeze({
      op: "check" as const,
      key: Object.freeze({ kind: IpamKind.Pool, name: pool.name }),
      resourceVersion,
    });
    poolChecks.set(pool, op);
  }
  return op;
}
