/**
 * `@margay/kube-adapter`: keeps the Margay model exactly in step with a Kubernetes cluster. List+watch
 * informers (paginated list, watch with bookmarks, resume, 410 → relist, back-off with jitter, indexed
 * caches), converters of Pods, Namespaces, ServiceAccounts, Nodes, NetworkPolicies and
 * (Baseline)AdminNetworkPolicies into model resources, and one serialized writer that reconciles a
 * `Datastore` against the converted caches, touching only what it owns. The fake API server for tests
 * lives in `@margay/kube-adapter/testing`.
 *
 * @packageDocumentation
 */

export type { KubeAdapterErrorDetails, KubeAdapterErrorOptions, KubeStatusCause } from "./errors.js";
export {
  httpError,
  isKubeAdapterError,
  KUBE_ADAPTER_ERROR_BRAND,
  KubeAdapterError,
  KubeAdapterErrorCode,
} from "./errors.js";
export type { Logger } from "./logger.js";
export { silentLogger } from "./logger.js";
export type {
  KubeContainerPort,
  KubeEndpoint,
  KubeEndpointSlice,
  KubeLease,
  KubeList,
  KubeNode,
  KubeNodeAddress,
  KubeObject,
  KubeObjectMeta,
  KubePod,
  KubeService,
  KubeServicePort,
  KubeStatus,
  KubeWatchEvent,
  KubeWatchEventType,
} from "./kube-types.js";
export { ENDPOINTSLICE_SERVICE_NAME_LABEL, objectKey } from "./kube-types.js";
export type { KubeResourceName, KubeResourceType } from "./resources.js";
export { collectionPath, KubeResources, objectPath } from "./resources.js";

export type {
  HttpTransportOptions,
  KubeHttpMethod,
  KubeRequestOptions,
  KubeRequestSettings,
  KubeResponse,
  KubeTransport,
  KubeWriteOptions,
} from "./transport/transport.js";
export { createHttpTransport, readBody } from "./transport/transport.js";
export type { KubeConfigSource, KubeConfigTransportOptions } from "./transport/kubeconfig.js";
export { loadKubeConfig, SERVICE_ACCOUNT_DIR, transportFromKubeConfig } from "./transport/kubeconfig.js";
export { JsonLineFramer } from "./transport/json-lines.js";

export type {
  KubeCallOptions,
  KubeClient,
  KubeDeleteOptions,
  KubeListOptions,
  KubePatchOptions,
  KubePatchType,
  KubeResourceRef,
} from "./client/kube-client.js";
export { createKubeClient, KubePatchContentType } from "./client/kube-client.js";
export type { LeaderElector, LeaderElectorOptions } from "./leader/leader-elector.js";
export { createLeaderElector, LEADER_ELECTION_DEFAULTS, microTime } from "./leader/leader-elector.js";

export type { Backoff, BackoffOptions } from "./informer/backoff.js";
export { createBackoff } from "./informer/backoff.js";
export type { IndexFunc, ObjectCacheReader } from "./informer/object-cache.js";
export { NAMESPACE_INDEX, ObjectCache } from "./informer/object-cache.js";
export type {
  Informer,
  InformerEvent,
  InformerEventType,
  InformerOptions,
  InformerStats,
  InformerTransition,
  InformerTransitionReason,
} from "./informer/informer.js";
export { createInformer, dropManagedFields, InformerPhase } from "./informer/informer.js";

export type { ConvertContext, ConvertibleResourceName, ResourceConverter } from "./convert/converters.js";
export { defaultConverters } from "./convert/converters.js";
export type { ConvertPodOptions, PodEndpointFields } from "./convert/pod.js";
export {
  convertPod,
  ORCHESTRATOR_KUBERNETES,
  podEndpointFields,
  POD_ENDPOINT_NAME,
  POD_IPADDRS_ANNOTATION,
  POD_IPV4POOLS_ANNOTATION,
  POD_IPV6POOLS_ANNOTATION,
  podInterfaceName,
  podSkipReason,
  workloadEndpointName,
} from "./convert/pod.js";
export {
  CALICO_AS_NUMBER_ANNOTATION,
  CALICO_IPV4_ADDRESS_ANNOTATION,
  CALICO_IPV6_ADDRESS_ANNOTATION,
  convertNode,
  POD_CIDRS_ANNOTATION,
} from "./convert/node.js";

export type { ModelSync, ModelSyncOptions, ModelSyncStats, ResyncReport } from "./sync/model-sync.js";
export { createModelSync } from "./sync/model-sync.js";
export {
  DEFAULT_OWNER,
  isOwnedBy,
  OWNER_ANNOTATION,
  SOURCE_ANNOTATION,
  SOURCE_UID_ANNOTATION,
  withOwnership,
} from "./sync/ownership.js";
export { fingerprint } from "./sync/fingerprint.js";

export type { KubeAdapter, KubeAdapterOptions, KubeAdapterStats } from "./kube-adapter.js";
export { ALL_KUBE_RESOURCES, createKubeAdapter, NODE_INDEX } from "./kube-adapter.js";
