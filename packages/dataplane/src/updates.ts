/**
 * The route side of the update stream a {@link DataplaneDriver} consumes. The types are defined (generated
 * from the driver protocol's `.proto`) in `@margay/dataplane-contract`; this module names this package's
 * half of them.
 *
 * @packageDocumentation
 */
import { ROUTE_SIDE_UPDATE_KINDS } from "@margay/dataplane-contract";

export type {
  HostRemove,
  HostUpdate,
  InSync,
  PoolRemove,
  PoolUpdate,
  RouteNextHop,
  RouteRemove,
  RouteSideUpdate,
  RouteUpdate,
  VtepRemove,
  VtepUpdate,
} from "@margay/dataplane-contract";
export { Encapsulation, RouteType } from "@margay/dataplane-contract";

/** Every `kind` of {@link RouteSideUpdate} (`in-sync` included). */
export const ROUTE_SIDE_KINDS = ROUTE_SIDE_UPDATE_KINDS;
