/**
 * The `margay` plugin's network configuration and the request it sends the agent: everything the
 * plugin reads (its configuration keys, `runtimeConfig` capabilities, `args.cni`, `CNI_ARGS`) is
 * validated here, once, with a JSON path in every message (CNI code 7 for configuration, 4 for
 * `CNI_ARGS`). Imports only `@margay/cni` helpers, so the plugin's bundle stays thin.
 *
 * @packageDocumentation
 */
import {
  CniError,
  CniErrorCode,
  type CmdArgs,
  type NetConf,
  expectArray,
  expectInteger,
  expectObject,
  expectString,
  invalidAt,
  ipFamily,
} from "@margay/cni";
import type { WorkloadAddRequest, WorkloadDelRequest } from "../../node/workload/protocol.js";

/** Defaults of the plugin configuration (the agent's own defaults, see docs/node-config.md). */
export const MARGAY_PLUGIN_DEFAULTS = Object.freeze({
  /** The agent's workload API socket (`MARGAY_AGENT_SOCKET`). */
  agentSocket: "/var/run/margay/agent.sock",
  /** The agent's state directory (`MARGAY_STATE_DIR`): the DEL spool lives under it. */
  stateDir: "/var/lib/margay",
  /** Host-side interface prefix (`@margay/api`'s `DEFAULT_WORKLOAD_INTERFACE_PREFIX`). */
  workloadInterfacePrefix: "mgy",
  /** ADD deadline, seconds (the agent rolls back no later). */
  addTimeoutSeconds: 60,
  /** DEL deadline, seconds: past it the plugin finishes the DEL itself and spools the rest. */
  delTimeoutSeconds: 10,
  /** STATUS, CHECK and GC deadline, seconds. */
  statusTimeoutSeconds: 5,
});

/** The validated `margay` configuration. */
export interface MargayPluginConfig {
  readonly agentSocket: string;
  readonly stateDir: string;
  readonly workloadInterfacePrefix: string;
  /** Veth MTU; undefined: the agent's. */
  readonly mtu: number | undefined;
  /** Pools (names or CIDRs) from `ipam.ipv4_pools` / `ipam.ipv6_pools` / `ipam.pools`. */
  readonly pools: readonly string[];
  readonly addTimeoutMs: number;
  readonly delTimeoutMs: number;
  readonly statusTimeoutMs: number;
  /**
   * The `ipam` section when it delegates to `host-local` (as Calico allows: `subnet` or `ranges`, where a
   * subnet may be `usePodCidr` / `usePodCidrIPv6`); undefined: the agent's IPAM.
   */
  readonly hostLocal: Readonly<Record<string, unknown>> | undefined;
}

const KNOWN_IPAM_TYPES = new Set(["margay", "margay-ipam"]);
const INTERFACE_PREFIX = /^[a-z][a-z0-9]{0,7}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

function absolutePath(v: unknown, path: string): string {
  const s = expectString(v, path, true);
  if (!s.startsWith("/")) throw invalidAt(path, "must be an absolute path", s);
  return s;
}

function seconds(v: unknown, path: string, fallback: number): number {
  return (v === undefined ? fallback : expectInteger(v, path, 1, 3600)) * 1000;
}

/** Validates the plugin-specific keys of `config` (the skeleton has validated the rest). */
export function parseMargayConfig(config: NetConf): MargayPluginConfig {
  const d = MARGAY_PLUGIN_DEFAULTS;
  const pools: string[] = [];
  let hostLocal: Record<string, unknown> | undefined;
  if (config.ipam !== undefined) {
    const ipam = expectObject(config.ipam, "$.ipam");
    const type = expectString(ipam.type, "$.ipam.type", true);
    if (type === "host-local") hostLocal = parseHostLocal(ipam);
    else if (!KNOWN_IPAM_TYPES.has(type))
      throw invalidAt("$.ipam.type", 'must be "margay" (the agent\'s IPAM) or "host-local"', type);
    for (const key of ["ipv4_pools", "ipv6_pools", "pools"] as const) {
      if (ipam[key] !== undefined && hostLocal !== undefined)
        throw invalidAt(`$.ipam.${key}`, "is for the agent's IPAM, not host-local", ipam[key]);
      if (ipam[key] !== undefined)
        pools.push(...expectArray(ipam[key], `$.ipam.${key}`, (e, p) => expectString(e, p, true)));
    }
  }
  const prefix =
    config.workload_interface_prefix === undefined
      ? d.workloadInterfacePrefix
      : expectString(config.workload_interface_prefix, "$.workload_interface_prefix");
  if (!INTERFACE_PREFIX.test(prefix))
    throw invalidAt(
      "$.workload_interface_prefix",
      "must be 1-8 characters of [a-z0-9], a letter first",
      prefix,
    );
  return {
    agentSocket:
      config.agent_socket === undefined ? d.agentSocket : absolutePath(config.agent_socket, "$.agent_socket"),
    stateDir: config.state_dir === undefined ? d.stateDir : absolutePath(config.state_dir, "$.state_dir"),
    workloadInterfacePrefix: prefix,
    mtu: config.mtu === undefined ? undefined : expectInteger(config.mtu, "$.mtu", 576, 65535),
    pools,
    addTimeoutMs: seconds(config.add_timeout_seconds, "$.add_timeout_seconds", d.addTimeoutSeconds),
    delTimeoutMs: seconds(config.del_timeout_seconds, "$.del_timeout_seconds", d.delTimeoutSeconds),
    statusTimeoutMs: seconds(
      config.status_timeout_seconds,
      "$.status_timeout_seconds",
      d.statusTimeoutSeconds,
    ),
    hostLocal,
  };
}

/**
 * The shape of a host-local section the plugin relies on (`subnet`, or `ranges`: an array of range sets,
 * each an array of ranges with a `subnet`); host-local itself validates the rest and reports its own code.
 */
function parseHostLocal(ipam: Record<string, unknown>): Record<string, unknown> {
  const subnet = (v: unknown, path: string) => {
    const s = expectString(v, path, true);
    if (s !== "usePodCidr" && s !== "usePodCidrIPv6" && ipFamily(s.slice(0, s.indexOf("/"))) === 0)
      throw invalidAt(path, 'must be a CIDR, "usePodCidr" or "usePodCidrIPv6"', s);
  };
  if (ipam.subnet === undefined && ipam.ranges === undefined)
    throw invalidAt("$.ipam", 'host-local needs "subnet" or "ranges"');
  if (ipam.subnet !== undefined) subnet(ipam.subnet, "$.ipam.subnet");
  if (ipam.ranges !== undefined) {
    const sets = expectArray(ipam.ranges, "$.ipam.ranges", (set, p) =>
      expectArray(set, p, (r, q) => subnet(expectObject(r, q).subnet, `${q}.subnet`)),
    );
    if (sets.length === 0 || sets.some((set) => set.length === 0))
      throw invalidAt("$.ipam.ranges", "must list at least one range per set", ipam.ranges);
  }
  if (ipam.dataDir !== undefined) absolutePath(ipam.dataDir, "$.ipam.dataDir");
  return ipam;
}

/** CNI_ARGS keys the plugin reads itself (everything else goes to the agent as allocation attributes). */
const OWN_ARGS = new Set(["K8S_POD_NAMESPACE", "K8S_POD_NAME", "IP", "MAC", "IgnoreUnknown"]);

function argIps(raw: string): string[] {
  // `IP=10.0.0.5` or, as Calico, several addresses separated by commas.
  return raw.split(",").map((s, i) => {
    const ip = s.trim();
    if (ipFamily(ip) === 0)
      throw new CniError(
        CniErrorCode.InvalidEnvironmentVariables,
        `CNI_ARGS IP: entry ${i} ${JSON.stringify(ip)} is not an IP address`,
      );
    return ip;
  });
}

/** Addresses asked for: `runtimeConfig.ips` (capability `ips`), `args.cni.ips`, or `CNI_ARGS` `IP=`. */
function requestedIps(args: CmdArgs): string[] | undefined {
  const rc = args.config.runtimeConfig;
  const fromList = (v: unknown, path: string) =>
    expectArray(v, path, (e, p) => {
      const s = expectString(e, p, true);
      // Runtimes pass `10.1.2.3/24` as well as `10.1.2.3` (the spec's convention is a CIDR).
      const host = s.includes("/") ? s.slice(0, s.lastIndexOf("/")) : s;
      if (ipFamily(host) === 0) throw invalidAt(p, "must be an IP address (with or without prefix)", s);
      return host;
    });
  let ips: string[] | undefined;
  if (rc !== undefined && rc.ips !== undefined) ips = fromList(rc.ips, "$.runtimeConfig.ips");
  const cni = cniArgsSection(args.config);
  if (ips === undefined && cni?.ips !== undefined) ips = fromList(cni.ips, "$.args.cni.ips");
  const ipArg = args.cniArgs.values.IP;
  if (ips === undefined && ipArg !== undefined && ipArg !== "") ips = argIps(ipArg);
  if (ips !== undefined) {
    const fams = ips.map((ip) => ipFamily(ip));
    if (new Set(fams).size !== fams.length)
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `requested addresses ${ips.join(", ")}: at most one address per family`,
      );
  }
  return ips;
}

function cniArgsSection(config: NetConf): Record<string, unknown> | undefined {
  if (config.args === undefined) return undefined;
  const args = expectObject(config.args, "$.args");
  return args.cni === undefined ? undefined : expectObject(args.cni, "$.args.cni");
}

function requestedMac(args: CmdArgs): string | undefined {
  const rc = args.config.runtimeConfig;
  let mac: string | undefined;
  let path = "";
  if (rc?.mac !== undefined)
    [mac, path] = [expectString(rc.mac, "$.runtimeConfig.mac"), "$.runtimeConfig.mac"];
  else if (args.cniArgs.values.MAC !== undefined) [mac, path] = [args.cniArgs.values.MAC, "CNI_ARGS MAC"];
  else if (args.config.mac !== undefined) [mac, path] = [expectString(args.config.mac, "$.mac"), "$.mac"];
  if (mac === undefined || mac === "") return undefined;
  if (!MAC.test(mac))
    throw new CniError(
      path === "CNI_ARGS MAC" ? CniErrorCode.InvalidEnvironmentVariables : CniErrorCode.InvalidNetworkConfig,
      `${path}: must be a MAC address like 02:00:00:00:00:01, got ${JSON.stringify(mac)}`,
    );
  return mac.toLowerCase();
}

function labels(config: NetConf): Record<string, string> | undefined {
  const cni = cniArgsSection(config);
  if (cni?.labels === undefined) return undefined;
  const o = expectObject(cni.labels, "$.args.cni.labels");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) out[k] = expectString(v, `$.args.cni.labels.${k}`);
  return out;
}

/**
 * The identity fields of the attachment: the Kubernetes arguments name the endpoint (pod namespace and
 * name); without them it is a plain CNI workload named by its container id in namespace `default`.
 */
function identity(args: CmdArgs): Pick<WorkloadDelRequest, "namespace" | "pod" | "args"> {
  const k8s = args.cniArgs.k8s;
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(args.cniArgs.values)) if (!OWN_ARGS.has(k)) extra[k] = v;
  return {
    ...(k8s.namespace ? { namespace: k8s.namespace } : {}),
    ...(k8s.name ? { pod: k8s.name } : {}),
    ...(Object.keys(extra).length === 0 ? {} : { args: extra }),
  };
}

/** The agent request of an ADD or CHECK. */
export function addRequest(args: CmdArgs, cfg: MargayPluginConfig): WorkloadAddRequest {
  const ips = requestedIps(args);
  const mac = requestedMac(args);
  const l = labels(args.config);
  return {
    containerId: args.containerId,
    ifName: args.ifname,
    netns: args.netns,
    ...identity(args),
    ...(l === undefined ? {} : { labels: l }),
    ...(ips === undefined ? {} : { ips }),
    ...(cfg.pools.length === 0 ? {} : { pools: cfg.pools }),
    ...(mac === undefined ? {} : { mac }),
    ...(cfg.mtu === undefined ? {} : { mtu: cfg.mtu }),
  };
}

/** The agent request of a DEL (never fails on the request-only fields: DEL must not be blocked by them). */
export function delRequest(args: CmdArgs): WorkloadDelRequest {
  return {
    containerId: args.containerId,
    ifName: args.ifname,
    ...(args.netns === "" ? {} : { netns: args.netns }),
    ...identity(args),
  };
}
