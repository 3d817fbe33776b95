import { RenderedRuleAction, RenderedTierDefaultAction } from "@margay/dataplane-contract";

// The update stream's action names before they moved to @margay/dataplane-contract and took the
// `Rendered` prefix, which keeps them apart from @margay/api's resource spelling (`"Allow"`). Kept for one
// release so drivers written against the old names still compile.

/**
 * A rendered rule's action (`allow | deny | log | pass`).
 *
 * @deprecated Use `RenderedRuleAction` (from `@margay/dataplane-contract`, or this package); `RuleAction`
 * in `@margay/api` is the resource spelling (`"Allow"`).
 */
export const RuleAction = RenderedRuleAction;
/** @deprecated Use `RenderedRuleAction`. */
export type RuleAction = RenderedRuleAction;

/**
 * What happens at the end of a tier without a verdict (`deny | pass`).
 *
 * @deprecated Use `RenderedTierDefaultAction` (from `@margay/dataplane-contract`, or this package);
 * `TierDefaultAction` in `@margay/api` is the resource spelling (`"Deny"`).
 */
export const TierDefaultAction = RenderedTierDefaultAction;
/** @deprecated Use `RenderedTierDefaultAction`. */
export type TierDefaultAction = RenderedTierDefaultAction;
