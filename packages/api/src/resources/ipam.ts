/**
 * IPAM resources: IPPool, IPAMConfig, IPReservation (Calico semantics).
 *
 * @packageDocumentation
 */
import { type Ctx, field, joinPath, object } from "../validation/context.js";
import { selector } from "../validation/fields.js";
import { cidrsOverlap, parseCidr, tryParseCidr } from "../net/ip.js";
import { cidr } from "../validation/net.js";
import { array, boolean, integer, noDuplicates, oneOf, opt, req } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ResourceOf } from "./meta.js";

/** Encapsulation modes of a pool (IP-in-IP and VXLAN). */
export const EncapsulationMode = {
  /** No encapsulation. */
  Never: "Never",
  /** Encapsulate all traffic between nodes. */
  Always: "Always",
  /** Encapsulate only traffic between nodes on different subnets. */
  CrossSubnet: "CrossSubnet",
} as const;
/** Union of {@link EncapsulationMode} values. */
export type EncapsulationMode = (typeof EncapsulationMode)[keyof typeof EncapsulationMode];

/** What addresses of a pool may be used for. */
export const IPPoolAllowedUse = {
  /** Addresses for workloads (pods). */
  Workload: "Workload",
  /** Addresses for tunnel devices (IP-in-IP, VXLAN). */
  Tunnel: "Tunnel",
  /** Addresses for load-balancer services. */
  LoadBalancer: "LoadBalancer",
} as const;
/** Union of {@link IPPoolAllowedUse} values. */
export type IPPoolAllowedUse = (typeof IPPoolAllowedUse)[keyof typeof IPPoolAllowedUse];

/** Whether IPAM hands out a pool's addresses automatically or only on explicit request. */
export const AssignmentMode = {
  /** IPAM picks from the pool on its own. */
  Automatic: "Automatic",
  /** Only requests naming the pool get its addresses. */
  Manual: "Manual",
} as const;
/** Union of {@link AssignmentMode} values. */
export type AssignmentMode = (typeof AssignmentMode)[keyof typeof AssignmentMode];

/** Allowed and default block sizes (prefix lengths) of one IP version. */
export interface BlockSizeRange {
  /** Smallest prefix length (largest block). */
  readonly min: number;
  /** Largest prefix length (smallest block). */
  readonly max: number;
  /** Default when `blockSize` is unset. */
  readonly default: number;
}

/** Block size bounds per IP version (prefix length of the per-node blocks carved from a pool). */
export const BLOCK_SIZE_RANGE: Readonly<Record<4 | 6, BlockSizeRange>> = {
  4: { min: 20, max: 32, default: 26 },
  6: { min: 116, max: 128, default: 122 },
};

/** Spec of an {@link IPPool}. */
export interface IPPoolSpec {
  /** The pool CIDR, strictly masked (canonical `network/len`). */
  cidr: string;
  /** Prefix length of the blocks affine to nodes. Default 26 (IPv4) / 122 (IPv6). */
  blockSize?: number;
  /** IP-in-IP encapsulation (IPv4 only). Default `Never`. */
  ipipMode?: EncapsulationMode;
  /** VXLAN encapsulation. Default `Never`. */
  vxlanMode?: EncapsulationMode;
  /** Masquerade traffic from the pool to destinations outside all pools. Default false. */
  natOutgoing?: boolean;
  /** IPAM allocates no new addresses from a disabled pool. Default false. */
  disabled?: boolean;
  /** Do not export the pool's routes over BGP. Default false. */
  disableBGPExport?: boolean;
  /** Nodes that may allocate from the pool. Default `all()`. */
  nodeSelector?: string;
  /** Namespaces whose workloads may allocate from the pool. Default: any. */
  namespaceSelector?: string;
  /** Default `["Workload", "Tunnel"]`. `LoadBalancer` cannot be combined with the others. */
  allowedUses?: IPPoolAllowedUse[];
  /** Default `Automatic`. */
  assignmentMode?: AssignmentMode;
}
/** A pool of addresses IPAM allocates from, carved into per-node blocks. Cluster-scoped. */
export type IPPool = ResourceOf<"IPPool", IPPoolSpec>;

/** Spec of an {@link IPAMConfig}. */
export interface IPAMConfigSpec {
  /** Never borrow addresses from another node's block. Default false. */
  strictAffinity?: boolean;
  /** Claim new blocks on demand. Default true. */
  autoAllocateBlocks?: boolean;
  /** Max blocks affine to one host; 0 = unlimited. Default 20. */
  maxBlocksPerHost?: number;
}
/** Cluster-wide IPAM settings. Cluster-scoped; the one instance is named `default`. */
export type IPAMConfig = ResourceOf<"IPAMConfig", IPAMConfigSpec>;

/** Spec of an {@link IPReservation}. */
export interface IPReservationSpec {
  /** CIDRs (or single addresses) IPAM must never hand out. Canonical `network/len`. */
  reservedCIDRs: string[];
}
/** Addresses inside pools that IPAM must not allocate. Cluster-scoped. */
export type IPReservation = ResourceOf<"IPReservation", IPReservationSpec>;

/** Name of the single IPAMConfig instance. */
export const IPAM_CONFIG_NAME = "default";
/** Default `maxBlocksPerHost` when unset. */
export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;

const V4_LINK_LOCAL = parseCidr("169.254.0.0/16");
const V6_LINK_LOCAL = parseCidr("fe80::/10");

function overlapsLinkLocal(c: string): boolean {
  const p = parseCidr(c);
  return cidrsOverlap(p, p.version === 4 ? V4_LINK_LOCAL : V6_LINK_LOCAL);
}

const encap = (v: unknown, p: string, c: Ctx) => oneOf(v, p, c, Object.values(EncapsulationMode));
const enabled = (m: EncapsulationMode | undefined): boolean => m === "Always" || m === "CrossSubnet";

/** Kind definition of {@link IPPool}. */
export const ipPoolDef: KindDef<"IPPool", IPPoolSpec> = {
  kind: "IPPool",
  plural: "ippools",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "cidr",
      "blockSize",
      "ipipMode",
      "vxlanMode",
      "natOutgoing",
      "disabled",
      "disableBGPExport",
      "nodeSelector",
      "namespaceSelector",
      "allowedUses",
      "assignmentMode",
    ]);
    if (o === undefined) return undefined;
    const out: Partial<IPPoolSpec> = {};
    const poolCidr = req(o, out, "cidr", path, ctx, (x, p, c) => cidr(x, p, c));
    opt(o, out, "ipipMode", path, ctx, encap);
    opt(o, out, "vxlanMode", path, ctx, encap);
    opt(o, out, "natOutgoing", path, ctx, boolean);
    opt(o, out, "disabled", path, ctx, boolean);
    opt(o, out, "disableBGPExport", path, ctx, boolean);
    opt(o, out, "nodeSelector", path, ctx, selector);
    opt(o, out, "namespaceSelector", path, ctx, selector);
    opt(o, out, "assignmentMode", path, ctx, (x, p, c) => oneOf(x, p, c, Object.values(AssignmentMode)));
    opt(o, out, "allowedUses", path, ctx, (x, p, c) => {
      const uses = array(x, p, c, (u, up, uc) => oneOf(u, up, uc, Object.values(IPPoolAllowedUse)));
      if (uses !== undefined) noDuplicates(uses, p, c);
      return uses;
    });
    if (poolCidr === undefined) return undefined;

    const parsed = parseCidr(poolCidr);
    const range = BLOCK_SIZE_RANGE[parsed.version];
    opt(o, out, "blockSize", path, ctx, (x, p, c) => integer(x, p, c, range.min, range.max));
    const blockSize = out.blockSize ?? range.default;
    if (!out.disabled && parsed.prefixLength > blockSize) {
      ctx.fail(
        joinPath(path, "cidr"),
        `pool /${parsed.prefixLength} is smaller than one block (/${blockSize})`,
      );
    }
    if (overlapsLinkLocal(poolCidr)) {
      ctx.fail(
        joinPath(path, "cidr"),
        `pool overlaps the IPv${parsed.version} link-local range ${parsed.version === 4 ? "169.254.0.0/16" : "fe80::/10"}`,
      );
    }
    if (parsed.version === 6 && enabled(out.ipipMode)) {
      ctx.fail(joinPath(path, "ipipMode"), "IP-in-IP is not supported on an IPv6 pool (use Never)");
    }
    if (enabled(out.ipipMode) && enabled(out.vxlanMode)) {
      ctx.fail(joinPath(path, "ipipMode"), "ipipMode and vxlanMode cannot both be enabled");
    }
    const uses = out.allowedUses ?? [];
    if (uses.includes("LoadBalancer")) {
      if (uses.length > 1)
        ctx.fail(joinPath(path, "allowedUses"), "LoadBalancer cannot be combined with other uses");
      if (enabled(out.ipipMode) || enabled(out.vxlanMode)) {
        ctx.fail(joinPath(path, "allowedUses"), "a LoadBalancer pool cannot enable ipipMode or vxlanMode");
      }
      if (out.disableBGPExport === true) {
        ctx.fail(joinPath(path, "disableBGPExport"), "a LoadBalancer pool cannot disable BGP export");
      }
      if (out.nodeSelector !== undefined && out.nodeSelector.replace(/[ \t]/g, "") !== "all()") {
        ctx.fail(joinPath(path, "nodeSelector"), "a LoadBalancer pool must have nodeSelector all()");
      }
    }
    return out as IPPoolSpec;
  },
  defaults(spec) {
    const version = tryParseCidr(spec.cidr)?.version ?? 4;
    return {
      ...spec,
      blockSize: spec.blockSize ?? BLOCK_SIZE_RANGE[version].default,
      ipipMode: spec.ipipMode ?? "Never",
      vxlanMode: spec.vxlanMode ?? "Never",
      natOutgoing: spec.natOutgoing ?? false,
      disabled: spec.disabled ?? false,
      disableBGPExport: spec.disableBGPExport ?? false,
      nodeSelector: spec.nodeSelector ?? "all()",
      allowedUses:
        spec.allowedUses !== undefined && spec.allowedUses.length > 0
          ? spec.allowedUses
          : ["Workload", "Tunnel"],
      assignmentMode: spec.assignmentMode ?? "Automatic",
    };
  },
};

/** Kind definition of {@link IPAMConfig}. */
export const ipamConfigDef: KindDef<"IPAMConfig", IPAMConfigSpec> = {
  kind: "IPAMConfig",
  plural: "ipamconfigs",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx, meta) {
    if (meta.name !== IPAM_CONFIG_NAME) {
      ctx.fail("metadata.name", `the IPAMConfig must be named "${IPAM_CONFIG_NAME}"`);
    }
    const o = object(v, path, ctx, ["strictAffinity", "autoAllocateBlocks", "maxBlocksPerHost"]);
    if (o === undefined) return undefined;
    const out: IPAMConfigSpec = {};
    opt(o, out, "strictAffinity", path, ctx, boolean);
    opt(o, out, "autoAllocateBlocks", path, ctx, boolean);
    opt(o, out, "maxBlocksPerHost", path, ctx, (x, p, c) => integer(x, p, c, 0, 1_000_000));
    return out;
  },
  defaults(spec) {
    return {
      strictAffinity: spec.strictAffinity ?? false,
      autoAllocateBlocks: spec.autoAllocateBlocks ?? true,
      maxBlocksPerHost: spec.maxBlocksPerHost ?? DEFAULT_MAX_BLOCKS_PER_HOST,
    };
  },
};

/** Kind definition of {@link IPReservation}. */
export const ipReservationDef: KindDef<"IPReservation", IPReservationSpec> = {
  kind: "IPReservation",
  plural: "ipreservations",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, ["reservedCIDRs"]);
    if (o === undefined) return undefined;
    const out: Partial<IPReservationSpec> = {};
    // Calico's `cidrs` rule: host bits are allowed and mean the enclosing network.
    const raw = field(o, "reservedCIDRs");
    if (raw === undefined) out.reservedCIDRs = [];
    else {
      const list = array(raw, joinPath(path, "reservedCIDRs"), ctx, (x, p, c) =>
        cidr(x, p, c, { hostBits: "mask" }),
      );
      if (list !== undefined) out.reservedCIDRs = list;
    }
    return out.reservedCIDRs === undefined ? undefined : (out as IPReservationSpec);
  },
  defaults(spec) {
    return { ...spec, reservedCIDRs: [...spec.reservedCIDRs] };
  },
};
