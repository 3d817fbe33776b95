/**
 * Pool normalisation and selection: defaults as in Calico, overlap detection, which pools a node may
 * use for which purpose. Pure.
 */
import { type Cidr, cidrsOverlap, familyBits, formatCidr, parseCidr } from "./cidr.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import { AssignmentMode, type IpPoolSpec, IpPoolUse } from "./types.js";
import { selectorMatches } from "@margay/api";

/** Default block prefix lengths, as in Calico. */
export const DEFAULT_BLOCK_SIZE = { 4: 26, 6: 122 } as const;
/** Smallest block prefix allowed per family (Calico: /20 and /116). */
export const MIN_BLOCK_SIZE = { 4: 20, 6: 116 } as const;

/** A pool with defaults applied and its CIDR parsed. */
export interface NormalizedPool {
  name: string;
  cidr: Cidr;
  /** Canonical CIDR text. */
  cidrText: string;
  blockSize: number;
  nodeSelector: string;
  disabled: boolean;
  allowedUses: readonly IpPoolUse[];
  assignmentMode: AssignmentMode;
  /** Datastore revision the pool was read at (used as a transaction precondition). */
  resourceVersion?: string | undefined;
}

/** Applies Calico's defaults to a pool spec and validates it. Throws `invalid`. */
export function normalizePool(name: string, spec: IpPoolSpec, resourceVersion?: string): NormalizedPool {
  const cidr = parseCidr(spec.cidr);
  const blockSize = spec.blockSize ?? DEFAULT_BLOCK_SIZE[cidr.version];
  const bits = familyBits(cidr.version);
  if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE[cidr.version] || blockSize > bits) {
    throw new IpamError(IpamErrorCode.Invalid, "pool block size out of range", {
      details: { pool: name, blockSize, min: MIN_BLOCK_SIZE[cidr.version], max: bits },
    });
  }
  if (blockSize < cidr.prefixLength) {
    throw new IpamError(IpamErrorCode.Invalid, "pool smaller than its block size", {
      details: { pool: name, cidr: spec.cidr, blockSize },
    });
  }
  const uses = spec.allowedUses ?? [IpPoolUse.Workload, IpPoolUse.Tunnel];
  for (const u of uses) {
    if (!Object.values(IpPoolUse).includes(u)) {
      throw new IpamError(IpamErrorCode.Invalid, "unknown pool use", { details: { pool: name, use: u } });
    }
  }
  const mode = spec.assignmentMode ?? AssignmentMode.Automatic;
  if (!Object.values(AssignmentMode).includes(mode)) {
    throw new IpamError(IpamErrorCode.Invalid, "unknown assignment mode", { details: { pool: name, mode } });
  }
  return {
    name,
    cidr,
    cidrText: formatCidr(cidr),
    blockSize,
    nodeSelector: spec.nodeSelector?.trim() || "all()",
    disabled: spec.disabled === true,
    allowedUses: uses,
    assignmentMode: mode,
    resourceVersion,
  };
}

/** Pairs of overlapping pools (by name). */
export function findOverlaps(pools: readonly NormalizedPool[]): [string, string][] {
  const out: [string, string][] = [];
  const sorted = [...pools].sort(
    (a, b) => a.cidr.version - b.cidr.version || (a.cidr.network < b.cidr.network ? -1 : 1),
  );
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i]!;
      const b = sorted[j]!;
      if (
        b.cidr.version !== a.cidr.version ||
        b.cidr.network >
          a.cidr.network + (1n << BigInt(familyBits(a.cidr.version) - a.cidr.prefixLength)) - 1n
      )
        break;
      if (cidrsOverlap(a.cidr, b.cidr)) out.push([a.name, b.name]);
    }
  }
  return out;
}

/**
 * Validates a set of pools as a whole: each pool well-formed and no two overlapping. Throws
 * `invalid` or `overlapping-pools` (with `details.pools`). Call before writing a pool.
 */
export function validatePools(pools: readonly { name: string; spec: IpPoolSpec }[]): NormalizedPool[] {
  const normalized = pools.map((p) => normalizePool(p.name, p.spec));
  const overlaps = findOverlaps(normalized);
  if (overlaps.length > 0) {
    throw new IpamError(IpamErrorCode.OverlappingPools, "IP pools overlap", {
      details: { pools: overlaps.map(([a, b]) => `${a}/${b}`), pairs: overlaps },
    });
  }
  return normalized;
}

/** Evaluates a Calico node selector against a node's labels. */
export type NodeSelectorMatcher = (selector: string, labels: Readonly<Record<string, string>>) => boolean;

/** The default matcher: the full Calico selector language of `@margay/api`. */
export const defaultNodeSelectorMatches: NodeSelectorMatcher = (selector, labels) =>
  selectorMatches(selector, labels);
