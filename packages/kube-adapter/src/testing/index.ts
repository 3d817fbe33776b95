/**
 * `@margay/kube-adapter/testing`: a faithful fake Kubernetes API server (list with pagination and
 * selectors, watch with history, bookmarks and 410 Gone, every write verb with resourceVersion
 * semantics, rotatable tokens, chaos on command) to test informers, controllers and leader election
 * without a cluster.
 *
 * @packageDocumentation
 */

export type {
  FakeKubeApiServer,
  FakeKubeApiServerOptions,
  FakeKubeApiServerStats,
  FakeKubeRequestInfo,
} from "./fake-kube-api-server.js";
export { startFakeKubeApiServer } from "./fake-kube-api-server.js";
