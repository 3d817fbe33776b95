/**
 * Resolution of the node agent's configuration from its sources. Precedence, highest first:
 *
 * 1. command-line flags (`--vxlan-port 4790`);
 * 2. environment variables (`MARGAY_VXLAN_PORT=4790`; an empty variable counts as unset, as in Calico);
 * 3. the `AgentConfiguration` resource `node.<nodeName>`;
 * 4. the `AgentConfiguration` resource `default`;
 * 5. the built-in default of `AGENT_CONFIG_SCHEMA`.
 *
 * {@link resolveBootstrapConfig} applies 1, 2 and 5: enough to open the datastore. Once the datastore is
 * open, `applyAgentConfiguration` (./agent-configuration.ts) folds 3 and 4 in for the settings that no
 * flag or variable set. Every value is parsed and checked; a bad one is an {@link AgentConfigError}
 * naming the setting, where it came from and the value, never silently dropped.
 *
 * @packageDocumentation
 */
import { hostname as osHostname } from "node:os";
import { tryParseCidr } from "@margay/api";
import { Command, CommanderError, Option } from "commander";
import {
  type DatastoreConfig,
  isDatastoreConfigError,
  parseDatastoreConfig,
} from "../../config/datastore-config.js";
import { AgentConfigError, AgentConfigErrorCode, type SettingSource } from "./errors.js";
import { ParseFailure } from "./parsers.js";
import {
  AGENT_CONFIG_SCHEMA,
  type AgentSettings,
  type DefaultContext,
  SETTING_NAMES,
  type SettingDef,
  type SettingName,
} from "./schema.js";
import type { AgentConfig, DefaultPoolConfig } from "./types.js";

/** Where each setting's value came from. */
export type ConfigSources = Readonly<Record<SettingName, SettingSource>>;

/** Something worth an operator's attention that does not stop the agent (logged at start). */
export interface ConfigWarning {
  /** kebab-case: `unknown-variable`, `ignored-field`, ... */
  readonly code: string;
  /** The setting, variable or resource field concerned. */
  readonly field: string;
  /** What and why, in operator words. */
  readonly message: string;
}

/** What {@link resolveBootstrapConfig} returns. */
export interface ResolvedConfig {
  readonly config: AgentConfig;
  readonly sources: ConfigSources;
  readonly warnings: readonly ConfigWarning[];
}

/** Input of {@link resolveBootstrapConfig}. */
export interface ResolveBootstrapOptions {
  /** Flags as on the command line, without the program and verb (`["--node-name", "a"]`). */
  readonly argv?: readonly string[] | undefined;
  /**
   * Flags already parsed by a commander command built with {@link addSchemaOptions} (`cmd.opts()`),
   * instead of `argv`.
   */
  readonly flags?: Readonly<Record<string, unknown>> | undefined;
  /** The environment (`process.env`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The host name; default `os.hostname()`. */
  readonly hostname?: string | undefined;
}

/** Variables of other Margay programs a node may have in its environment: not typos of ours. */
const FOREIGN_VARIABLES = new Set(["MARGAY_SNAPSHOT_PATH", "MARGAY_DATASTORE", "MARGAY_CONFIG"]);

const flagOrigin = (n: SettingName) => `--${AGENT_CONFIG_SCHEMA[n].flag}`;
const envOrigin = (n: SettingName) => `env:${AGENT_CONFIG_SCHEMA[n].env}`;

/** The `--help` line of a setting: description, environment variable, default. */
export function settingHelp(name: SettingName): string {
  const d: SettingDef<unknown> = AGENT_CONFIG_SCHEMA[name];
  return `${d.description.replace(/`/g, "")} [env ${d.env}] (default: ${d.defaultText})`;
}

/** The commander option of a setting. */
export function settingOption(name: SettingName): Option {
  const d: SettingDef<unknown> = AGENT_CONFIG_SCHEMA[name];
  return new Option(`--${d.flag} ${d.metavar}`, settingHelp(name));
}

/** Adds every setting of the schema as an option of `cmd` (in schema order). */
export function addSchemaOptions(cmd: Command): Command {
  for (const n of SETTING_NAMES) cmd.addOption(settingOption(n));
  return cmd;
}

/** commander's attribute name of each setting's flag (`ipv4pool-cidr` → `ipv4poolCidr`). */
const ATTRIBUTE: ReadonlyMap<string, SettingName> = new Map(
  SETTING_NAMES.map((n) => [settingOption(n).attributeName(), n]),
);

function parseArgvFlags(argv: readonly string[]): Record<string, unknown> {
  const cmd = addSchemaOptions(new Command("margay-node"))
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .helpOption(false)
    .allowExcessArguments(false);
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      throw new AgentConfigError(AgentConfigErrorCode.UnknownFlag, e.message.replace(/^error: /, ""), {
        field: "argv",
        value: [...argv],
        commanderCode: e.code,
      });
    }
    throw e;
  }
  return cmd.opts();
}

function parseValue<N extends SettingName>(name: N, raw: string, origin: string): AgentSettings[N] {
  const def = AGENT_CONFIG_SCHEMA[name] as SettingDef<AgentSettings[N]>;
  try {
    return def.parse(raw);
  } catch (e) {
    if (!(e instanceof ParseFailure)) throw e;
    const shown = def.sensitive ? "[redacted]" : raw;
    throw new AgentConfigError(
      AgentConfigErrorCode.InvalidValue,
      `${origin}: ${JSON.stringify(shown)} ${e.message}`,
      { field: name, origin, value: shown },
    );
  }
}

/** Explicit values (flags, then environment) of every setting that has one, with their sources. */
function explicitValues(options: ResolveBootstrapOptions): {
  values: Partial<AgentSettings>;
  sources: Partial<Record<SettingName, SettingSource>>;
  warnings: ConfigWarning[];
} {
  const values: Partial<Record<SettingName, unknown>> = {};
  const sources: Partial<Record<SettingName, SettingSource>> = {};
  const warnings: ConfigWarning[] = [];
  const flags = options.flags ?? (options.argv === undefined ? {} : parseArgvFlags(options.argv));
  for (const [attr, v] of Object.entries(flags)) {
    if (v === undefined) continue;
    const name = ATTRIBUTE.get(attr);
    if (name === undefined)
      throw new AgentConfigError(AgentConfigErrorCode.UnknownFlag, `unknown flag ${attr}`, {
        field: attr,
        value: v,
      });
    const raw = v === true ? "true" : String(v);
    values[name] = parseValue(name, raw, flagOrigin(name));
    sources[name] = "flag";
  }
  for (const name of SETTING_NAMES) {
    if (sources[name] !== undefined) continue;
    const raw = options.env[AGENT_CONFIG_SCHEMA[name].env];
    if (raw === undefined || raw === "") continue;
    values[name] = parseValue(name, raw, envOrigin(name));
    sources[name] = "env";
  }
  const known = new Set(SETTING_NAMES.map((n) => AGENT_CONFIG_SCHEMA[n].env));
  for (const k of Object.keys(options.env)) {
    if (k.startsWith("MARGAY_") && !known.has(k) && !FOREIGN_VARIABLES.has(k))
      warnings.push({
        code: "unknown-variable",
        field: `env:${k}`,
        message: `env:${k} is not a margay-node setting (see margay-node --help); it has no effect`,
      });
  }
  return { values: values as Partial<AgentSettings>, sources, warnings };
}

/** Fills the settings without a value from their built-in defaults (values first, then derived ones). */
export function withSchemaDefaults(explicit: Partial<AgentSettings>, ctx: DefaultContext): AgentSettings {
  const out: Partial<Record<SettingName, unknown>> = { ...explicit };
  const derived: SettingName[] = [];
  for (const n of SETTING_NAMES) {
    if (n in out) continue;
    const d = AGENT_CONFIG_SCHEMA[n].default;
    if (typeof d === "function") derived.push(n);
    else out[n] = d;
  }
  for (const n of derived) {
    const d = AGENT_CONFIG_SCHEMA[n].default as (s: AgentSettings, c: DefaultContext) => unknown;
    out[n] = d(out as AgentSettings, ctx);
  }
  return out as AgentSettings;
}

/** The name a setting's value came in by, for error messages. */
export function originOf(name: SettingName, source: SettingSource | undefined): string {
  switch (source) {
    case "flag":
      return flagOrigin(name);
    case "env":
      return envOrigin(name);
    case "node-resource":
    case "global-resource": {
      const r = AGENT_CONFIG_SCHEMA[name].resource;
      const which = source === "node-resource" ? "node.<name>" : "default";
      return `AgentConfiguration ${which} spec.${r?.field ?? name}`;
    }
    default:
      return `default of ${name}`;
  }
}

const DATASTORE_FIELDS: Readonly<Record<string, SettingName>> = {
  endpoints: "etcdEndpoints",
  prefix: "etcdPrefix",
  caCertFile: "etcdCaCertFile",
  certFile: "etcdCertFile",
  keyFile: "etcdKeyFile",
  username: "etcdUsername",
  passwordFile: "etcdPasswordFile",
};

const ETCD_SETTINGS = [
  "etcdEndpoints",
  "etcdPrefix",
  "etcdCaCertFile",
  "etcdCertFile",
  "etcdKeyFile",
  "etcdUsername",
  "etcdPasswordFile",
] as const satisfies readonly SettingName[];

function conflict(
  message: string,
  field: SettingName,
  sources: ConfigSources,
  value: unknown,
): AgentConfigError {
  return new AgentConfigError(AgentConfigErrorCode.Conflict, message, {
    field,
    origin: originOf(field, sources[field]),
    value,
  });
}

function buildDatastore(
  s: AgentSettings,
  sources: ConfigSources,
  env: Readonly<Record<string, string | undefined>>,
): DatastoreConfig {
  if (s.datastoreType === "memory") {
    const stray = ETCD_SETTINGS.find((n) => s[n] !== undefined);
    if (stray !== undefined)
      throw conflict(
        `${originOf(stray, sources[stray])} is set but the datastore is memory (${originOf("datastoreType", sources.datastoreType)}): set DATASTORE_TYPE=etcd or unset it`,
        stray,
        sources,
        AGENT_CONFIG_SCHEMA[stray].sensitive ? "[redacted]" : s[stray],
      );
    return parseDatastoreConfig({ type: "memory", snapshotPath: `${s.stateDir}/datastore.json` });
  }
  const raw: Record<string, unknown> = { type: "etcd" };
  for (const [field, name] of Object.entries(DATASTORE_FIELDS))
    if (s[name] !== undefined) raw[field] = s[name];
  try {
    // Only the ETCD_PASSWORD check reads this environment: every other field is in `raw` already.
    return parseDatastoreConfig(raw, { env: { ETCD_PASSWORD: env.ETCD_PASSWORD } });
  } catch (e) {
    if (!isDatastoreConfigError(e)) throw e;
    const key = e.details.field.replace(/^\$\.datastore\./, "").replace(/\[\d+\]$/, "");
    const name = DATASTORE_FIELDS[key] ?? (key === "env:ETCD_PASSWORD" ? undefined : "etcdEndpoints");
    const origin = name === undefined ? "env:ETCD_PASSWORD" : originOf(name, sources[name]);
    const message = e.message.replace(/^[^:]*: /, "");
    const sensitive = name !== undefined && AGENT_CONFIG_SCHEMA[name].sensitive === true;
    throw new AgentConfigError(
      AgentConfigErrorCode.InvalidValue,
      `${origin}: ${message}`,
      {
        field: name ?? "etcdPasswordFile",
        origin,
        value: name === undefined || sensitive ? "[redacted]" : s[name],
      },
      e,
    );
  }
}

function pool(version: 4 | 6, s: AgentSettings, sources: ConfigSources): DefaultPoolConfig | undefined {
  const mode = version === 4 ? s.ip : s.ip6;
  if (s.noDefaultPools || mode === "none") return undefined;
  const cidrName = version === 4 ? "ipv4PoolCidr" : "ipv6PoolCidr";
  const blockName = version === 4 ? "ipv4PoolBlockSize" : "ipv6PoolBlockSize";
  const cidr = s[cidrName];
  const blockSize = s[blockName];
  const prefix = tryParseCidr(cidr)?.prefixLength ?? 0;
  if (prefix > blockSize)
    throw conflict(
      `${originOf(cidrName, sources[cidrName])}: pool ${cidr} is smaller than one block (/${blockSize}, ${originOf(blockName, sources[blockName])})`,
      cidrName,
      sources,
      cidr,
    );
  if (version === 6 && s.ipv6PoolIpip !== "Never")
    throw conflict(
      `${originOf("ipv6PoolIpip", sources.ipv6PoolIpip)}: IPIP carries IPv4 only; use MARGAY_IPV6POOL_VXLAN for IPv6`,
      "ipv6PoolIpip",
      sources,
      s.ipv6PoolIpip,
    );
  const ipipMode = version === 4 ? s.ipv4PoolIpip : "Never";
  const vxlanMode = version === 4 ? s.ipv4PoolVxlan : s.ipv6PoolVxlan;
  if (ipipMode !== "Never" && vxlanMode !== "Never")
    throw conflict(
      `the default IPv4 pool cannot use IPIP (${ipipMode}, ${originOf("ipv4PoolIpip", sources.ipv4PoolIpip)}) and VXLAN (${vxlanMode}, ${originOf("ipv4PoolVxlan", sources.ipv4PoolVxlan)}) at once`,
      "ipv4PoolIpip",
      sources,
      ipipMode,
    );
  if (ipipMode !== "Never" && s.networkingBackend === "vxlan")
    throw conflict(
      `IPIP (${originOf("ipv4PoolIpip", sources.ipv4PoolIpip)}) needs BGP; the vxlan backend (${originOf("networkingBackend", sources.networkingBackend)}) has none: use MARGAY_IPV4POOL_VXLAN`,
      "ipv4PoolIpip",
      sources,
      ipipMode,
    );
  return {
    name: version === 4 ? "default-ipv4-ippool" : "default-ipv6-ippool",
    cidr,
    blockSize,
    ipipMode,
    vxlanMode,
    natOutgoing: version === 4 ? s.ipv4PoolNatOutgoing : s.ipv6PoolNatOutgoing,
    nodeSelector: version === 4 ? s.ipv4PoolNodeSelector : s.ipv6PoolNodeSelector,
  };
}

/**
 * Assembles and checks an {@link AgentConfig} from complete settings (cross-setting rules: datastore
 * type against the etcd settings, pool encapsulations, remote driver command, port clashes).
 */
export function buildAgentConfig(
  s: AgentSettings,
  sources: ConfigSources,
  env: Readonly<Record<string, string | undefined>> = {},
): AgentConfig {
  if (s.ip === "none" && s.ip6 === "none")
    throw conflict(
      "IP and IP6 are both none: the node needs an address of at least one family",
      "ip",
      sources,
      "none",
    );
  if (s.dataplaneDriver === "remote" && s.dataplaneRemoteCommand === undefined)
    throw conflict(
      `the remote dataplane driver (${originOf("dataplaneDriver", sources.dataplaneDriver)}) needs MARGAY_DATAPLANE_REMOTE_COMMAND`,
      "dataplaneRemoteCommand",
      sources,
      undefined,
    );
  if (s.dataplaneDriver === "linux" && s.dataplaneRemoteCommand !== undefined)
    throw conflict(
      `${originOf("dataplaneRemoteCommand", sources.dataplaneRemoteCommand)} is set but the dataplane driver is linux: set MARGAY_DATAPLANE_DRIVER=remote or unset it`,
      "dataplaneRemoteCommand",
      sources,
      s.dataplaneRemoteCommand,
    );
  if (s.healthEnabled && s.metricsEnabled && s.healthPort === s.metricsPort && s.healthHost === s.metricsHost)
    throw conflict(
      `the health server (${originOf("healthPort", sources.healthPort)}) and the metrics server (${originOf("metricsPort", sources.metricsPort)}) cannot both listen on ${s.healthHost}:${s.healthPort}`,
      "metricsPort",
      sources,
      s.metricsPort,
    );
  return {
    nodeName: s.nodeName,
    datastore: buildDatastore(s, sources, env),
    stateDir: s.stateDir,
    ipv4: { mode: s.ip, method: s.ipAutodetectionMethod },
    ipv6: { mode: s.ip6, method: s.ip6AutodetectionMethod },
    asNumber: s.as,
    networkingBackend: s.networkingBackend,
    defaultPools: { ipv4: pool(4, s, sources), ipv6: pool(6, s, sources) },
    interfacePrefixes: [...s.interfacePrefixes],
    mtu: s.mtu,
    vxlan: { port: s.vxlanPort, vni: s.vxlanVni, device: s.vxlanDevice },
    workloadSocket: s.workloadSocket,
    workloadGcGracePeriodMs: s.workloadGcGracePeriodMs,
    kubernetes:
      s.kubeconfig !== undefined
        ? { kubeconfig: s.kubeconfig }
        : s.kubernetesServiceHost !== undefined
          ? { inCluster: { host: s.kubernetesServiceHost, port: s.kubernetesServicePort } }
          : undefined,
    health: { enabled: s.healthEnabled, host: s.healthHost, port: s.healthPort },
    metrics: {
      enabled: s.metricsEnabled,
      host: s.metricsHost,
      port: s.metricsPort,
      perPeerLabels: s.metricsPerPeerLabels,
    },
    readinessRequiresAllBgpPeers: s.readinessRequiresAllBgpPeers,
    statusIntervalMs: s.statusIntervalMs,
    dataplane: {
      driver: s.dataplaneDriver,
      remoteCommand: s.dataplaneRemoteCommand === undefined ? undefined : [...s.dataplaneRemoteCommand],
      reconcileIntervalMs: s.reconcileIntervalMs,
      routeProtocol: s.routeProtocol,
      endpointToHostAction: s.endpointToHostAction,
      nftTable: s.nftTable,
    },
    failsafe: { inbound: [...s.failsafeInbound], outbound: [...s.failsafeOutbound] },
    bgpGracefulRestartSeconds: s.bgpGracefulRestartSeconds,
    logLevel: s.logLevel,
  };
}

/**
 * The settings an {@link AgentConfig} was built from (the inverse of {@link buildAgentConfig}), so
 * `applyAgentConfiguration` can re-resolve a config it did not build.
 */
export function settingsOf(config: AgentConfig): AgentSettings {
  const ds = config.datastore;
  const etcd = ds.type === "etcd" ? ds : undefined;
  const k8s = config.kubernetes;
  const p4 = config.defaultPools.ipv4;
  const p6 = config.defaultPools.ipv6;
  const d = withSchemaDefaults(
    { ip: config.ipv4.mode, ip6: config.ipv6.mode, networkingBackend: config.networkingBackend },
    {
      hostname: config.nodeName,
    },
  );
  return {
    ...d,
    nodeName: config.nodeName,
    datastoreType: ds.type,
    etcdEndpoints: etcd?.endpoints,
    etcdPrefix: etcd?.prefix,
    etcdCaCertFile: etcd?.caCertFile,
    etcdCertFile: etcd?.certFile,
    etcdKeyFile: etcd?.keyFile,
    etcdUsername: etcd?.username,
    etcdPasswordFile: etcd?.passwordFile,
    stateDir: config.stateDir,
    ip: config.ipv4.mode,
    ipAutodetectionMethod: config.ipv4.method,
    ip6: config.ipv6.mode,
    ip6AutodetectionMethod: config.ipv6.method,
    as: config.asNumber,
    networkingBackend: config.networkingBackend,
    noDefaultPools:
      (p4 === undefined && config.ipv4.mode !== "none") || (p6 === undefined && config.ipv6.mode !== "none"),
    ...(p4 === undefined
      ? {}
      : {
          ipv4PoolCidr: p4.cidr,
          ipv4PoolBlockSize: p4.blockSize,
          ipv4PoolIpip: p4.ipipMode,
          ipv4PoolVxlan: p4.vxlanMode,
          ipv4PoolNatOutgoing: p4.natOutgoing,
          ipv4PoolNodeSelector: p4.nodeSelector,
        }),
    ...(p6 === undefined
      ? {}
      : {
          ipv6PoolCidr: p6.cidr,
          ipv6PoolBlockSize: p6.blockSize,
          ipv6PoolIpip: p6.ipipMode,
          ipv6PoolVxlan: p6.vxlanMode,
          ipv6PoolNatOutgoing: p6.natOutgoing,
          ipv6PoolNodeSelector: p6.nodeSelector,
        }),
    interfacePrefixes: config.interfacePrefixes,
    mtu: config.mtu,
    vxlanPort: config.vxlan.port,
    vxlanVni: config.vxlan.vni,
    vxlanDevice: config.vxlan.device,
    kubeconfig: k8s !== undefined && "kubeconfig" in k8s ? k8s.kubeconfig : undefined,
    kubernetesServiceHost: k8s !== undefined && "inCluster" in k8s ? k8s.inCluster.host : undefined,
    kubernetesServicePort:
      k8s !== undefined && "inCluster" in k8s ? k8s.inCluster.port : d.kubernetesServicePort,
    workloadSocket: config.workloadSocket,
    workloadGcGracePeriodMs: config.workloadGcGracePeriodMs ?? d.workloadGcGracePeriodMs,
    healthEnabled: config.health.enabled,
    healthHost: config.health.host,
    healthPort: config.health.port,
    metricsEnabled: config.metrics.enabled,
    metricsHost: config.metrics.host,
    metricsPort: config.metrics.port,
    metricsPerPeerLabels: config.metrics.perPeerLabels,
    readinessRequiresAllBgpPeers: config.readinessRequiresAllBgpPeers,
    statusIntervalMs: config.statusIntervalMs,
    dataplaneDriver: config.dataplane.driver,
    dataplaneRemoteCommand: config.dataplane.remoteCommand,
    reconcileIntervalMs: config.dataplane.reconcileIntervalMs,
    routeProtocol: config.dataplane.routeProtocol,
    endpointToHostAction: config.dataplane.endpointToHostAction,
    nftTable: config.dataplane.nftTable,
    failsafeInbound: config.failsafe?.inbound ?? d.failsafeInbound,
    failsafeOutbound: config.failsafe?.outbound ?? d.failsafeOutbound,
    bgpGracefulRestartSeconds: config.bgpGracefulRestartSeconds,
    logLevel: config.logLevel,
  };
}

/**
 * Resolves the configuration from flags, environment and built-in defaults (see the module comment for
 * the precedence). Enough to open the datastore; fold the `AgentConfiguration` resources in afterwards
 * with `applyAgentConfiguration`.
 *
 * @throws {@link AgentConfigError} for an unknown flag, a malformed value or conflicting settings.
 */
export function resolveBootstrapConfig(options: ResolveBootstrapOptions): ResolvedConfig {
  const { values, sources: explicit, warnings } = explicitValues(options);
  const settings = withSchemaDefaults(values, { hostname: options.hostname ?? osHostname() });
  if (explicit.nodeName === undefined) {
    // The host name is not checked like an explicit value: say where a bad one came from.
    try {
      AGENT_CONFIG_SCHEMA.nodeName.parse(settings.nodeName);
    } catch {
      throw new AgentConfigError(
        AgentConfigErrorCode.InvalidValue,
        `the host name ${JSON.stringify(settings.nodeName)} is not a valid node name: set NODENAME`,
        { field: "nodeName", origin: "hostname", value: settings.nodeName },
      );
    }
  }
  const sources = Object.fromEntries(SETTING_NAMES.map((n) => [n, explicit[n] ?? "default"])) as Record<
    SettingName,
    SettingSource
  >;
  return { config: buildAgentConfig(settings, sources, options.env), sources, warnings };
}

/** A copy of `config` safe to print: the schema's sensitive values replaced by `[redacted]`. */
export function redactConfig(config: AgentConfig): AgentConfig {
  const copy = structuredClone(config) as { -readonly [K in keyof AgentConfig]: AgentConfig[K] };
  if (copy.datastore.type === "etcd" && copy.datastore.username !== undefined)
    copy.datastore = { ...copy.datastore, username: "[redacted]" };
  return copy;
}
