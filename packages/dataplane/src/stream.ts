import type { PolicyUpdate } from "@margay/policy";
import type { RouteSideUpdate } from "./updates.js";

/**
 * Every message of the ordered update stream a {@link DataplaneDriver} consumes: the policy
 * calculation's updates (`@margay/policy`) and the route-side updates of this package. `in-sync` is shared.
 */
export type DataplaneUpdate = RouteSideUpdate | PolicyUpdate;

/** Every `kind` of the policy half of the stream. */
export const POLICY_KINDS = [
  "ip-set-update",
  "ip-set-delta-update",
  "ip-set-remove",
  "active-policy-update",
  "active-policy-remove",
  "active-profile-update",
  "active-profile-remove",
  "workload-endpoint-update",
  "workload-endpoint-remove",
  "host-endpoint-update",
  "host-endpoint-remove",
] as const;
