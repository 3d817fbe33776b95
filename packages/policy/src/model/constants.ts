/**
 * Names Calico gives to the labels, profiles and tiers it derives from Kubernetes objects. Margay uses
 * the same names so that selectors written for Calico keep working.
 *
 * @packageDocumentation
 */

import { DEFAULT_TIER_NAME } from "@margay/api";

/** Label every namespaced endpoint and network set carries: its namespace. */
export const LABEL_NAMESPACE = "projectcalico.org/namespace";
/** Label of Kubernetes workload endpoints: `k8s`. */
export const LABEL_ORCHESTRATOR = "projectcalico.org/orchestrator";
/** Label of workload endpoints: their service account's name. */
export const LABEL_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount";
/** Label (after prefixing) carrying a namespace's or service account's own name. */
export const LABEL_NAME = "projectcalico.org/name";
/** Prefix of namespace labels as inherited by the endpoints of the namespace. */
export const NAMESPACE_LABEL_PREFIX = "pcns.";
/** Prefix of service-account labels as inherited by the endpoints that run as it. */
export const SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa.";
/** Profile name prefix of namespaces: `kns.<namespace>`. */
export const NAMESPACE_PROFILE_PREFIX = "kns.";
/** Profile name prefix of service accounts: `ksa.<namespace>.<name>`. */
export const SERVICE_ACCOUNT_PROFILE_PREFIX = "ksa.";
/** Orchestrator label value of Kubernetes pods. */
export const ORCHESTRATOR_K8S = "k8s";

/** Name prefix of converted Kubernetes NetworkPolicies: `knp.default.<name>`. */
export const K8S_NETWORK_POLICY_PREFIX = "knp.default.";
/** Name prefix of converted AdminNetworkPolicies. */
export const ADMIN_NETWORK_POLICY_PREFIX = "kanp.adminnetworkpolicy.";
/** Name prefix of the converted BaselineAdminNetworkPolicy. */
export const BASELINE_ADMIN_NETWORK_POLICY_PREFIX = "kbanp.baselineadminnetworkpolicy.";
/** Order of every converted Kubernetes NetworkPolicy within the default tier. */
export const K8S_NETWORK_POLICY_ORDER = 1000;
/** Order given to the (singleton) BaselineAdminNetworkPolicy within its tier. */
export const BASELINE_ADMIN_NETWORK_POLICY_ORDER = 1000;

// The default tier's name and order are @margay/api's (one spelling per concept): policies without a tier
// and Kubernetes NetworkPolicies go there; its order is fixed, as in Calico.
export { DEFAULT_TIER_NAME, DEFAULT_TIER_ORDER } from "@margay/api";

/**
 * The default tier's name, `"default"`.
 *
 * @deprecated Use `DEFAULT_TIER_NAME` from `@margay/api` (the same value). Removed in the next minor
 * release.
 */
export const DEFAULT_TIER: typeof DEFAULT_TIER_NAME = DEFAULT_TIER_NAME;
/** Tier of AdminNetworkPolicies: before the default tier, default action Pass. */
export const ADMIN_NETWORK_POLICY_TIER = "adminnetworkpolicy";
/** Order of the AdminNetworkPolicy tier. */
export const ADMIN_NETWORK_POLICY_TIER_ORDER = 1000;
/** Tier of the BaselineAdminNetworkPolicy: after the default tier, default action Pass. */
export const BASELINE_ADMIN_NETWORK_POLICY_TIER = "baselineadminnetworkpolicy";
/** Order of the BaselineAdminNetworkPolicy tier. */
export const BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER = 10_000_000;

/** Calico's default failsafe inbound host ports (`FailsafeInboundHostPorts`). */
export const DEFAULT_FAILSAFE_INBOUND = [
  { protocol: "tcp", port: 22 },
  { protocol: "udp", port: 68 },
  { protocol: "tcp", port: 179 },
  { protocol: "tcp", port: 2379 },
  { protocol: "tcp", port: 2380 },
  { protocol: "tcp", port: 5473 },
  { protocol: "tcp", port: 6443 },
  { protocol: "tcp", port: 6666 },
  { protocol: "tcp", port: 6667 },
] as const;

/** Calico's default failsafe outbound host ports (`FailsafeOutboundHostPorts`). */
export const DEFAULT_FAILSAFE_OUTBOUND = [
  { protocol: "udp", port: 53 },
  { protocol: "udp", port: 67 },
  { protocol: "tcp", port: 179 },
  { protocol: "tcp", port: 2379 },
  { protocol: "tcp", port: 2380 },
  { protocol: "tcp", port: 5473 },
  { protocol: "tcp", port: 6443 },
  { protocol: "tcp", port: 6666 },
  { protocol: "tcp", port: 6667 },
] as const;

/** apiVersion of the resources conversions produce. */
export const MARGAY_API_VERSION = "margay.io/v1";
/** Label the Kubernetes API server puts on every namespace: its name. */
export const LABEL_K8S_NAMESPACE_NAME = "kubernetes.io/metadata.name";
