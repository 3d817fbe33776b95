/**
 * The node agent's dataplane pipeline (datastore syncer → policy calc graph + route calculator → driver)
 * and the driver the agent's configuration chooses.
 *
 * @packageDocumentation
 */
export type { AgentDriver, AgentDriverOptions } from "./driver.js";
export { createAgentDriver, endpointToHostVerdict, linuxDriverOptions } from "./driver.js";
export type { PipelineErrorDetails } from "./errors.js";
export { isPipelineError, PIPELINE_ERROR_BRAND, PipelineError, PipelineErrorCode } from "./errors.js";
export { endpointKey, PIPELINE_KINDS, PIPELINE_POLICY_KINDS, PIPELINE_ROUTE_KINDS } from "./inputs.js";
export type {
  DataplanePipelineOptions,
  DataplanePipelineStatus,
  RunningDataplanePipeline,
} from "./pipeline.js";
export { startDataplanePipeline } from "./pipeline.js";
export { routeSideKey } from "./route-set.js";
