import { POLICY_UPDATE_KINDS, type PolicyUpdateKind } from "@margay/dataplane-contract";

/**
 * Every message of the ordered update stream a {@link DataplaneDriver} consumes: the policy
 * calculation's updates and the route-side updates (both defined in `@margay/dataplane-contract`).
 * `in-sync` is shared.
 */
export type { DataplaneUpdate } from "@margay/dataplane-contract";

/** Every `kind` of the policy half of the stream (`in-sync`, which both halves share, is route-side here). */
export const POLICY_KINDS: readonly Exclude<PolicyUpdateKind, "in-sync">[] = POLICY_UPDATE_KINDS.filter(
  (k): k is Exclude<PolicyUpdateKind, "in-sync"> => k !== "in-sync",
);
