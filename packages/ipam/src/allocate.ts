/**
 * Automatic assignment (libcalico-go's `autoAssign` / `autoAssignFromBlocks`): the host's own blocks
 * first, then new blocks claimed for it, then empty blocks reclaimed from other hosts, then borrowing,
 * all planned on cached state and committed as one transaction.
 */
import { freezeShared, type ObjectKey } from "@margay/datastore";
import {
  type AllocateRequest,
  affinityNode,
  allocateFromBlock,
  hasAvailable,
  hostAffinity,
  inUseCount,
  newBlock,
  ordinalAddress,
} from "./block.js";
import {
  affinityName,
  affinityWrite,
  type CachedBlock,
  commit,
  getBlock,
  getOptional,
  guardedDelete,
  knownBlocks,
  listBlocks,
  Plan,
  type PlannedBlock,
  planned,
  sequenceStart,
} from "./block-rw.js";
import { type BlockCache, withExtraRanges } from "./block-cache.js";
import { fnv1a64, freeBlockWalk } from "./block-walk.js";
import {
  type Cidr,
  cidrContainsCidr,
  cidrName,
  cidrSize,
  formatCidr,
  formatIp,
  type IpFamily,
  parseCidr,
} from "./cidr.js";
import type { AssignedAddress, AutoAssignArgs, AutoAssignResult } from "./client-types.js";
import {
  type ConfigSnapshot,
  cachedConfig,
  eligiblePools,
  isReservedFn,
  loadConfig,
  requireValidPools,
} from "./config-cache.js";
import { type IpamContext, NODE_SECONDARY_MAX, type NodeShared, withSignal } from "./context.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import type { NormalizedPool } from "./pools.js";
import { type BlockAffinityObject, IpamKind, IpPoolUse } from "./types.js";
import { checkCount, checkName, secondaryOf } from "./validate.js";

/** Allocates `req` from a planned block into `out`; returns how many addresses it took. */
function take(
  plan: Plan,
  name: string,
  pb: PlannedBlock,
  pool: NormalizedPool,
  req: AllocateRequest,
  out: AssignedAddress[],
): number {
  const r = allocateFromBlock(pb.spec, pb.cidr, req);
  if (r.ordinals.length === 0) return 0;
  pb.spec = r.spec;
  if (pb.cidr.version === 4) plan.lastBlock4 = name;
  else plan.lastBlock6 = name;
  plan.usePool(pool);
  if (req.handleId !== null) plan.addHandleDelta(req.handleId, pb.spec.cidr, r.ordinals.length);
  for (const o of r.ordinals) {
    out.push({
      ip: formatIp(pb.cidr.version, ordinalAddress(pb.cidr, o)),
      family: pb.cidr.version,
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
  if (!hasAvailable(current?.spec ?? entry.obj.spec, entry.cidr, req)) return 0;
  return take(plan, name, current ?? planned(plan, name, entry), pool, req, out);
}

/** The pool of a block: the first of `pools` containing it. */
function poolOfBlock(pools: readonly NormalizedPool[], c: Cidr): NormalizedPool | undefined {
  for (let i = 0; i < pools.length; i++) if (cidrContainsCidr(pools[i]!.cidr, c)) return pools[i];
  return undefined;
}

/**
 * Allocates from this host's blocks with room in `all` (step 1 of {@link allocateFamily}). With
 * `avoidContended`, skips blocks this operation has already lost two races on: another client of
 * this host is hammering them, and claiming a block of our own (step 2) beats queueing behind it.
 * They are used again (step 2b) before anything else is tried. A function of its own, not a closure,
 * as it runs on every allocation.
 */
function fillAffineBlocks(
  ctx: IpamContext,
  plan: Plan,
  all: BlockCache,
  affinity: string,
  family: IpFamily,
  pools: readonly NormalizedPool[],
  req: AllocateRequest,
  out: AssignedAddress[],
  avoidContended: boolean,
): void {
  // Only this host's blocks with a free ordinal (the cache's index), not every block of every host.
  // Gathered into module-level scratch lists (this runs on every allocation and never re-enters), not
  // a tuple per block; they only grow, so a call allocates nothing.
  const names = scratchNames;
  const entries = scratchEntries;
  const blockPools = scratchPools;
  let n = 0;
  const room = all.roomNames(affinity, family);
  if (room !== undefined) {
    for (const name of room) {
      if (avoidContended && (ctx.contended.get(name) ?? 0) >= 2) continue;
      const entry = all.get(name)!;
      const pool = poolOfBlock(pools, entry.cidr);
      if (pool) {
        names[n] = name;
        entries[n] = entry;
        blockPools[n] = pool;
        n++;
      }
    }
  }
  // Several clients of one host (several processes, say) would all pick the same first block and
  // serialise on its CAS. Each client sticks to the block it last used and otherwise starts at a
  // random affine block, so they drift apart; the order does not change what "fill first" means.
  const sticky = ctx.preferredBlock.get(family);
  const start = n === 0 ? 0 : Math.floor(ctx.random() * n);
  // Rotated by `start`, with the sticky block (when a candidate) first: the same order as rotating
  // the array and moving the sticky one to the front, without building the rotated copies.
  let stickyAt = -1;
  for (let i = 0; i < n; i++) if (names[i] === sticky) stickyAt = i;
  for (let j = -1; j < n; j++) {
    const i = j < 0 ? stickyAt : (start + j) % n;
    if (i < 0 || (j >= 0 && i === stickyAt)) continue;
    if (req.num === 0) break;
    req.num -= takeExisting(plan, names[i]!, entries[i]!, blockPools[i]!, req, out);
  }
  // Nothing is kept alive by the scratch lists: not the cache entries, nor the pools (and block
  // names) of a config snapshot that may since have been replaced.
  for (let i = 0; i < n; i++) {
    names[i] = undefined;
    entries[i] = undefined;
    blockPools[i] = undefined;
  }
}

/** Scratch lists of {@link fillAffineBlocks}. */
const scratchNames: (string | undefined)[] = [];
const scratchEntries: (CachedBlock | undefined)[] = [];
const scratchPools: (NormalizedPool | undefined)[] = [];

/** What the allocations of `node` share (see {@link IpamContext.nodeSecondary}). */
function nodeShared(ctx: IpamContext, node: string): NodeShared {
  let s = ctx.nodeSecondary.get(node);
  if (s === undefined) {
    // `secondaryOf` without attrs is `{ node }`: built here so the cached value is never null.
    s = { affinity: hostAffinity(node), secondary: freezeShared({ node }) };
    if (ctx.nodeSecondary.size >= NODE_SECONDARY_MAX) ctx.nodeSecondary.clear();
    ctx.nodeSecondary.set(node, s);
  }
  return s;
}

/**
 * Blocks of `family` affine to this host: stored (the larger of `known` and `view`'s) plus planned.
 * Functions of their own, not closures in {@link allocateFamily}: that runs on every allocation, and
 * a dev build (tsx's keepNames) names each closure it creates with a `defineProperty`.
 */
function ownBlocks(plan: Plan, affinity: string, family: IpFamily, view: BlockCache, known: number): number {
  let n = Math.max(view.ownedCount(affinity, family), known);
  for (const b of plan.blocks.values())
    if (!b.orig && b.spec.affinity === affinity && b.cidr.version === family) n++;
  return n;
}

/** Claims new blocks for the host from `view`'s free space (step 2 of {@link allocateFamily}). */
async function claimBlocks(
  ctx: IpamContext,
  plan: Plan,
  cfg: ConfigSnapshot,
  pools: readonly NormalizedPool[],
  family: IpFamily,
  affinity: string,
  args: AutoAssignArgs,
  req: AllocateRequest,
  out: AssignedAddress[],
  view: BlockCache,
  knownOwn: number,
): Promise<void> {
  const signal = args.signal;
  let affineCount = ownBlocks(plan, affinity, family, view, knownOwn);
  const max = cfg.config.maxBlocksPerHost;
  for (const pool of pools) {
    if (req.num === 0) break;
    // The view's occupied ranges are kept up to date as blocks are cached (not rebuilt per claim);
    // blocks this plan creates are not cached yet, so they are merged in.
    const planned: Cidr[] = [];
    for (const [name, b] of plan.blocks) if (!view.has(name)) planned.push(b.cidr);
    const walk = freeBlockWalk(
      pool.cidr,
      pool.blockSize,
      fnv1a64(`${args.node}|${pool.cidrText}`),
      withExtraRanges(
        view.occupied(pool.cidr, pool.blockSize, cfg.reservations),
        pool.cidr,
        pool.blockSize,
        planned,
      ),
    );
    while (req.num > 0 && (max === 0 || affineCount < max)) {
      const next = walk.next();
      if (next.done) break;
      const cidr = next.value;
      const name = cidrName(cidr);
      const pb: PlannedBlock = {
        cidr,
        orig: undefined,
        spec: newBlock(cidr, affinity, req.now, formatCidr(cidr), sequenceStart(ctx, req.now)),
        remove: false,
      };
      if (!hasAvailable(pb.spec, cidr, req)) continue;
      plan.blocks.set(name, pb);
      plan.ops.push(await affinityWrite(ctx, args.node, cidr, signal));
      affineCount++;
      req.num -= take(plan, name, pb, pool, req, out);
    }
  }
}

/**
 * Allocates `num` addresses of one family into `plan` (see the module comment for the order). Step 1
 * on the cached blocks runs at once: when this host's blocks have room (most allocations) the
 * addresses come back without a promise.
 */
function allocateFamily(
  ctx: IpamContext,
  plan: Plan,
  cfg: ConfigSnapshot,
  pools: readonly NormalizedPool[],
  family: IpFamily,
  num: number,
  args: AutoAssignArgs,
  attempt: number,
): AssignedAddress[] | Promise<AssignedAddress[]> {
  const out: AssignedAddress[] = [];
  const shared = nodeShared(ctx, args.node);
  const affinity = shared.affinity;
  const req: AllocateRequest = {
    num,
    handleId: args.handleId,
    // Without `attrs`, the node's shared, frozen `{ node }`. Read-only: block updates copy attribute
    // entries by reference and never change them.
    secondary:
      args.attrs !== undefined
        ? secondaryOf(args.attrs, args.node)
        : (shared.secondary as Record<string, string>),
    now: ctx.now(),
    isReserved: isReservedFn(cfg),
    cooldownMs: ctx.cooldownMs,
  };
  // 1. This host's blocks, as cached: the common case needs no read at all. A client that has not
  // listed every block yet (a fresh one) goes straight to 1b, which reads only this host's.
  if (ctx.blocksListed && attempt === 1) {
    fillAffineBlocks(ctx, plan, ctx.blocks, affinity, family, pools, req, out, true);
    if (req.num === 0) return out;
    return allocateFamilyRead(ctx, plan, cfg, pools, family, args, attempt, affinity, req, out, true);
  }
  return allocateFamilyRead(ctx, plan, cfg, pools, family, args, attempt, affinity, req, out, false);
}

/** {@link allocateFamily} from step 1 on (`step1Done`: from 1b on), reading what it needs. */
async function allocateFamilyRead(
  ctx: IpamContext,
  plan: Plan,
  cfg: ConfigSnapshot,
  pools: readonly NormalizedPool[],
  family: IpFamily,
  args: AutoAssignArgs,
  attempt: number,
  affinity: string,
  req: AllocateRequest,
  out: AssignedAddress[],
  step1Done: boolean,
): Promise<AssignedAddress[]> {
  const signal = args.signal;
  const num = req.num + out.length;
  const stale = ctx.staleBlock === undefined ? undefined : ctx.blocks.get(ctx.staleBlock);
  if (step1Done) {
    // Step 1 ran on the cached blocks (see allocateFamily).
  } else if (ctx.blocksListed || (attempt > 1 && stale === undefined)) {
    fillAffineBlocks(
      ctx,
      plan,
      await knownBlocks(ctx, signal, attempt),
      affinity,
      family,
      pools,
      req,
      out,
      true,
    );
    if (req.num === 0) return out;
  } else if (attempt > 1 && stale !== undefined) await getBlock(ctx, stale.cidr, signal, attempt);
  // 1b. This host's blocks as stored: its affinities name them (one small range read), so blocks
  // another client of this host claimed meanwhile are found without listing every block.
  const own = await ctx.ds.list<BlockAffinityObject>(IpamKind.Affinity, {
    namePrefix: `${args.node}-`,
    ...withSignal(signal),
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
    if (cidr.version !== family) continue;
    ownCount++;
    if (!ctx.blocks.has(cidrName(cidr))) await getBlock(ctx, cidr, signal, Math.max(2, attempt));
  }
  fillAffineBlocks(ctx, plan, ctx.blocks, affinity, family, pools, req, out, true);
  if (req.num === 0) return out;

  // 2. Claim new blocks. First on the cached view (a block created meanwhile by someone else makes
  // the create fail, and the retry lists everything), then, if that found no room, on a full listing.
  if (cfg.config.autoAllocateBlocks && ctx.blocksListed && ctx.listedPoolsKey === cfg.poolsKey) {
    await claimBlocks(ctx, plan, cfg, pools, family, affinity, args, req, out, ctx.blocks, ownCount);
    if (req.num === 0) return out;
  }
  const all = await listBlocks(ctx, signal);
  fillAffineBlocks(ctx, plan, all, affinity, family, pools, req, out, true);
  if (req.num === 0) return out;
  if (cfg.config.autoAllocateBlocks) {
    await claimBlocks(ctx, plan, cfg, pools, family, affinity, args, req, out, all, ownCount);
    if (req.num === 0) return out;
  }
  // 2b. No room of our own: back to the contended blocks of this host.
  fillAffineBlocks(ctx, plan, all, affinity, family, pools, req, out, false);
  if (req.num === 0) return out;

  // 3. Take over an empty block another host has held unused for a while, or an empty block no host
  // holds (kept only because its addresses are cooling down: the cool-down still applies to them).
  {
    const max = cfg.config.maxBlocksPerHost;
    let affineCount = ownBlocks(plan, affinity, family, all, ownCount);
    for (const [name, entry] of all) {
      if (req.num === 0 || (max !== 0 && affineCount >= max) || !cfg.config.autoAllocateBlocks) break;
      const spec = entry.obj.spec;
      const other = affinityNode(spec.affinity);
      const unaffine = spec.affinity === null;
      if (
        (other === undefined && !unaffine) ||
        other === args.node ||
        entry.cidr.version !== family ||
        plan.blocks.has(name)
      )
        continue;
      if (inUseCount(spec) !== 0) continue;
      if (!unaffine && (spec.emptySince == null || req.now - spec.emptySince < ctx.reclaimAfterMs)) continue;
      if (!hasAvailable(spec, entry.cidr, req)) continue;
      const pool = poolOfBlock(pools, entry.cidr);
      if (!pool) continue;
      const pb = planned(plan, name, entry);
      pb.spec = { ...pb.spec, affinity };
      const oldKey: ObjectKey | undefined =
        other === undefined ? undefined : { kind: IpamKind.Affinity, name: affinityName(other, entry.cidr) };
      const oldAff = oldKey && (await getOptional(ctx, oldKey, signal));
      if (oldKey && oldAff) plan.ops.push(guardedDelete(oldKey, oldAff));
      plan.ops.push(await affinityWrite(ctx, args.node, entry.cidr, signal));
      affineCount++;
      ctx.log?.debug({ block: spec.cidr, from: other, to: args.node }, "ipam reclaims empty block");
      req.num -= take(plan, name, pb, pool, req, out);
    }
    if (req.num === 0) return out;
  }

  // 4. Borrow from other hosts' blocks.
  if (!cfg.config.strictAffinity) {
    for (const [name, entry] of all) {
      if (req.num === 0) break;
      if (entry.obj.spec.affinity === affinity || entry.cidr.version !== family) continue;
      const pool = poolOfBlock(pools, entry.cidr);
      if (!pool) continue;
      req.num -= takeExisting(plan, name, entry, pool, req, out);
    }
    if (req.num === 0) return out;
  }

  throw exhausted(
    cfg,
    pools,
    plan,
    all,
    family,
    num,
    num - req.num,
    args.node,
    ownBlocks(plan, affinity, family, all, ownCount),
  );
}

/**
 * Allocates `num4` IPv4 and `num6` IPv6 addresses for a handle, all or nothing, in one transaction
 * (libcalico-go's `AutoAssign`): see {@link Ipam.autoAssign}.
 */
export function autoAssign(ctx: IpamContext, args: AutoAssignArgs): Promise<AutoAssignResult> {
  // Not an async function: it would wrap the operation's promise in one more, resolved a few turns
  // of the microtask queue later, on every allocation. Bad arguments still reject, never throw.
  let num4: number;
  let num6: number;
  try {
    checkName("handleId", args.handleId);
    checkName("node", args.node);
    num4 = checkCount("num4", args.num4);
    num6 = checkCount("num6", args.num6);
    if (args.use !== undefined && !Object.values(IpPoolUse).includes(args.use)) {
      throw new IpamError(IpamErrorCode.Invalid, `unknown use ${JSON.stringify(args.use)}`, {
        details: { use: args.use, known: Object.values(IpPoolUse) },
      });
    }
    if (num4 + num6 === 0) {
      throw new IpamError(IpamErrorCode.Invalid, "nothing to assign: num4 and num6 are 0", { details: {} });
    }
  } catch (e) {
    return Promise.reject(e);
  }
  return ctx.serialised(() =>
    ctx.retrying("autoAssign", args.signal, (attempt) => assignAttempt(ctx, args, num4, num6, attempt)),
  );
}

/**
 * One attempt of {@link autoAssign}. The cached config, the pools and this host's cached blocks are
 * used without an await (each is a promise and a turn of the microtask queue, on every allocation):
 * the common allocation awaits only its transaction.
 */
async function assignAttempt(
  ctx: IpamContext,
  args: AutoAssignArgs,
  num4: number,
  num6: number,
  attempt: number,
): Promise<AutoAssignResult> {
  // The cached config unless a conflict on a pool (or an unnamed one) dropped it: then a fresh read.
  const cfg = cachedConfig(ctx) ?? (await loadConfig(ctx, args.signal));
  requireValidPools(cfg);
  const plan = new Plan();
  const result: AutoAssignResult = { ipv4: [], ipv6: [] };
  for (let family: IpFamily = 4; ; family = 6) {
    const num = family === 4 ? num4 : num6;
    if (num !== 0) {
      let pools = eligiblePools(ctx, cfg, family, args, args.signal);
      if (pools instanceof Promise) pools = await pools;
      if (pools.length === 0) {
        throw new IpamError(IpamErrorCode.NoPools, `no usable IPv${family} pool for node ${args.node}`, {
          details: { family, node: args.node, pools: args.pools ?? [] },
        });
      }
      let got = allocateFamily(ctx, plan, cfg, pools, family, num, args, attempt);
      if (got instanceof Promise) got = await got;
      if (family === 4) result.ipv4 = got;
      else result.ipv6 = got;
    }
    if (family === 6) break;
  }
  await commit(ctx, plan, args.signal, attempt === 1);
  // The block of each family's last address.
  if (plan.lastBlock4 !== undefined) ctx.preferredBlock.set(4, plan.lastBlock4);
  if (plan.lastBlock6 !== undefined) ctx.preferredBlock.set(6, plan.lastBlock6);
  return result;
}

/**
 * Nothing more to be had: `host-block-limit` (the host is at `maxBlocksPerHost` while its pools have
 * room) or `pool-exhausted`, saying why with the numbers (addresses as stored plus this plan's takes).
 */
function exhausted(
  cfg: ConfigSnapshot,
  pools: readonly NormalizedPool[],
  plan: Plan,
  all: Map<string, CachedBlock>,
  family: IpFamily,
  num: number,
  available: number,
  node: string,
  hostBlocks: number,
): IpamError {
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
    `host ${node} has ${hostBlocks} of ${max === 0 ? "unlimited" : max} IPv${family} blocks; ` +
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
  return new IpamError(
    reason === "host-block-limit" ? IpamErrorCode.HostBlockLimit : IpamErrorCode.PoolExhausted,
    `cannot assign ${num} IPv${family} address(es): ${why} (${facts})`,
    {
      details: {
        reason,
        pools: pools.map((p) => p.name),
        poolFree,
        family,
        requested: num,
        available,
        node,
        hostBlocks,
        maxBlocksPerHost: max,
        strictAffinity: cfg.config.strictAffinity,
        autoAllocateBlocks: cfg.config.autoAllocateBlocks,
      },
    },
  );
}
