/**
 * `@margay/api`: the Margay resource model. Typed resources (Calico v3 semantics, group/version
 * `margay.io/v1`), runtime validation, YAML/JSON manifest I/O with Calico conversion, and Calico's
 * label selector language.
 *
 * @packageDocumentation
 */
export type { ApiError } from "./errors.js";
export { ApiErrorCode, isApiError } from "./errors.js";
export type { Backoff, BackoffOptions } from "./runtime/backoff.js";
export { backoffDelay, createBackoff, sleep } from "./runtime/backoff.js";
export type { LogAttributes, LogFn, Logger, LogLevel, LogRecord, RecordingLogger } from "./runtime/logger.js";
export { createRecordingLogger, LOG_LEVELS, silentLogger } from "./runtime/logger.js";
export type { InterfaceNameErrorDetails, WorkloadInterfaceIdentity } from "./interface-name.js";
export {
  DEFAULT_WORKLOAD_INTERFACE_PREFIX,
  InterfaceNameError,
  isInterfaceNameError,
  isValidInterfaceName,
  isValidWorkloadInterfacePrefix,
  MAX_INTERFACE_NAME_BYTES,
  MAX_INTERFACE_NAME_LENGTH,
  validateWorkloadInterfacePrefix,
  workloadInterfaceName,
} from "./interface-name.js";
export type {
  AllNode,
  BoolNode,
  GlobalNode,
  HasNode,
  LabelRestriction,
  LabelRestrictions,
  Labels,
  LabelSetNode,
  LabelValueNode,
  NotNode,
  Selector,
  SelectorNode,
  SelectorParseErrorDetails,
  SelectorParseResult,
  SelectorToken,
} from "./selector/index.js";
export {
  canonicalSelector,
  evaluateSelector,
  isSelectorParseError,
  labelRestrictions,
  MAX_SELECTOR_NESTING,
  parseSelector,
  parseSelectorAst,
  SelectorParseError,
  SelectorTokenKind,
  selectorMatches,
  selectorUniqueId,
  tokenizeSelector,
  tryParseSelector,
} from "./selector/index.js";

export type {
  AgentConfiguration,
  AgentConfigurationSpec,
  AgentConfigurationFieldWithoutDefault,
  ProtoPort,
} from "./resources/agent-config.js";
export { AGENT_CONFIGURATION_DEFAULTS } from "./resources/agent-config.js";
export type {
  BGPConfiguration,
  BGPConfigurationSpec,
  BGPPassword,
  BGPPeer,
  BGPPeerSpec,
  Community,
  ParsedCommunity,
  ParsedPeerIP,
  PrefixAdvertisement,
  SecretKeyRef,
  ServiceIPBlock,
} from "./resources/bgp.js";
export {
  BGP_CONFIGURATION_DEFAULTS,
  BGPSourceAddress,
  parseCommunity,
  parsePeerIP,
  tryParseCommunity,
} from "./resources/bgp.js";
export type {
  HostEndpoint,
  HostEndpointSpec,
  IPNAT,
  WorkloadEndpoint,
  WorkloadEndpointPort,
  WorkloadEndpointSpec,
} from "./resources/endpoints.js";
export type {
  BlockSizeRange,
  IPAMConfig,
  IPAMConfigSpec,
  IPPool,
  IPPoolSpec,
  IPReservation,
  IPReservationSpec,
} from "./resources/ipam.js";
export {
  AssignmentMode,
  BLOCK_SIZE_RANGE,
  DEFAULT_MAX_BLOCKS_PER_HOST,
  EncapsulationMode,
  IPAM_CONFIG_NAME,
  IPPoolAllowedUse,
} from "./resources/ipam.js";
export type { KindInfo, Resource, ResourceOfKind } from "./resources/kinds.js";
export {
  isAgentConfiguration,
  isBGPConfiguration,
  isBGPPeer,
  isGlobalNetworkPolicy,
  isGlobalNetworkSet,
  isHostEndpoint,
  isIPAMConfig,
  isIPPool,
  isIPReservation,
  isNetworkPolicy,
  isNetworkSet,
  isNode,
  isNodeStatus,
  isProfile,
  isResourceKind,
  isResourceOfKind,
  isTier,
  isWorkloadEndpoint,
  KIND_INFO,
  RESOURCE_KINDS,
  ResourceKind,
} from "./resources/kinds.js";
export type { ObjectMeta, ResourceOf } from "./resources/meta.js";
export { API_VERSION, CALICO_API_VERSION } from "./resources/meta.js";
export type {
  GlobalNetworkSet,
  GlobalNetworkSetSpec,
  NetworkSet,
  NetworkSetSpec,
} from "./resources/network-sets.js";
export type { Node, NodeAddress, NodeBGPSpec, NodeSpec, OrchRef } from "./resources/node.js";
export { NodeAddressType } from "./resources/node.js";
export type {
  NodeStatus,
  NodeStatusAddresses,
  NodeStatusAgent,
  NodeStatusBGPPeer,
  NodeStatusComponent,
  NodeStatusDataplane,
  NodeStatusForeignRule,
  NodeStatusUnresolvedRoute,
  NodeStatusReport,
  NodeStatusSpec,
} from "./resources/node-status.js";
export { BGPPeerType, BGPSessionState } from "./resources/node-status.js";
export type {
  GlobalNetworkPolicy,
  GlobalNetworkPolicySpec,
  NetworkPolicy,
  NetworkPolicySpec,
  PolicySpecBase,
  Profile,
  ProfileSpec,
  Tier,
  TierSpec,
} from "./resources/policy.js";
export {
  DEFAULT_TIER_NAME,
  DEFAULT_TIER_ORDER,
  defaultPolicyTypes,
  TierDefaultAction,
} from "./resources/policy.js";
export type {
  EndpointPort,
  EntityRule,
  HTTPMatch,
  HTTPPath,
  ICMPFields,
  ParsedPort,
  Port,
  Protocol,
  ProtocolName,
  Rule,
  RuleMetadata,
  ServiceAccountMatch,
  ServiceMatch,
} from "./resources/rules.js";
export {
  PolicyType,
  PROTOCOL_NAMES,
  PROTOCOL_NUMBERS,
  parsePort,
  protocolNumber,
  protocolSupportsPorts,
  RuleAction,
} from "./resources/rules.js";
export type { ValidationErrorDetails, ValidationIssue } from "./validation/errors.js";
export { isValidationError, ValidationError } from "./validation/errors.js";
export { parseAsNumber, parseGoDuration } from "./validation/fields.js";
export type {
  HostBits,
  IpAddress,
  IpCidr,
  IpParseErrorCode,
  IpParseErrorDetails,
  IpVersion,
  ParseCidrOptions,
} from "./net/ip.js";
export {
  addressBits,
  cidrContains,
  cidrContainsCidr,
  cidrFromValue,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  enclosingCidr,
  formatIp,
  ipAt,
  ipFromValue,
  ipVersion,
  isIpParseError,
  IpParseError,
  parseCidr,
  parseIp,
  prefixMask,
  tryParseCidr,
  tryParseIp,
} from "./net/ip.js";
export type { CheckResult } from "./validation/resource.js";
export { checkResource, validateResource, withDefaults } from "./validation/resource.js";

export { CALICO_KIND_MAP } from "./io/calico.js";
export type { ManifestErrorDetails } from "./io/errors.js";
export { isManifestError, ManifestError, ManifestErrorReason } from "./io/errors.js";
export type { ManifestItem, ManifestParseOptions, ManifestParseResult } from "./io/parse.js";
export { CONVERTED_FROM_ANNOTATION, MAX_MANIFEST_NESTING, parseManifests } from "./io/parse.js";
export type { ToJSONOptions } from "./io/serialize.js";
export { toJSON, toYAML } from "./io/serialize.js";
