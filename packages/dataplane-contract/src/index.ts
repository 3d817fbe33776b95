/**
 * `@margay/dataplane-contract`: what a dataplane driver consumes, and nothing else. The update stream's
 * types (route side and policy side), the driver protocol's `.proto`, and the protobufjs descriptor
 * derived from it. Every type and constant here is generated from `proto/margay_dataplane.proto`, the
 * one source of the contract; this package imports nothing of Margay's.
 *
 * Ordering contract of the stream (per flushed batch, and across batches):
 * - an IP set is sent before any policy that references it, a policy before any endpoint that lists it,
 *   a profile before any endpoint that lists it;
 * - removals run in reverse: endpoints first, then policies and profiles, then IP sets;
 * - within one batch every object appears at most once (a burst of changes is coalesced into its final
 *   state), except that an IP set's membership may be sent as one full update or one delta;
 * - `in-sync` is sent once, after the first complete snapshot: until then a dataplane should not remove
 *   state it does not yet know about.
 *
 * Every message is a plain, JSON-safe object with a string-literal `kind`, so it crosses a process
 * boundary unchanged. These types are a seam: they only ever grow additively.
 *
 * @packageDocumentation
 */
import descriptor from "./generated/descriptor.json";

export type {
  ActivePolicyRemove,
  ActivePolicyUpdate,
  ActiveProfileRemove,
  ActiveProfileUpdate,
  DataplaneUpdate,
  DataplaneUpdateKind,
  DirectionalTiers,
  Failsafe,
  FailsafePort,
  HostEndpointRemove,
  HostEndpointUpdate,
  HostRemove,
  HostUpdate,
  IcmpMatch,
  InSync,
  IpSetDeltaUpdate,
  IpSetRemove,
  IpSetUpdate,
  PolicyFlags,
  PolicyUpdate,
  PolicyUpdateKind,
  PoolRemove,
  PoolUpdate,
  PortRange,
  RenderedRule,
  RouteNextHop,
  RouteRemove,
  RouteSideUpdate,
  RouteSideUpdateKind,
  RouteUpdate,
  TierPolicies,
  VtepRemove,
  VtepUpdate,
  WorkloadEndpointRemove,
  WorkloadEndpointUpdate,
} from "./generated/updates.js";
export {
  DATAPLANE_UPDATE_KINDS,
  Encapsulation,
  IpSetType,
  POLICY_UPDATE_KINDS,
  RenderedRuleAction,
  RenderedTierDefaultAction,
  ROUTE_SIDE_UPDATE_KINDS,
  RouteType,
} from "./generated/updates.js";
export { DATAPLANE_PROTO } from "./generated/proto.js";

/** A protobufjs JSON descriptor (what `protobuf.Root.fromJSON` takes); typed loosely to stay dependency-free. */
export interface ProtobufJsonDescriptor {
  /** Nested namespaces and types, as protobufjs's `INamespace.nested`. */
  readonly nested?: Readonly<Record<string, unknown>>;
}

/**
 * The protobufjs JSON descriptor of the driver protocol (package `margay.dataplane.v1`), derived from
 * {@link DATAPLANE_PROTO}: `protobuf.Root.fromJSON(DATAPLANE_DESCRIPTOR)` loads it with protobufjs's light
 * build, without a `.proto` parser at run time.
 */
export const DATAPLANE_DESCRIPTOR: ProtobufJsonDescriptor = descriptor;
