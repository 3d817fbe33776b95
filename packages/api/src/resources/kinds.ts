/**
 * The registry of resource kinds: the {@link Resource} union, per-kind metadata and type guards.
 *
 * @packageDocumentation
 */
import { type AgentConfiguration, agentConfigurationDef } from "./agent-config.js";
import { type BGPConfiguration, type BGPPeer, bgpConfigurationDef, bgpPeerDef } from "./bgp.js";
import {
  type HostEndpoint,
  hostEndpointDef,
  type WorkloadEndpoint,
  workloadEndpointDef,
} from "./endpoints.js";
import {
  type IPAMConfig,
  type IPPool,
  type IPReservation,
  ipamConfigDef,
  ipPoolDef,
  ipReservationDef,
} from "./ipam.js";
import type { KindDef } from "./kind-def.js";
import { API_VERSION, type ResourceOf } from "./meta.js";
import {
  type GlobalNetworkSet,
  globalNetworkSetDef,
  type NetworkSet,
  networkSetDef,
} from "./network-sets.js";
import { type Node, nodeDef } from "./node.js";
import { type NodeStatus, nodeStatusDef } from "./node-status.js";
import {
  type GlobalNetworkPolicy,
  globalNetworkPolicyDef,
  type NetworkPolicy,
  networkPolicyDef,
  type Profile,
  profileDef,
  type Tier,
  tierDef,
} from "./policy.js";

/** Every Margay resource. Discriminate on `kind`. */
export type Resource =
  | IPPool
  | IPAMConfig
  | IPReservation
  | Node
  | WorkloadEndpoint
  | HostEndpoint
  | Profile
  | Tier
  | NetworkPolicy
  | GlobalNetworkPolicy
  | NetworkSet
  | GlobalNetworkSet
  | BGPPeer
  | BGPConfiguration
  | AgentConfiguration
  | NodeStatus;

/** The kind names, as an object of constants. */
export const ResourceKind = {
  /** `IPPool` */
  IPPool: "IPPool",
  /** `IPAMConfig` */
  IPAMConfig: "IPAMConfig",
  /** `IPReservation` */
  IPReservation: "IPReservation",
  /** `Node` */
  Node: "Node",
  /** `WorkloadEndpoint` */
  WorkloadEndpoint: "WorkloadEndpoint",
  /** `HostEndpoint` */
  HostEndpoint: "HostEndpoint",
  /** `Profile` */
  Profile: "Profile",
  /** `Tier` */
  Tier: "Tier",
  /** `NetworkPolicy` */
  NetworkPolicy: "NetworkPolicy",
  /** `GlobalNetworkPolicy` */
  GlobalNetworkPolicy: "GlobalNetworkPolicy",
  /** `NetworkSet` */
  NetworkSet: "NetworkSet",
  /** `GlobalNetworkSet` */
  GlobalNetworkSet: "GlobalNetworkSet",
  /** `BGPPeer` */
  BGPPeer: "BGPPeer",
  /** `BGPConfiguration` */
  BGPConfiguration: "BGPConfiguration",
  /** `AgentConfiguration` */
  AgentConfiguration: "AgentConfiguration",
  /** `NodeStatus` */
  NodeStatus: "NodeStatus",
} as const satisfies { [K in Resource["kind"]]: K };
/** Union of kind names. */
export type ResourceKind = Resource["kind"];

/** The resource type of a kind name. */
export type ResourceOfKind<K extends ResourceKind> = Extract<Resource, Pick<ResourceOf<K, unknown>, "kind">>;

/** Public facts about a kind. */
export interface KindInfo {
  /** The kind name. */
  readonly kind: ResourceKind;
  /** Lower-case plural, e.g. `ippools`. */
  readonly plural: string;
  /** Whether objects of the kind live in a namespace. */
  readonly namespaced: boolean;
  /** The list kind (`IPPoolList`) accepted in manifests. */
  readonly listKind: string;
}

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous registry; each entry is typed at its definition.
type AnyKindDef = KindDef<ResourceKind, any>;

const DEFS: Readonly<Record<ResourceKind, AnyKindDef>> = {
  IPPool: ipPoolDef,
  IPAMConfig: ipamConfigDef,
  IPReservation: ipReservationDef,
  Node: nodeDef,
  WorkloadEndpoint: workloadEndpointDef,
  HostEndpoint: hostEndpointDef,
  Profile: profileDef,
  Tier: tierDef,
  NetworkPolicy: networkPolicyDef,
  GlobalNetworkPolicy: globalNetworkPolicyDef,
  NetworkSet: networkSetDef,
  GlobalNetworkSet: globalNetworkSetDef,
  BGPPeer: bgpPeerDef,
  BGPConfiguration: bgpConfigurationDef,
  AgentConfiguration: agentConfigurationDef,
  NodeStatus: nodeStatusDef,
};

/** Every kind, in a stable order. */
export const RESOURCE_KINDS: readonly ResourceKind[] = Object.freeze(Object.keys(DEFS) as ResourceKind[]);

/** Per-kind facts: plural, namespaced, list kind. */
export const KIND_INFO: Readonly<Record<ResourceKind, KindInfo>> = Object.freeze(
  Object.fromEntries(
    RESOURCE_KINDS.map((k) => [
      k,
      Object.freeze({
        kind: k,
        plural: DEFS[k].plural,
        namespaced: DEFS[k].namespaced,
        listKind: `${k}List`,
      }),
    ]),
  ) as Record<ResourceKind, KindInfo>,
);

/** True if `kind` names a Margay resource kind. */
export function isResourceKind(kind: unknown): kind is ResourceKind {
  return typeof kind === "string" && Object.hasOwn(DEFS, kind);
}

/** Internal: the definition of a kind. */
export function kindDef(kind: ResourceKind): AnyKindDef {
  return DEFS[kind];
}

function guard<K extends ResourceKind>(kind: K): (v: unknown) => v is ResourceOfKind<K> {
  return (v: unknown): v is ResourceOfKind<K> =>
    typeof v === "object" &&
    v !== null &&
    (v as { kind?: unknown }).kind === kind &&
    (v as { apiVersion?: unknown }).apiVersion === API_VERSION &&
    typeof (v as { metadata?: unknown }).metadata === "object" &&
    (v as { metadata?: unknown }).metadata !== null;
}

/**
 * True if `v` is shaped like a resource of `kind` (`apiVersion`, `kind`, `metadata`). A cheap
 * discriminating check, not validation: use `validateResource` for untrusted input.
 */
export function isResourceOfKind<K extends ResourceKind>(v: unknown, kind: K): v is ResourceOfKind<K> {
  return guard(kind)(v);
}

/** Type guard for {@link IPPool} (shape check; see {@link isResourceOfKind}). */
export const isIPPool = guard("IPPool");
/** Type guard for {@link IPAMConfig}. */
export const isIPAMConfig = guard("IPAMConfig");
/** Type guard for {@link IPReservation}. */
export const isIPReservation = guard("IPReservation");
/** Type guard for {@link Node}. */
export const isNode = guard("Node");
/** Type guard for {@link WorkloadEndpoint}. */
export const isWorkloadEndpoint = guard("WorkloadEndpoint");
/** Type guard for {@link HostEndpoint}. */
export const isHostEndpoint = guard("HostEndpoint");
/** Type guard for {@link Profile}. */
export const isProfile = guard("Profile");
/** Type guard for {@link Tier}. */
export const isTier = guard("Tier");
/** Type guard for {@link NetworkPolicy}. */
export const isNetworkPolicy = guard("NetworkPolicy");
/** Type guard for {@link GlobalNetworkPolicy}. */
export const isGlobalNetworkPolicy = guard("GlobalNetworkPolicy");
/** Type guard for {@link NetworkSet}. */
export const isNetworkSet = guard("NetworkSet");
/** Type guard for {@link GlobalNetworkSet}. */
export const isGlobalNetworkSet = guard("GlobalNetworkSet");
/** Type guard for {@link BGPPeer}. */
export const isBGPPeer = guard("BGPPeer");
/** Type guard for {@link BGPConfiguration}. */
export const isBGPConfiguration = guard("BGPConfiguration");
/** Type guard for {@link AgentConfiguration}. */
export const isAgentConfiguration = guard("AgentConfiguration");
/** Type guard for {@link NodeStatus}. */
export const isNodeStatus = guard("NodeStatus");
