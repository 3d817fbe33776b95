/**
 * Reports and garbage collection (libcalico-go's `GetUtilization`, `calicoctl ipam check` and the
 * kube-controllers' IPAM GC): utilisation per pool and block, the consistency report, and the
 * release of leaked handles under compare-and-swap re-verification.
 */
import { inUseCount } from "./block.js";
import { listBlocks } from "./block-rw.js";
import { allocationInScope, buildCheckReport, type IpamCheckReport, type LeakedHandle } from "./check.js";
import { cidrContainsCidr, cidrSize } from "./cidr.js";
import type {
  BlockUtilisation,
  CheckOptions,
  GcOptions,
  GcResult,
  IpamScope,
  PoolUtilisation,
} from "./client-types.js";
import { loadConfig } from "./config-cache.js";
import { type IpamContext, withSignal } from "./context.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import { releaseHandleIn } from "./release.js";
import {
  type BlockAffinityObject,
  type IpamBlockObject,
  type IpamBlockSpec,
  type IpamHandleObject,
  IpamKind,
} from "./types.js";
import { checkScope } from "./validate.js";

/** Capacity, use and free space per pool and per block: see {@link Ipam.utilisation}. */
export async function utilisation(
  ctx: IpamContext,
  options: { signal?: AbortSignal } = {},
): Promise<PoolUtilisation[]> {
  const signal = options.signal;
  return ctx.serialised(async () => {
    ctx.blocksFresh = false;
    const cfg = await loadConfig(ctx, signal, true);
    const all = await listBlocks(ctx, signal);
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
        family: pool.cidr.version,
        disabled: pool.disabled,
        capacity,
        inUse,
        free: capacity - BigInt(inUse),
        blocks: bs,
      };
    });
  });
}

/** Reads pools, blocks, handles and affinities afresh and builds the (scoped) report on them. */
async function readReport(
  ctx: IpamContext,
  live: Set<string>,
  scope: IpamScope | undefined,
  signal: AbortSignal | undefined,
): Promise<IpamCheckReport> {
  ctx.blocksFresh = false;
  const cfg = await loadConfig(ctx, signal, true);
  const opts = withSignal(signal);
  const [blockList, handleList, affList] = await Promise.all([
    ctx.ds.list<IpamBlockObject>(IpamKind.Block, opts),
    ctx.ds.list<IpamHandleObject>(IpamKind.Handle, opts),
    ctx.ds.list<BlockAffinityObject>(IpamKind.Affinity, opts),
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

/** A consistency report given the live handles: see {@link Ipam.check}. */
export async function check(
  ctx: IpamContext,
  liveHandles: Iterable<string>,
  options: CheckOptions = {},
): Promise<IpamCheckReport> {
  const scope = checkScope(options.scope);
  const live = new Set(liveHandles);
  return ctx.serialised(() => readReport(ctx, live, scope, options.signal));
}

/** Releases the scope's leaked handles, each re-verified under CAS: see {@link Ipam.gc}. */
export async function gc(
  ctx: IpamContext,
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
  return ctx.serialised(async () => {
    const report = await readReport(ctx, live, scope, signal);
    const result: GcResult = { released: [], deferred: [], removedHandles: [], report };
    const t = ctx.now();
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
      const ips = await ctx.retrying("gc", signal, async (attempt) => {
        ctx.handles.delete(handleId);
        return releaseHandleIn(ctx, handleId, leak.blocks, signal, attempt + 1, guard);
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
      const ips = await ctx.retrying("gc", signal, async (attempt) => {
        ctx.handles.delete(handleId);
        return releaseHandleIn(ctx, handleId, [], signal, attempt + 1, holdsNone);
      });
      if (ips !== undefined && ips.length === 0) result.removedHandles.push(handleId);
      else if (ips === undefined) result.deferred.push(handleId);
    }
    return result;
  });
}
