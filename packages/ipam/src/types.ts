/**
 * Input resources (structurally Calico v3's `IPPool`, `IPAMConfiguration`, `IPReservation`) and the
 * stored IPAM kinds (`IPAMBlock`, `BlockAffinity`, `IPAMHandle`, as in Calico's CRDs).
 */

import { AssignmentMode, IPPoolAllowedUse } from "@margay/api";

// The pool vocabularies are the API's; IPAM re-exports them under its historical names.
/** What a pool may be used for (Calico `allowedUses`); the same values as `@margay/api`'s. */
export const IpPoolUse = IPPoolAllowedUse;
/** Union of {@link IpPoolUse} values. */
export type IpPoolUse = IPPoolAllowedUse;

/** Whether automatic assignment may use a pool, or only requests that name it (Calico `assignmentMode`). */
export { AssignmentMode };

/** The part of an `IPPool` spec the IPAM reads. */
export interface IpPoolSpec {
  /** The pool's prefix, e.g. `10.244.0.0/16` or `fd00:10:244::/64`. */
  cidr: string;
  /** Prefix length of the blocks carved from the pool. Default 26 (IPv4) / 122 (IPv6). */
  blockSize?: number;
  /** Calico selector choosing the nodes that may use the pool. Default `all()`. */
  nodeSelector?: string;
  /** A disabled pool hands out no new addresses; existing ones stay. Default false. */
  disabled?: boolean;
  /** Default `["Workload", "Tunnel"]`, as in Calico. */
  allowedUses?: IpPoolUse[];
  /** Default `Automatic`. */
  assignmentMode?: AssignmentMode;
}

/** An `IPPool` resource as read from the datastore. */
export interface IpPoolResource {
  apiVersion?: string;
  kind: string;
  metadata: { name: string; resourceVersion?: string; creationTimestamp?: string };
  spec: IpPoolSpec;
}

/** The part of the cluster's `IPAMConfig` (named `default`) the IPAM reads. */
export interface IpamConfigSpec {
  /** Never borrow addresses from blocks affine to other hosts. Default false. */
  strictAffinity?: boolean;
  /** Claim new blocks when affine blocks are full. Default true. */
  autoAllocateBlocks?: boolean;
  /** Upper bound on blocks affine to one host (0 = unlimited). Default 20. */
  maxBlocksPerHost?: number;
}

/** An `IPReservation` spec: addresses automatic assignment must never hand out. */
export interface IpReservationSpec {
  /** Addresses or prefixes, e.g. `10.0.0.1` or `fd00::/120`. */
  reservedCIDRs: string[];
}

/** Free-form facts about an allocation, stored with it (Calico's secondary attributes). */
export interface AllocationAttributes {
  /** Pod name, when the address belongs to a pod. */
  pod?: string;
  /** Pod namespace. */
  namespace?: string;
  /** Node the workload runs on. */
  node?: string;
  /** What the address is for, e.g. `pod`, `vxlanTunnelAddress`. */
  type?: string;
  /** Anything else. */
  [key: string]: string | undefined;
}

/** One attribute entry of a block, shared by the ordinals of one allocation. */
export interface BlockAttribute {
  /** The handle the ordinals belong to (null for allocations without one). */
  handleId: string | null;
  /** Secondary attributes (pod, namespace, node, type...). */
  secondary: Record<string, string> | null;
  /** When the allocation was made (ms since the epoch); the GC grace period counts from here. */
  allocatedAt?: number;
}

/** Spec of a stored `IPAMBlock`: one aligned prefix of a pool and who holds each address in it. */
export interface IpamBlockSpec {
  /** The block's prefix. */
  cidr: string;
  /** `host:<node>` when affine to a node, else null. */
  affinity: string | null;
  /** For each ordinal: index into `attributes`, or null when free. */
  allocations: (number | null)[];
  /** Free ordinals, oldest-freed first (FIFO). */
  unallocated: number[];
  /** Attribute entries referenced by `allocations`. */
  attributes: BlockAttribute[];
  /** Bumped on every allocation; lets a release prove it frees the allocation it means. */
  sequenceNumber: number;
  /** Ordinal → `sequenceNumber` at the time that ordinal was allocated. */
  sequenceNumberForAllocation: Record<string, number>;
  /** Set while a block is being torn down (Calico compatibility; never left set by this client). */
  deleted: boolean;
  /** When the block last became empty (ms since the epoch), or null while it holds addresses. */
  emptySince?: number | null;
  /** Ordinal → release time (ms), kept only while a reuse cool-down applies. */
  releasedAt?: Record<string, number>;
}

/** Affinity states, as in Calico. */
export const AffinityState = {
  Pending: "pending",
  Confirmed: "confirmed",
  PendingDeletion: "pendingDeletion",
} as const;
/** Union of {@link AffinityState} values. */
export type AffinityState = (typeof AffinityState)[keyof typeof AffinityState];

/** Spec of a stored `BlockAffinity`: a node's claim on a block. */
export interface BlockAffinitySpec {
  node: string;
  cidr: string;
  state: AffinityState;
  deleted: boolean;
}

/** Spec of a stored `IPAMHandle`: how many addresses a handle holds in which block. */
export interface IpamHandleSpec {
  handleId: string;
  /** Block CIDR → number of addresses of this handle in it. */
  block: Record<string, number>;
  deleted: boolean;
}

/** A stored IPAM object. */
export interface IpamObject<S> {
  apiVersion: string;
  kind: string;
  metadata: { name: string; resourceVersion?: string; uid?: string; creationTimestamp?: string };
  spec: S;
}

/** A stored `IPAMBlock`. */
export type IpamBlockObject = IpamObject<IpamBlockSpec>;
/** A stored `BlockAffinity`. */
export type BlockAffinityObject = IpamObject<BlockAffinitySpec>;
/** A stored `IPAMHandle`. */
export type IpamHandleObject = IpamObject<IpamHandleSpec>;

/** Kind names and API version of the objects the IPAM reads and writes. */
export const IpamKind = {
  apiVersion: "ipam.margay.io/v1",
  Block: "IPAMBlock",
  Affinity: "BlockAffinity",
  Handle: "IPAMHandle",
  Pool: "IPPool",
  Config: "IPAMConfig",
  Reservation: "IPReservation",
} as const;
