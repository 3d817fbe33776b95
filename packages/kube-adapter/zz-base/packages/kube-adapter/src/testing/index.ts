/**
 * `@margay/kube-adapter/testing`: a faithful fake Kubernetes API server (list with pagination, watch with
 * history, bookmarks and 410 Gone, chaos on command) to test informers and adapters without a cluster.
 *
 * @packageDocumentation
 */

export type {
  FakeKubeApiServer,
  FakeKubeApiServerOptions,
  FakeKubeApiServerStats,
} from "./fake-kube-api-server.js";
export { startFakeKubeApiServer } from "./fake-kube-api-server.js";
