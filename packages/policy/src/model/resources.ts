/**
 * The resources the policy calculation reads, as structural views of the `@margay/api` resource types
 * (Calico v3 shape). Only the fields policy needs are listed, so any `@margay/api` resource, a Calico
 * `projectcalico.org/v3` document or a plain object of the same shape can be passed in.
 *
 * @packageDocumentation
 */

/** Object metadata: name, namespace (namespaced kinds only) and labels. */
export interface ResourceMetadata {
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
}

/** A rule's action (Calico v3 spelling). */
export type RuleActionName = "Allow" | "Deny" | "Log" | "Pass";

/** A protocol by name (`TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite`, any case) or number (0–255). */
export type ProtocolSpec = string | number;

/** A port: a number, a range `"first:last"`, or the name of a named port. */
export type PortSpec = number | string;

/** ICMP type and optional code. */
export interface IcmpFields {
  readonly type?: number | undefined;
  readonly code?: number | undefined;
}

/** Service accounts a rule matches: by name and/or by a selector over their labels. */
export interface ServiceAccountMatch {
  readonly names?: readonly string[] | undefined;
  readonly selector?: string | undefined;
}

/** One side (source or destination) of a rule. Every present field must match. */
export interface EntityRule {
  readonly nets?: readonly string[] | undefined;
  readonly notNets?: readonly string[] | undefined;
  readonly selector?: string | undefined;
  readonly notSelector?: string | undefined;
  readonly namespaceSelector?: string | undefined;
  readonly ports?: readonly PortSpec[] | undefined;
  readonly notPorts?: readonly PortSpec[] | undefined;
  readonly serviceAccounts?: ServiceAccountMatch | undefined;
}

/** A policy or profile rule. */
export interface Rule {
  readonly action: RuleActionName;
  readonly ipVersion?: 4 | 6 | undefined;
  readonly protocol?: ProtocolSpec | undefined;
  readonly notProtocol?: ProtocolSpec | undefined;
  readonly icmp?: IcmpFields | undefined;
  readonly notICMP?: IcmpFields | undefined;
  readonly source?: EntityRule | undefined;
  readonly destination?: EntityRule | undefined;
}

/** Policy direction (Calico v3 spelling). */
export type PolicyType = "Ingress" | "Egress";

/** Fields common to NetworkPolicy and GlobalNetworkPolicy specs. */
export interface PolicySpecCommon {
  readonly tier?: string | undefined;
  /** Lower first; absent means after every ordered policy. */
  readonly order?: number | undefined;
  readonly selector?: string | undefined;
  readonly serviceAccountSelector?: string | undefined;
  readonly types?: readonly PolicyType[] | undefined;
  readonly ingress?: readonly Rule[] | undefined;
  readonly egress?: readonly Rule[] | undefined;
}

/** A namespaced policy. */
export interface NetworkPolicyResource {
  readonly kind: "NetworkPolicy";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: PolicySpecCommon;
}

/** A cluster-wide policy; it may also apply to host endpoints. */
export interface GlobalNetworkPolicyResource {
  readonly kind: "GlobalNetworkPolicy";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: PolicySpecCommon & {
    readonly namespaceSelector?: string | undefined;
    readonly doNotTrack?: boolean | undefined;
    readonly preDNAT?: boolean | undefined;
    readonly applyOnForward?: boolean | undefined;
  };
}

/** An ordered group of policies. */
export interface TierResource {
  readonly kind: "Tier";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: {
    readonly order?: number | undefined;
    readonly defaultAction?: "Deny" | "Pass" | undefined;
  };
}

/** Rules evaluated after all tiers, and labels inherited by the endpoints that list the profile. */
export interface ProfileResource {
  readonly kind: "Profile";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: {
    readonly ingress?: readonly Rule[] | undefined;
    readonly egress?: readonly Rule[] | undefined;
    readonly labelsToApply?: Readonly<Record<string, string>> | undefined;
  };
}

/** A named port of an endpoint. */
export interface EndpointPort {
  readonly name: string;
  readonly protocol: ProtocolSpec;
  readonly port: number;
}

/** A workload (pod, VM, container) interface. */
export interface WorkloadEndpointResource {
  readonly kind: "WorkloadEndpoint";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: {
    readonly node?: string | undefined;
    readonly interfaceName?: string | undefined;
    readonly mac?: string | undefined;
    readonly ipNetworks?: readonly string[] | undefined;
    readonly profiles?: readonly string[] | undefined;
    readonly serviceAccountName?: string | undefined;
    readonly ports?: readonly EndpointPort[] | undefined;
  };
}

/** A host interface (or all of a host's interfaces when `interfaceName` is `*`). */
export interface HostEndpointResource {
  readonly kind: "HostEndpoint";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: {
    readonly node?: string | undefined;
    readonly interfaceName?: string | undefined;
    readonly expectedIPs?: readonly string[] | undefined;
    readonly profiles?: readonly string[] | undefined;
    readonly ports?: readonly EndpointPort[] | undefined;
  };
}

/** Labelled CIDRs in one namespace. */
export interface NetworkSetResource {
  readonly kind: "NetworkSet";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: { readonly nets?: readonly string[] | undefined };
}

/** Labelled CIDRs, cluster-wide. */
export interface GlobalNetworkSetResource {
  readonly kind: "GlobalNetworkSet";
  readonly apiVersion?: string | undefined;
  readonly metadata: ResourceMetadata;
  readonly spec: { readonly nets?: readonly string[] | undefined };
}

/** Any resource the calculation graph and the evaluator read. */
export type PolicyModelResource =
  | TierResource
  | NetworkPolicyResource
  | GlobalNetworkPolicyResource
  | ProfileResource
  | WorkloadEndpointResource
  | HostEndpointResource
  | NetworkSetResource
  | GlobalNetworkSetResource;

/** The `kind` of a {@link PolicyModelResource}. */
export type PolicyModelKind = PolicyModelResource["kind"];

/** Identifies a resource: kind, name and (namespaced kinds) namespace. */
export interface ResourceKey {
  readonly kind: PolicyModelKind;
  readonly name: string;
  readonly namespace?: string | undefined;
}

/** Kinds that live in a namespace. */
export const NAMESPACED_KINDS: ReadonlySet<PolicyModelKind> = new Set([
  "NetworkPolicy",
  "WorkloadEndpoint",
  "NetworkSet",
]);

/** A stable string for a resource key: `Kind/name` or `Kind/namespace/name`. */
export function resourceKeyString(key: ResourceKey): string {
  return NAMESPACED_KINDS.has(key.kind)
    ? `${key.kind}/${key.namespace ?? ""}/${key.name}`
    : `${key.kind}/${key.name}`;
}

/** The key of a resource. */
export function keyOf(resource: PolicyModelResource): ResourceKey {
  return NAMESPACED_KINDS.has(resource.kind)
    ? { kind: resource.kind, name: resource.metadata.name, namespace: resource.metadata.namespace ?? "" }
    : { kind: resource.kind, name: resource.metadata.name };
}
