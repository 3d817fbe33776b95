/**
 * The resources the policy calculation reads: the `@margay/api` kinds that carry policy, their keys, and
 * the key helpers.
 *
 * @packageDocumentation
 */
import type {
  GlobalNetworkPolicy,
  GlobalNetworkSet,
  HostEndpoint,
  NetworkPolicy,
  NetworkSet,
  Profile,
  Tier,
  WorkloadEndpoint,
} from "@margay/api";

/** Any resource the calculation graph and the evaluator read. */
export type PolicyModelResource =
  | Tier
  | NetworkPolicy
  | GlobalNetworkPolicy
  | Profile
  | WorkloadEndpoint
  | HostEndpoint
  | NetworkSet
  | GlobalNetworkSet;

/** The `kind` of a {@link PolicyModelResource}. */
export type PolicyModelKind = PolicyModelResource["kind"];

/** A protocol by name (`TCP`, `udp`, `ICMPv6`, ..., any case) or number (0–255). */
export type ProtocolSpec = string | number;

/** Identifies a resource: kind, name and (namespaced kinds) namespace. */
export interface ResourceKey {
  readonly kind: PolicyModelKind;
  readonly name: string;
  readonly namespace?: string | undefined;
}

const NAMESPACED_KINDS: ReadonlySet<PolicyModelKind> = new Set([
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
