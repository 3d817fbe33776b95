/**
 * The input shapes the route calculator reads and the changes it applies. Each input is the minimal
 * subset of a stored resource: `@margay/api`'s `IPPool`, `Node` and `WorkloadEndpoint` specs, and the
 * IPAM block and block-affinity specs as `@margay/ipam` stores them (declared here structurally, so this
 * package does not import the IPAM; an `IpamBlockSpec` or `BlockAffinitySpec` is accepted as it is).
 *
 * @packageDocumentation
 */
import type { IPPoolSpec, NodeSpec, WorkloadEndpointSpec } from "@margay/api";

/** The fields of an `IPPool` spec the routes depend on. `disabled` pools are still routed (Calico). */
export type PoolInput = Pick<IPPoolSpec, "cidr" | "ipipMode" | "vxlanMode" | "natOutgoing">;

/**
 * The fields of a `Node` spec the routes depend on: the underlay addresses (`bgp.ipv4Address` /
 * `bgp.ipv6Address` with their prefix lengths, else the first `CalicoNodeIP` then `InternalIP` entry of
 * `addresses`) and the VXLAN tunnel endpoint.
 */
export type NodeInput = Pick<
  NodeSpec,
  | "bgp"
  | "addresses"
  | "ipv4VXLANTunnelAddr"
  | "vxlanTunnelMACAddr"
  | "ipv6VXLANTunnelAddr"
  | "vxlanTunnelMACAddrV6"
>;

/** One attribute entry of a block: who holds the ordinals that point at it (`secondary.node`). */
export interface BlockAttributeInput {
  /** Secondary attributes; `node` names the node the address was allocated to. */
  readonly secondary: Readonly<Record<string, string>> | null;
}

/**
 * The fields of a stored IPAM block (`@margay/ipam`'s `IpamBlockSpec`, Calico's `AllocationBlock`) the
 * routes depend on.
 */
export interface BlockInput {
  /** `host:<node>` when the block is affine to a node, else null. */
  readonly affinity: string | null;
  /** For each ordinal: index into `attributes`, or null when free. */
  readonly allocations: readonly (number | null)[];
  /** Attribute entries referenced by `allocations`. */
  readonly attributes: readonly BlockAttributeInput[];
}

/**
 * A stored block affinity (`@margay/ipam`'s `BlockAffinitySpec`). Only a `confirmed`, not deleted
 * affinity counts, and only while no block object exists for its CIDR (the block is the authority).
 */
export interface AffinityInput {
  /** The node claiming the block. */
  readonly node: string;
  /** The block's CIDR. */
  readonly cidr: string;
  /** `pending`, `confirmed` or `pendingDeletion`. */
  readonly state: string;
  /** Being deleted. */
  readonly deleted?: boolean | undefined;
}

/**
 * The fields of a `WorkloadEndpoint` spec the routes depend on. An endpoint whose `node` is set and is
 * not this calculator's node is ignored: only local endpoints get device routes.
 */
export type EndpointInput = Pick<WorkloadEndpointSpec, "node" | "ipNetworks" | "interfaceName">;

/**
 * One change of the calculator's inputs; `null` deletes the keyed input. Plain, JSON-safe objects, so a
 * syncer can produce them from any datastore.
 */
export type RoutingChange =
  | { readonly kind: "pool"; readonly name: string; readonly pool: PoolInput | null }
  | { readonly kind: "node"; readonly name: string; readonly node: NodeInput | null }
  | { readonly kind: "block"; readonly cidr: string; readonly block: BlockInput | null }
  | { readonly kind: "affinity"; readonly name: string; readonly affinity: AffinityInput | null }
  | { readonly kind: "endpoint"; readonly key: string; readonly endpoint: EndpointInput | null }
  | {
      readonly kind: "learned";
      /** Who announced the route (e.g. the BGP peer's address): routes of several sources form ECMP. */
      readonly source: string;
      /** The learned prefix. */
      readonly prefix: string;
      /** The route's IP next hops (BGP NEXT_HOP / MP_REACH next hops); `null` withdraws it. */
      readonly nextHops: readonly string[] | null;
    };

/** The kinds of {@link RoutingChange}. */
export type RoutingChangeKind = RoutingChange["kind"];

/** Why a destination the inputs name has no route, or a next hop was left out. */
export interface UnresolvedRoute {
  /** Destination CIDR. */
  readonly dst: string;
  /** The node the next hop would lead to, when known. */
  readonly node?: string | undefined;
  /** The learned next hop, for a learned route. */
  readonly nextHop?: string | undefined;
  /** What is missing, e.g. `no-node-address`, `no-vtep` (the remote node's), `no-local-vtep` (ours). */
  readonly reason: UnresolvedReason;
}

/** Reasons in {@link UnresolvedRoute}. */
export type UnresolvedReason =
  | "unknown-node"
  | "no-node-address"
  | "no-vtep"
  | "no-local-vtep"
  | "ipv6-vxlan-unsupported"
  | "learned-next-hop-family"
  | "learned-vxlan-without-node";

/** What the dataplane needs to masquerade: pools with `natOutgoing`, and every pool (the "leaving all pools" test). */
export interface NatOutgoing {
  /** CIDRs of pools with `natOutgoing: true`, sorted. */
  readonly masqueradePools: readonly string[];
  /** CIDRs of every pool, sorted: traffic to these is not masqueraded. */
  readonly allPools: readonly string[];
}
