/**
 * The node agent's workload API: the server (`startWorkloadApi`) and its client (`createWorkloadClient`).
 * The CNI plugin imports `./client.js` (and `./errors.js`, `./protocol.js`) directly: this index also
 * pulls in the server side (IPAM, datastore, dataplane).
 *
 * @packageDocumentation
 */
export type { WorkloadCallOptions, WorkloadClient, WorkloadClientOptions } from "./client.js";
export { createWorkloadClient } from "./client.js";
export type { WorkloadApiErrorOptions, WorkloadCniError } from "./errors.js";
export {
  WORKLOAD_ERROR_TABLE,
  WorkloadApiError,
  WorkloadCniCode,
  WorkloadErrorCode,
  cniStatusError,
  isWorkloadApiError,
  isWorkloadErrorCode,
  toCniError,
} from "./errors.js";
export {
  IFNAME_ANNOTATION,
  MTU_ANNOTATION,
  recordedMtu,
  WORKLOAD_HANDLE_PREFIX,
  workloadEndpointName,
  workloadHandleId,
} from "./endpoint.js";
export type {
  WorkloadAddReply,
  WorkloadAddRequest,
  WorkloadAttachment,
  WorkloadCheckReply,
  WorkloadCheckRequest,
  WorkloadDelReply,
  WorkloadDelRequest,
  WorkloadErrorBody,
  WorkloadGcReply,
  WorkloadGcRequest,
  WorkloadInterface,
  WorkloadIp,
  WorkloadRoute,
  WorkloadStatusReply,
  WorkloadVerb,
} from "./protocol.js";
export {
  DEFAULT_DEADLINES_MS,
  MAX_GC_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  TIMEOUT_HEADER,
  WORKLOAD_API_PATHS,
  WORKLOAD_API_VERSION,
} from "./protocol.js";
export type { WorkloadApi, WorkloadApiOptions } from "./server.js";
export { WORKLOAD_API_HEALTH, startWorkloadApi } from "./server.js";
export type { SpooledDel } from "./spool.js";
export { delSpoolDir, readDelSpool, spoolDel } from "./spool.js";
