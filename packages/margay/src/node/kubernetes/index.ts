/**
 * Kubernetes mode of the node agent: the API connection, the workload API's add hook (pod labels,
 * service account, profiles, annotation pools and addresses) and the Services/EndpointSlices feed of
 * service-IP advertisement.
 *
 * @packageDocumentation
 */
export type { KubernetesApi, OpenKubernetesApiOptions } from "./connection.js";
export { openKubernetesApi } from "./connection.js";
export type { KubeNodeGetter, NodePodCidrsSource, NodePodCidrsSourceOptions } from "./node-pod-cidrs.js";
export { createNodePodCidrsSource, nodeSpecPodCidrs } from "./node-pod-cidrs.js";
export type { KubeObjectGetter, PodInfoSource, PodInfoSourceOptions, PodNetworkInfo } from "./pod-info.js";
export { applyPodNetworkInfo, createPodInfoSource, podNetworkInfo } from "./pod-info.js";
export type { ServiceFeed, ServiceFeedOptions } from "./service-feed.js";
export { slimEndpointSlice, slimService, startServiceFeed } from "./service-feed.js";
