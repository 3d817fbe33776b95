/**
 * Policy resources: Tier, NetworkPolicy, GlobalNetworkPolicy and Profile (Calico semantics).
 *
 * @packageDocumentation
 */
import { at, type Ctx, joinPath, object, type Obj, show } from "../validation/context.js";
import { selector } from "../validation/fields.js";
import { labels, resourceName } from "../validation/names.js";
import { array, boolean, noDuplicates, number, oneOf, opt } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ObjectMeta, ResourceOf } from "./meta.js";
import { validateRules } from "./rule-validation.js";
import { PolicyType, type Rule } from "./rules.js";

/** What happens to traffic that reaches the end of a tier without a verdict. */
export const TierDefaultAction = {
  /** Drop traffic no policy of the tier decided. */
  Deny: "Deny",
  /** Pass it to the next tier. */
  Pass: "Pass",
} as const;
/** Union of {@link TierDefaultAction} values. */
export type TierDefaultAction = (typeof TierDefaultAction)[keyof typeof TierDefaultAction];

/** Name of the tier policies belong to when `spec.tier` is unset. */
export const DEFAULT_TIER_NAME = "default";
/** Order of the `default` tier (Calico's value; it cannot be changed). */
export const DEFAULT_TIER_ORDER = 1_000_000;

/** Spec of a {@link Tier}. */
export interface TierSpec {
  /** Tiers apply in increasing order; unset = last. Ties break on name. */
  order?: number;
  /** Verdict for endpoints selected by a policy of this tier when no rule matched. Default `Deny`. */
  defaultAction?: TierDefaultAction;
}
/** An ordered group of policies. Cluster-scoped. */
export type Tier = ResourceOf<"Tier", TierSpec>;

/** Fields shared by {@link NetworkPolicySpec} and {@link GlobalNetworkPolicySpec}. */
export interface PolicySpecBase {
  /** Tier the policy belongs to. Default `default`. */
  tier?: string;
  /** Policies apply in increasing order within their tier; unset = last. Ties break on name. */
  order?: number;
  /** Endpoints the policy applies to. Default (empty) = all. */
  selector?: string;
  /** Directions the policy applies to; defaulted from the rules present (see {@link defaultPolicyTypes}). */
  types?: PolicyType[];
  /** Rules for traffic to the selected endpoints, in order. */
  ingress?: Rule[];
  /** Rules for traffic from the selected endpoints, in order. */
  egress?: Rule[];
  /** Restricts the policy to pods running as matching service accounts. */
  serviceAccountSelector?: string;
}

/** Spec of a {@link NetworkPolicy}. */
export type NetworkPolicySpec = PolicySpecBase;
/** Policy for endpoints of one namespace. Namespaced. */
export type NetworkPolicy = ResourceOf<"NetworkPolicy", NetworkPolicySpec>;

/** Spec of a {@link GlobalNetworkPolicy}. */
export interface GlobalNetworkPolicySpec extends PolicySpecBase {
  /** Restricts the policy to endpoints in matching namespaces. */
  namespaceSelector?: string;
  /** Apply before connection tracking (untracked); needs `applyOnForward`. Default false. */
  doNotTrack?: boolean;
  /** Apply before DNAT (host endpoints, ingress only); needs `applyOnForward`. Default false. */
  preDNAT?: boolean;
  /** Also apply to traffic forwarded through host endpoints. Default false. */
  applyOnForward?: boolean;
}
/** Policy for endpoints of any namespace and host endpoints. Cluster-scoped. */
export type GlobalNetworkPolicy = ResourceOf<"GlobalNetworkPolicy", GlobalNetworkPolicySpec>;

/** Spec of a {@link Profile}. */
export interface ProfileSpec {
  /** Inbound rules, applied after policy. */
  ingress?: Rule[];
  /** Outbound rules, applied after policy. */
  egress?: Rule[];
  /** Labels every endpoint using the profile inherits. */
  labelsToApply?: Record<string, string>;
}
/** Rules (and labels) applied to endpoints that list the profile, after policy. Cluster-scoped. */
export type Profile = ResourceOf<"Profile", ProfileSpec>;

/**
 * Calico's default for `types` when a policy leaves it empty: `[Ingress]` without egress rules,
 * `[Egress]` with only egress rules, both with both.
 */
export function defaultPolicyTypes(spec: Pick<PolicySpecBase, "ingress" | "egress">): PolicyType[] {
  const hasIngress = (spec.ingress?.length ?? 0) > 0;
  const hasEgress = (spec.egress?.length ?? 0) > 0;
  if (!hasEgress) return ["Ingress"];
  return hasIngress ? ["Ingress", "Egress"] : ["Egress"];
}

const BASE_FIELDS = [
  "tier",
  "order",
  "selector",
  "types",
  "ingress",
  "egress",
  "serviceAccountSelector",
] as const;

function validatePolicyBase(o: Obj, path: string, ctx: Ctx, out: PolicySpecBase): void {
  opt(o, out, "tier", path, ctx, (x, p, c) => resourceName(x, p, c, "label"));
  opt(o, out, "order", path, ctx, number);
  opt(o, out, "selector", path, ctx, selector);
  opt(o, out, "serviceAccountSelector", path, ctx, selector);
  opt(o, out, "types", path, ctx, (x, p, c) => {
    const t = array(x, p, c, (y, yp, yc) => oneOf(y, yp, yc, Object.values(PolicyType)), { maxItems: 2 });
    if (t !== undefined) noDuplicates(t, p, c);
    return t;
  });
  opt(o, out, "ingress", path, ctx, (x, p, c) => validateRules(x, p, c, "ingress"));
  opt(o, out, "egress", path, ctx, (x, p, c) => validateRules(x, p, c, "egress"));
}

function policyDefaults<S extends PolicySpecBase>(spec: S): S {
  return {
    ...spec,
    tier: spec.tier ?? DEFAULT_TIER_NAME,
    selector: spec.selector === undefined || spec.selector.trim() === "" ? "all()" : spec.selector,
    types: spec.types !== undefined && spec.types.length > 0 ? spec.types : defaultPolicyTypes(spec),
    ingress: spec.ingress ?? [],
    egress: spec.egress ?? [],
  };
}

/** Kind definition of {@link Tier}. */
export const tierDef: KindDef<"Tier", TierSpec> = {
  kind: "Tier",
  plural: "tiers",
  namespaced: false,
  nameRule: "label",
  validateSpec(v, path, ctx, meta: ObjectMeta) {
    const o = object(v, path, ctx, ["order", "defaultAction"]);
    if (o === undefined) return undefined;
    const out: TierSpec = {};
    opt(o, out, "order", path, ctx, number);
    opt(o, out, "defaultAction", path, ctx, (x, p, c) => oneOf(x, p, c, Object.values(TierDefaultAction)));
    if (meta.name === DEFAULT_TIER_NAME && out.order !== undefined && out.order !== DEFAULT_TIER_ORDER) {
      ctx.fail(
        joinPath(path, "order"),
        `the default tier's order must be ${DEFAULT_TIER_ORDER}, got ${show(out.order)}`,
      );
    }
    return out;
  },
  defaults(spec, meta) {
    const out: TierSpec = { ...spec, defaultAction: spec.defaultAction ?? "Deny" };
    if (meta.name === DEFAULT_TIER_NAME) out.order = DEFAULT_TIER_ORDER;
    return out;
  },
};

/** Kind definition of {@link NetworkPolicy}. */
export const networkPolicyDef: KindDef<"NetworkPolicy", NetworkPolicySpec> = {
  kind: "NetworkPolicy",
  plural: "networkpolicies",
  namespaced: true,
  nameRule: "networkPolicy",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, BASE_FIELDS);
    if (o === undefined) return undefined;
    const out: NetworkPolicySpec = {};
    validatePolicyBase(o, path, ctx, out);
    return out;
  },
  defaults: policyDefaults,
};

/** Kind definition of {@link GlobalNetworkPolicy}. */
export const globalNetworkPolicyDef: KindDef<"GlobalNetworkPolicy", GlobalNetworkPolicySpec> = {
  kind: "GlobalNetworkPolicy",
  plural: "globalnetworkpolicies",
  namespaced: false,
  nameRule: "globalNetworkPolicy",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      ...BASE_FIELDS,
      "namespaceSelector",
      "doNotTrack",
      "preDNAT",
      "applyOnForward",
    ]);
    if (o === undefined) return undefined;
    const out: GlobalNetworkPolicySpec = {};
    validatePolicyBase(o, path, ctx, out);
    opt(o, out, "namespaceSelector", path, ctx, selector);
    opt(o, out, "doNotTrack", path, ctx, boolean);
    opt(o, out, "preDNAT", path, ctx, boolean);
    opt(o, out, "applyOnForward", path, ctx, boolean);
    if (out.doNotTrack && out.preDNAT)
      ctx.fail(joinPath(path, "preDNAT"), "preDNAT and doNotTrack cannot both be true");
    if (out.preDNAT && (out.egress?.length ?? 0) > 0) {
      ctx.fail(joinPath(path, "egress"), "a preDNAT policy cannot have egress rules");
    }
    if (out.preDNAT && out.types?.includes("Egress")) {
      ctx.fail(joinPath(path, "types"), "a preDNAT policy cannot have type Egress");
    }
    if ((out.doNotTrack || out.preDNAT) && !out.applyOnForward) {
      ctx.fail(
        joinPath(path, "applyOnForward"),
        "applyOnForward must be true when preDNAT or doNotTrack is true",
      );
    }
    // Outside a namespace, a service name needs its namespace.
    (["ingress", "egress"] as const).forEach((dir) => {
      const side = dir === "ingress" ? "source" : "destination";
      out[dir]?.forEach((rule, i) => {
        const svc = rule[side]?.services;
        if (svc !== undefined && svc.namespace === undefined) {
          ctx.fail(at(path, dir, i, side, "services", "namespace"), "must specify a namespace");
        }
      });
    });
    return out;
  },
  defaults(spec) {
    return {
      ...policyDefaults(spec),
      doNotTrack: spec.doNotTrack ?? false,
      preDNAT: spec.preDNAT ?? false,
      applyOnForward: spec.applyOnForward ?? false,
    };
  },
};

/** Kind definition of {@link Profile}. */
export const profileDef: KindDef<"Profile", ProfileSpec> = {
  kind: "Profile",
  plural: "profiles",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, ["ingress", "egress", "labelsToApply"]);
    if (o === undefined) return undefined;
    const out: ProfileSpec = {};
    opt(o, out, "ingress", path, ctx, (x, p, c) => validateRules(x, p, c, "ingress"));
    opt(o, out, "egress", path, ctx, (x, p, c) => validateRules(x, p, c, "egress"));
    opt(o, out, "labelsToApply", path, ctx, labels);
    return out;
  },
  defaults(spec) {
    return { ...spec, ingress: spec.ingress ?? [], egress: spec.egress ?? [] };
  },
};
