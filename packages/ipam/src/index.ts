/**
 * `@margay/ipam`: Calico-style block-affinity IP address management for IPv4 and IPv6 over the
 * `Datastore` seam. The pure core (blocks, handles, the block walk, the check report) is exported
 * beside the client so other tools can reason about stored state without I/O.
 *
 * @packageDocumentation
 */
export { IpamError, IpamErrorCode, isIpamError } from "./errors.js";
export type { IpamErrorOptions } from "./errors.js";
export {
  canonicalCidr,
  cidrContains,
  cidrContainsCidr,
  cidrName,
  cidrSize,
  cidrsOverlap,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
} from "./cidr.js";
export type { Cidr, IpAddr, IpFamily } from "./cidr.js";
export { AffinityState, AssignmentMode, IpamKind, IpPoolUse } from "./types.js";
export type {
  AllocationAttributes,
  BlockAffinityObject,
  BlockAffinitySpec,
  BlockAttribute,
  IpamBlockObject,
  IpamBlockSpec,
  IpamConfigSpec,
  IpamHandleObject,
  IpamHandleSpec,
  IpamObject,
  IpPoolResource,
  IpPoolSpec,
  IpReservationSpec,
} from "./types.js";
export {
  addressOrdinal,
  affinityNode,
  allocateFromBlock,
  assignOrdinal,
  availableCount,
  blockCapacity,
  handleAdd,
  handleCounts,
  handleOf,
  handleRemove,
  hostAffinity,
  inUseCount,
  MAX_BLOCK_ADDRESSES,
  newBlock,
  ordinalAddress,
  releaseFromBlock,
  releaseHandleFromBlock,
  validateBlock,
} from "./block.js";
export type {
  AllocateRequest,
  AllocateResult,
  ReleaseItem,
  ReleaseResult,
  ReleaseSkipReason,
} from "./block.js";
export type { IndexRange } from "./block-walk.js";
export { blockAt, blockCount, fnv1a64, freeBlockWalk, occupiedRanges } from "./block-walk.js";
export {
  defaultNodeSelectorMatches,
  DEFAULT_BLOCK_SIZE,
  findOverlaps,
  MIN_BLOCK_SIZE,
  normalizePool,
  validatePools,
} from "./pools.js";
export type { NodeSelectorMatcher, NormalizedPool } from "./pools.js";
export { allocationInScope, allocationNode, buildCheckReport } from "./check.js";
export type { CheckInput, IpamCheckReport, LeakedHandle } from "./check.js";
export { affinityName } from "./block-rw.js";
export { DEFAULT_IPAM_CONFIG } from "./client-types.js";
export { createIpam } from "./ipam.js";
export type {
  AssignedAddress,
  AutoAssignArgs,
  AutoAssignResult,
  BlockUtilisation,
  ClaimAffinityResult,
  EffectiveIpamConfig,
  CheckOptions,
  GcOptions,
  GcResult,
  Ipam,
  IpamLogger,
  IpamOptions,
  IpamScope,
  PoolUtilisation,
  ReleaseAffinitiesResult,
  ReleaseIpsResult,
  ReleaseRequest,
} from "./client-types.js";
