/**
 * The public vocabulary of the IPAM client: its options, arguments, results and the {@link Ipam}
 * interface that `createIpam` returns. Types only (plus the frozen configuration defaults), so every
 * module of the client can import them without importing each other.
 */
import type { Logger } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import type { ReleaseSkipReason } from "./block.js";
import type { IpamCheckReport } from "./check.js";
import type { IpFamily } from "./cidr.js";
import type { NodeSelectorMatcher } from "./pools.js";
import type { AllocationAttributes, IpPoolUse } from "./types.js";

/**
 * The IPAM's logger: `@margay/api`'s pino-shaped {@link Logger}.
 *
 * @deprecated Use `Logger` from `@margay/api`; this alias stays for compatibility.
 */
export type IpamLogger = Logger;

/** Options of {@link createIpam}. */
export interface IpamOptions {
  /** Where pools, config, reservations and the IPAM's own objects live. */
  datastore: Datastore;
  /** Evaluates a pool's `nodeSelector`. Default: the Calico selector evaluator of `@margay/api`. */
  nodeSelectorMatches?: NodeSelectorMatcher | undefined;
  /**
   * Labels of a node, for node selectors. Default: the labels of the datastore's `Node` object of that
   * name (none if it does not exist).
   */
  nodeLabels?:
    | ((node: string, options: { signal?: AbortSignal }) => Promise<Record<string, string>>)
    | undefined;
  /**
   * Attempts of one operation before `conflict-retries-exhausted`. Default 100 (Calico's datastore
   * retry bound): a slow read-modify-write can lose many races against a hot writer on the same block.
   */
  maxAttempts?: number | undefined;
  /** Base of the jittered exponential backoff between attempts, ms. Default 2. */
  backoffMs?: number | undefined;
  /** A released address is not handed out again for this long, ms. Default 0 (FIFO reuse only). */
  reuseCooldownMs?: number | undefined;
  /**
   * An empty block affine to another host may be taken over once it has been empty this long, ms.
   * Default 15 minutes; `Infinity` disables reclaiming.
   */
  reclaimEmptyBlockAfterMs?: number | undefined;
  /** How long pools, IPAM config and reservations are cached, ms. Default 2000. */
  configTtlMs?: number | undefined;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: (() => number) | undefined;
  /** Random source for backoff jitter and the low bits of a new block's sequence numbers. Default `Math.random`. */
  random?: (() => number) | undefined;
  /** Structured logger. Default: silent. */
  logger?: IpamLogger | undefined;
}

/** The effective IPAM configuration (Calico `IPAMConfiguration` with defaults applied). */
export interface EffectiveIpamConfig {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  /** 0 = unlimited. */
  maxBlocksPerHost: number;
}

/** Defaults of the IPAM configuration when no `IPAMConfig` named `default` exists. */
export const DEFAULT_IPAM_CONFIG: Readonly<EffectiveIpamConfig> = Object.freeze({
  strictAffinity: false,
  autoAllocateBlocks: true,
  maxBlocksPerHost: 20,
});

/** Arguments of {@link Ipam.autoAssign}. */
export interface AutoAssignArgs {
  /** Handle the addresses are recorded under, e.g. `<network>.<containerID>`. */
  handleId: string;
  /** Node the workload runs on: decides affinity and node selectors. */
  node: string;
  /** Number of IPv4 addresses. Default 0. */
  num4?: number | undefined;
  /** Number of IPv6 addresses. Default 0. */
  num6?: number | undefined;
  /** Secondary attributes stored with the allocation. */
  attrs?: AllocationAttributes | undefined;
  /** Restrict to these pools (names or CIDRs); such a request may also use `Manual` pools. */
  pools?: readonly string[] | undefined;
  /** Purpose of the addresses. Default `Workload`. */
  use?: IpPoolUse | undefined;
  signal?: AbortSignal | undefined;
}

/** One address handed out. */
export interface AssignedAddress {
  /** The address, canonical text. */
  ip: string;
  family: IpFamily;
  /** Name of the pool it came from. */
  pool: string;
  /** CIDR of the block it came from. */
  block: string;
  /** Sequence number of the allocation; pass it to `releaseIPs` to make the release exact. */
  sequenceNumber: number;
}

/** Result of {@link Ipam.autoAssign}. */
export interface AutoAssignResult {
  ipv4: AssignedAddress[];
  ipv6: AssignedAddress[];
}

/** One address to release, optionally guarded. */
export interface ReleaseRequest {
  ip: string;
  /** Release only if the address belongs to this handle. */
  handleId?: string | undefined;
  /** Release only if the allocation still has this sequence number. */
  sequenceNumber?: number | undefined;
}

/** Result of {@link Ipam.releaseIPs}. */
export interface ReleaseIpsResult {
  /** Addresses freed, with the handle each belonged to. */
  released: { ip: string; handleId: string | null }[];
  /** Addresses that were not allocated (nothing to do). */
  unallocated: string[];
  /** Addresses left alone because a guard did not match. */
  skipped: { ip: string; reason: Exclude<ReleaseSkipReason, "not-allocated"> }[];
}

/** Result of {@link Ipam.claimAffinity}. */
export interface ClaimAffinityResult {
  claimed: string[];
  failed: { cidr: string; reason: string }[];
}

/** Result of {@link Ipam.releaseHostAffinities}. */
export interface ReleaseAffinitiesResult {
  /** Blocks whose affinity was dropped (and deleted when empty). */
  released: string[];
  /** Of those, blocks that still hold addresses and stay as unaffine blocks. */
  nonEmpty: string[];
}

/** Utilisation of one block. */
export interface BlockUtilisation {
  cidr: string;
  affinity: string | null;
  capacity: number;
  inUse: number;
  free: number;
}

/** Utilisation of one pool. */
export interface PoolUtilisation {
  name: string;
  cidr: string;
  family: IpFamily;
  disabled: boolean;
  capacity: bigint;
  inUse: number;
  /** Addresses not allocated (including those in unclaimed space). */
  free: bigint;
  blocks: BlockUtilisation[];
}

/**
 * Which allocations {@link Ipam.check} and {@link Ipam.gc} consider. Both fields narrow; an empty
 * scope is the whole datastore.
 *
 * An allocation belongs to the node its attributes record (`node`, written by `autoAssign` and
 * `assignIP`); an allocation recording no node belongs to the node its block is affine to, and to no
 * node when the block is unaffine. So a node's scope holds the addresses of its own blocks, less those
 * other nodes borrowed from them, plus the addresses it borrowed from other nodes' or unaffine blocks.
 * This is Calico's reading of its `node` attribute.
 */
export interface IpamScope {
  /** Only allocations belonging to this node (see above). */
  node?: string | undefined;
  /** Only handles whose id starts with this text, e.g. `<network>.`. */
  handlePrefix?: string | undefined;
}

/** Options of {@link Ipam.check}. */
export interface CheckOptions {
  /** Default: everything. */
  scope?: IpamScope | undefined;
  signal?: AbortSignal | undefined;
}

/** Options of {@link Ipam.gc}. */
export interface GcOptions {
  /** Default: everything. */
  scope?: IpamScope | undefined;
  signal?: AbortSignal | undefined;
}

/** Result of {@link Ipam.gc}. */
export interface GcResult {
  /** Handles whose addresses were released. */
  released: { handleId: string; ips: string[] }[];
  /**
   * Leaked handles left alone this time: inside the grace period, or changed since the report (a new
   * allocation, an allocation outside the scope). Looked at again next time.
   */
  deferred: string[];
  /** Handle objects holding no address (in scope, not live) that were deleted. */
  removedHandles: string[];
  /** The report the decision was based on. */
  report: IpamCheckReport;
}

/** The IPAM client. Operations of one client are serialised; clients on many hosts run concurrently. */
export interface Ipam {
  /** Allocates `num4` IPv4 and `num6` IPv6 addresses for a handle, all or nothing. */
  autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult>;
  /**
   * Allocates one specific address. Idempotent per handle: when the address already belongs to
   * `handleId` it is returned as it is (no second allocation, even in a pool disabled since). Throws
   * `already-allocated` (held by another handle: `details.handleId`), `not-in-pool`, `pool-disabled`,
   * `invalid` (not an address), and `block-in-use` (under `strictAffinity`, a block not affine to
   * `node`).
   */
  assignIP(
    ip: string,
    args: {
      handleId: string;
      attrs?: AllocationAttributes | undefined;
      node?: string | undefined;
      signal?: AbortSignal | undefined;
    },
  ): Promise<AssignedAddress>;
  /** Releases addresses (idempotent: addresses not allocated are reported, not errors). */
  releaseIPs(
    ips: readonly (string | ReleaseRequest)[],
    options?: { signal?: AbortSignal },
  ): Promise<ReleaseIpsResult>;
  /** Releases every address of a handle and the handle; idempotent. Returns the addresses freed. */
  releaseByHandle(handleId: string, options?: { signal?: AbortSignal }): Promise<string[]>;
  /** Addresses held by a handle. */
  ipsByHandle(handleId: string, options?: { signal?: AbortSignal }): Promise<string[]>;
  /** Claims the block(s) covering `cidr` for `node`. */
  claimAffinity(cidr: string, node: string, options?: { signal?: AbortSignal }): Promise<ClaimAffinityResult>;
  /** Drops every block affinity of a node (a node going away); empty blocks are deleted. */
  releaseHostAffinities(
    node: string,
    options?: { requireEmpty?: boolean; signal?: AbortSignal },
  ): Promise<ReleaseAffinitiesResult>;
  /** Capacity, use and free space per pool and per block. */
  utilisation(options?: { signal?: AbortSignal }): Promise<PoolUtilisation[]>;
  /**
   * A consistency report given the set of handles that are legitimately in use. `scope` narrows the
   * allocations counted and reported as leaks (see {@link IpamScope}); the handle lists are narrowed
   * by `scope.handlePrefix`; the structural findings (blocks, affinities, pools) stay cluster-wide.
   */
  check(liveHandles: Iterable<string>, options?: CheckOptions): Promise<IpamCheckReport>;
  /**
   * Releases leaked handles of the scope (not live, and allocated more than `gracePeriodMs` ago),
   * each handle all or nothing, re-verified under compare-and-swap on the blocks as they are when
   * released: a handle with any allocation younger than the grace period, or outside the scope, is
   * deferred, never freed. Also deletes handle objects holding no address (in `handlePrefix`, not live).
   */
  gc(liveHandles: Iterable<string>, gracePeriodMs: number, options?: GcOptions): Promise<GcResult>;
  /** Drops cached state; the next operation re-reads the datastore. */
  invalidate(): void;
  /** Stops accepting calls. Does not close the datastore. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
