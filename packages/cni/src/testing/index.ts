/**
 * `@margay/cni/testing`: the conformance kit. Runs any CNI plugin chain through the scenarios of the
 * specification in fresh network namespaces (root required) and reports per scenario.
 *
 * @packageDocumentation
 */

export type { CommandAllocationsOptions } from "./allocations.js";
export {
  commandAllocations,
  hostLocalAllocations,
  margayIpamAllocations,
  parseAllocations,
} from "./allocations.js";
export type { BadInputCase, BadInputOutcome, Invocation, ValidAddOptions } from "./bad-input.js";
export { runBadInput, SPEC_BAD_INPUTS, STRICT_BAD_INPUTS, validAddInvocation } from "./bad-input.js";
export type { NetnsAddress, NetnsLink, TestNetns } from "./netns.js";
export { createNetns, netnsLinks, randomContainerId } from "./netns.js";
export type { RawExecOptions, RawExecResult } from "./raw-exec.js";
export { rawExec } from "./raw-exec.js";
export type { CheckReport, ConformanceReport, ScenarioOutcome, ScenarioReport } from "./report.js";
export { ALL_SCENARIOS, formatReport, ScenarioId } from "./report.js";
export type { CniConformanceOptions, ConformanceOptions } from "./run-conformance.js";
export { runConformance, verifyAttachment } from "./run-conformance.js";
