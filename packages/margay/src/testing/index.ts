/**
 * `@margay/margay/testing`: the cluster lab — simulated hosts as network namespaces on an underlay bridge,
 * a router to a second subnet, etcd in its own namespace, a real `margay-node` per host, pods added through
 * the workload API, BIRD as a top-of-rack peer — for end-to-end tests, benchmarks and the demo. Imports
 * no test runner. Needs root, iproute2, etcd, BIRD 2 and ping.
 *
 * @packageDocumentation
 */
export type { BirdNeighbor, BirdPeer, BirdRoute } from "./bird-peer.js";
export { birdConfig, parseBirdPaths, parseBirdShowRoute } from "./bird-peer.js";
export type {
  AgentExit,
  ClusterLab,
  ClusterLabOptions,
  LabHost,
  LabPod,
  LabRoute,
  LabSubnet,
  LabWorkloadApi,
  LabWorkloadRequest,
  PingResult,
} from "./cluster-lab.js";
export { createClusterLab, LAB_ADDRESSES } from "./cluster-lab.js";
export { ClusterLabError, ClusterLabErrorCode, isClusterLabError } from "./errors.js";
export type { Probe, ProbeHttpResponse } from "./probe.js";
export { PROBE_PORTS, startProbe } from "./probe.js";
export type { WaitForOptions } from "./process.js";
export { waitFor } from "./process.js";
export { cleanStaleLabs, listNamespaces } from "./stale.js";
export { watchFlow, type FlowReport, type FlowWatch } from "./flow.js";
