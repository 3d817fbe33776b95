/**
 * `@margay/datastore/conformance`: the shared conformance suite of the `Datastore` seam, for vitest (an
 * optional peer dependency; this subpath imports it). Every backend, ours or a vendor's, runs it. The
 * helpers that need no test runner (`startEtcd`, `freePort`, `createTestPki`) are in
 * `@margay/datastore/testing`, which a plain node script can import.
 *
 * @packageDocumentation
 */
export type {
  ConformanceContext,
  ConformanceFactory,
  ConformanceOptions,
  DatastoreConformanceOptions,
} from "../testing/conformance.js";
export { describeDatastoreConformance } from "../testing/conformance.js";
