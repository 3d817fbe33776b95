/**
 * `@margay/dataplane/testing`: the `DataplaneDriver` conformance suite and the namespace tooling the
 * package's own tests use (scratch namespaces, an underlay of hosts, a probe agent for real packets).
 *
 * @packageDocumentation
 */
export type { DataplaneConformanceHarness } from "./conformance.js";
export { CONFORMANCE_FIXTURE, describeDataplaneConformance } from "./conformance.js";
export { prepareLinuxConformanceNetns } from "./linux-fixture.js";
export type { LabHost, NetnsLab } from "./netns-lab.js";
export { createNetnsLab, createUnderlay } from "./netns-lab.js";
export type { ProbeAgent, ProbeAgentOptions } from "./probe-agent.js";
export { startProbeAgent } from "./probe-agent.js";
