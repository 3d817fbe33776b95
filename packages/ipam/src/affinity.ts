/**
 * Host affinity (libcalico-go's `ClaimAffinity`, `ReleaseHostAffinities`, `releaseBlockAffinity`):
 * claiming blocks for a node and letting them go, block and affinity changed in one transaction.
 */
import { hostAffinity, inUseCount, newBlock } from "./block.js";
import {
  affinityName,
  affinityObject,
  affinityWrite,
  commit,
  coolingDown,
  coveringBlocks,
  getBlock,
  getOptional,
  guardedDelete,
  listBlocks,
  overlappingBlock,
  Plan,
  planned,
  sequenceStart,
} from "./block-rw.js";
import {
  type Cidr,
  cidrContainsCidr,
  cidrFromValue,
  cidrName,
  cidrSize,
  formatCidr,
  parseCidr,
} from "./cidr.js";
import type { ClaimAffinityResult, ReleaseAffinitiesResult } from "./client-types.js";
import { loadConfig, requireValidPools } from "./config-cache.js";
import { type IpamContext, withSignal } from "./context.js";
import { IpamError, IpamErrorCode, isIpamError } from "./errors.js";
import { AffinityState, type BlockAffinityObject, IpamKind } from "./types.js";
import { checkName } from "./validate.js";

/** Most blocks one `claimAffinity` may claim. */
const MAX_CLAIM_BLOCKS = 1024;

/**
 * Claims the block(s) covering `cidr` for `node` (libcalico-go's `ClaimAffinity`), each block in its
 * own transaction: see {@link Ipam.claimAffinity}.
 */
export async function claimAffinity(
  ctx: IpamContext,
  cidrText: string,
  node: string,
  options: { signal?: AbortSignal } = {},
): Promise<ClaimAffinityResult> {
  checkName("node", node);
  const target = parseCidr(cidrText);
  const signal = options.signal;
  return ctx.serialised(async () => {
    const cfg = await loadConfig(ctx, signal, true);
    requireValidPools(cfg);
    const pool = cfg.pools.find((p) => cidrContainsCidr(p.cidr, target));
    if (!pool)
      throw new IpamError(IpamErrorCode.NotInPool, "CIDR is not inside one IP pool", {
        details: { cidr: cidrText },
      });
    const out: ClaimAffinityResult = { claimed: [], failed: [] };
    const blockCidrs: Cidr[] = [];
    if (target.prefixLength >= pool.blockSize)
      blockCidrs.push(cidrFromValue(target.version, target.network, pool.blockSize));
    else {
      const n = 1n << BigInt(pool.blockSize - target.prefixLength);
      if (n > BigInt(MAX_CLAIM_BLOCKS)) {
        throw new IpamError(IpamErrorCode.Invalid, "CIDR spans too many blocks", {
          details: { cidr: cidrText, max: MAX_CLAIM_BLOCKS },
        });
      }
      const step = cidrSize({ version: target.version, prefixLength: pool.blockSize });
      for (let i = 0n; i < n; i++)
        blockCidrs.push(cidrFromValue(target.version, target.network + i * step, pool.blockSize));
    }
    for (const cidr of blockCidrs) {
      const text = formatCidr(cidr);
      try {
        await ctx.retrying("claimAffinity", signal, async (attempt) => {
          const name = cidrName(cidr);
          const entry = await getBlock(ctx, cidr, signal, attempt);
          const plan = new Plan();
          const affinity = hostAffinity(node);
          const overlap = entry ? undefined : overlappingBlock(await coveringBlocks(ctx, cfg, signal), cidr);
          if (overlap) {
            throw new IpamError(IpamErrorCode.BlockInUse, "block would overlap an existing block", {
              details: { block: text, existing: overlap.obj.spec.cidr },
            });
          } else if (!entry) {
            plan.blocks.set(name, {
              cidr,
              orig: undefined,
              spec: newBlock(cidr, affinity, ctx.now(), text, sequenceStart(ctx, ctx.now())),
              remove: false,
            });
            plan.ops.push(await affinityWrite(ctx, node, cidr, signal));
          } else if (entry.obj.spec.affinity === affinity) {
            const key = { kind: IpamKind.Affinity, name: affinityName(node, cidr) };
            const aff = await getOptional<BlockAffinityObject>(ctx, key, signal);
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
          await commit(ctx, plan, signal, false);
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

/**
 * Drops every block affinity of a node (libcalico-go's `ReleaseHostAffinities`): see
 * {@link Ipam.releaseHostAffinities}.
 */
export async function releaseHostAffinities(
  ctx: IpamContext,
  node: string,
  options: { requireEmpty?: boolean; signal?: AbortSignal } = {},
): Promise<ReleaseAffinitiesResult> {
  checkName("node", node);
  const signal = options.signal;
  return ctx.serialised(async () => {
    const affinity = hostAffinity(node);
    const affs = await ctx.ds.list<BlockAffinityObject>(IpamKind.Affinity, withSignal(signal));
    const all = await listBlocks(ctx, signal);
    const targets = new Set<string>();
    for (const a of affs.items) if (a.spec?.node === node) targets.add(a.spec.cidr);
    for (const e of all.values()) if (e.obj.spec.affinity === affinity) targets.add(e.obj.spec.cidr);
    const out: ReleaseAffinitiesResult = { released: [], nonEmpty: [] };
    for (const c of targets) {
      const cidr = parseCidr(c);
      const done = await ctx.retrying("releaseHostAffinities", signal, async (attempt) => {
        const plan = new Plan();
        const entry = await getBlock(ctx, cidr, signal, attempt);
        const key = { kind: IpamKind.Affinity, name: affinityName(node, cidr) };
        const aff = await getOptional(ctx, key, signal);
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
          if (nonEmpty || coolingDown(ctx, pb.spec, ctx.now())) pb.spec = { ...pb.spec, affinity: null };
          else pb.remove = true;
        }
        if (aff) {
          plan.ops.push(guardedDelete(key, aff));
        }
        await commit(ctx, plan, signal, false);
        return { nonEmpty };
      });
      if (!done) continue;
      out.released.push(c);
      if (done.nonEmpty) out.nonEmpty.push(c);
    }
    return out;
  });
}
