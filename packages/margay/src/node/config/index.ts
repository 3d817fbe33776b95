/**
 * The node agent's configuration: one schema (`AGENT_CONFIG_SCHEMA`), its resolution from flags,
 * environment and `AgentConfiguration` resources, address autodetection and MTU derivation.
 *
 * @packageDocumentation
 */
export type {
  AgentConfigurationFieldRule,
  AgentConfigurationResources,
  AppliedConfig,
} from "./agent-configuration.js";
export { AGENT_CONFIGURATION_FIELDS, applyAgentConfiguration } from "./agent-configuration.js";
export type { AutodetectOptions, HostAddress, HostInterface } from "./autodetect.js";
export {
  autodetectAddresses,
  DEFAULT_SKIPPED_INTERFACES,
  parseIpAddrJson,
  readHostInterfaces,
  SKIPPED_LINK_KINDS,
} from "./autodetect.js";
export type { AgentConfigErrorDetails, SettingSource } from "./errors.js";
export { AgentConfigError, AgentConfigErrorCode, isAgentConfigError } from "./errors.js";
export type { Encapsulation } from "./mtu.js";
export { configuredEncapsulations, DEFAULT_UNDERLAY_MTU, deriveMtu, poolEncapsulations } from "./mtu.js";
export type { ConfigSources, ConfigWarning, ResolveBootstrapOptions, ResolvedConfig } from "./resolve.js";
export { addSchemaOptions, redactConfig, resolveBootstrapConfig } from "./resolve.js";
export type { AgentConfigSchema, AgentSettings, SettingDef, SettingGroup, SettingName } from "./schema.js";
export { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";
export type {
  AddressConfig,
  AgentConfig,
  AutodetectMethod,
  DefaultPoolConfig,
  EncapsulationMode,
  NetworkingBackend,
} from "./types.js";
