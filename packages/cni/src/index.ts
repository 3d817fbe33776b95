/**
 * `@margay/cni`: the CNI specification (1.1.0 / 1.0.0, with 0.4.0 / 0.3.x results) as a TypeScript
 * toolkit — types and validation, a plugin skeleton, and the runtime side (plugin discovery, chained
 * execution, result cache, IPAM delegation). The conformance kit lives in `@margay/cni/testing`.
 *
 * @packageDocumentation
 */

export type { CniArgs, K8sCniArg, K8sPodArgs, ParseCniArgsOptions } from "./spec/cni-args.js";
export { formatCniArgs, K8S_CNI_ARGS, parseCniArgs } from "./spec/cni-args.js";
export {
  decodeJson,
  netConfToList,
  parseNetConf,
  parseNetConfList,
  validAttachmentsOf,
  validateDns,
  validateInterface,
  validateIpConfig,
  validateNetConf,
  validateNetConfList,
  validateRoute,
} from "./spec/config.js";
export type { CniErrorName, CniErrorObject, CniErrorOptions } from "./spec/errors.js";
export {
  CNI_ERROR_BRAND,
  CniError,
  CniErrorCode,
  cniErrorName,
  isCniError,
  PLUGIN_SPECIFIC_ERROR_BASE,
  parseErrorObject,
} from "./spec/errors.js";
export { ipFamily } from "./spec/ip-text.js";
export type { JsonPath } from "./spec/json-path.js";
export {
  cidrFamily,
  expectArray,
  expectBoolean,
  expectCidr,
  expectInteger,
  expectIp,
  expectObject,
  expectString,
  expectStringArray,
  invalidAt,
  pathIndex,
  pathKey,
} from "./spec/json-path.js";
export {
  MAX_INTERFACE_NAME_BYTES,
  validateContainerId,
  validateInterfaceName,
  validateNetnsPath,
  validateNetworkName,
} from "./spec/names.js";
export type { AnyCniResult } from "./spec/result.js";
export { convertResult, emptyResult, isLegacyResultVersion, parseResult } from "./spec/result.js";
export type {
  CniDns,
  CniInterface,
  CniIpConfig,
  CniResult,
  CniRoute,
  IpamConfig,
  LegacyCniResult,
  LegacyIpConfig,
  NetConf,
  NetConfList,
  PluginConf,
  ValidAttachment,
} from "./spec/types.js";
export { CniCommand, VALID_ATTACHMENTS_KEY } from "./spec/types.js";
export type { VersionInfo } from "./spec/version.js";
export {
  CURRENT_CNI_VERSION,
  checkVersionSupported,
  compareVersions,
  highestVersion,
  isVersionString,
  negotiateListVersion,
  SUPPORTED_CNI_VERSIONS,
  versionAtLeast,
} from "./spec/version.js";
export type {
  CmdArgs,
  GcArgs,
  PluginHandlers,
  PluginInfo,
  PluginIo,
  PluginOutcome,
  StatusArgs,
} from "./skel/plugin-main.js";
export {
  DEFAULT_MAX_STDIN_BYTES,
  pluginMain,
  REQUIRED_ENV,
  runPlugin,
  VERB_MIN_VERSION,
} from "./skel/plugin-main.js";
export type { PluginInput } from "./skel/read-limited.js";
export type { CniExecErrorDetails } from "./runtime/exec-error.js";
export {
  CNI_EXEC_ERROR_BRAND,
  CniExecError,
  CniExecErrorCode,
  isCniExecError,
} from "./runtime/exec-error.js";
export type { ExecOptions, ExecOutput, ExecParams } from "./runtime/exec-plugin.js";
export {
  cniEnv,
  DEFAULT_EXEC_TIMEOUT_MS,
  DEFAULT_PLUGIN_ENV,
  execPlugin,
  findPlugin,
  parseJsonOutput,
} from "./runtime/exec-plugin.js";
export type {
  AttachmentKey,
  CachedAttachment,
  ResultCache,
  ResultCacheOptions,
} from "./runtime/result-cache.js";
export { createResultCache, DEFAULT_CACHE_DIR } from "./runtime/result-cache.js";
export type {
  CallOptions,
  CniRuntime,
  CniRuntimeOptions,
  GcNetworkListOptions,
  GcOptions,
  RuntimeConf,
} from "./runtime/runtime.js";
export { createCniRuntime, pluginConfigFor } from "./runtime/runtime.js";
export { delegateAdd, delegateCheck, delegateDel } from "./runtime/delegate.js";
export type { LogAttributes, LogFn, Logger } from "./runtime/logger.js";
export { silentLogger } from "./runtime/logger.js";
