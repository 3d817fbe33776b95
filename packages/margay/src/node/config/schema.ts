/**
 * `AGENT_CONFIG_SCHEMA`: every setting of `margay-node`, declared ONCE (type, default, environment
 * variable, flag, `AgentConfiguration` field, description). The environment parser, the commander flags
 * and `--help`, the `AgentConfiguration` mapping and the reference page `docs/node-config.md` are all
 * derived from this object, so they cannot disagree.
 *
 * @packageDocumentation
 */
import { AGENT_CONFIGURATION_DEFAULTS, type AgentConfigurationSpec, parseGoDuration } from "@margay/api";
import type { FailsafePort } from "@margay/dataplane-contract";
import {
  ParseFailure,
  addressModeParser,
  autodetectMethodParser,
  blockSizeParser,
  cidrParser,
  durationParser,
  enumParser,
  integerParser,
  parseArgv,
  parseAs,
  parseBoolean,
  parseEncapsulationMode,
  parseFailsafePorts,
  parseInterfaceName,
  parseInterfacePrefixes,
  parseList,
  parseNodeName,
  parsePath,
  parsePathList,
  parseSelectorText,
  parseString,
} from "./parsers.js";
import type {
  AddressConfig,
  AgentConfig,
  AutodetectMethod,
  EncapsulationMode,
  NetworkingBackend,
} from "./types.js";

/** The flat values the schema declares; `AgentConfig` is assembled from them (see `resolve.ts`). */
export interface AgentSettings {
  nodeName: string;
  datastoreType: "memory" | "etcd";
  etcdEndpoints: readonly string[] | undefined;
  etcdPrefix: string | undefined;
  etcdCaCertFile: string | undefined;
  etcdCertFile: string | undefined;
  etcdKeyFile: string | undefined;
  etcdUsername: string | undefined;
  etcdPasswordFile: string | undefined;
  kubeconfig: string | undefined;
  kubernetesServiceHost: string | undefined;
  kubernetesServicePort: number;
  stateDir: string;
  ip: AddressConfig["mode"];
  ipAutodetectionMethod: AutodetectMethod;
  ip6: AddressConfig["mode"];
  ip6AutodetectionMethod: AutodetectMethod;
  as: number | undefined;
  networkingBackend: NetworkingBackend;
  noDefaultPools: boolean;
  ipv4PoolCidr: string;
  ipv4PoolBlockSize: number;
  ipv4PoolIpip: EncapsulationMode;
  ipv4PoolVxlan: EncapsulationMode;
  ipv4PoolNatOutgoing: boolean;
  ipv4PoolNodeSelector: string;
  ipv6PoolCidr: string;
  ipv6PoolBlockSize: number;
  ipv6PoolIpip: EncapsulationMode;
  ipv6PoolVxlan: EncapsulationMode;
  ipv6PoolNatOutgoing: boolean;
  ipv6PoolNodeSelector: string;
  interfacePrefixes: readonly string[];
  mtu: number | undefined;
  vxlanPort: number;
  vxlanVni: number;
  vxlanDevice: string;
  workloadSocket: string;
  workloadGcGracePeriodMs: number;
  healthEnabled: boolean;
  healthHost: string;
  healthPort: number;
  metricsEnabled: boolean;
  metricsHost: string;
  metricsPort: number;
  metricsPerPeerLabels: boolean;
  readinessRequiresAllBgpPeers: boolean;
  statusIntervalMs: number;
  dataplaneDriver: "linux" | "remote";
  dataplaneRemoteCommand: readonly string[] | undefined;
  reconcileIntervalMs: number;
  routeProtocol: number;
  endpointToHostAction: "Drop" | "Accept" | "Return";
  nftTable: string;
  failsafeInbound: readonly FailsafePort[];
  failsafeOutbound: readonly FailsafePort[];
  bgpGracefulRestartSeconds: number;
  logLevel: AgentConfig["logLevel"];
}

/** A key of {@link AgentSettings} (and of `AGENT_CONFIG_SCHEMA`). */
export type SettingName = keyof AgentSettings;

/** Sections of the reference page, in order. */
export const SETTING_GROUPS = [
  "Node",
  "Datastore",
  "Kubernetes",
  "Addresses",
  "Networking",
  "Default IP pools",
  "Workload API",
  "Health and metrics",
  "Dataplane",
  "BGP",
  "Logging",
] as const;
/** A section of the reference page. */
export type SettingGroup = (typeof SETTING_GROUPS)[number];

/** What a default may depend on besides other settings. */
export interface DefaultContext {
  /** The host name (`os.hostname()` unless the caller gives one). */
  readonly hostname: string;
}

/** How an `AgentConfiguration` field maps onto a setting. */
export interface ResourceMapping<T> {
  /** The `AgentConfigurationSpec` field. */
  readonly field: keyof AgentConfigurationSpec;
  /** Converts the (api-validated) field value to the setting's value. */
  readonly map: (value: never) => T;
}

/** One setting. */
export interface SettingDef<T> {
  /** Reference-page section. */
  readonly group: SettingGroup;
  /** Environment variable. */
  readonly env: string;
  /** Long flag, without `--`. */
  readonly flag: string;
  /** Placeholder of the flag's value in `--help` (`<cidr>`). Boolean flags may be given without one. */
  readonly metavar: string;
  /** The value's type, in words (reference page). */
  readonly type: string;
  /** What it does. */
  readonly description: string;
  /** Built-in default: a value, or a function of the settings resolved without one. */
  readonly default: T | ((s: Readonly<AgentSettings>, ctx: DefaultContext) => T);
  /** The default as the reference page and `--help` print it. */
  readonly defaultText: string;
  /** Parses the flag / environment text; throws `ParseFailure`. */
  readonly parse: (raw: string) => T;
  /** The `AgentConfiguration` field that sets it, when there is one. */
  readonly resource?: ResourceMapping<T> | undefined;
  /** Printed as `[redacted]` by `margay-node config`. */
  readonly sensitive?: boolean | undefined;
  /** `--flag` alone means `true`. */
  readonly boolean?: boolean | undefined;
}

/** The schema's shape: one {@link SettingDef} per {@link AgentSettings} key. */
export type AgentConfigSchema = { readonly [K in SettingName]: SettingDef<AgentSettings[K]> };

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
const SEVERITY: Readonly<
  Record<NonNullable<AgentConfigurationSpec["logSeverityScreen"]>, AgentConfig["logLevel"]>
> = {
  Debug: "debug",
  Info: "info",
  Warning: "warn",
  Error: "error",
  Fatal: "fatal",
};
const durationMs = (v: string): number => parseGoDuration(v) ?? Number.NaN;
const failsafeFromApi = (
  list: readonly { protocol: string; port: number; net?: string | undefined }[],
): FailsafePort[] =>
  list.map((p) => ({
    protocol: p.protocol.toLowerCase() as FailsafePort["protocol"],
    port: p.port,
    ...(p.net === undefined ? {} : { net: p.net }),
  }));
const bool = parseBoolean;
const port = integerParser(1, 65535);
const fmtFailsafe = (l: readonly FailsafePort[]) =>
  l.map((p) => `${p.protocol}:${p.net === undefined ? "" : `${p.net}:`}${p.port}`).join(",");

const DEFAULT_FAILSAFE_IN = failsafeFromApi(AGENT_CONFIGURATION_DEFAULTS.failsafeInboundHostPorts);
const DEFAULT_FAILSAFE_OUT = failsafeFromApi(AGENT_CONFIGURATION_DEFAULTS.failsafeOutboundHostPorts);

/**
 * The schema. Key order is the order of `--help` and of the reference page within each section.
 * Env names are Calico's where Calico has one, else `MARGAY_*`; flags are the env names in kebab case
 * (without the `MARGAY_` prefix).
 */
export const AGENT_CONFIG_SCHEMA: AgentConfigSchema = Object.freeze({
  nodeName: {
    group: "Node",
    env: "NODENAME",
    flag: "node-name",
    metavar: "<name>",
    type: "DNS subdomain",
    description: "This node's name: the Node resource it registers and the `spec.node` of its endpoints.",
    default: (_s, ctx) => ctx.hostname.toLowerCase(),
    defaultText: "the host name, lowercased",
    parse: parseNodeName,
  },
  stateDir: {
    group: "Node",
    env: "MARGAY_STATE_DIR",
    flag: "state-dir",
    metavar: "<dir>",
    type: "absolute path",
    description: "Directory of the agent's own state (the memory datastore's snapshot, the CNI DEL spool).",
    default: "/var/lib/margay",
    defaultText: "/var/lib/margay",
    parse: parsePath,
  },
  datastoreType: {
    group: "Datastore",
    env: "DATASTORE_TYPE",
    flag: "datastore-type",
    metavar: "<memory|etcd>",
    type: "memory | etcd",
    description:
      "Where the model lives: `memory` (one host; snapshot `<stateDir>/datastore.json`) or `etcd` (many hosts).",
    default: (s) => (s.etcdEndpoints === undefined ? "memory" : "etcd"),
    defaultText: "etcd when ETCD_ENDPOINTS is set, else memory",
    parse: enumParser(["memory", "etcd"] as const),
  },
  etcdEndpoints: {
    group: "Datastore",
    env: "ETCD_ENDPOINTS",
    flag: "etcd-endpoints",
    metavar: "<urls>",
    type: "comma-separated http(s) URLs",
    description: "etcd client URLs (all http:// or all https://).",
    default: undefined,
    defaultText: "unset",
    parse: parseList,
  },
  etcdPrefix: {
    group: "Datastore",
    env: "MARGAY_ETCD_PREFIX",
    flag: "etcd-prefix",
    metavar: "<prefix>",
    type: "key prefix",
    description: "Key prefix of the model in etcd (several clusters may share one etcd).",
    default: undefined,
    defaultText: "/margay/v1",
    parse: parseString,
  },
  etcdCaCertFile: {
    group: "Datastore",
    env: "ETCD_CA_CERT_FILE",
    flag: "etcd-ca-cert-file",
    metavar: "<file>",
    type: "absolute path",
    description: "PEM CA bundle that signs etcd's server certificate.",
    default: undefined,
    defaultText: "unset",
    parse: parsePath,
  },
  etcdCertFile: {
    group: "Datastore",
    env: "ETCD_CERT_FILE",
    flag: "etcd-cert-file",
    metavar: "<file>",
    type: "absolute path",
    description: "PEM client certificate (with ETCD_KEY_FILE).",
    default: undefined,
    defaultText: "unset",
    parse: parsePath,
  },
  etcdKeyFile: {
    group: "Datastore",
    env: "ETCD_KEY_FILE",
    flag: "etcd-key-file",
    metavar: "<file>",
    type: "absolute path",
    description: "PEM private key of the client certificate.",
    default: undefined,
    defaultText: "unset",
    parse: parsePath,
  },
  etcdUsername: {
    group: "Datastore",
    env: "ETCD_USERNAME",
    flag: "etcd-username",
    metavar: "<user>",
    type: "string",
    description:
      "etcd user (with ETCD_PASSWORD_FILE). A password in the environment (ETCD_PASSWORD) is refused.",
    default: undefined,
    defaultText: "unset",
    parse: parseString,
    sensitive: true,
  },
  etcdPasswordFile: {
    group: "Datastore",
    env: "ETCD_PASSWORD_FILE",
    flag: "etcd-password-file",
    metavar: "<file>",
    type: "absolute path",
    description: "File holding the etcd user's password (one trailing newline ignored).",
    default: undefined,
    defaultText: "unset",
    parse: parsePath,
  },
  kubeconfig: {
    group: "Kubernetes",
    env: "KUBECONFIG",
    flag: "kubeconfig",
    metavar: "<file[:file...]>",
    type: "absolute paths, `:`-separated",
    description:
      "Kubernetes mode: kubeconfig of the cluster (its current context); a `:`-separated list is merged as kubectl merges it (the first file to define a cluster, user or context, or to set current-context, wins; missing files are skipped). A pod's ADD then reads the pod and its namespace for the endpoint's labels, service account, profiles and requested pools/addresses; Services and EndpointSlices drive service-IP advertisement. Wins over the in-cluster settings.",
    default: undefined,
    defaultText: "unset",
    parse: parsePathList,
  },
  kubernetesServiceHost: {
    group: "Kubernetes",
    env: "KUBERNETES_SERVICE_HOST",
    flag: "kubernetes-service-host",
    metavar: "<host>",
    type: "IP address or host name",
    description:
      "Kubernetes mode in a pod (set there by the kubelet): the API server's address, with the service-account token and CA mounted under /var/run/secrets/kubernetes.io/serviceaccount (the token is re-read as it rotates).",
    default: undefined,
    defaultText: "unset",
    parse: parseString,
  },
  kubernetesServicePort: {
    group: "Kubernetes",
    env: "KUBERNETES_SERVICE_PORT",
    flag: "kubernetes-service-port",
    metavar: "<port>",
    type: "integer 1-65535",
    description: "The API server's port with KUBERNETES_SERVICE_HOST.",
    default: 443,
    defaultText: "443",
    parse: port,
  },
  ip: {
    group: "Addresses",
    env: "IP",
    flag: "ip",
    metavar: "<autodetect|none|address[/len]>",
    type: "autodetect | none | IPv4 address[/prefix]",
    description:
      "IPv4 underlay address. An explicit address is checked against the host's interfaces (a warning when no interface holds it).",
    default: "autodetect",
    defaultText: "autodetect",
    parse: addressModeParser(4),
  },
  ipAutodetectionMethod: {
    group: "Addresses",
    env: "IP_AUTODETECTION_METHOD",
    flag: "ip-autodetection-method",
    metavar: "<method>",
    type: "first-found | interface=REGEX[,REGEX] | skip-interface=REGEX[,REGEX] | can-reach=DEST | cidr=CIDR[,CIDR]",
    description: "How the IPv4 address is found when IP is autodetect.",
    default: { kind: "first-found" },
    defaultText: "first-found",
    parse: autodetectMethodParser(4),
  },
  ip6: {
    group: "Addresses",
    env: "IP6",
    flag: "ip6",
    metavar: "<autodetect|none|address[/len]>",
    type: "autodetect | none | IPv6 address[/prefix]",
    description: "IPv6 underlay address; `none` turns IPv6 off for this node.",
    default: "none",
    defaultText: "none",
    parse: addressModeParser(6),
  },
  ip6AutodetectionMethod: {
    group: "Addresses",
    env: "IP6_AUTODETECTION_METHOD",
    flag: "ip6-autodetection-method",
    metavar: "<method>",
    type: "as IP_AUTODETECTION_METHOD",
    description: "How the IPv6 address is found when IP6 is autodetect.",
    default: { kind: "first-found" },
    defaultText: "first-found",
    parse: autodetectMethodParser(6),
  },
  as: {
    group: "BGP",
    env: "AS",
    flag: "as",
    metavar: "<asn>",
    type: "AS number (plain or asdot)",
    description: "This node's AS (Node `spec.bgp.asNumber`).",
    default: undefined,
    defaultText: "the cluster's (BGPConfiguration default asNumber, else 64512)",
    parse: parseAs,
  },
  bgpGracefulRestartSeconds: {
    group: "BGP",
    env: "MARGAY_BGP_GRACEFUL_RESTART_SECONDS",
    flag: "bgp-graceful-restart-seconds",
    metavar: "<seconds>",
    type: "integer 1-4095",
    description: "Graceful-restart time advertised to peers: how long they keep our routes while we restart.",
    default: 120,
    defaultText: "120",
    parse: integerParser(1, 4095),
  },
  networkingBackend: {
    group: "Networking",
    env: "MARGAY_NETWORKING_BACKEND",
    flag: "networking-backend",
    metavar: "<bgp|vxlan|none>",
    type: "bgp | vxlan | none",
    description:
      "How pod traffic crosses hosts: `bgp` (routes exchanged by BGP), `vxlan` (routes from the datastore, no BGP) or `none`.",
    default: "bgp",
    defaultText: "bgp",
    parse: enumParser(["bgp", "vxlan", "none"] as const),
  },
  interfacePrefixes: {
    group: "Networking",
    env: "MARGAY_INTERFACE_PREFIX",
    flag: "interface-prefix",
    metavar: "<prefixes>",
    type: "comma-separated prefixes (1-8 of [a-z0-9])",
    description: "Workload interface prefixes on the host; the first names new interfaces.",
    default: [AGENT_CONFIGURATION_DEFAULTS.interfacePrefix],
    defaultText: AGENT_CONFIGURATION_DEFAULTS.interfacePrefix,
    parse: parseInterfacePrefixes,
    resource: { field: "interfacePrefix", map: (v: string) => v.split(",") },
  },
  mtu: {
    group: "Networking",
    env: "MARGAY_MTU",
    flag: "mtu",
    metavar: "<bytes>",
    type: "integer 576-65535",
    description:
      "MTU of workload veths and tunnel devices. Unset: the underlay interface's MTU minus the largest encapsulation overhead in use (VXLAN 50, IPIP 20).",
    default: undefined,
    defaultText: "derived",
    parse: integerParser(576, 65535),
    resource: { field: "vxlanMTU", map: (v: number) => v },
  },
  vxlanPort: {
    group: "Networking",
    env: "MARGAY_VXLAN_PORT",
    flag: "vxlan-port",
    metavar: "<port>",
    type: "integer 1-65535",
    description: "VXLAN UDP port.",
    default: AGENT_CONFIGURATION_DEFAULTS.vxlanPort,
    defaultText: String(AGENT_CONFIGURATION_DEFAULTS.vxlanPort),
    parse: port,
    resource: { field: "vxlanPort", map: (v: number) => v },
  },
  vxlanVni: {
    group: "Networking",
    env: "MARGAY_VXLAN_VNI",
    flag: "vxlan-vni",
    metavar: "<vni>",
    type: "integer 1-16777215",
    description: "VXLAN network identifier.",
    default: AGENT_CONFIGURATION_DEFAULTS.vxlanVNI,
    defaultText: String(AGENT_CONFIGURATION_DEFAULTS.vxlanVNI),
    parse: integerParser(1, 0xffffff),
    resource: { field: "vxlanVNI", map: (v: number) => v },
  },
  vxlanDevice: {
    group: "Networking",
    env: "MARGAY_VXLAN_DEVICE",
    flag: "vxlan-device",
    metavar: "<ifname>",
    type: "interface name",
    description: "Name of the VXLAN device.",
    default: "vxlan.margay",
    defaultText: "vxlan.margay",
    parse: parseInterfaceName,
  },
  noDefaultPools: {
    group: "Default IP pools",
    env: "NO_DEFAULT_POOLS",
    flag: "disable-default-pools",
    metavar: "[bool]",
    type: "boolean",
    description: "Create no default pool (pools are managed elsewhere).",
    default: false,
    defaultText: "false",
    parse: bool,
    boolean: true,
  },
  ipv4PoolCidr: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_CIDR",
    flag: "ipv4pool-cidr",
    metavar: "<cidr>",
    type: "IPv4 CIDR",
    description:
      "CIDR of the default IPv4 pool (`default-ipv4-ippool`), created once per cluster if no IPv4 pool exists.",
    default: "192.168.0.0/16",
    defaultText: "192.168.0.0/16",
    parse: cidrParser(4),
  },
  ipv4PoolBlockSize: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_BLOCK_SIZE",
    flag: "ipv4pool-block-size",
    metavar: "<bits>",
    type: "integer 20-32",
    description: "Block prefix length of the default IPv4 pool.",
    default: 26,
    defaultText: "26",
    parse: blockSizeParser(4),
  },
  ipv4PoolIpip: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_IPIP",
    flag: "ipv4pool-ipip",
    metavar: "<mode>",
    type: "Never | Always | CrossSubnet",
    description: "IPIP mode of the default IPv4 pool (not with VXLAN, not with the vxlan backend).",
    default: "Never",
    defaultText: "Never",
    parse: parseEncapsulationMode,
  },
  ipv4PoolVxlan: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_VXLAN",
    flag: "ipv4pool-vxlan",
    metavar: "<mode>",
    type: "Never | Always | CrossSubnet",
    description: "VXLAN mode of the default IPv4 pool.",
    default: (s) => (s.networkingBackend === "vxlan" && s.ipv4PoolIpip === "Never" ? "Always" : "Never"),
    defaultText: "Always with the vxlan backend, else Never",
    parse: parseEncapsulationMode,
  },
  ipv4PoolNatOutgoing: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_NAT_OUTGOING",
    flag: "ipv4pool-nat-outgoing",
    metavar: "[bool]",
    type: "boolean",
    description: "Masquerade traffic from the default IPv4 pool to destinations outside every pool.",
    default: true,
    defaultText: "true",
    parse: bool,
    boolean: true,
  },
  ipv4PoolNodeSelector: {
    group: "Default IP pools",
    env: "MARGAY_IPV4POOL_NODE_SELECTOR",
    flag: "ipv4pool-node-selector",
    metavar: "<selector>",
    type: "label selector",
    description: "Nodes that may allocate from the default IPv4 pool.",
    default: "all()",
    defaultText: "all()",
    parse: parseSelectorText,
  },
  ipv6PoolCidr: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_CIDR",
    flag: "ipv6pool-cidr",
    metavar: "<cidr>",
    type: "IPv6 CIDR",
    description: "CIDR of the default IPv6 pool (`default-ipv6-ippool`), created only when IP6 is not none.",
    default: "fd80:24e2:f998:72d6::/64",
    defaultText: "fd80:24e2:f998:72d6::/64",
    parse: cidrParser(6),
  },
  ipv6PoolBlockSize: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_BLOCK_SIZE",
    flag: "ipv6pool-block-size",
    metavar: "<bits>",
    type: "integer 116-128",
    description: "Block prefix length of the default IPv6 pool.",
    default: 122,
    defaultText: "122",
    parse: blockSizeParser(6),
  },
  ipv6PoolIpip: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_IPIP",
    flag: "ipv6pool-ipip",
    metavar: "<mode>",
    type: "Never",
    description:
      "Accepted for symmetry with IPv4 and refused unless Never: IPIP carries IPv4 only (use VXLAN).",
    default: "Never",
    defaultText: "Never",
    parse: parseEncapsulationMode,
  },
  ipv6PoolVxlan: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_VXLAN",
    flag: "ipv6pool-vxlan",
    metavar: "<mode>",
    type: "Never | Always | CrossSubnet",
    description: "VXLAN mode of the default IPv6 pool (IPv6 has no IPIP).",
    default: (s) => (s.networkingBackend === "vxlan" ? "Always" : "Never"),
    defaultText: "Always with the vxlan backend, else Never",
    parse: parseEncapsulationMode,
  },
  ipv6PoolNatOutgoing: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_NAT_OUTGOING",
    flag: "ipv6pool-nat-outgoing",
    metavar: "[bool]",
    type: "boolean",
    description: "Masquerade traffic from the default IPv6 pool to destinations outside every pool.",
    default: false,
    defaultText: "false",
    parse: bool,
    boolean: true,
  },
  ipv6PoolNodeSelector: {
    group: "Default IP pools",
    env: "MARGAY_IPV6POOL_NODE_SELECTOR",
    flag: "ipv6pool-node-selector",
    metavar: "<selector>",
    type: "label selector",
    description: "Nodes that may allocate from the default IPv6 pool.",
    default: "all()",
    defaultText: "all()",
    parse: parseSelectorText,
  },
  workloadSocket: {
    group: "Workload API",
    env: "MARGAY_AGENT_SOCKET",
    flag: "agent-socket",
    metavar: "<path>",
    type: "absolute path",
    description: "Unix socket of the workload API the CNI plugin calls (mode 0600, root only).",
    default: "/var/run/margay/agent.sock",
    defaultText: "/var/run/margay/agent.sock",
    parse: parsePath,
  },
  workloadGcGracePeriodMs: {
    group: "Workload API",
    env: "MARGAY_WORKLOAD_GC_GRACE_PERIOD",
    flag: "workload-gc-grace-period",
    metavar: "<duration>",
    type: "duration (90s, 2m; 0s: none)",
    description:
      "CNI GC leaves this node's workload addresses and endpoints younger than this alone (an ADD may still be in flight).",
    default: 60_000,
    defaultText: "60s",
    parse: durationParser(0),
  },
  healthEnabled: {
    group: "Health and metrics",
    env: "MARGAY_HEALTH_ENABLED",
    flag: "health-enabled",
    metavar: "[bool]",
    type: "boolean",
    description: "Serve `/livez` and `/readyz`.",
    default: true,
    defaultText: "true",
    parse: bool,
    boolean: true,
    resource: { field: "healthEnabled", map: (v: boolean) => v },
  },
  healthHost: {
    group: "Health and metrics",
    env: "MARGAY_HEALTH_HOST",
    flag: "health-host",
    metavar: "<host>",
    type: "address or host name",
    description: "Address the health server listens on.",
    default: AGENT_CONFIGURATION_DEFAULTS.healthHost,
    defaultText: AGENT_CONFIGURATION_DEFAULTS.healthHost,
    parse: parseString,
    resource: { field: "healthHost", map: (v: string) => v },
  },
  healthPort: {
    group: "Health and metrics",
    env: "MARGAY_HEALTH_PORT",
    flag: "health-port",
    metavar: "<port>",
    type: "integer 1-65535",
    description: "Port of the health server.",
    default: AGENT_CONFIGURATION_DEFAULTS.healthPort,
    defaultText: String(AGENT_CONFIGURATION_DEFAULTS.healthPort),
    parse: port,
    resource: { field: "healthPort", map: (v: number) => v },
  },
  metricsEnabled: {
    group: "Health and metrics",
    env: "MARGAY_METRICS_ENABLED",
    flag: "metrics-enabled",
    metavar: "[bool]",
    type: "boolean",
    description: "Serve Prometheus metrics on `/metrics`.",
    default: AGENT_CONFIGURATION_DEFAULTS.prometheusMetricsEnabled,
    defaultText: String(AGENT_CONFIGURATION_DEFAULTS.prometheusMetricsEnabled),
    parse: bool,
    boolean: true,
    resource: { field: "prometheusMetricsEnabled", map: (v: boolean) => v },
  },
  metricsHost: {
    group: "Health and metrics",
    env: "MARGAY_METRICS_HOST",
    flag: "metrics-host",
    metavar: "<host>",
    type: "address or host name",
    description: "Address the metrics server listens on (Felix listens on every address too).",
    default: "0.0.0.0",
    defaultText: "0.0.0.0",
    parse: parseString,
  },
  metricsPort: {
    group: "Health and metrics",
    env: "MARGAY_METRICS_PORT",
    flag: "metrics-port",
    metavar: "<port>",
    type: "integer 1-65535",
    description: "Port of the metrics server.",
    default: AGENT_CONFIGURATION_DEFAULTS.prometheusMetricsPort,
    defaultText: String(AGENT_CONFIGURATION_DEFAULTS.prometheusMetricsPort),
    parse: port,
    resource: { field: "prometheusMetricsPort", map: (v: number) => v },
  },
  metricsPerPeerLabels: {
    group: "Health and metrics",
    env: "MARGAY_METRICS_PER_PEER_LABELS",
    flag: "metrics-per-peer-labels",
    metavar: "[bool]",
    type: "boolean",
    description: "Label BGP metrics per peer (cardinality grows with the number of peers).",
    default: false,
    defaultText: "false",
    parse: bool,
    boolean: true,
  },
  readinessRequiresAllBgpPeers: {
    group: "Health and metrics",
    env: "MARGAY_READINESS_REQUIRES_ALL_BGP_PEERS",
    flag: "readiness-requires-all-bgp-peers",
    metavar: "[bool]",
    type: "boolean",
    description: "Any BGP peer down makes the node unready (default: only when no peer is up).",
    default: false,
    defaultText: "false",
    parse: bool,
    boolean: true,
  },
  statusIntervalMs: {
    group: "Health and metrics",
    env: "MARGAY_STATUS_INTERVAL",
    flag: "status-interval",
    metavar: "<duration>",
    type: "duration (90s, 2m)",
    description: "How often the node's status resource is written.",
    default: 10_000,
    defaultText: "10s",
    parse: durationParser(1000),
    resource: { field: "reportingInterval", map: durationMs },
  },
  dataplaneDriver: {
    group: "Dataplane",
    env: "MARGAY_DATAPLANE_DRIVER",
    flag: "dataplane-driver",
    metavar: "<linux|remote>",
    type: "linux | remote",
    description: "`linux`: the in-process Linux driver; `remote`: a child driver over the protobuf protocol.",
    default: "linux",
    defaultText: "linux",
    parse: enumParser(["linux", "remote"] as const),
  },
  dataplaneRemoteCommand: {
    group: "Dataplane",
    env: "MARGAY_DATAPLANE_REMOTE_COMMAND",
    flag: "dataplane-remote-command",
    metavar: "<json-argv>",
    type: "JSON array of strings",
    description: 'argv of the remote driver (`remote` only), e.g. `["/usr/libexec/margay-driver"]`.',
    default: undefined,
    defaultText: "unset",
    parse: parseArgv,
  },
  reconcileIntervalMs: {
    group: "Dataplane",
    env: "MARGAY_DATAPLANE_REFRESH_INTERVAL",
    flag: "dataplane-refresh-interval",
    metavar: "<duration>",
    type: "duration (90s, 2m)",
    description: "Period of the full dataplane reconciliation.",
    default: 180_000,
    defaultText: AGENT_CONFIGURATION_DEFAULTS.dataplaneRefreshInterval,
    parse: durationParser(1000),
    resource: { field: "dataplaneRefreshInterval", map: durationMs },
  },
  routeProtocol: {
    group: "Dataplane",
    env: "MARGAY_ROUTE_PROTOCOL",
    flag: "route-protocol",
    metavar: "<number>",
    type: "integer 1-255",
    description:
      "Route protocol number marking the agent's routes (pick another than Calico's 80 to run side by side).",
    default: 80,
    defaultText: "80",
    parse: integerParser(1, 255),
    resource: { field: "deviceRouteProtocol", map: (v: number) => v },
  },
  endpointToHostAction: {
    group: "Dataplane",
    env: "MARGAY_DEFAULT_ENDPOINT_TO_HOST_ACTION",
    flag: "default-endpoint-to-host-action",
    metavar: "<Drop|Accept|Return>",
    type: "Drop | Accept | Return",
    description: "What happens to traffic from workloads to the host itself.",
    default: AGENT_CONFIGURATION_DEFAULTS.defaultEndpointToHostAction,
    defaultText: AGENT_CONFIGURATION_DEFAULTS.defaultEndpointToHostAction,
    parse: enumParser(["Drop", "Accept", "Return"] as const),
    resource: { field: "defaultEndpointToHostAction", map: (v: "Drop" | "Accept" | "Return") => v },
  },
  nftTable: {
    group: "Dataplane",
    env: "MARGAY_NFT_TABLE",
    flag: "nft-table",
    metavar: "<name>",
    type: "nftables table name",
    description: "The agent's own nftables table.",
    default: "margay",
    defaultText: "margay",
    parse: (raw: string) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,31}$/.test(raw))
        throw new ParseFailure("must be 1-32 of [A-Za-z0-9_], not starting with a digit");
      return raw;
    },
  },
  failsafeInbound: {
    group: "Dataplane",
    env: "MARGAY_FAILSAFE_INBOUND_HOST_PORTS",
    flag: "failsafe-inbound-host-ports",
    metavar: "<ports>",
    type: "PROTO:PORT or PROTO:CIDR:PORT, comma-separated, or none",
    description: "Ports a host always accepts, whatever the policy.",
    default: DEFAULT_FAILSAFE_IN,
    defaultText: fmtFailsafe(DEFAULT_FAILSAFE_IN),
    parse: parseFailsafePorts,
    resource: { field: "failsafeInboundHostPorts", map: failsafeFromApi },
  },
  failsafeOutbound: {
    group: "Dataplane",
    env: "MARGAY_FAILSAFE_OUTBOUND_HOST_PORTS",
    flag: "failsafe-outbound-host-ports",
    metavar: "<ports>",
    type: "PROTO:PORT or PROTO:CIDR:PORT, comma-separated, or none",
    description: "Ports a host may always send to, whatever the policy.",
    default: DEFAULT_FAILSAFE_OUT,
    defaultText: fmtFailsafe(DEFAULT_FAILSAFE_OUT),
    parse: parseFailsafePorts,
    resource: { field: "failsafeOutboundHostPorts", map: failsafeFromApi },
  },
  logLevel: {
    group: "Logging",
    env: "MARGAY_LOG_LEVEL",
    flag: "log-level",
    metavar: "<level>",
    type: LOG_LEVELS.join(" | "),
    description: "Level of the JSON logs on stdout.",
    default: "info",
    defaultText: "info",
    parse: enumParser(LOG_LEVELS),
    resource: {
      field: "logSeverityScreen",
      map: (v: keyof typeof SEVERITY) => SEVERITY[v],
    },
  },
} satisfies AgentConfigSchema);

/** The setting names in schema order. */
export const SETTING_NAMES: readonly SettingName[] = Object.freeze(
  Object.keys(AGENT_CONFIG_SCHEMA) as SettingName[],
);

/** The setting whose environment variable is `env`, if any. */
export function settingByEnv(env: string): SettingName | undefined {
  return SETTING_NAMES.find((n) => AGENT_CONFIG_SCHEMA[n].env === env);
}
