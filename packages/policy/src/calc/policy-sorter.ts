/**
 * Tier and policy ordering (Felix's policy sorter): pure functions shared by the calculation graph's
 * policy resolver and by the reference evaluator, so both agree on the order by construction.
 */
import {
  ADMIN_NETWORK_POLICY_TIER,
  ADMIN_NETWORK_POLICY_TIER_ORDER,
  BASELINE_ADMIN_NETWORK_POLICY_TIER,
  BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER,
  DEFAULT_TIER_NAME,
  DEFAULT_TIER_ORDER,
} from "../model/constants.js";
import type { NormalizedPolicy, NormalizedTier } from "../model/normalize.js";
import type { DirectionalTiers, HostEndpointUpdate, TierPolicies } from "@margay/dataplane-contract";

const IMPLICIT_TIERS: ReadonlyMap<string, NormalizedTier> = new Map([
  [DEFAULT_TIER_NAME, { name: DEFAULT_TIER_NAME, order: DEFAULT_TIER_ORDER, defaultAction: "deny" }],
  [
    ADMIN_NETWORK_POLICY_TIER,
    { name: ADMIN_NETWORK_POLICY_TIER, order: ADMIN_NETWORK_POLICY_TIER_ORDER, defaultAction: "pass" },
  ],
  [
    BASELINE_ADMIN_NETWORK_POLICY_TIER,
    {
      name: BASELINE_ADMIN_NETWORK_POLICY_TIER,
      order: BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER,
      defaultAction: "pass",
    },
  ],
]);

/** Orders by `order` (absent last), then by the tie-breaker. */
export function compareOrder(a: number | undefined, b: number | undefined, ta: string, tb: string): number {
  const oa = a ?? Number.POSITIVE_INFINITY;
  const ob = b ?? Number.POSITIVE_INFINITY;
  if (oa !== ob) return oa < ob ? -1 : 1;
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/** The tier of a name: explicit resource, implicit Calico tier, or (missing: fail closed) last + Deny. */
export function resolveTier(tiers: ReadonlyMap<string, NormalizedTier>, name: string): NormalizedTier {
  return tiers.get(name) ?? IMPLICIT_TIERS.get(name) ?? { name, order: undefined, defaultAction: "deny" };
}

/**
 * Groups an endpoint's policies into ordered tiers for one direction.
 *
 * @param policies - every policy that selects the endpoint.
 */
export function orderTiers(
  policies: readonly NormalizedPolicy[],
  tiers: ReadonlyMap<string, NormalizedTier>,
  direction: "ingress" | "egress",
): TierPolicies[] {
  const byTier = new Map<string, NormalizedPolicy[]>();
  for (const p of policies) {
    if (!p[direction]) continue;
    let list = byTier.get(p.tier);
    if (list === undefined) byTier.set(p.tier, (list = []));
    list.push(p);
  }
  const resolved = [...byTier.keys()].map((t) => resolveTier(tiers, t));
  resolved.sort((a, b) => compareOrder(a.order, b.order, a.name, b.name));
  return resolved.map((t) => {
    const list = byTier.get(t.name)!;
    list.sort((a, b) => compareOrder(a.order, b.order, a.id, b.id));
    return { tier: t.name, defaultAction: t.defaultAction, policyIds: list.map((p) => p.id) };
  });
}

/**
 * Ingress and egress tiers of a set of policies.
 *
 * @param egressToo - false for pre-DNAT groups, which Calico applies to ingress only.
 */
export function directionalTiers(
  policies: readonly NormalizedPolicy[],
  tiers: ReadonlyMap<string, NormalizedTier>,
  egressToo = true,
): DirectionalTiers {
  return {
    ingress: orderTiers(policies, tiers, "ingress"),
    egress: egressToo ? orderTiers(policies, tiers, "egress") : [],
  };
}

/** The tier groups of a host endpoint: normal, untracked (doNotTrack), pre-DNAT and forward. */
export function hostEndpointTiers(
  policies: readonly NormalizedPolicy[],
  tiers: ReadonlyMap<string, NormalizedTier>,
): Pick<HostEndpointUpdate, "tiers" | "untrackedTiers" | "preDnatTiers" | "forwardTiers"> {
  const normal = policies.filter((p) => !p.flags.untracked && !p.flags.preDnat);
  return {
    tiers: directionalTiers(normal, tiers),
    untrackedTiers: directionalTiers(
      policies.filter((p) => p.flags.untracked),
      tiers,
    ),
    preDnatTiers: directionalTiers(
      policies.filter((p) => p.flags.preDnat && !p.flags.untracked),
      tiers,
      false,
    ),
    forwardTiers: directionalTiers(
      normal.filter((p) => p.flags.applyOnForward),
      tiers,
    ),
  };
}

/** Policies that apply to a workload endpoint: neither doNotTrack nor preDNAT (host-only features). */
export function workloadPolicies(policies: readonly NormalizedPolicy[]): NormalizedPolicy[] {
  return policies.filter((p) => !p.flags.untracked && !p.flags.preDnat);
}
