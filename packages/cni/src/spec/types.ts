/**
 * The JSON shapes of the CNI specification (1.1.0 and 1.0.0, with 0.4.0 / 0.3.1 results for older
 * runtimes). Field names are the spec's.
 *
 * @packageDocumentation
 */

/** DNS settings (configuration `dns` and result `dns`). */
export interface CniDns {
  /** Priority-ordered nameserver addresses (IPv4 or IPv6). */
  nameservers?: string[];
  /** Local domain for short hostname lookups. */
  domain?: string;
  /** Priority-ordered search domains. */
  search?: string[];
  /** Resolver options. */
  options?: string[];
}

/** IPAM section of a plugin configuration: `type` names the IPAM plugin, the rest is its own. */
export interface IpamConfig {
  /** File name of the IPAM plugin executable. */
  type: string;
  /** IPAM-specific keys. */
  [key: string]: unknown;
}

/** An interface in a result. */
export interface CniInterface {
  /** Interface name (in the sandbox when `sandbox` is set). */
  name: string;
  /** Hardware address, when meaningful. */
  mac?: string;
  /** MTU (1.1.0). */
  mtu?: number;
  /** Path of the network namespace for interfaces inside a sandbox. */
  sandbox?: string;
  /** vhost-user / similar socket path (1.1.0). */
  socketPath?: string;
  /** PCI address of a device (1.1.0). */
  pciID?: string;
}

/** An address in a 1.x result. */
export interface CniIpConfig {
  /** Address with prefix length, e.g. `10.1.0.5/24`. */
  address: string;
  /** Default gateway for this subnet, if any. */
  gateway?: string;
  /** Index into `interfaces` of the interface holding this address. */
  interface?: number;
}

/** A route in a result or in IPAM output. */
export interface CniRoute {
  /** Destination prefix. */
  dst: string;
  /** Next hop; the gateway of the subnet when omitted. */
  gw?: string;
  /** Route MTU (1.1.0). */
  mtu?: number;
  /** Advertised MSS (1.1.0). */
  advmss?: number;
  /** Route priority / metric (1.1.0). */
  priority?: number;
  /** Routing table id (1.1.0). */
  table?: number;
  /** Route scope (1.1.0). */
  scope?: number;
}

/** The result of ADD in 1.0.0 / 1.1.0 form (the toolkit's internal form for every version). */
export interface CniResult {
  /** The spec version this result is formatted for. */
  cniVersion: string;
  /** Interfaces created or touched. */
  interfaces?: CniInterface[];
  /** Assigned addresses. */
  ips?: CniIpConfig[];
  /** Routes. */
  routes?: CniRoute[];
  /** DNS information. */
  dns?: CniDns;
}

/** An address in a 0.3.x / 0.4.0 result: carries an explicit IP `version`. */
export interface LegacyIpConfig extends CniIpConfig {
  /** `"4"` or `"6"`. */
  version: "4" | "6";
}

/** A 0.3.0 / 0.3.1 / 0.4.0 result. */
export interface LegacyCniResult {
  /** `0.3.0`, `0.3.1` or `0.4.0`. */
  cniVersion: string;
  /** Interfaces (name, mac, sandbox). */
  interfaces?: Array<Pick<CniInterface, "name" | "mac" | "sandbox">>;
  /** Addresses with an explicit `version`. */
  ips?: LegacyIpConfig[];
  /** Routes (dst, gw). */
  routes?: Array<Pick<CniRoute, "dst" | "gw">>;
  /** DNS information. */
  dns?: CniDns;
}

/**
 * A single plugin configuration as the plugin receives it on stdin (spec "Plugin configuration
 * objects" with the runtime-injected `name`, `cniVersion`, `runtimeConfig` and `prevResult`).
 */
export interface NetConf {
  /** Spec version of this configuration. */
  cniVersion: string;
  /** Network name. */
  name: string;
  /** File name of the plugin executable. */
  type: string;
  /** Capabilities this plugin accepts through `runtimeConfig`. */
  capabilities?: Record<string, boolean>;
  /** Capability values injected by the runtime. */
  runtimeConfig?: Record<string, unknown>;
  /** Arbitrary runtime data; plugins ignore keys they do not understand. */
  args?: Record<string, unknown>;
  /** IPAM section. */
  ipam?: IpamConfig;
  /** DNS settings. */
  dns?: CniDns;
  /** The result of the previous plugin in the chain (raw, in the config's version). */
  prevResult?: Record<string, unknown>;
  /** Plugin-specific keys. */
  [key: string]: unknown;
}

/** A plugin entry of a configuration list (no `name` / `cniVersion`: the runtime injects them). */
export interface PluginConf {
  /** File name of the plugin executable. */
  type: string;
  /** Capabilities this plugin accepts through `runtimeConfig`. */
  capabilities?: Record<string, boolean>;
  /** Arbitrary runtime data. */
  args?: Record<string, unknown>;
  /** IPAM section. */
  ipam?: IpamConfig;
  /** DNS settings. */
  dns?: CniDns;
  /** Plugin-specific keys. */
  [key: string]: unknown;
}

/** A network configuration list (what a runtime reads from its configuration directory). */
export interface NetConfList {
  /** Spec version of the list. */
  cniVersion: string;
  /** 1.1.0: every version the list is valid for; the runtime uses the highest it supports. */
  cniVersions?: string[];
  /** Network name. */
  name: string;
  /** Runtimes must not call CHECK for this list. */
  disableCheck?: boolean;
  /** 1.1.0: runtimes must not call GC for this list. */
  disableGC?: boolean;
  /** The plugins, executed in order for ADD and CHECK, in reverse for DEL. */
  plugins: PluginConf[];
}

/** One attachment in GC's `cni.dev/valid-attachments`. */
export interface ValidAttachment {
  /** Container id of a still-valid attachment. */
  containerID: string;
  /** Interface name of that attachment. */
  ifname: string;
}

/** Key under which a GC request lists the still-valid attachments. */
export const VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments";

/** The verbs of the execution protocol. */
export const CniCommand = {
  Add: "ADD",
  Del: "DEL",
  Check: "CHECK",
  Status: "STATUS",
  Gc: "GC",
  Version: "VERSION",
} as const;
/** Union of {@link CniCommand} values. */
export type CniCommand = (typeof CniCommand)[keyof typeof CniCommand];
