/**
 * `@margay/dataplane/conformance`: the shared conformance suite of the `DataplaneDriver` seam, for
 * vitest (an optional peer dependency; this subpath imports it). Every driver, ours or a vendor's, runs
 * it. The non-vitest helpers (namespaces, the probe agent, {@link CONFORMANCE_FIXTURE}) are in
 * `@margay/dataplane/testing`, which a plain node script can import.
 *
 * @packageDocumentation
 */
export type { DataplaneConformanceHarness } from "../testing/conformance.js";
export { describeDataplaneConformance } from "../testing/conformance.js";
export { CONFORMANCE_FIXTURE } from "../testing/fixture.js";
