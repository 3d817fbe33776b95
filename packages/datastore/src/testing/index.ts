/**
 * `@margay/datastore/testing`: a private etcd for tests and benchmarks (`startEtcd`, `freePort`), a
 * throw-away PKI for TLS tests and a loopback TCP proxy that partitions one client (`startTcpProxy`). Imports no test runner, so a plain node script can use it; the vitest
 * conformance suite of the `Datastore` seam is `@margay/datastore/conformance`.
 *
 * @packageDocumentation
 */

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
export type { TcpProxy } from "./tcp-proxy.js";
export { startTcpProxy } from "./tcp-proxy.js";
