/**
 * The consistency report behind `check` and `gc`: pure, over one listing of blocks, handles and
 * affinities.
 */
import { affinityNode, handleCounts, ordinalAddress, validateBlock } from "./block.js";
import { type Cidr, cidrContainsCidr, cidrLast, cidrsOverlap, formatIp, parseCidr } from "./cidr.js";
import type { NormalizedPool } from "./pools.js";
import type {
  BlockAffinityObject,
  BlockAttribute,
  IpamBlockObject,
  IpamBlockSpec,
  IpamHandleObject,
} from "./types.js";

/** Addresses held by a handle the caller does not know as live. */
export interface LeakedHandle {
  /** The handle (null for allocations recorded without one; those are never garbage-collected). */
  handleId: string | null;
  ips: string[];
  /** CIDRs of the blocks holding them. */
  blocks: string[];
  /** Time of the most recent of these allocations (ms), when recorded. */
  newestAllocation?: number;
}

/** The result of `check`. */
export interface IpamCheckReport {
  /** True when every list below is empty. */
  ok: boolean;
  /** Number of blocks and allocated addresses seen. */
  blocks: number;
  allocated: number;
  /** Allocated addresses whose handle is not live. */
  leaks: LeakedHandle[];
  /** Handle objects holding no address in any block. */
  handlesWithoutIps: string[];
  /** Handles referenced by block allocations with no handle object. */
  missingHandles: string[];
  /** Handle objects whose per-block counts disagree with the blocks. */
  handleMismatches: { handleId: string; block: string; recorded: number; actual: number }[];
  /** Blocks that fail structural validation. */
  malformedBlocks: { block: string; problems: string[] }[];
  /** Stored pools that fail validation (allocation refuses to run while there are any). */
  invalidPools: { pool: string; error: string }[];
  /** Blocks not inside any pool (blocks of an invalid pool included). */
  orphanBlocks: string[];
  /** Addresses allocated in two overlapping blocks at once. */
  duplicateAddresses: string[];
  /** Affinities without a matching block, or blocks claiming an affinity nobody recorded. */
  danglingAffinities: { node: string; cidr: string; reason: string }[];
}

/** Inputs of {@link buildCheckReport}. */
export interface CheckInput {
  blocks: readonly IpamBlockObject[];
  handles: readonly IpamHandleObject[];
  affinities: readonly BlockAffinityObject[];
  pools: readonly NormalizedPool[];
  liveHandles: ReadonlySet<string>;
  /** Stored pools that failed validation (and are not in `pools`). Default none. */
  invalidPools?: readonly { pool: string; error: string }[] | undefined;
  /**
   * Narrows the allocations counted and reported as leaks to one node's and/or one handle prefix;
   * `handlePrefix` also narrows the handle lists. Structural findings stay cluster-wide.
   */
  scope?: { node?: string | undefined; handlePrefix?: string | undefined } | undefined;
}

/**
 * The node an allocation belongs to: the `node` its attributes record, else the node its block is
 * affine to (undefined for an unaffine block), as Calico reads its `node` attribute.
 */
export function allocationNode(block: IpamBlockSpec, attr: BlockAttribute | undefined): string | undefined {
  const recorded = attr?.secondary?.node;
  return typeof recorded === "string" && recorded !== "" ? recorded : affinityNode(block.affinity);
}

/** Whether an allocation of `block` lies in `scope` (see {@link CheckInput.scope}). */
export function allocationInScope(
  block: IpamBlockSpec,
  attr: BlockAttribute | undefined,
  scope: CheckInput["scope"],
): boolean {
  if (!scope) return true;
  if (scope.handlePrefix !== undefined) {
    const h = attr?.handleId;
    if (typeof h !== "string" || !h.startsWith(scope.handlePrefix)) return false;
  }
  return scope.node === undefined || allocationNode(block, attr) === scope.node;
}

/** Builds the consistency report from one listing. */
export function buildCheckReport(input: CheckInput): IpamCheckReport {
  const report: IpamCheckReport = {
    ok: true,
    blocks: input.blocks.length,
    allocated: 0,
    leaks: [],
    handlesWithoutIps: [],
    missingHandles: [],
    handleMismatches: [],
    malformedBlocks: [],
    invalidPools: [...(input.invalidPools ?? [])],
    orphanBlocks: [],
    duplicateAddresses: [],
    danglingAffinities: [],
  };
  const leaks = new Map<string | null, LeakedHandle>();
  /** handleId → block CIDR → count seen in blocks. */
  const seen = new Map<string, Map<string, number>>();
  const parsed: { cidr: Cidr; obj: IpamBlockObject }[] = [];
  for (const obj of input.blocks) {
    let cidr: Cidr;
    try {
      cidr = parseCidr(obj.spec.cidr);
    } catch {
      report.malformedBlocks.push({ block: obj.metadata.name, problems: ["unparsable cidr"] });
      continue;
    }
    const problems = validateBlock(obj.spec, cidr);
    if (problems.length > 0) {
      report.malformedBlocks.push({ block: obj.spec.cidr, problems });
      continue;
    }
    parsed.push({ cidr, obj });
    if (!input.pools.some((p) => cidrContainsCidr(p.cidr, cidr))) report.orphanBlocks.push(obj.spec.cidr);
    for (const [h, n] of handleCounts(obj.spec)) {
      let m = seen.get(h);
      if (!m) seen.set(h, (m = new Map()));
      m.set(obj.spec.cidr, n);
    }
    obj.spec.allocations.forEach((idx, o) => {
      if (idx === null) return;
      const attr = obj.spec.attributes[idx]!;
      if (!allocationInScope(obj.spec, attr, input.scope)) return;
      report.allocated++;
      const h = attr.handleId;
      if (h !== null && input.liveHandles.has(h)) return;
      let leak = leaks.get(h);
      if (!leak) leaks.set(h, (leak = { handleId: h, ips: [], blocks: [] }));
      leak.ips.push(formatIp(cidr.version, ordinalAddress(cidr, o)));
      if (!leak.blocks.includes(obj.spec.cidr)) leak.blocks.push(obj.spec.cidr);
      if (attr.allocatedAt !== undefined)
        leak.newestAllocation = Math.max(leak.newestAllocation ?? 0, attr.allocatedAt);
    });
  }
  report.leaks = [...leaks.values()];

  const prefix = input.scope?.handlePrefix;
  const inPrefix = (h: string) => prefix === undefined || h.startsWith(prefix);
  const handleNames = new Set<string>();
  for (const h of input.handles) {
    const id = h.spec.handleId ?? h.metadata.name;
    handleNames.add(id);
    if (!inPrefix(id)) continue;
    const actual = seen.get(id);
    if (!actual || actual.size === 0) {
      report.handlesWithoutIps.push(id);
      continue;
    }
    const cidrs = new Set([...Object.keys(h.spec.block ?? {}), ...actual.keys()]);
    for (const c of cidrs) {
      const recorded = h.spec.block?.[c] ?? 0;
      const n = actual.get(c) ?? 0;
      if (recorded !== n) report.handleMismatches.push({ handleId: id, block: c, recorded, actual: n });
    }
  }
  for (const h of seen.keys()) if (!handleNames.has(h) && inPrefix(h)) report.missingHandles.push(h);

  // Overlapping blocks are the only way one address can be allocated twice.
  parsed.sort(
    (a, b) =>
      a.cidr.version - b.cidr.version ||
      (a.cidr.network < b.cidr.network ? -1 : a.cidr.network > b.cidr.network ? 1 : 0),
  );
  for (let i = 0; i < parsed.length; i++) {
    for (let j = i + 1; j < parsed.length; j++) {
      const a = parsed[i]!;
      const b = parsed[j]!;
      if (b.cidr.version !== a.cidr.version || b.cidr.network > cidrLast(a.cidr)) break;
      if (!cidrsOverlap(a.cidr, b.cidr)) continue;
      a.obj.spec.allocations.forEach((idx, o) => {
        if (idx === null) return;
        const v = ordinalAddress(a.cidr, o);
        if (v < b.cidr.network || v > cidrLast(b.cidr)) return;
        if (b.obj.spec.allocations[Number(v - b.cidr.network)] !== null)
          report.duplicateAddresses.push(formatIp(a.cidr.version, v));
      });
    }
  }

  const byCidr = new Map(parsed.map((p) => [p.obj.spec.cidr, p.obj]));
  const affKeys = new Set<string>();
  for (const a of input.affinities) {
    affKeys.add(`${a.spec.node}|${a.spec.cidr}`);
    const block = byCidr.get(a.spec.cidr);
    if (!block)
      report.danglingAffinities.push({ node: a.spec.node, cidr: a.spec.cidr, reason: "no such block" });
    else if (affinityNode(block.spec.affinity) !== a.spec.node) {
      report.danglingAffinities.push({
        node: a.spec.node,
        cidr: a.spec.cidr,
        reason: "block is affine to another host",
      });
    }
  }
  for (const { obj } of parsed) {
    const node = affinityNode(obj.spec.affinity);
    if (node !== undefined && !affKeys.has(`${node}|${obj.spec.cidr}`)) {
      report.danglingAffinities.push({
        node,
        cidr: obj.spec.cidr,
        reason: "block affinity has no BlockAffinity",
      });
    }
  }
  report.ok =
    report.leaks.length === 0 &&
    report.handlesWithoutIps.length === 0 &&
    report.missingHandles.length === 0 &&
    report.handleMismatches.length === 0 &&
    report.malformedBlocks.length === 0 &&
    report.invalidPools.length === 0 &&
    report.orphanBlocks.length === 0 &&
    report.duplicateAddresses.length === 0 &&
    report.danglingAffinities.length === 0;
  return report;
}
