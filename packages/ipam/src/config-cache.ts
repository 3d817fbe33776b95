/**
 * The configuration side of the IPAM (libcalico-go's pool accessor, `pools.go` and
 * `pool_qualification.go`): pools, the `IPAMConfig` named `default` and reservations, read together
 * and cached for `configTtlMs`; which pools a request may use.
 */
import type { StoredObject } from "@margay/datastore";
import { type Cidr, cidrContains, cidrSize, type IpAddr, type IpFamily, parseCidr } from "./cidr.js";
import { type AutoAssignArgs, DEFAULT_IPAM_CONFIG, type EffectiveIpamConfig } from "./client-types.js";
import { dsCode, type IpamContext, withSignal } from "./context.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import { findOverlaps, type NormalizedPool, normalizePool } from "./pools.js";
import { type IpamConfigSpec, IpamKind, type IpPoolResource, type IpReservationSpec } from "./types.js";

/** Pools, IPAM config and reservations as read at one moment. */
export interface ConfigSnapshot {
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
  /**
   * Per family, `use` → the pools an `autoAssign` naming no pools may use before node selectors
   * (see {@link eligiblePools}): worked out once per snapshot, not per allocation.
   */
  automatic?: [Map<string, readonly NormalizedPool[]>, Map<string, readonly NormalizedPool[]>];
}

/** The cached snapshot while younger than `configTtlMs`, else undefined (no read, no await). */
export function cachedConfig(ctx: IpamContext): ConfigSnapshot | undefined {
  const cached = ctx.snapshot;
  return cached && ctx.now() - cached.loadedAt < ctx.configTtlMs ? cached : undefined;
}

/** The cached snapshot while younger than `configTtlMs` (unless `force`), else a fresh read. */
export async function loadConfig(
  ctx: IpamContext,
  signal: AbortSignal | undefined,
  force = false,
): Promise<ConfigSnapshot> {
  const cached = force ? undefined : cachedConfig(ctx);
  if (cached) return cached;
  const opts = withSignal(signal);
  const [poolList, reservationList, cfgObj] = await Promise.all([
    ctx.ds.list<IpPoolResource>(IpamKind.Pool, opts),
    ctx.ds.list<StoredObject & { spec?: IpReservationSpec }>(IpamKind.Reservation, opts),
    ctx.ds
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
      ctx.log?.warn({ pool: p.metadata.name, error: (e as Error).message }, "ipam ignores invalid pool");
    }
  }
  const reservations: Cidr[] = [];
  for (const r of reservationList.items) {
    for (const c of r.spec?.reservedCIDRs ?? []) {
      try {
        reservations.push(parseCidr(c, { mask: true }));
      } catch {
        ctx.log?.warn({ reservation: r.metadata.name, cidr: c }, "ipam ignores invalid reservation");
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
  const snapshot: ConfigSnapshot = {
    pools,
    invalidPools,
    overlaps: findOverlaps(pools),
    config,
    reservations,
    loadedAt: ctx.now(),
    poolsKey,
  };
  ctx.snapshot = snapshot;
  return snapshot;
}

/**
 * Refuses to allocate while a stored pool fails validation: its space is unknown, so it may overlap
 * a valid pool, and skipping it would hide the operator's mistake. Releases, `check` and `gc` still
 * work (the report lists such pools).
 */
export function requireValidPools(cfg: ConfigSnapshot): void {
  if (cfg.invalidPools.length === 0) return;
  const names = cfg.invalidPools.map((p) => p.name);
  throw new IpamError(
    IpamErrorCode.InvalidPool,
    `stored IP pool(s) fail validation: ${cfg.invalidPools.map((p) => `${p.name} (${p.error})`).join("; ")}`,
    { details: { pool: names[0], pools: names, problems: cfg.invalidPools } },
  );
}

/** The `overlapping-pools` error for allocations from `pools`. */
export function overlappingPoolsError(pools: string[], cfg: ConfigSnapshot): IpamError {
  return new IpamError(IpamErrorCode.OverlappingPools, "IP pools overlap: refusing to allocate from them", {
    details: { pools, pairs: cfg.overlaps },
  });
}

/** Whether an address value is reserved (undefined when nothing is). */
export function isReservedFn(cfg: ConfigSnapshot): ((v: bigint) => boolean) | undefined {
  if (cfg.reservations.length === 0) return undefined;
  const rs = cfg.reservations;
  return (v) => rs.some((r) => v >= r.network && v < r.network + cidrSize(r));
}

/** The (valid) pool holding `addr`, if any. */
export function poolOf(cfg: ConfigSnapshot, addr: IpAddr): NormalizedPool | undefined {
  return cfg.pools.find((p) => cidrContains(p.cidr, addr));
}

/**
 * The pools of `family` an `autoAssign` may use: the named ones (which may be `Manual`) or the
 * `Automatic` ones, enabled, allowing the use, selecting the node. Throws `overlapping-pools` when a
 * candidate overlaps another pool. Without node selectors to evaluate (the common case) the answer
 * is returned at once, not as a promise; do not change the list returned.
 */
export function eligiblePools(
  ctx: IpamContext,
  cfg: ConfigSnapshot,
  family: IpFamily,
  args: AutoAssignArgs,
  signal: AbortSignal | undefined,
): readonly NormalizedPool[] | Promise<readonly NormalizedPool[]> {
  const use = args.use ?? "Workload";
  const named = args.pools !== undefined && args.pools.length > 0;
  let candidates: readonly NormalizedPool[] | undefined;
  if (!named) {
    cfg.automatic ??= [new Map(), new Map()];
    const memo = cfg.automatic[family === 4 ? 0 : 1];
    candidates = memo.get(use);
    if (candidates === undefined) {
      candidates = unselectedPools(cfg, family, args, use);
      memo.set(use, candidates);
    }
  } else candidates = unselectedPools(cfg, family, args, use);
  for (let i = 0; i < candidates.length; i++)
    if (candidates[i]!.nodeSelector !== "all()") return selectedPools(ctx, candidates, args, signal);
  return candidates;
}

/** {@link eligiblePools} before node selectors; throws `overlapping-pools`. */
function unselectedPools(
  cfg: ConfigSnapshot,
  family: IpFamily,
  args: AutoAssignArgs,
  use: string,
): NormalizedPool[] {
  let candidates = cfg.pools.filter((p) => p.cidr.version === family);
  if (args.pools && args.pools.length > 0) {
    const wanted = args.pools;
    candidates = candidates.filter((p) => wanted.includes(p.name) || wanted.includes(p.cidrText));
  } else {
    candidates = candidates.filter((p) => p.assignmentMode === "Automatic");
  }
  candidates = candidates.filter((p) => !p.disabled && (p.allowedUses as readonly string[]).includes(use));
  const overlapping = new Set(cfg.overlaps.flat());
  const bad = candidates.filter((p) => overlapping.has(p.name));
  if (bad.length > 0) {
    throw overlappingPoolsError(
      bad.map((p) => p.name),
      cfg,
    );
  }
  return candidates;
}

/** `candidates` whose node selector selects the node of `args` (its labels read once). */
async function selectedPools(
  ctx: IpamContext,
  candidates: readonly NormalizedPool[],
  args: AutoAssignArgs,
  signal: AbortSignal | undefined,
): Promise<readonly NormalizedPool[]> {
  const labels = await ctx.nodeLabels(args.node, withSignal(signal));
  return candidates.filter((p) => {
    try {
      return ctx.matches(p.nodeSelector, labels);
    } catch (e) {
      // An unparsable selector selects nothing (the API rejects them on write anyway).
      ctx.log?.warn(
        { pool: p.name, selector: p.nodeSelector, error: (e as Error).message },
        "ipam ignores pool",
      );
      return false;
    }
  });
}
