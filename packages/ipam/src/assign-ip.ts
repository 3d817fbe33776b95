/**
 * Specific assignment (libcalico-go's `AssignIP`): one address of the caller's choosing, idempotent
 * per handle, in one transaction with its block, affinity and handle.
 */
import { addressOrdinal, assignOrdinal, hostAffinity, newBlock } from "./block.js";
import {
  affinityWrite,
  commit,
  coveringBlocks,
  getBlock,
  listBlocks,
  overlappingBlock,
  Plan,
  type PlannedBlock,
  planned,
  sequenceStart,
} from "./block-rw.js";
import { cidrContains, cidrName, enclosingCidr, formatCidr, formatIp, parseIp } from "./cidr.js";
import type { AssignedAddress } from "./client-types.js";
import { loadConfig, overlappingPoolsError, poolOf, requireValidPools } from "./config-cache.js";
import { type IpamContext, withSignal } from "./context.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import type { AllocationAttributes } from "./types.js";
import { checkName, secondaryOf } from "./validate.js";

/**
 * Assigns one specific address (libcalico-go's `AssignIP`): see {@link Ipam.assignIP}. The first
 * assignment in a block that does not exist yet creates it, affine to `node` when its pool selects it.
 */
export async function assignIP(
  ctx: IpamContext,
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
  return ctx.serialised(() =>
    ctx.retrying("assignIP", signal, async (attempt) => {
      const cfg = await loadConfig(ctx, signal, attempt > 1);
      requireValidPools(cfg);
      const pool = poolOf(cfg, addr);
      if (!pool)
        throw new IpamError(IpamErrorCode.NotInPool, `address ${ip} is not in any IP pool`, {
          details: { ip },
        });
      if (cfg.overlaps.some(([a, b]) => a === pool.name || b === pool.name)) {
        throw overlappingPoolsError([pool.name], cfg);
      }
      const cidr = enclosingCidr(addr, pool.blockSize);
      const name = cidrName(cidr);
      const plan = new Plan();
      let entry = await getBlock(ctx, cidr, signal, attempt);
      let entryName = name;
      if (!entry) {
        // A block of another grid may hold the address (the pool's block size changed). After a
        // conflict the cached copy of such a block is what went stale: list afresh.
        const view = attempt > 1 ? await listBlocks(ctx, signal) : await coveringBlocks(ctx, cfg, signal);
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
      const t = ctx.now();
      if (entry) {
        pb = planned(plan, entryName, entry);
      } else {
        // Like Calico, the first specific assignment in a block claims it for the node asking.
        let affinity: string | null = null;
        if (args.node !== undefined) {
          const labels =
            pool.nodeSelector === "all()" ? {} : await ctx.nodeLabels(args.node, withSignal(signal));
          if (ctx.matches(pool.nodeSelector, labels)) affinity = hostAffinity(args.node);
        }
        pb = {
          cidr,
          orig: undefined,
          spec: newBlock(cidr, affinity, t, formatCidr(cidr), sequenceStart(ctx, t)),
          remove: false,
        };
        plan.blocks.set(name, pb);
        if (affinity !== null) plan.ops.push(await affinityWrite(ctx, args.node!, cidr, signal));
      }
      const ordinal = addressOrdinal(pb.cidr, addr);
      const heldIdx = pb.spec.allocations[ordinal];
      if (heldIdx !== null && heldIdx !== undefined) {
        const holder = pb.spec.attributes[heldIdx]?.handleId ?? null;
        // Asserting the block's revision makes the answer as fresh as a write would: a stale cached
        // copy conflicts, and the retry decides on the stored block.
        await commit(ctx, plan, signal, false);
        if (holder !== args.handleId) {
          throw new IpamError(
            IpamErrorCode.AlreadyAllocated,
            `address ${formatIp(addr.version, addr.value)} is in use by another handle`,
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
          ip: formatIp(addr.version, addr.value),
          family: addr.version,
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
      plan.usePool(pool);
      plan.addHandleDelta(args.handleId, pb.spec.cidr, 1);
      await commit(ctx, plan, signal, attempt === 1);
      return {
        ip: formatIp(addr.version, addr.value),
        family: addr.version,
        pool: pool.name,
        block: pb.spec.cidr,
        sequenceNumber: r.sequenceNumber,
      };
    }),
  );
}
