/**
 * The output of the policy calculation: an ordered stream of typed updates that a dataplane renders.
 *
 * Ordering contract (per flushed batch, and across batches):
 * - an IP set is sent before any policy that references it, a policy before any endpoint that lists it,
 *   a profile before any endpoint that lists it;
 * - removals run in reverse: endpoints first, then policies and profiles, then IP sets;
 * - within one batch every object appears at most once (a burst of changes is coalesced into its final
 *   state), except that an IP set's membership may be sent as one full update or one delta;
 * - `in-sync` is sent once, after the first complete snapshot: until then a dataplane should not remove
 *   state it does not yet know about.
 *
 * These types are a seam (the dataplane imports only them): they only ever grow additively.
 *
 * @packageDocumentation
 */

/** How the members of an IP set are written. */
export const IpSetType = {
  /** Members are plain addresses (`10.0.0.1`, `fd00::1`). */
  Ip: "ip",
  /**
   * Members are `<address>,<protocol>:<port>` with protocol `tcp`, `udp` or `sctp`
   * (`10.0.0.1,tcp:8080`, `fd00::1,udp:53`): the IP sets of named ports.
   */
  IpAndPort: "ip-and-port",
  /** Members are CIDRs (`10.0.0.1/32`, `10.1.0.0/16`, `fd00::/64`): the IP sets of selectors. */
  Net: "net",
} as const;
/** Union of {@link IpSetType} values. */
export type IpSetType = (typeof IpSetType)[keyof typeof IpSetType];

/**
 * Full membership of an IP set: create it, or replace its members. Members mix IPv4 and IPv6; a dataplane
 * that keeps one set per family splits them. Members are sorted and unique.
 */
export interface IpSetUpdate {
  readonly kind: "ip-set-update";
  /** Stable id (derived from the selector's canonical form and, for named ports, the port). */
  readonly id: string;
  readonly type: IpSetType;
  readonly members: readonly string[];
}

/** Incremental change of an IP set already sent in full. `added` and `removed` are disjoint and sorted. */
export interface IpSetDeltaUpdate {
  readonly kind: "ip-set-delta-update";
  readonly id: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** The IP set is no longer referenced by any active policy or profile. */
export interface IpSetRemove {
  readonly kind: "ip-set-remove";
  readonly id: string;
}

/** A rule's action, as the dataplane enforces it. `pass` jumps to the next tier (Calico's `Pass`). */
export const RuleAction = {
  Allow: "allow",
  Deny: "deny",
  /** Log the packet and continue with the next rule. */
  Log: "log",
  Pass: "pass",
} as const;
/** Union of {@link RuleAction} values. */
export type RuleAction = (typeof RuleAction)[keyof typeof RuleAction];

/** An inclusive range of ports; a single port has `first === last`. */
export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** ICMP match: a type, optionally narrowed to one code. */
export interface IcmpMatch {
  readonly type: number;
  readonly code?: number | undefined;
}

/**
 * One rendered rule. Every present field must match (logical AND); list fields match when any element
 * matches (logical OR), `not*` lists when none does. Absent or empty lists do not constrain.
 *
 * Ports: a packet's port matches when it is in `*Ports`, OR its (address, protocol, port) is in one of
 * `*NamedPortIpSetIds`; if both are empty the port is not constrained. A rule that names a port which no
 * endpoint defines keeps an (empty) named-port IP set, so it matches nothing: missing references fail closed.
 */
export interface RenderedRule {
  readonly action: RuleAction;
  /** Position of the rule in its policy/profile and direction (0-based), for counters and traces. */
  readonly index: number;
  /** Stable id of the rule (policy id, direction and index). */
  readonly ruleId: string;
  /** Restrict to one IP family. */
  readonly ipVersion?: 4 | 6 | undefined;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, 136 UDPLite, or any 0–255). */
  readonly protocol?: number | undefined;
  readonly notProtocol?: number | undefined;

  /** Source CIDRs (any). */
  readonly srcNets: readonly string[];
  readonly notSrcNets: readonly string[];
  /** Source address must be in ALL of these IP sets (selector, namespace and service-account matches). */
  readonly srcIpSetIds: readonly string[];
  /** Source address must be in NONE of these IP sets. */
  readonly notSrcIpSetIds: readonly string[];
  readonly srcPorts: readonly PortRange[];
  readonly notSrcPorts: readonly PortRange[];
  /** `ip-and-port` sets of named source ports (any). */
  readonly srcNamedPortIpSetIds: readonly string[];
  /** `ip-and-port` sets the source must be in none of. */
  readonly notSrcNamedPortIpSetIds: readonly string[];

  readonly dstNets: readonly string[];
  readonly notDstNets: readonly string[];
  readonly dstIpSetIds: readonly string[];
  readonly notDstIpSetIds: readonly string[];
  readonly dstPorts: readonly PortRange[];
  readonly notDstPorts: readonly PortRange[];
  readonly dstNamedPortIpSetIds: readonly string[];
  readonly notDstNamedPortIpSetIds: readonly string[];

  readonly icmp?: IcmpMatch | undefined;
  readonly notIcmp?: IcmpMatch | undefined;
}

/** Flags of a policy that change where a dataplane hooks it (host endpoints only). */
export interface PolicyFlags {
  /** Calico `doNotTrack`: evaluated before connection tracking, in raw; both directions. */
  readonly untracked: boolean;
  /** Calico `preDNAT`: ingress only, before DNAT. */
  readonly preDnat: boolean;
  /** Calico `applyOnForward`: also applied to traffic forwarded through a host endpoint. */
  readonly applyOnForward: boolean;
}

/** An active policy (one that applies to at least one local endpoint). */
export interface ActivePolicyUpdate {
  readonly kind: "active-policy-update";
  /** `<tier>/<name>` for a global policy, `<tier>/<namespace>/<name>` for a namespaced one. */
  readonly id: string;
  readonly tier: string;
  readonly name: string;
  /** Set for namespaced policies. */
  readonly namespace?: string | undefined;
  readonly inbound: readonly RenderedRule[];
  readonly outbound: readonly RenderedRule[];
  readonly flags: PolicyFlags;
}

/** The policy no longer applies to any local endpoint (or was deleted). */
export interface ActivePolicyRemove {
  readonly kind: "active-policy-remove";
  readonly id: string;
}

/** An active profile (listed by at least one local endpoint). */
export interface ActiveProfileUpdate {
  readonly kind: "active-profile-update";
  /** The profile's name, e.g. `kns.default`. */
  readonly id: string;
  readonly inbound: readonly RenderedRule[];
  readonly outbound: readonly RenderedRule[];
}

/** The profile is no longer used by any local endpoint. */
export interface ActiveProfileRemove {
  readonly kind: "active-profile-remove";
  readonly id: string;
}

/** What happens to a packet that reaches the end of a tier without a verdict. */
export const TierDefaultAction = {
  Deny: "deny",
  Pass: "pass",
} as const;
/** Union of {@link TierDefaultAction} values. */
export type TierDefaultAction = (typeof TierDefaultAction)[keyof typeof TierDefaultAction];

/** The policies of one tier that apply to an endpoint in one direction, in evaluation order. */
export interface TierPolicies {
  readonly tier: string;
  readonly defaultAction: TierDefaultAction;
  /** Active policy ids (see {@link ActivePolicyUpdate.id}), in order. Never empty. */
  readonly policyIds: readonly string[];
}

/**
 * The ordered tiers of one direction. Only tiers with at least one policy for that direction appear: a
 * tier that appears and gives no verdict applies its `defaultAction`.
 */
export interface DirectionalTiers {
  readonly ingress: readonly TierPolicies[];
  readonly egress: readonly TierPolicies[];
}

/**
 * A local workload endpoint. Evaluation: ingress/egress tiers in order; then, if no verdict, the profiles
 * in order; if no profile allows, drop.
 */
export interface WorkloadEndpointUpdate {
  readonly kind: "workload-endpoint-update";
  /** `<namespace>/<name>` of the WorkloadEndpoint. */
  readonly id: string;
  /** Host-side interface name (e.g. `cali1234567890a`). */
  readonly ifname: string;
  readonly mac?: string | undefined;
  /** CIDRs of the endpoint (`/32` or `/128`). */
  readonly ipNetworks: readonly string[];
  readonly tiers: DirectionalTiers;
  /** Profile ids, in order (see {@link ActiveProfileUpdate}). */
  readonly profileIds: readonly string[];
}

/** The workload endpoint is gone (or no longer local). */
export interface WorkloadEndpointRemove {
  readonly kind: "workload-endpoint-remove";
  readonly id: string;
}

/** A protocol and port that a host endpoint always accepts (inbound) or sends (outbound). */
export interface FailsafePort {
  readonly protocol: "tcp" | "udp" | "sctp";
  readonly port: number;
  /** Restrict to this remote CIDR (any when absent). */
  readonly net?: string | undefined;
}

/**
 * A local host endpoint. `tiers` hold the normal policies (applied to traffic to and from the host
 * itself), `untrackedTiers` the `doNotTrack` ones, `preDnatTiers` the `preDNAT` ones (ingress only),
 * `forwardTiers` the `applyOnForward` ones (applied to forwarded traffic).
 */
export interface HostEndpointUpdate {
  readonly kind: "host-endpoint-update";
  /** The HostEndpoint's name. */
  readonly id: string;
  /** Interface name, or `*` for all interfaces of the host. */
  readonly ifname: string;
  readonly expectedIps: readonly string[];
  readonly tiers: DirectionalTiers;
  readonly untrackedTiers: DirectionalTiers;
  readonly preDnatTiers: DirectionalTiers;
  readonly forwardTiers: DirectionalTiers;
  readonly profileIds: readonly string[];
  /** Ports always allowed, whatever the policy, so policy cannot cut the host off. */
  readonly failsafe: {
    readonly inbound: readonly FailsafePort[];
    readonly outbound: readonly FailsafePort[];
  };
}

/** The host endpoint is gone. */
export interface HostEndpointRemove {
  readonly kind: "host-endpoint-remove";
  readonly id: string;
}

/** Barrier: everything before it is the complete initial state. Sent once. */
export interface InSync {
  readonly kind: "in-sync";
}

/** Any update of the stream. */
export type PolicyUpdate =
  | IpSetUpdate
  | IpSetDeltaUpdate
  | IpSetRemove
  | ActivePolicyUpdate
  | ActivePolicyRemove
  | ActiveProfileUpdate
  | ActiveProfileRemove
  | WorkloadEndpointUpdate
  | WorkloadEndpointRemove
  | HostEndpointUpdate
  | HostEndpointRemove
  | InSync;

/** Union of the `kind` of every {@link PolicyUpdate}. */
export type PolicyUpdateKind = PolicyUpdate["kind"];
