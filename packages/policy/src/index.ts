/**
 * `@margay/policy`: decides what every packet may do. A label index, the incremental policy calculation
 * graph (model → ordered update stream for a dataplane), a reference evaluator that explains its verdicts,
 * and pure conversions of Kubernetes NetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy,
 * Namespaces and ServiceAccounts into the Margay model, with Calico's semantics throughout.
 *
 * @packageDocumentation
 */

// Output stream: the types live in @margay/dataplane-contract (generated from its .proto), the leaf both
// this package and the dataplane import; re-exported here so the calc graph's callers need one import.
export type {
  ActivePolicyRemove,
  ActivePolicyUpdate,
  ActiveProfileRemove,
  ActiveProfileUpdate,
  DirectionalTiers,
  FailsafePort,
  HostEndpointRemove,
  HostEndpointUpdate,
  IcmpMatch,
  InSync,
  IpSetDeltaUpdate,
  IpSetRemove,
  IpSetUpdate,
  PolicyFlags,
  PolicyUpdate,
  PolicyUpdateKind,
  PortRange,
  RenderedRule,
  TierPolicies,
  WorkloadEndpointRemove,
  WorkloadEndpointUpdate,
} from "@margay/dataplane-contract";
export { IpSetType, RenderedRuleAction, RenderedTierDefaultAction } from "@margay/dataplane-contract";
export { RuleAction, TierDefaultAction } from "./deprecated.js";

// Calculation graph.
export type { CalcGraph, CalcGraphOptions, CalcGraphStats } from "./calc/calc-graph.js";
export { createCalcGraph } from "./calc/calc-graph.js";
export type { MirroredIpSet, MirrorSnapshot, StreamMirror } from "./calc/stream-mirror.js";
export { createStreamMirror } from "./calc/stream-mirror.js";
export type { WirePacket } from "./calc/mirror-evaluate.js";
export { evaluateMirror } from "./calc/mirror-evaluate.js";

// Label index.
export type { MatchListener } from "./labels/label-index.js";
export { LabelIndex } from "./labels/label-index.js";

// Reference evaluator.
export type {
  Decision,
  DirectionTrace,
  Evaluation,
  EvaluatorOptions,
  Packet,
  PeerRef,
  PolicyDecision,
  PolicyEvaluator,
  ResolvedPeer,
  TraceStep,
  Verdict,
} from "./eval/evaluator.js";
export { createEvaluator } from "./eval/evaluator.js";

// Model views and Calico names.
export type { PolicyModelKind, PolicyModelResource, ProtocolSpec, ResourceKey } from "./model/resources.js";
export { keyOf, resourceKeyString } from "./model/resources.js";
export {
  ADMIN_NETWORK_POLICY_PREFIX,
  ADMIN_NETWORK_POLICY_TIER,
  ADMIN_NETWORK_POLICY_TIER_ORDER,
  BASELINE_ADMIN_NETWORK_POLICY_ORDER,
  BASELINE_ADMIN_NETWORK_POLICY_PREFIX,
  BASELINE_ADMIN_NETWORK_POLICY_TIER,
  BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER,
  DEFAULT_FAILSAFE_INBOUND,
  DEFAULT_FAILSAFE_OUTBOUND,
  DEFAULT_TIER,
  DEFAULT_TIER_ORDER,
  K8S_NETWORK_POLICY_ORDER,
  K8S_NETWORK_POLICY_PREFIX,
  LABEL_K8S_NAMESPACE_NAME,
  LABEL_NAME,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
  MARGAY_API_VERSION,
  NAMESPACE_LABEL_PREFIX,
  NAMESPACE_PROFILE_PREFIX,
  ORCHESTRATOR_K8S,
  SERVICE_ACCOUNT_LABEL_PREFIX,
  SERVICE_ACCOUNT_PROFILE_PREFIX,
} from "./model/constants.js";

// Kubernetes conversion.
export type { ConvertOptions } from "./convert/convert-options.js";
export type {
  K8sAdminNetworkPolicy,
  K8sAdminPolicyPeer,
  K8sAdminPolicyPort,
  K8sAdminPolicyRule,
  K8sAdminPolicySubject,
  K8sBaselineAdminNetworkPolicy,
  K8sIpBlock,
  K8sLabelSelector,
  K8sLabelSelectorRequirement,
  K8sNamespace,
  K8sNetworkPolicy,
  K8sNetworkPolicyPeer,
  K8sNetworkPolicyPort,
  K8sObjectMeta,
  K8sServiceAccount,
} from "./convert/kubernetes-types.js";
export {
  convertAdminNetworkPolicy,
  convertBaselineAdminNetworkPolicy,
  kubernetesTiers,
} from "./convert/admin-network-policy.js";
export { labelSelectorToCalico } from "./convert/label-selector.js";
export { convertNetworkPolicy } from "./convert/network-policy.js";
export {
  convertNamespace,
  convertServiceAccount,
  namespaceProfileName,
  serviceAccountProfileName,
} from "./convert/profiles.js";

// Errors.
export type { PolicyErrorDetails } from "./errors.js";
export { isPolicyError, POLICY_ERROR_BRAND, PolicyError, PolicyErrorCode } from "./errors.js";
