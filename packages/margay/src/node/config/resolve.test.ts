import { describe, expect, it } from "vitest";
import { ETCD_ENV } from "../../config/datastore-config.js";
import { type AgentConfigError, isAgentConfigError } from "./errors.js";
import { buildAgentConfig, redactConfig, resolveBootstrapConfig, settingsOf } from "./resolve.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES, type SettingName } from "./schema.js";
import type { AgentConfig } from "./types.js";

const ETCD = { ETCD_ENDPOINTS: "https://10.0.0.1:2379" };

/** One valid value per setting: the text, what it needs beside it, and where it lands in AgentConfig. */
const SAMPLES: Record<
  SettingName,
  { raw: string; with?: Record<string, string>; read: (c: AgentConfig) => unknown; expected: unknown }
> = {
  nodeName: { raw: "node-a.example", read: (c) => c.nodeName, expected: "node-a.example" },
  stateDir: {
    raw: "/srv/margay",
    read: (c) => [c.stateDir, c.datastore.type === "memory" && c.datastore.snapshotPath],
    expected: ["/srv/margay", "/srv/margay/datastore.json"],
  },
  datastoreType: { raw: "etcd", with: ETCD, read: (c) => c.datastore.type, expected: "etcd" },
  etcdEndpoints: {
    raw: "http://10.0.0.1:2379, http://10.0.0.2:2379",
    read: (c) => c.datastore.type === "etcd" && c.datastore.endpoints,
    expected: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"],
  },
  etcdPrefix: {
    raw: "/cluster-a",
    with: ETCD,
    read: (c) => c.datastore.type === "etcd" && c.datastore.prefix,
    expected: "/cluster-a",
  },
  etcdCaCertFile: {
    raw: "/etc/margay/ca.crt",
    with: ETCD,
    read: (c) => c.datastore.type === "etcd" && c.datastore.caCertFile,
    expected: "/etc/margay/ca.crt",
  },
  etcdCertFile: {
    raw: "/etc/margay/client.crt",
    with: { ...ETCD, ETCD_KEY_FILE: "/etc/margay/client.key" },
    read: (c) => c.datastore.type === "etcd" && c.datastore.certFile,
    expected: "/etc/margay/client.crt",
  },
  etcdKeyFile: {
    raw: "/etc/margay/client.key",
    with: { ...ETCD, ETCD_CERT_FILE: "/etc/margay/client.crt" },
    read: (c) => c.datastore.type === "etcd" && c.datastore.keyFile,
    expected: "/etc/margay/client.key",
  },
  etcdUsername: {
    raw: "margay",
    with: { ...ETCD, ETCD_PASSWORD_FILE: "/etc/margay/pw" },
    read: (c) => c.datastore.type === "etcd" && c.datastore.username,
    expected: "margay",
  },
  etcdPasswordFile: {
    raw: "/etc/margay/pw",
    with: { ...ETCD, ETCD_USERNAME: "margay" },
    read: (c) => c.datastore.type === "etcd" && c.datastore.passwordFile,
    expected: "/etc/margay/pw",
  },
  ip: { raw: "10.0.0.5/24", read: (c) => c.ipv4.mode, expected: { address: "10.0.0.5/24" } },
  ipAutodetectionMethod: {
    raw: "interface=eth.*,ens[0-9]+",
    read: (c) => c.ipv4.method,
    expected: { kind: "interface", patterns: ["eth.*", "ens[0-9]+"] },
  },
  ip6: { raw: "autodetect", read: (c) => c.ipv6.mode, expected: "autodetect" },
  ip6AutodetectionMethod: {
    raw: "cidr=fd00::/8",
    read: (c) => c.ipv6.method,
    expected: { kind: "cidr", cidrs: ["fd00::/8"] },
  },
  as: { raw: "1.10", read: (c) => c.asNumber, expected: 65546 },
  bgpGracefulRestartSeconds: { raw: "300", read: (c) => c.bgpGracefulRestartSeconds, expected: 300 },
  networkingBackend: { raw: "vxlan", read: (c) => c.networkingBackend, expected: "vxlan" },
  interfacePrefixes: { raw: "mgy,cali", read: (c) => c.interfacePrefixes, expected: ["mgy", "cali"] },
  mtu: { raw: "1400", read: (c) => c.mtu, expected: 1400 },
  vxlanPort: { raw: "4790", read: (c) => c.vxlan.port, expected: 4790 },
  vxlanVni: { raw: "7", read: (c) => c.vxlan.vni, expected: 7 },
  vxlanDevice: { raw: "vx0", read: (c) => c.vxlan.device, expected: "vx0" },
  noDefaultPools: {
    raw: "true",
    read: (c) => c.defaultPools,
    expected: { ipv4: undefined, ipv6: undefined },
  },
  ipv4PoolCidr: { raw: "10.244.0.0/16", read: (c) => c.defaultPools.ipv4?.cidr, expected: "10.244.0.0/16" },
  ipv4PoolBlockSize: { raw: "24", read: (c) => c.defaultPools.ipv4?.blockSize, expected: 24 },
  ipv4PoolIpip: { raw: "crosssubnet", read: (c) => c.defaultPools.ipv4?.ipipMode, expected: "CrossSubnet" },
  ipv4PoolVxlan: { raw: "Always", read: (c) => c.defaultPools.ipv4?.vxlanMode, expected: "Always" },
  ipv4PoolNatOutgoing: { raw: "false", read: (c) => c.defaultPools.ipv4?.natOutgoing, expected: false },
  ipv4PoolNodeSelector: {
    raw: 'zone == "a"',
    read: (c) => c.defaultPools.ipv4?.nodeSelector,
    expected: 'zone == "a"',
  },
  ipv6PoolCidr: {
    raw: "fd00:10:244::/48",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.cidr,
    expected: "fd00:10:244::/48",
  },
  ipv6PoolBlockSize: {
    raw: "120",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.blockSize,
    expected: 120,
  },
  ipv6PoolIpip: {
    raw: "never",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.ipipMode,
    expected: "Never",
  },
  ipv6PoolVxlan: {
    raw: "CrossSubnet",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.vxlanMode,
    expected: "CrossSubnet",
  },
  ipv6PoolNatOutgoing: {
    raw: "yes",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.natOutgoing,
    expected: true,
  },
  ipv6PoolNodeSelector: {
    raw: "has(v6)",
    with: { IP6: "autodetect" },
    read: (c) => c.defaultPools.ipv6?.nodeSelector,
    expected: "has(v6)",
  },
  workloadSocket: { raw: "/run/m/agent.sock", read: (c) => c.workloadSocket, expected: "/run/m/agent.sock" },
  kubeconfig: { raw: "/etc/k/config", read: (c) => c.kubernetes, expected: { kubeconfig: "/etc/k/config" } },
  kubernetesServiceHost: {
    raw: "10.96.0.1",
    read: (c) => c.kubernetes,
    expected: { inCluster: { host: "10.96.0.1", port: 443 } },
  },
  kubernetesServicePort: {
    raw: "6443",
    with: { KUBERNETES_SERVICE_HOST: "10.96.0.1" },
    read: (c) => c.kubernetes,
    expected: { inCluster: { host: "10.96.0.1", port: 6443 } },
  },
  workloadGcGracePeriodMs: { raw: "0s", read: (c) => c.workloadGcGracePeriodMs, expected: 0 },
  healthEnabled: { raw: "false", read: (c) => c.health.enabled, expected: false },
  healthHost: { raw: "10.0.0.5", read: (c) => c.health.host, expected: "10.0.0.5" },
  healthPort: { raw: "19099", read: (c) => c.health.port, expected: 19099 },
  metricsEnabled: { raw: "true", read: (c) => c.metrics.enabled, expected: true },
  metricsHost: { raw: "127.0.0.1", read: (c) => c.metrics.host, expected: "127.0.0.1" },
  metricsPort: { raw: "19091", read: (c) => c.metrics.port, expected: 19091 },
  metricsPerPeerLabels: { raw: "1", read: (c) => c.metrics.perPeerLabels, expected: true },
  readinessRequiresAllBgpPeers: { raw: "on", read: (c) => c.readinessRequiresAllBgpPeers, expected: true },
  statusIntervalMs: { raw: "1m30s", read: (c) => c.statusIntervalMs, expected: 90_000 },
  dataplaneDriver: {
    raw: "remote",
    with: { MARGAY_DATAPLANE_REMOTE_COMMAND: '["/usr/libexec/d"]' },
    read: (c) => c.dataplane.driver,
    expected: "remote",
  },
  dataplaneRemoteCommand: {
    raw: '["/usr/libexec/d","--v"]',
    with: { MARGAY_DATAPLANE_DRIVER: "remote" },
    read: (c) => c.dataplane.remoteCommand,
    expected: ["/usr/libexec/d", "--v"],
  },
  reconcileIntervalMs: { raw: "2m", read: (c) => c.dataplane.reconcileIntervalMs, expected: 120_000 },
  routeProtocol: { raw: "81", read: (c) => c.dataplane.routeProtocol, expected: 81 },
  endpointToHostAction: { raw: "accept", read: (c) => c.dataplane.endpointToHostAction, expected: "Accept" },
  nftTable: { raw: "margay_b", read: (c) => c.dataplane.nftTable, expected: "margay_b" },
  failsafeInbound: {
    raw: "tcp:22,udp:10.0.0.0/8:68",
    read: (c) => c.failsafe?.inbound,
    expected: [
      { protocol: "tcp", port: 22 },
      { protocol: "udp", port: 68, net: "10.0.0.0/8" },
    ],
  },
  failsafeOutbound: { raw: "none", read: (c) => c.failsafe?.outbound, expected: [] },
  logLevel: { raw: "DEBUG", read: (c) => c.logLevel, expected: "debug" },
};

/** One malformed value per setting, and a fragment of the message it must produce. */
const MALFORMED: Record<SettingName, [raw: string, message: string]> = {
  nodeName: ["Node_A", "DNS subdomain"],
  stateDir: ["var/lib/margay", "absolute path"],
  datastoreType: ["kubernetes", "memory, etcd"],
  etcdEndpoints: [",", "at least one"],
  etcdPrefix: [" ", "empty"],
  etcdCaCertFile: ["ca.crt", "absolute path"],
  etcdCertFile: ["client.crt", "absolute path"],
  etcdKeyFile: ["client.key", "absolute path"],
  etcdUsername: [" ", "empty"],
  etcdPasswordFile: ["pw", "absolute path"],
  ip: ["10.0.0.0/24", "network, not a host"],
  ipAutodetectionMethod: ["first_found", "must be first-found"],
  ip6: ["10.0.0.5", "IPv6"],
  ip6AutodetectionMethod: ["cidr=10.0.0.0/8", "not an IPv6 CIDR"],
  as: ["0", "AS number"],
  bgpGracefulRestartSeconds: ["5000", "[1, 4095]"],
  networkingBackend: ["calico", "bgp, vxlan, none"],
  interfacePrefixes: ["Mgy", "1-8 of"],
  mtu: ["100", "[576, 65535]"],
  vxlanPort: ["70000", "[1, 65535]"],
  vxlanVni: ["-1", "integer"],
  vxlanDevice: ["a/b", "interface name"],
  noDefaultPools: ["maybe", "true or false"],
  ipv4PoolCidr: ["10.0.0.1/16", "host bits"],
  ipv4PoolBlockSize: ["33", "[20, 32]"],
  ipv4PoolIpip: ["sometimes", "Never, Always, CrossSubnet"],
  ipv4PoolVxlan: ["true", "Never, Always, CrossSubnet"],
  ipv4PoolNatOutgoing: ["2", "true or false"],
  ipv4PoolNodeSelector: ["zone ==", "label selector"],
  ipv6PoolCidr: ["10.0.0.0/8", "IPv6 CIDR"],
  ipv6PoolBlockSize: ["64", "[116, 128]"],
  ipv6PoolIpip: ["x", "Never"],
  ipv6PoolVxlan: ["x", "Never"],
  ipv6PoolNatOutgoing: ["x", "true or false"],
  ipv6PoolNodeSelector: ["((", "label selector"],
  workloadSocket: ["agent.sock", "absolute path"],
  kubeconfig: ["config", "absolute path"],
  kubernetesServiceHost: [" ", "empty"],
  kubernetesServicePort: ["0", "[1, 65535]"],
  workloadGcGracePeriodMs: ["soon", "duration"],
  healthEnabled: ["enabled", "true or false"],
  healthHost: [" ", "empty"],
  healthPort: ["0", "[1, 65535]"],
  metricsEnabled: ["y", "true or false"],
  metricsHost: [" ", "empty"],
  metricsPort: ["port", "[1, 65535]"],
  metricsPerPeerLabels: ["2", "true or false"],
  readinessRequiresAllBgpPeers: ["all", "true or false"],
  statusIntervalMs: ["10 seconds", "duration"],
  dataplaneDriver: ["ebpf", "linux, remote"],
  dataplaneRemoteCommand: ["/usr/libexec/d", "JSON array"],
  reconcileIntervalMs: ["500ms", "at least 1000 ms"],
  routeProtocol: ["256", "[1, 255]"],
  endpointToHostAction: ["Allow", "Drop, Accept, Return"],
  nftTable: ["1table", "[A-Za-z0-9_]"],
  failsafeInbound: ["icmp:0", "protocol must be tcp"],
  failsafeOutbound: ["tcp:99999", "port must be"],
  logLevel: ["verbose", "trace, debug"],
};

const resolve = (env: Record<string, string>, argv: string[] = []) =>
  resolveBootstrapConfig({ env, argv, hostname: "node1" });

function configError(f: () => unknown): AgentConfigError {
  try {
    f();
  } catch (e) {
    if (isAgentConfigError(e)) return e;
    throw e;
  }
  throw new Error("expected an AgentConfigError");
}

describe("resolveBootstrapConfig", () => {
  it("built-in defaults: memory datastore in the state dir, autodetected IPv4, Calico's default pool", () => {
    const { config, sources, warnings } = resolve({});
    expect(config).toMatchObject({
      nodeName: "node1",
      datastore: { type: "memory", snapshotPath: "/var/lib/margay/datastore.json" },
      ipv4: { mode: "autodetect", method: { kind: "first-found" } },
      ipv6: { mode: "none" },
      asNumber: undefined,
      networkingBackend: "bgp",
      defaultPools: {
        ipv4: {
          name: "default-ipv4-ippool",
          cidr: "192.168.0.0/16",
          blockSize: 26,
          ipipMode: "Never",
          vxlanMode: "Never",
          natOutgoing: true,
          nodeSelector: "all()",
        },
        ipv6: undefined,
      },
      interfacePrefixes: ["mgy"],
      mtu: undefined,
      vxlan: { port: 4789, vni: 4096, device: "vxlan.margay" },
      workloadSocket: "/var/run/margay/agent.sock",
      workloadGcGracePeriodMs: 60_000,
      health: { enabled: true, host: "localhost", port: 9099 },
      metrics: { enabled: false, port: 9091, perPeerLabels: false },
      statusIntervalMs: 10_000,
      dataplane: {
        driver: "linux",
        reconcileIntervalMs: 180_000,
        routeProtocol: 80,
        endpointToHostAction: "Drop",
      },
      bgpGracefulRestartSeconds: 120,
      logLevel: "info",
    });
    expect(config.failsafe?.inbound).toContainEqual({ protocol: "tcp", port: 22 });
    expect(Object.values(sources).every((s) => s === "default")).toBe(true);
    expect(warnings).toEqual([]);
  });

  it("the host name is lowercased into the node name; an unusable one says to set NODENAME", () => {
    expect(resolveBootstrapConfig({ env: {}, hostname: "Worker-1" }).config.nodeName).toBe("worker-1");
    const e = configError(() => resolveBootstrapConfig({ env: {}, hostname: "bad_host" }));
    expect(e).toMatchObject({ code: "invalid-value", details: { field: "nodeName", origin: "hostname" } });
    expect(e.message).toContain("set NODENAME");
  });

  it("has a sample and a malformed value for every setting of the schema", () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...SETTING_NAMES].sort());
    expect(Object.keys(MALFORMED).sort()).toEqual([...SETTING_NAMES].sort());
  });

  describe.each(SETTING_NAMES)("%s", (name) => {
    const def = AGENT_CONFIG_SCHEMA[name];
    const s = SAMPLES[name];
    it(`is read from ${def.env}`, () => {
      const { config, sources } = resolve({ ...s.with, [def.env]: s.raw });
      expect(s.read(config)).toEqual(s.expected);
      expect(sources[name]).toBe("env");
    });
    it(`is read from --${def.flag}, which wins over ${def.env}`, () => {
      const { config, sources } = resolve({ ...s.with }, [`--${def.flag}`, s.raw]);
      expect(s.read(config)).toEqual(s.expected);
      expect(sources[name]).toBe("flag");
      const both = resolve({ ...s.with, [def.env]: MALFORMED[name][0] }, [`--${def.flag}=${s.raw}`]);
      expect(both.sources[name]).toBe("flag");
      expect(s.read(both.config)).toEqual(s.expected);
    });
    it(`rejects a malformed ${def.env} with a typed error naming it and the value`, () => {
      const [raw, message] = MALFORMED[name];
      const e = configError(() => resolve({ ...s.with, [def.env]: raw }));
      expect(e.code).toBe("invalid-value");
      expect(e.retryable).toBe(false);
      expect(e.details.field).toBe(name);
      expect(e.details.origin).toBe(`env:${def.env}`);
      expect(e.details.value).toBe(def.sensitive ? "[redacted]" : raw);
      expect(e.message).toContain(message);
    });
  });

  it("flags are the environment names in kebab case, without MARGAY_ (two documented exceptions)", () => {
    const exceptions: Partial<Record<SettingName, string>> = {
      nodeName: "node-name", // NODENAME is one word in Calico
      noDefaultPools: "disable-default-pools", // commander reads --no-* as a negation
    };
    for (const n of SETTING_NAMES) {
      const { env, flag } = AGENT_CONFIG_SCHEMA[n];
      const kebab = env
        .replace(/^MARGAY_/, "")
        .toLowerCase()
        .replace(/_/g, "-");
      expect(flag, n).toBe(exceptions[n] ?? kebab);
    }
    expect(new Set(SETTING_NAMES.map((n) => AGENT_CONFIG_SCHEMA[n].env)).size).toBe(SETTING_NAMES.length);
  });

  it("the etcd variables are the ones parseDatastoreConfig (margay-ipam, margayctl) reads", () => {
    expect([
      AGENT_CONFIG_SCHEMA.etcdEndpoints.env,
      AGENT_CONFIG_SCHEMA.etcdCaCertFile.env,
      AGENT_CONFIG_SCHEMA.etcdCertFile.env,
      AGENT_CONFIG_SCHEMA.etcdKeyFile.env,
      AGENT_CONFIG_SCHEMA.etcdUsername.env,
      AGENT_CONFIG_SCHEMA.etcdPasswordFile.env,
    ]).toEqual([
      ETCD_ENV.endpoints,
      ETCD_ENV.caCertFile,
      ETCD_ENV.certFile,
      ETCD_ENV.keyFile,
      ETCD_ENV.username,
      ETCD_ENV.passwordFile,
    ]);
  });

  it("flag beats environment beats default, per setting", () => {
    const env = { MARGAY_VXLAN_PORT: "5000", MARGAY_VXLAN_VNI: "9" };
    const { config, sources } = resolve(env, ["--vxlan-port", "6000"]);
    expect(config.vxlan).toMatchObject({ port: 6000, vni: 9, device: "vxlan.margay" });
    expect([sources.vxlanPort, sources.vxlanVni, sources.vxlanDevice]).toEqual(["flag", "env", "default"]);
  });

  it("an empty environment variable counts as unset (as in Calico)", () => {
    const { config, sources } = resolve({ MARGAY_VXLAN_PORT: "", NODENAME: "" });
    expect(config.vxlan.port).toBe(4789);
    expect(sources.vxlanPort).toBe("default");
    expect(config.nodeName).toBe("node1");
  });

  it("KUBECONFIG may be a list as kubectl takes it (empty entries dropped); every entry must be absolute", () => {
    expect(resolve({ KUBECONFIG: "/etc/k/a::/root/.kube/config:" }).config.kubernetes).toEqual({
      kubeconfig: "/etc/k/a:/root/.kube/config",
    });
    expect(configError(() => resolve({ KUBECONFIG: "/etc/k/a:rel/b" })).code).toBe("invalid-value");
    expect(configError(() => resolve({ KUBECONFIG: ":" })).code).toBe("invalid-value");
  });

  it("boolean flags may be given alone", () => {
    const { config } = resolve({ MARGAY_METRICS_ENABLED: "false" }, [
      "--metrics-enabled",
      "--disable-default-pools",
    ]);
    expect(config.metrics.enabled).toBe(true);
    expect(config.defaultPools.ipv4).toBeUndefined();
  });

  it("an unknown flag or a flag without its value is unknown-flag", () => {
    expect(configError(() => resolve({}, ["--vxlan-prot", "1"]))).toMatchObject({ code: "unknown-flag" });
    expect(configError(() => resolve({}, ["--vxlan-port"]))).toMatchObject({ code: "unknown-flag" });
    expect(configError(() => resolve({}, ["stray"]))).toMatchObject({ code: "unknown-flag" });
  });

  it("an unknown MARGAY_* variable is a warning; other programs' variables are not", () => {
    const { warnings } = resolve({ MARGAY_VXLANPORT: "4790", MARGAY_SNAPSHOT_PATH: "/x", HOME: "/root" });
    expect(warnings).toEqual([
      expect.objectContaining({ code: "unknown-variable", field: "env:MARGAY_VXLANPORT" }),
    ]);
  });

  it("DATASTORE_TYPE defaults to etcd when ETCD_ENDPOINTS is set; etcd settings with memory conflict", () => {
    expect(resolve(ETCD).config.datastore).toEqual({
      type: "etcd",
      endpoints: ["https://10.0.0.1:2379"],
      dialTimeoutMs: 5000,
      requestTimeoutMs: 10_000,
    });
    const e = configError(() => resolve({ DATASTORE_TYPE: "memory", ETCD_CA_CERT_FILE: "/ca.crt" }));
    expect(e).toMatchObject({ code: "conflicting-settings", details: { field: "etcdCaCertFile" } });
    expect(e.message).toContain("env:ETCD_CA_CERT_FILE");
  });

  it("etcd rules of parseDatastoreConfig apply, reported against the setting and its source", () => {
    const tls = configError(() => resolve({ ETCD_ENDPOINTS: "http://e:2379", ETCD_CA_CERT_FILE: "/ca.crt" }));
    expect(tls).toMatchObject({
      code: "invalid-value",
      details: { field: "etcdEndpoints", origin: "env:ETCD_ENDPOINTS" },
    });
    expect(tls.message).toContain("use https://");
    const pair = configError(() => resolve({ ...ETCD }, ["--etcd-cert-file", "/c.crt"]));
    expect(pair).toMatchObject({ details: { field: "etcdKeyFile" } });
    const pw = configError(() => resolve({ ...ETCD, ETCD_PASSWORD: "hunter2" }));
    expect(pw.details.origin).toBe("env:ETCD_PASSWORD");
    expect(JSON.stringify(pw.details)).not.toContain("hunter2");
    expect(pw.message).not.toContain("hunter2");
    const creds = configError(() => resolve({ ETCD_ENDPOINTS: "https://u:p@e:2379" }));
    expect(creds.message).toContain("credentials");
  });

  it("cross-setting rules: IPIP with VXLAN, IPIP with the vxlan backend, pool smaller than a block", () => {
    expect(
      configError(() => resolve({ MARGAY_IPV4POOL_IPIP: "Always", MARGAY_IPV4POOL_VXLAN: "Always" })).code,
    ).toBe("conflicting-settings");
    expect(
      configError(() => resolve({ MARGAY_IPV4POOL_IPIP: "Always", MARGAY_NETWORKING_BACKEND: "vxlan" }))
        .message,
    ).toContain("needs BGP");
    expect(
      configError(() => resolve({ MARGAY_IPV4POOL_CIDR: "10.0.0.0/28", MARGAY_IPV4POOL_BLOCK_SIZE: "26" }))
        .details.field,
    ).toBe("ipv4PoolCidr");
    expect(configError(() => resolve({ IP: "none" })).message).toContain("both none");
    expect(
      configError(() => resolve({ IP6: "autodetect", MARGAY_IPV6POOL_IPIP: "Always" })).message,
    ).toContain("IPIP carries IPv4 only");
    expect(configError(() => resolve({ MARGAY_DATAPLANE_DRIVER: "remote" })).details.field).toBe(
      "dataplaneRemoteCommand",
    );
    expect(
      configError(() =>
        resolve({
          MARGAY_METRICS_ENABLED: "true",
          MARGAY_METRICS_PORT: "9099",
          MARGAY_METRICS_HOST: "localhost",
        }),
      ).details.field,
    ).toBe("metricsPort");
  });

  it("the vxlan backend turns VXLAN on for the default pools unless IPIP or VXLAN is set", () => {
    const v = resolve({ MARGAY_NETWORKING_BACKEND: "vxlan", IP6: "autodetect" }).config.defaultPools;
    expect([v.ipv4?.vxlanMode, v.ipv6?.vxlanMode]).toEqual(["Always", "Always"]);
    const cs = resolve({ MARGAY_NETWORKING_BACKEND: "vxlan", MARGAY_IPV4POOL_VXLAN: "CrossSubnet" }).config;
    expect(cs.defaultPools.ipv4?.vxlanMode).toBe("CrossSubnet");
  });

  it("IPv6 default pool only when IP6 is not none; NO_DEFAULT_POOLS turns both off", () => {
    expect(resolve({}).config.defaultPools.ipv6).toBeUndefined();
    expect(resolve({ IP6: "fd00::5/64" }).config.defaultPools.ipv6).toMatchObject({
      name: "default-ipv6-ippool",
      cidr: "fd80:24e2:f998:72d6::/64",
      blockSize: 122,
      ipipMode: "Never",
      natOutgoing: false,
    });
    expect(resolve({ IP6: "autodetect", NO_DEFAULT_POOLS: "true" }).config.defaultPools).toEqual({
      ipv4: undefined,
      ipv6: undefined,
    });
  });

  it("settingsOf inverts buildAgentConfig", () => {
    for (const env of [
      {},
      { ...ETCD, ETCD_USERNAME: "u", ETCD_PASSWORD_FILE: "/pw", IP6: "autodetect", NO_DEFAULT_POOLS: "1" },
      { MARGAY_DATAPLANE_DRIVER: "remote", MARGAY_DATAPLANE_REMOTE_COMMAND: '["/d"]', MARGAY_MTU: "1400" },
    ]) {
      const { config, sources } = resolve(env);
      expect(buildAgentConfig(settingsOf(config), sources)).toEqual(config);
    }
  });

  it("redactConfig hides every sensitive setting", () => {
    const sensitive = SETTING_NAMES.filter((n) => AGENT_CONFIG_SCHEMA[n].sensitive);
    expect(sensitive.length).toBeGreaterThan(0);
    const env: Record<string, string> = { ...ETCD, ETCD_PASSWORD_FILE: "/pw" };
    for (const n of sensitive) env[AGENT_CONFIG_SCHEMA[n].env] = "s3cr3t-value";
    const { config } = resolve(env);
    expect(JSON.stringify(config)).toContain("s3cr3t-value");
    expect(JSON.stringify(redactConfig(config))).not.toContain("s3cr3t-value");
  });
});
