/**
 * `@margay/routing`: route calculation a node agent (ours or a vendor's) can reuse. Pools, nodes, IPAM
 * blocks and block affinities, local workload endpoints and routes learned over BGP go in as
 * {@link RoutingChange}s; the route side of the dataplane update stream (`@margay/dataplane-contract`)
 * comes out as diffs: local workload routes, blackholes for this node's blocks, remote blocks and
 * borrowed addresses with resolved next hops (flat, VXLAN, IPIP; `CrossSubnet`), learned routes with IP
 * next hops, and the pools' `natOutgoing`. Pure: no I/O, no clock, deterministic order.
 *
 * @packageDocumentation
 */
export type { RouteCalculator, RouteCalculatorOptions, RoutingUpdate } from "./calculator.js";
export { createRouteCalculator } from "./calculator.js";
export type { RoutingErrorDetails } from "./errors.js";
export { isRoutingError, ROUTING_ERROR_BRAND, RoutingError, RoutingErrorCode } from "./errors.js";
export type {
  AffinityInput,
  BlockAttributeInput,
  BlockInput,
  EndpointInput,
  NatOutgoing,
  NodeInput,
  PoolInput,
  RoutingChange,
  RoutingChangeKind,
  UnresolvedReason,
  UnresolvedRoute,
} from "./types.js";
