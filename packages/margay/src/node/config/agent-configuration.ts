/**
 * Folds the `AgentConfiguration` resources (`default` for the cluster, `node.<name>` for one node) into
 * a resolved configuration, below flags and environment (see `resolve.ts` for the precedence).
 *
 * Every field the api models has a rule in {@link AGENT_CONFIGURATION_FIELDS}: honoured (it sets a
 * schema setting), ignored with a warning (margay-node does that job another way), or rejected (honouring
 * it silently in another way would mislead). A test checks the table against the api's field list.
 *
 * @packageDocumentation
 */
import {
  AGENT_CONFIGURATION_DEFAULTS,
  API_VERSION,
  type AgentConfiguration,
  type AgentConfigurationSpec,
  checkResource,
} from "@margay/api";
import { AgentConfigError, AgentConfigErrorCode, type SettingSource } from "./errors.js";
import { type ConfigSources, type ConfigWarning, buildAgentConfig, settingsOf } from "./resolve.js";
import { AGENT_CONFIG_SCHEMA, type AgentSettings, SETTING_NAMES, type SettingName } from "./schema.js";
import type { AgentConfig } from "./types.js";

/** How margay-node treats one `AgentConfigurationSpec` field. */
export type AgentConfigurationFieldRule =
  /** Sets the schema setting (through the schema's `resource.map`). */
  | { readonly rule: "honoured"; readonly setting: SettingName }
  /**
   * Has no effect on margay-node; a warning says why whenever the value is not `harmless` (by default
   * harmless: the api's built-in default, so a resource stored with defaults filled in stays quiet).
   */
  | { readonly rule: "ignored"; readonly reason: string; readonly harmless?: (value: never) => boolean }
  /** Cannot be honoured: the agent refuses to start while a value other than `allowed` is set. */
  | { readonly rule: "rejected"; readonly reason: string; readonly allowed: (value: never) => boolean };

const honoured = (setting: SettingName): AgentConfigurationFieldRule => ({ rule: "honoured", setting });

/** The rule of every `AgentConfigurationSpec` field (the type makes the table complete). */
export const AGENT_CONFIGURATION_FIELDS: Readonly<
  Record<keyof AgentConfigurationSpec, AgentConfigurationFieldRule>
> = Object.freeze({
  logSeverityScreen: honoured("logLevel"),
  interfacePrefix: honoured("interfacePrefixes"),
  defaultEndpointToHostAction: honoured("endpointToHostAction"),
  ipipEnabled: {
    rule: "ignored",
    reason: "margay-node sets up IPIP when a pool uses it (the pool's ipipMode)",
  },
  ipipMTU: {
    rule: "ignored",
    reason: "margay-node uses one MTU for veths and tunnel devices: set vxlanMTU or MARGAY_MTU",
  },
  vxlanEnabled: {
    rule: "ignored",
    reason: "margay-node sets up VXLAN when a pool uses it (the pool's vxlanMode) or the backend is vxlan",
  },
  vxlanPort: honoured("vxlanPort"),
  vxlanVNI: honoured("vxlanVni"),
  vxlanMTU: honoured("mtu"),
  vxlanMTUV6: {
    rule: "ignored",
    reason: "margay-node uses one MTU for veths and tunnel devices: set vxlanMTU or MARGAY_MTU",
  },
  natOutgoingAddress: {
    rule: "rejected",
    reason:
      "margay-node masquerades to the address of the outgoing interface; a fixed source address (SNAT) is not supported",
    allowed: () => false,
  },
  failsafeInboundHostPorts: honoured("failsafeInbound"),
  failsafeOutboundHostPorts: honoured("failsafeOutbound"),
  routeRefreshInterval: {
    rule: "ignored",
    reason:
      "margay-node programs routes on every change and reconciles them with the dataplane (dataplaneRefreshInterval)",
  },
  dataplaneRefreshInterval: honoured("reconcileIntervalMs"),
  reportingInterval: honoured("statusIntervalMs"),
  routeSource: {
    rule: "rejected",
    reason: "margay-node computes remote workload routes from IPAM blocks only (routeSource CalicoIPAM)",
    allowed: (v: string) => v === "CalicoIPAM",
  },
  removeExternalRoutes: {
    rule: "ignored",
    reason:
      "margay-node only ever removes routes marked with its own protocol (deviceRouteProtocol); routes of other owners are left alone",
    harmless: (v: boolean) => v === false,
  },
  deviceRouteProtocol: honoured("routeProtocol"),
  healthEnabled: honoured("healthEnabled"),
  healthHost: honoured("healthHost"),
  healthPort: honoured("healthPort"),
  prometheusMetricsEnabled: honoured("metricsEnabled"),
  prometheusMetricsPort: honoured("metricsPort"),
} satisfies Record<keyof AgentConfigurationSpec, AgentConfigurationFieldRule>);

/** The resources to fold in: the cluster's `default` and this node's `node.<name>`, if they exist. */
export interface AgentConfigurationResources {
  /** `AgentConfiguration default` (a resource, or just its spec). */
  readonly global?: AgentConfiguration | AgentConfigurationSpec | undefined;
  /** `AgentConfiguration node.<nodeName>` (a resource, or just its spec). */
  readonly node?: AgentConfiguration | AgentConfigurationSpec | undefined;
}

/** What {@link applyAgentConfiguration} returns. */
export interface AppliedConfig {
  readonly config: AgentConfig;
  readonly sources: ConfigSources;
  /** Fields set to values margay-node does not act on (log them). */
  readonly warnings: readonly ConfigWarning[];
}

function validSpec(input: AgentConfiguration | AgentConfigurationSpec, name: string): AgentConfigurationSpec {
  const resource =
    typeof input === "object" && input !== null && "kind" in input && "spec" in input
      ? input
      : { apiVersion: API_VERSION, kind: "AgentConfiguration", metadata: { name }, spec: input };
  const r = checkResource(resource, "AgentConfiguration");
  if (!r.ok)
    throw new AgentConfigError(
      AgentConfigErrorCode.InvalidResource,
      `AgentConfiguration ${name}: ${r.issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`,
      { field: `AgentConfiguration ${name}`, value: input, issues: r.issues },
      r.error,
    );
  return (r.resource as AgentConfiguration).spec;
}

const DEFAULTS = AGENT_CONFIGURATION_DEFAULTS as Readonly<Record<string, unknown>>;

/**
 * Folds the `AgentConfiguration` resources into `config`: each honoured field sets its setting unless a
 * flag or environment variable set it (`node.<name>` wins over `default`); ignored fields produce
 * warnings; rejected ones an error. The result is checked again as a whole (cross-setting rules).
 *
 * @throws {@link AgentConfigError} `invalid-resource` for an invalid resource or a rejected field,
 *   `invalid-value` / `conflicting-settings` when the merged configuration is not valid.
 */
export function applyAgentConfiguration(
  config: AgentConfig,
  sources: ConfigSources,
  resources: AgentConfigurationResources,
): AppliedConfig {
  const nodeName = `node.${config.nodeName}`;
  const layers: { spec: AgentConfigurationSpec; name: string; source: SettingSource }[] = [];
  // Lowest first: the node's resource overrides the cluster's.
  if (resources.global !== undefined)
    layers.push({ spec: validSpec(resources.global, "default"), name: "default", source: "global-resource" });
  if (resources.node !== undefined)
    layers.push({ spec: validSpec(resources.node, nodeName), name: nodeName, source: "node-resource" });

  const settings: Record<SettingName, unknown> = { ...settingsOf(config) };
  const out: Record<SettingName, SettingSource> = { ...sources };
  const warnings: ConfigWarning[] = [];
  for (const { spec, name, source } of layers) {
    for (const [field, value] of Object.entries(spec) as [keyof AgentConfigurationSpec, unknown][]) {
      if (value === undefined) continue;
      const rule = AGENT_CONFIGURATION_FIELDS[field];
      const at = `AgentConfiguration ${name} spec.${field}`;
      if (rule.rule === "rejected") {
        if ((rule.allowed as (v: unknown) => boolean)(value)) continue;
        throw new AgentConfigError(AgentConfigErrorCode.InvalidResource, `${at}: ${rule.reason}`, {
          field: at,
          value,
        });
      }
      if (rule.rule === "ignored") {
        const harmless = rule.harmless as ((v: unknown) => boolean) | undefined;
        const quiet = harmless ? harmless(value) : field in DEFAULTS && same(DEFAULTS[field], value);
        if (!quiet)
          warnings.push({ code: "ignored-field", field: at, message: `${at} has no effect: ${rule.reason}` });
        continue;
      }
      const current = out[rule.setting];
      if (current === "flag" || current === "env") continue;
      const mapping = AGENT_CONFIG_SCHEMA[rule.setting].resource;
      if (mapping === undefined || mapping.field !== field)
        throw new Error(`schema setting ${rule.setting} does not map AgentConfiguration field ${field}`);
      settings[rule.setting] = (mapping.map as (v: unknown) => unknown)(value);
      out[rule.setting] = source;
    }
  }
  return { config: buildAgentConfig(settings as unknown as AgentSettings, out), sources: out, warnings };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Settings an `AgentConfiguration` field can set (for the reference page). */
export function resourceFieldOf(setting: SettingName): keyof AgentConfigurationSpec | undefined {
  return AGENT_CONFIG_SCHEMA[setting].resource?.field;
}

/** Every setting set by some `AgentConfiguration` field (schema order). */
export const RESOURCE_SETTINGS: readonly SettingName[] = Object.freeze(
  SETTING_NAMES.filter((n) => AGENT_CONFIG_SCHEMA[n].resource !== undefined),
);
