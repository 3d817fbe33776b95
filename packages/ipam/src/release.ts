/**
 * Release (libcalico-go's `ReleaseIPs`, `ReleaseByHandle`): addresses back to their blocks, handles
 * updated or deleted, empty unaffine blocks deleted, each transaction all or nothing.
 */
import {
  addressOrdinal,
  ordinalAddress,
  type ReleaseItem,
  releaseFromBlock,
  releaseHandleFromBlock,
} from "./block.js";
import {
  type CachedBlock,
  commit,
  getBlock,
  getHandle,
  guardedDelete,
  listBlocks,
  Plan,
  planned,
  rememberHandle,
  settle,
} from "./block-rw.js";
import { cidrContains, cidrName, enclosingCidr, formatIp, type IpAddr, parseCidr, parseIp } from "./cidr.js";
import type { ReleaseIpsResult, ReleaseRequest } from "./client-types.js";
import { type ConfigSnapshot, loadConfig, poolOf } from "./config-cache.js";
import type { IpamContext } from "./context.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import { type IpamBlockSpec, IpamKind } from "./types.js";
import { checkName } from "./validate.js";

/** Addresses per release transaction (see `releaseIPs`). */
const RELEASE_CHUNK = 32;

/** The block holding `addr`: the pool's grid first, then any stored block (a resized or deleted pool). */
async function blockForAddress(
  ctx: IpamContext,
  cfg: ConfigSnapshot,
  addr: IpAddr,
  signal: AbortSignal | undefined,
  attempt: number,
): Promise<[string, CachedBlock] | undefined> {
  const pool = poolOf(cfg, addr);
  if (pool) {
    const cidr = enclosingCidr(addr, pool.blockSize);
    const entry = await getBlock(ctx, cidr, signal, attempt);
    if (entry) return [cidrName(cidr), entry];
  }
  // The pool may be gone or resized: look through every block (a listing taken under the current
  // pools has every block of an old grid, see `coveringBlocks`).
  if (
    !ctx.blocksFresh &&
    (attempt > 1 || !ctx.blocksListed || pool === undefined || ctx.listedPoolsKey !== cfg.poolsKey)
  )
    await listBlocks(ctx, signal);
  for (const [name, e] of ctx.blocks) if (cidrContains(e.cidr, addr)) return [name, e];
  return undefined;
}

/** Releases addresses, idempotently, in transactions of {@link RELEASE_CHUNK}: see {@link Ipam.releaseIPs}. */
export async function releaseIPs(
  ctx: IpamContext,
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
  return ctx.serialised(async () => {
    const total: ReleaseIpsResult = { released: [], unallocated: [], skipped: [] };
    for (const chunk of chunks) {
      const r = await releaseChunk(ctx, chunk, signal);
      total.released.push(...r.released);
      total.unallocated.push(...r.unallocated);
      total.skipped.push(...r.skipped);
    }
    return total;
  });
}

function releaseChunk(
  ctx: IpamContext,
  parsed: readonly { req: ReleaseRequest; addr: IpAddr }[],
  signal: AbortSignal | undefined,
): Promise<ReleaseIpsResult> {
  return ctx.retrying("releaseIPs", signal, async (attempt) => {
    const cfg = await loadConfig(ctx, signal);
    const plan = new Plan();
    const result: ReleaseIpsResult = { released: [], unallocated: [], skipped: [] };
    const byBlock = new Map<string, { entry: CachedBlock; items: ReleaseItem[]; ips: string[] }>();
    for (const { req, addr } of parsed) {
      const found = await blockForAddress(ctx, cfg, addr, signal, attempt);
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
    const t = ctx.now();
    for (const [name, g] of byBlock) {
      const pb = planned(plan, name, g.entry);
      const r = releaseFromBlock(pb.spec, g.items, t, ctx.cooldownMs);
      pb.spec = r.spec;
      for (const rel of r.released) {
        result.released.push({
          ip: formatIp(pb.cidr.version, ordinalAddress(pb.cidr, rel.ordinal)),
          handleId: rel.handleId,
        });
        if (rel.handleId !== null) plan.addHandleDelta(rel.handleId, pb.spec.cidr, -1);
      }
      for (const s of r.skipped) {
        const ip = formatIp(pb.cidr.version, ordinalAddress(pb.cidr, s.ordinal));
        if (s.reason === "not-allocated") result.unallocated.push(ip);
        else result.skipped.push({ ip, reason: s.reason });
      }
      settle(ctx, pb, t);
    }
    await commit(ctx, plan, signal, false);
    return result;
  });
}

/**
 * Releases every address of `handleId` in the given blocks (and in the handle's own list), and the
 * handle, in one transaction. `guard` may veto the release after the fresh read (GC re-verification).
 */
export async function releaseHandleIn(
  ctx: IpamContext,
  handleId: string,
  extraBlocks: readonly string[],
  signal: AbortSignal | undefined,
  attempt: number,
  guard?: (spec: IpamBlockSpec) => boolean,
): Promise<string[] | undefined> {
  const handle = await getHandle(ctx, handleId, signal, false);
  const cidrs = new Set<string>(extraBlocks);
  for (const c of Object.keys(handle?.spec.block ?? {})) cidrs.add(c);
  const plan = new Plan();
  const ips: string[] = [];
  const t = ctx.now();
  // Read the blocks concurrently: the shorter the read-to-commit window, the fewer lost races.
  const parsed = [...cidrs].map((c) => parseCidr(c));
  const entries = await Promise.all(parsed.map((cidr) => getBlock(ctx, cidr, signal, attempt)));
  for (const [i, cidr] of parsed.entries()) {
    const entry = entries[i];
    if (!entry) continue;
    if (guard && !guard(entry.obj.spec)) return undefined;
    const pb = planned(plan, cidrName(cidr), entry);
    const r = releaseHandleFromBlock(pb.spec, handleId, t, ctx.cooldownMs);
    pb.spec = r.spec;
    for (const rel of r.released) ips.push(formatIp(cidr.version, ordinalAddress(cidr, rel.ordinal)));
    settle(ctx, pb, t);
  }
  const handleKey = { kind: IpamKind.Handle, name: handleId };
  if (handle) {
    plan.ops.push(guardedDelete(handleKey, handle));
  } else {
    // The blocks read were chosen because no handle object said otherwise: a handle created since
    // (the same id allocated again) may hold addresses elsewhere, and the release must not split it.
    plan.ops.push({ op: "check", key: handleKey, absent: true });
  }
  await commit(ctx, plan, signal, false);
  if (handle) rememberHandle(ctx, handleId, null);
  return ips;
}

/** Releases every address of a handle and the handle, in one transaction: see {@link Ipam.releaseByHandle}. */
export async function releaseByHandle(
  ctx: IpamContext,
  handleId: string,
  options: { signal?: AbortSignal } = {},
): Promise<string[]> {
  checkName("handleId", handleId);
  const signal = options.signal;
  return ctx.serialised(() =>
    ctx.retrying("releaseByHandle", signal, async (attempt) => {
      if (attempt > 1) ctx.handles.delete(handleId);
      return (await releaseHandleIn(ctx, handleId, [], signal, attempt)) ?? [];
    }),
  );
}

/** Addresses held by a handle, as its blocks record them: see {@link Ipam.ipsByHandle}. */
export async function ipsByHandle(
  ctx: IpamContext,
  handleId: string,
  options: { signal?: AbortSignal } = {},
): Promise<string[]> {
  checkName("handleId", handleId);
  const signal = options.signal;
  return ctx.serialised(async () => {
    ctx.handles.delete(handleId);
    const handle = await getHandle(ctx, handleId, signal, false);
    const out: string[] = [];
    for (const c of Object.keys(handle?.spec.block ?? {})) {
      const cidr = parseCidr(c);
      const entry = await getBlock(ctx, cidr, signal, 2);
      if (!entry) continue;
      entry.obj.spec.allocations.forEach((idx, o) => {
        if (idx !== null && entry.obj.spec.attributes[idx]?.handleId === handleId) {
          out.push(formatIp(cidr.version, ordinalAddress(cidr, o)));
        }
      });
    }
    return out;
  });
}
