/**
 * `@margay/dataplane/testing`: the namespace tooling the package's own tests use (scratch namespaces,
 * an underlay of hosts, a probe agent for real packets) and the environment the conformance suite
 * expects. Imports no test runner, so a plain node script can use it; the vitest suite itself is
 * `@margay/dataplane/conformance`.
 *
 * @packageDocumentation
 */
export { CONFORMANCE_FIXTURE } from "./fixture.js";
export { prepareLinuxConformanceNetns } from "./linux-fixture.js";
export type { LabHost, NetnsLab } from "./netns-lab.js";
export { createNetnsLab, createUnderlay } from "./netns-lab.js";
export type { ProbeAgent, ProbeAgentOptions } from "./probe-agent.js";
export { startProbeAgent } from "./probe-agent.js";
