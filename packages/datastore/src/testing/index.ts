/**
 * `@margay/datastore/testing`: the shared conformance suite of the `Datastore` seam (run it against
 * any backend from a vitest file) and a helper that runs a private etcd for tests and benchmarks.
 *
 * Needs `vitest` (an optional peer dependency) for the conformance suite.
 *
 * @packageDocumentation
 */

export type { ConformanceContext, ConformanceFactory, ConformanceOptions } from "./conformance.js";
export { describeDatastoreConformance } from "./conformance.js";
export type { CreateTestPkiOptions, TestCa, TestKeyPair, TestPki } from "./pki.js";
export { createTestPki } from "./pki.js";
export type {
  EtcdServer,
  StartEtcdOptions,
  StartEtcdRbacOptions,
  StartEtcdTlsOptions,
  StartEtcdUser,
} from "./start-etcd.js";
export { freePort, startEtcd } from "./start-etcd.js";
