/**
 * The cluster lab: a small cluster of simulated hosts built from network namespaces, each running a real
 * `margay-node`, for end-to-end tests, benchmarks and the demo. Imports no test runner.
 *
 * Topology (addresses fixed so tests can name them; namespaces `<prefix>-<suffix>-<role>`):
 *
 * ```
 *  subnet A 10.77.0.0/24 (bridge br-a in the "sw" namespace)      subnet B 10.78.0.0/24 (br-b)
 *   hostN  10.77.0.(10+N)   etcd 10.77.0.250   BIRD peers .240+   hostN 10.78.0.(10+N)
 *   router 10.77.0.254 ─────────────── router ─────────────────── 10.78.0.254
 *                                        │ 10.79.0.1
 *                              "outside" 10.79.0.2 (no route to pod addresses: natOutgoing checks)
 * ```
 *
 * Every host has a default route via the router (when there is one), IP forwarding on and rp_filter off.
 * The lab process reaches etcd through a unix-socket bridge, so nothing is added to the host namespace.
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createEtcdDatastore, type Datastore, isDatastoreError } from "@margay/datastore";
import { convertNamespace } from "@margay/policy";
import { type BirdNeighbor, type BirdPeer, startBirdPeer } from "./bird-peer.js";
import { ClusterLabError } from "./errors.js";
import { type Probe, PROBE_PORTS, startProbe } from "./probe.js";
import { nsArgv, runCommand, terminate, type WaitForOptions, waitFor } from "./process.js";
import { cleanStaleLabs, deleteNamespace, forgetLabOwner, recordLabOwner } from "./stale.js";

/** Which underlay subnet a host sits on. */
export type LabSubnet = "a" | "b";

/** Address plan of the lab (fixed, so tests can name addresses). */
export const LAB_ADDRESSES = Object.freeze({
  subnetA: "10.77.0.0/24",
  subnetB: "10.78.0.0/24",
  subnetOutside: "10.79.0.0/24",
  routerA: "10.77.0.254",
  routerB: "10.78.0.254",
  routerOutside: "10.79.0.1",
  outside: "10.79.0.2",
  etcd: "10.77.0.250",
  /** First BIRD peer; the k-th is `.240 + k`. */
  birdBase: 240,
  /** Port of the agents' health server. */
  healthPort: 9099,
  /** etcd's client port. */
  etcdPort: 2379,
});

/** Options of {@link createClusterLab}. */
export interface ClusterLabOptions {
  /** Number of hosts (all on subnet A). Default 3. Ignored when `subnets` is given. */
  readonly hosts?: number | undefined;
  /** Subnet of each host, in order (`["a", "a", "b"]`); its length is the host count. */
  readonly subnets?: readonly LabSubnet[] | undefined;
  /** Build the router, subnet B and the outside namespace. Default true. */
  readonly router?: boolean | undefined;
  /** `etcd` (default; etcd in its own namespace) or `memory` (each agent its own store: one host only). */
  readonly datastore?: "etcd" | "memory" | undefined;
  /** Start an agent on every host when the lab is built, and wait for /readyz. Default true. */
  readonly startAgents?: boolean | undefined;
  /** Environment every agent gets on top of the lab's (e.g. `MARGAY_NETWORKING_BACKEND`, pool settings). */
  readonly agentEnv?: Readonly<Record<string, string>> | undefined;
  /** The `margay-node` bundle. Default: `dist/bin/margay-node.cjs` of this package. */
  readonly agentBinary?: string | undefined;
  /** Namespace name prefix. Default `mgl`. */
  readonly prefix?: string | undefined;
  /** Directory under which the lab's temp directory is made. Default the OS temp dir. */
  readonly baseDir?: string | undefined;
  /** Give IPv6 underlay addresses too (`fd77::/64`, `fd78::/64`). Default false. */
  readonly ipv6?: boolean | undefined;
  /** How long to wait for an agent's /readyz, ms. Default 60 000. */
  readonly readyTimeoutMs?: number | undefined;
  /**
   * Before a pod of a namespace is added, create that namespace's profile (`kns.<namespace>`, allow all, the
   * namespace's name as label) as the cluster's controller does for a Kubernetes namespace, so pods talk
   * until a policy says otherwise. etcd labs only. Default true.
   */
  readonly namespaceProfiles?: boolean | undefined;
  /** Keep the temp directory (logs) after close. Default false. */
  readonly keepDir?: boolean | undefined;
  /** Called with each progress line (e.g. `console.log` while debugging). Default silent. */
  readonly log?: ((line: string) => void) | undefined;
}

/** One simulated host. */
export interface LabHost {
  /** Node name (`host1`, ...): the agent's NODENAME. */
  readonly name: string;
  /** Its namespace. */
  readonly ns: string;
  readonly subnet: LabSubnet;
  /** Underlay IPv4 with prefix (`10.77.0.11/24`). */
  readonly address: string;
  /** Underlay IPv4 alone. */
  readonly ip: string;
  /** Underlay IPv6 with prefix, when the lab has IPv6. */
  readonly address6: string | undefined;
  /** The agent's workload API socket. */
  readonly socket: string;
  /** The agent's state directory. */
  readonly stateDir: string;
  /** The agent's log (stdout and stderr). */
  readonly logFile: string;
  /** Base URL of the agent's health server (reachable from inside the lab only: see {@link ClusterLab.readyz}). */
  readonly healthUrl: string;
  /** Extra environment of this host's agent. */
  readonly env: Readonly<Record<string, string>>;
}

/** A pod made by {@link ClusterLab.addPod}. */
export interface LabPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The host it runs on. */
  readonly host: LabHost;
  /** Its network namespace. */
  readonly ns: string;
  /** Its addresses (no prefix), IPv4 first. */
  readonly ips: readonly string[];
  /** Its first IPv4 address (else first address). */
  readonly ip: string;
  /** The probe running in it (serves {@link PROBE_PORTS}). */
  readonly probe: Probe;
}

/** What `stopAgent` saw when the agent exited. */
export interface AgentExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Result of a ping run. */
export interface PingResult {
  readonly transmitted: number;
  readonly received: number;
  /** ping's own output, for failure messages. */
  readonly output: string;
}

/** What a pod add needs from the workload API; the lab's default calls the agent's socket. */
export interface LabWorkloadRequest {
  readonly host: LabHost;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Path of the pod's network namespace (`/run/netns/...`). */
  readonly netns: string;
  /** Container id (unique per pod). */
  readonly containerId: string;
  /** Interface name inside the pod. */
  readonly ifName: string;
  /** Requested addresses, if any. */
  readonly ips: readonly string[] | undefined;
  /** Pools (names or CIDRs) to allocate from, if not the node's automatic ones. */
  readonly pools: readonly string[] | undefined;
}

/** Adds and deletes workloads through an agent (the default: the agent's workload API client). */
export interface LabWorkloadApi {
  add(request: LabWorkloadRequest): Promise<{ readonly ips: readonly string[] }>;
  del(request: LabWorkloadRequest): Promise<void>;
}

/** A running cluster lab. */
export interface ClusterLab {
  /** `<prefix>-<suffix>`: every namespace of the lab starts with it. */
  readonly name: string;
  /** The lab's temp directory (logs, sockets, state). */
  readonly dir: string;
  /** Current hosts. */
  readonly hosts: readonly LabHost[];
  /** etcd's URL as agents dial it (undefined with the memory datastore). */
  readonly etcdEndpoint: string | undefined;
  /** etcd's URL from the lab's own process (loopback, bridged into the etcd namespace). */
  readonly etcdClientEndpoint: string | undefined;
  /** Namespace of the router (undefined without one). */
  readonly routerNs: string | undefined;
  /** Namespace of the "outside" host behind the router, serving {@link PROBE_PORTS} at `LAB_ADDRESSES.outside`. */
  readonly outsideNs: string | undefined;
  /** The host named `name`; throws `bad-input` if there is none. */
  host(name: string): LabHost;
  /** A datastore client on the lab's etcd (one per lab, closed by `close()`). */
  datastore(): Datastore;
  /** Runs `argv` in namespace `ns`; resolves with stdout. */
  exec(ns: string, argv: readonly string[], options?: { readonly timeoutMs?: number }): Promise<string>;
  /** Adds a host (next index) on `subnet` and, unless `startAgent` is false, starts its agent and waits until ready. */
  addHost(options?: {
    readonly subnet?: LabSubnet | undefined;
    readonly env?: Readonly<Record<string, string>> | undefined;
    readonly startAgent?: boolean | undefined;
  }): Promise<LabHost>;
  /**
   * Removes a host: stops its agent (SIGTERM), deletes its namespace and pods, and (default) deletes its
   * Node resource, as the cluster's controller does when a node leaves.
   */
  removeHost(host: LabHost, options?: { readonly deleteNode?: boolean | undefined }): Promise<void>;
  /** Starts the host's agent (no wait; see {@link ClusterLab.waitReady}). */
  startAgent(host: LabHost, env?: Readonly<Record<string, string>>): void;
  /** Signals the host's agent and waits until it exits (SIGKILL after `graceMs`, default 20 000). */
  stopAgent(host: LabHost, signal?: NodeJS.Signals, graceMs?: number): Promise<AgentExit>;
  /** True while the host's agent runs. */
  agentRunning(host: LabHost): boolean;
  /** GET /readyz (or `path`) of the host's agent from inside its namespace. */
  readyz(host: LabHost, path?: string): Promise<{ status: number; body: string } | undefined>;
  /** Waits until the host's agent answers /readyz with 200; the timeout names the last answer and log tail. */
  waitReady(host: LabHost, options?: WaitForOptions): Promise<void>;
  /** The host agent's log so far. */
  logs(host: LabHost): Promise<string>;
  /** Stops etcd (SIGKILL by default: the server vanishes); its data is kept. */
  stopEtcd(signal?: NodeJS.Signals): Promise<void>;
  /** Starts etcd again on the same address and data; waits until healthy. */
  startEtcd(): Promise<void>;
  /** Creates a pod namespace on `host` and adds it through the workload API; starts a probe in it. */
  addPod(
    host: LabHost,
    spec: {
      readonly namespace?: string | undefined;
      readonly name: string;
      readonly labels?: Readonly<Record<string, string>> | undefined;
      readonly ips?: readonly string[] | undefined;
      /** Pools (names or CIDRs) to allocate from. Default: the node's automatic pools. */
      readonly pools?: readonly string[] | undefined;
    },
  ): Promise<LabPod>;
  /** Deletes a pod through the workload API and removes its namespace. */
  removePod(pod: LabPod): Promise<void>;
  /**
   * True if `from` reaches `to` (a pod or an address): `icmp` one ping, `tcp` a connect to the probe's port,
   * `udp` an echo round trip.
   */
  canReach(
    from: LabPod | { readonly probe: Probe; readonly ns: string },
    to: LabPod | string,
    options?: {
      readonly proto?: "icmp" | "tcp" | "udp";
      readonly port?: number;
      readonly timeoutMs?: number;
    },
  ): Promise<boolean>;
  /** Pings `to` from namespace `ns` `count` times every `intervalS` and reports what came back. */
  ping(
    ns: string,
    to: string,
    options?: { readonly count?: number; readonly intervalS?: number },
  ): Promise<PingResult>;
  /** The probe of a lab namespace (hosts, outside, etcd), started on first use. */
  probeIn(ns: string): Promise<Probe>;
  /** The host's routes (`ip -j route show`, IPv4 unless `family` 6), parsed. */
  routes(host: LabHost, family?: 4 | 6): Promise<LabRoute[]>;
  /** Starts BIRD in a new namespace on subnet A as a top-of-rack peer of the given hosts (default all). */
  addBirdPeer(options: {
    readonly asNumber: number;
    /** AS of the hosts. Default 64512 (Calico's default). */
    readonly hostAsNumber?: number | undefined;
    readonly hosts?: readonly LabHost[] | undefined;
    readonly announce?: readonly string[] | undefined;
  }): Promise<BirdPeer>;
  /** Kills every process and deletes every namespace of the lab, even after a failure. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One route as `ip -j route` prints it (the fields the lab's users read). */
export interface LabRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly protocol?: string;
  readonly type?: string;
  readonly flags?: readonly string[];
}

const DEFAULTS = Object.freeze({
  hosts: 3,
  prefix: "mgl",
  readyTimeoutMs: 60_000,
});

/** Finds `dist/bin/margay-node.cjs` of this package by walking up to its package.json. */
function defaultAgentBinary(): string | undefined {
  let here: string | undefined;
  try {
    here = dirname(fileURLToPath(import.meta.url));
  } catch {
    here = typeof __dirname === "string" ? __dirname : undefined;
  }
  for (let dir = here; dir !== undefined && dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (!existsSync(pkg)) continue;
    try {
      if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "@margay/margay")
        return join(dir, "dist", "bin", "margay-node.cjs");
    } catch {}
  }
  return undefined;
}

// Inside the etcd namespace: a unix socket that forwards to etcd's loopback client port.
const ETCD_BRIDGE_SOURCE = `
const net = require("node:net");
const [sock, port] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(Number(port), "127.0.0.1");
  c.pipe(u); u.pipe(c);
  c.on("error", () => u.destroy()); u.on("error", () => c.destroy());
  c.on("close", () => u.destroy()); u.on("close", () => c.destroy());
}).listen(sock, () => process.stdout.write("ready\\n"));
`;

/**
 * Builds a {@link ClusterLab}. On any failure while building, everything made so far is removed before
 * the error is thrown. Stale labs of dead test runs (same prefix) are cleaned first.
 */
export async function createClusterLab(options: ClusterLabOptions = {}): Promise<ClusterLab> {
  const prefix = options.prefix ?? DEFAULTS.prefix;
  if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix))
    throw new ClusterLabError(
      "bad-input",
      `prefix must be 1-6 lowercase letters/digits, got ${JSON.stringify(prefix)}`,
    );
  const subnets: LabSubnet[] = options.subnets
    ? [...options.subnets]
    : Array.from({ length: options.hosts ?? DEFAULTS.hosts }, () => "a" as const);
  const withRouter = options.router ?? true;
  if (!withRouter && subnets.includes("b"))
    throw new ClusterLabError("bad-input", "hosts on subnet b need the router (router: false given)");
  const datastoreKind = options.datastore ?? "etcd";
  if (datastoreKind === "memory" && subnets.length > 1)
    throw new ClusterLabError("bad-input", "the memory datastore serves one host; use etcd for more");
  const startAgents = options.startAgents ?? true;
  const agentBinary = options.agentBinary ?? defaultAgentBinary();
  if (startAgents && (agentBinary === undefined || !existsSync(agentBinary)))
    throw new ClusterLabError(
      "agent-missing",
      `margay-node bundle not found at ${agentBinary ?? "(unknown)"}: build it with npx lerna run build --scope @margay/margay`,
      { details: { agentBinary } },
    );
  const say = options.log ?? (() => undefined);
  const readyTimeout = options.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs;

  await cleanStaleLabs(prefix).catch(() => []);
  const suffix = randomBytes(3).toString("hex");
  const labName = `${prefix}-${suffix}`;
  const dir = await mkdtemp(join(options.baseDir ?? tmpdir(), `${labName}-`));
  await recordLabOwner(labName);

  const namespaces: string[] = [];
  const agents = new Map<string, ChildProcess>();
  const probes = new Map<string, Probe>();
  const pods = new Set<LabPod>();
  const birds: BirdPeer[] = [];
  const hosts: LabHost[] = [];
  const sockets = new Set<Socket>();
  let hostIndex = 0;
  let podIndex = 0;
  let closed = false;
  let etcdProc: ChildProcess | undefined;
  let bridgeProc: ChildProcess | undefined;
  let proxy: Server | undefined;
  let etcdClientEndpoint: string | undefined;
  let client: Datastore | undefined;
  let workloadApi: LabWorkloadApi | undefined;

  const nsName = (role: string) => `${labName}-${role}`;
  const sw = nsName("sw");
  const ip = (ns: string, args: readonly string[]) => runCommand(["ip", "-n", ns, ...args]);
  const exec = (ns: string, argv: readonly string[], o: { timeoutMs?: number } = {}) =>
    runCommand(nsArgv(ns, argv), o);
  const sysctl = (ns: string, ...kv: string[]) => exec(ns, ["sysctl", "-q", "-w", ...kv]);

  const forgetNs = (ns: string) => {
    const i = namespaces.indexOf(ns);
    if (i >= 0) namespaces.splice(i, 1);
  };
  const addNs = async (role: string) => {
    const ns = nsName(role);
    await runCommand(["ip", "netns", "add", ns]);
    namespaces.push(ns);
    await ip(ns, ["link", "set", "lo", "up"]);
    return ns;
  };
  /** Plugs `ns`'s `eth0` into bridge `br` of the switch as port `port`, with addresses. */
  const plug = async (ns: string, port: string, br: string, addrs: readonly string[], ifname = "eth0") => {
    await ip(ns, ["link", "add", ifname, "type", "veth", "peer", "name", port, "netns", sw]);
    await ip(sw, ["link", "set", port, "master", br, "up"]);
    for (const a of addrs)
      await ip(ns, ["addr", "add", a, "dev", ifname, ...(a.includes(":") ? ["nodad"] : [])]);
    await ip(ns, ["link", "set", ifname, "up"]);
  };
  const host4 = (subnet: LabSubnet, i: number) => `10.${subnet === "a" ? 77 : 78}.0.${10 + i}`;

  const probeIn = async (ns: string) => {
    let p = probes.get(ns);
    if (p === undefined) {
      p = await startProbe(ns);
      probes.set(ns, p);
    }
    return p;
  };

  const hostEnv = (host: LabHost, extra: Readonly<Record<string, string>> = {}): Record<string, string> => ({
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    NODENAME: host.name,
    IP: host.address,
    ...(host.address6 === undefined ? {} : { IP6: host.address6 }),
    ...(datastoreKind === "etcd"
      ? { DATASTORE_TYPE: "etcd", ETCD_ENDPOINTS: `http://${LAB_ADDRESSES.etcd}:${LAB_ADDRESSES.etcdPort}` }
      : { DATASTORE_TYPE: "memory" }),
    MARGAY_STATE_DIR: host.stateDir,
    MARGAY_AGENT_SOCKET: host.socket,
    MARGAY_HEALTH_ENABLED: "true",
    MARGAY_HEALTH_HOST: host.ip,
    MARGAY_HEALTH_PORT: String(LAB_ADDRESSES.healthPort),
    MARGAY_LOG_LEVEL: "info",
    ...options.agentEnv,
    ...host.env,
    ...extra,
  });

  const startAgent = (host: LabHost, extra?: Readonly<Record<string, string>>) => {
    if (closed) throw new ClusterLabError("closed", "the lab is closed");
    if (agentBinary === undefined || !existsSync(agentBinary))
      throw new ClusterLabError(
        "agent-missing",
        `margay-node bundle not found at ${agentBinary ?? "(unknown)"}`,
      );
    const running = agents.get(host.name);
    if (running !== undefined && running.exitCode === null && running.signalCode === null)
      throw new ClusterLabError("bad-input", `the agent of ${host.name} is already running`);
    const fd = openSync(host.logFile, "a");
    try {
      // `ip netns exec` (not nsenter): the agent reads /sys/class/net, which must show the host's devices.
      const child = spawn("ip", ["netns", "exec", host.ns, process.execPath, agentBinary], {
        stdio: ["ignore", fd, fd],
        env: hostEnv(host, extra),
      });
      child.on("error", () => undefined);
      agents.set(host.name, child);
      say(`agent ${host.name} started (pid ${child.pid})`);
    } finally {
      closeSync(fd);
    }
  };

  const stopAgent = async (host: LabHost, signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000) => {
    const child = agents.get(host.name);
    if (child === undefined) return { code: null, signal: null };
    await terminate(child, signal, graceMs);
    return { code: child.exitCode, signal: child.signalCode };
  };

  const agentRunning = (host: LabHost) => {
    const c = agents.get(host.name);
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  };

  const logs = (host: LabHost) => readFile(host.logFile, "utf8").catch(() => "");
  const tail = async (host: LabHost, lines = 30) => (await logs(host)).split("\n").slice(-lines).join("\n");

  const readyz = async (host: LabHost, path = "/readyz") => {
    const p = await probeIn(host.ns);
    return p.httpGet(`${host.healthUrl}${path}`, 2_000);
  };

  const waitReady = async (host: LabHost, o: WaitForOptions = {}) => {
    let last: { status: number; body: string } | undefined;
    await waitFor(
      `agent ${host.name} /readyz 200`,
      async () => {
        if (!agentRunning(host)) {
          const c = agents.get(host.name);
          throw new ClusterLabError(
            "command-failed",
            `agent ${host.name} is not running (exit ${c?.exitCode ?? "?"} ${c?.signalCode ?? ""})`,
          );
        }
        last = await readyz(host);
        return last?.status === 200;
      },
      {
        timeoutMs: o.timeoutMs ?? readyTimeout,
        intervalMs: o.intervalMs ?? 300,
        signal: o.signal,
        describe: async () =>
          `last answer ${last === undefined ? "none" : `${last.status} ${last.body.slice(0, 500)}`}; log tail:\n${await tail(host)}`,
      },
    );
  };

  const makeHost = async (subnet: LabSubnet, env: Readonly<Record<string, string>> = {}) => {
    hostIndex += 1;
    const i = hostIndex;
    const name = `host${i}`;
    const ns = await addNs(`h${i}`);
    const v4 = host4(subnet, i);
    const address6 = options.ipv6 ? `fd${subnet === "a" ? 77 : 78}::${10 + i}/64` : undefined;
    await plug(ns, `h${i}`, `br-${subnet}`, [`${v4}/24`, ...(address6 === undefined ? [] : [address6])]);
    if (withRouter) {
      await ip(ns, [
        "route",
        "add",
        "default",
        "via",
        subnet === "a" ? LAB_ADDRESSES.routerA : LAB_ADDRESSES.routerB,
      ]);
      if (options.ipv6)
        await ip(ns, ["-6", "route", "add", "default", "via", `fd${subnet === "a" ? 77 : 78}::fe`]);
    }
    await sysctl(
      ns,
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
    );
    if (options.ipv6) await sysctl(ns, "net.ipv6.conf.all.forwarding=1");
    const stateDir = join(dir, name);
    await mkdir(stateDir, { recursive: true });
    const host: LabHost = {
      name,
      ns,
      subnet,
      address: `${v4}/24`,
      ip: v4,
      address6,
      socket: join(dir, `${name}.sock`),
      stateDir,
      logFile: join(dir, `${name}.log`),
      healthUrl: `http://${v4}:${LAB_ADDRESSES.healthPort}`,
      env: { ...env },
    };
    hosts.push(host);
    say(`host ${name} ${host.address} in ${ns}`);
    return host;
  };

  const etcdArgs = () => {
    const url = `http://${LAB_ADDRESSES.etcd}:${LAB_ADDRESSES.etcdPort}`;
    return [
      "/usr/bin/etcd",
      "--name",
      "lab",
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client-urls",
      `${url},http://127.0.0.1:${LAB_ADDRESSES.etcdPort}`,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-cluster",
      "lab=http://127.0.0.1:2380",
      "--initial-cluster-state",
      "new",
      "--logger",
      "zap",
      "--log-level",
      "warn",
      "--log-outputs",
      join(dir, "etcd.log"),
    ];
  };

  const etcdHealthy = async () => {
    if (etcdClientEndpoint === undefined) return false;
    try {
      const res = await fetch(`${etcdClientEndpoint}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await res.json()) as { health?: unknown };
      return res.ok && (body.health === "true" || body.health === true);
    } catch {
      return false;
    }
  };

  const startEtcd = async () => {
    if (closed) throw new ClusterLabError("closed", "the lab is closed");
    if (etcdProc !== undefined && etcdProc.exitCode === null && etcdProc.signalCode === null) return;
    const argv = nsArgv(nsName("etcd"), etcdArgs());
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "ignore"], env: {} });
    child.on("error", () => undefined);
    etcdProc = child;
    await waitFor(
      "etcd to report healthy",
      () => {
        if (child.exitCode !== null)
          throw new ClusterLabError("command-failed", `etcd exited (${child.exitCode})`);
        return etcdHealthy();
      },
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        describe: () => readFile(join(dir, "etcd.log"), "utf8").then((t) => t.slice(-2000)),
      },
    );
  };

  const stopEtcd = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (etcdProc !== undefined) await terminate(etcdProc, signal, 5_000);
  };

  const startBridge = async () => {
    const sock = join(dir, "etcd-bridge.sock");
    const argv = nsArgv(nsName("etcd"), [
      process.execPath,
      "-e",
      ETCD_BRIDGE_SOURCE,
      sock,
      String(LAB_ADDRESSES.etcdPort),
    ]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: {} });
    bridgeProc = child;
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (c) => reject(new ClusterLabError("command-failed", `etcd bridge exited (${c})`)));
      child.stdout?.once("data", () => resolve());
    });
    const server = createServer((c) => {
      const u = connect(sock);
      for (const s of [c, u]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      c.pipe(u);
      u.pipe(c);
      c.on("close", () => u.destroy());
      u.on("close", () => c.destroy());
    });
    proxy = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    etcdClientEndpoint = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : 0}`;
  };

  const datastore = () => {
    if (closed) throw new ClusterLabError("closed", "the lab is closed");
    if (etcdClientEndpoint === undefined)
      throw new ClusterLabError("bad-input", "the lab has no etcd (datastore: memory)");
    client ??= createEtcdDatastore({
      endpoints: [etcdClientEndpoint],
      dialTimeoutMs: 2_000,
      requestTimeoutMs: 5_000,
    });
    return client;
  };

  const routes = async (host: LabHost, family: 4 | 6 = 4) => {
    const out = await runCommand(["ip", "-j", `-${family}`, "-n", host.ns, "route", "show"]);
    return JSON.parse(out || "[]") as LabRoute[];
  };

  const ping = async (ns: string, to: string, o: { count?: number; intervalS?: number } = {}) => {
    const count = o.count ?? 1;
    const interval = o.intervalS ?? 0.2;
    const argv = nsArgv(ns, ["ping", "-n", "-q", "-c", String(count), "-i", String(interval), "-W", "2", to]);
    const output = await runCommand(argv, { timeoutMs: count * interval * 1000 + 30_000 }).catch(
      (e: ClusterLabError) => String(e.details.stdout ?? ""),
    );
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
    return { transmitted: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), output };
  };

  const canReach: ClusterLab["canReach"] = async (from, to, o = {}) => {
    const addr = typeof to === "string" ? to : to.ip;
    const proto = o.proto ?? "tcp";
    const timeout = o.timeoutMs ?? 1_500;
    if (proto === "icmp") {
      const argv = nsArgv(from.ns, [
        "ping",
        "-n",
        "-q",
        "-c",
        "1",
        "-W",
        String(Math.max(1, Math.ceil(timeout / 1000))),
        addr,
      ]);
      return runCommand(argv, { timeoutMs: timeout + 5_000 }).then(
        () => true,
        () => false,
      );
    }
    const port = o.port ?? (proto === "tcp" ? PROBE_PORTS.tcp : PROBE_PORTS.udp);
    return from.probe.probe(proto, addr, port, timeout);
  };

  const workload = async (): Promise<LabWorkloadApi> => {
    if (workloadApi !== undefined) return workloadApi;
    const { createLabWorkloadApi } = await import("./workload.js");
    workloadApi = createLabWorkloadApi();
    return workloadApi;
  };

  const podRequest = (
    pod:
      | LabPod
      | {
          host: LabHost;
          namespace: string;
          name: string;
          ns: string;
          labels: Readonly<Record<string, string>>;
        },
    ips?: readonly string[],
    pools?: readonly string[],
  ): LabWorkloadRequest => ({
    host: pod.host,
    namespace: pod.namespace,
    name: pod.name,
    labels: pod.labels,
    netns: `/run/netns/${pod.ns}`,
    containerId: `${labName}-${pod.ns}`,
    ifName: "eth0",
    ips,
    pools,
  });

  const profiled = new Set<string>();
  const ensureNamespaceProfile = async (namespace: string) => {
    if (datastoreKind !== "etcd" || !(options.namespaceProfiles ?? true) || profiled.has(namespace)) return;
    try {
      await datastore().create(convertNamespace({ metadata: { name: namespace } }) as never);
    } catch (e) {
      if (!(isDatastoreError(e) && e.code === "already-exists")) throw e;
    }
    profiled.add(namespace);
  };

  const addPod: ClusterLab["addPod"] = async (host, spec) => {
    await ensureNamespaceProfile(spec.namespace ?? "default");
    podIndex += 1;
    const ns = await addNs(`p${podIndex}`);
    const base = {
      host,
      namespace: spec.namespace ?? "default",
      name: spec.name,
      ns,
      labels: { ...spec.labels },
    };
    const api = await workload();
    let ips: readonly string[];
    let probe: Probe;
    try {
      ({ ips } = await api.add(podRequest(base, spec.ips, spec.pools)));
      if (ips.length === 0)
        throw new ClusterLabError(
          "workload-failed",
          `workload add of ${base.namespace}/${base.name} returned no address`,
        );
      probe = await probeIn(ns);
    } catch (e) {
      await deleteNamespace(ns);
      forgetNs(ns);
      throw e;
    }
    const pod: LabPod = { ...base, ips, ip: ips.find((a) => !a.includes(":")) ?? ips[0]!, probe };
    pods.add(pod);
    say(`pod ${pod.namespace}/${pod.name} on ${host.name}: ${ips.join(", ")}`);
    return pod;
  };

  const removePod = async (pod: LabPod) => {
    const api = await workload();
    await api.del(podRequest(pod));
    pods.delete(pod);
    await probes.get(pod.ns)?.close();
    probes.delete(pod.ns);
    await deleteNamespace(pod.ns);
    forgetNs(pod.ns);
  };

  const addBirdPeer: ClusterLab["addBirdPeer"] = async (o) => {
    const k = birds.length;
    const name = `tor${k + 1}`;
    const ns = await addNs(name);
    const address = `10.77.0.${LAB_ADDRESSES.birdBase + k}`;
    await plug(ns, name, "br-a", [`${address}/24`]);
    if (withRouter) await ip(ns, ["route", "add", "default", "via", LAB_ADDRESSES.routerA]);
    const hostAs = o.hostAsNumber ?? 64512;
    const neighbors: BirdNeighbor[] = (o.hosts ?? hosts).map((h) => ({
      name: h.name,
      address: h.ip,
      asNumber: hostAs,
      multihop: h.subnet !== "a",
    }));
    const peer = await startBirdPeer({
      name,
      ns,
      address,
      asNumber: o.asNumber,
      neighbors,
      announce: o.announce,
      dir,
    });
    birds.push(peer);
    return peer;
  };

  const removeHost = async (host: LabHost, o: { deleteNode?: boolean | undefined } = {}) => {
    await stopAgent(host, "SIGTERM");
    const gone = [...pods].filter((p) => p.host === host);
    for (const ns of [...gone.map((p) => p.ns), host.ns]) {
      await probes.get(ns)?.close();
      probes.delete(ns);
      await deleteNamespace(ns);
      forgetNs(ns);
    }
    for (const pod of gone) pods.delete(pod);
    const i = hosts.indexOf(host);
    if (i >= 0) hosts.splice(i, 1);
    if ((o.deleteNode ?? true) && etcdClientEndpoint !== undefined) {
      await datastore()
        .delete({ kind: "Node", name: host.name })
        .catch(() => undefined);
    }
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const p of probes.values()) await attempt(() => p.close());
    await Promise.all([...agents.values()].map((c) => attempt(() => terminate(c, "SIGKILL", 2_000))));
    for (const b of birds) await attempt(() => b.close());
    if (client !== undefined) await attempt(() => client!.close());
    for (const s of sockets) s.destroy();
    if (proxy !== undefined) await attempt(() => new Promise<void>((r) => proxy!.close(() => r())));
    if (bridgeProc !== undefined) await attempt(() => terminate(bridgeProc!, "SIGKILL", 2_000));
    if (etcdProc !== undefined) await attempt(() => terminate(etcdProc!, "SIGKILL", 2_000));
    // Reverse order: pods before hosts before the switch. Whatever still runs inside is killed first.
    for (const ns of [...namespaces].reverse()) await attempt(() => deleteNamespace(ns));
    namespaces.length = 0;
    await attempt(() => forgetLabOwner(labName));
    if (!options.keepDir) await attempt(() => rm(dir, { recursive: true, force: true }));
    if (errors.length > 0) say(`close: ${errors.length} step(s) failed: ${errors.map(String).join("; ")}`);
  };

  const lab: ClusterLab = {
    name: labName,
    dir,
    get hosts() {
      return [...hosts];
    },
    get etcdEndpoint() {
      return datastoreKind === "etcd" ? `http://${LAB_ADDRESSES.etcd}:${LAB_ADDRESSES.etcdPort}` : undefined;
    },
    get etcdClientEndpoint() {
      return etcdClientEndpoint;
    },
    routerNs: withRouter ? nsName("rt") : undefined,
    outsideNs: withRouter ? nsName("out") : undefined,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (h === undefined)
        throw new ClusterLabError("bad-input", `no host ${name} in the lab`, { details: { name } });
      return h;
    },
    datastore,
    exec,
    async addHost(o = {}) {
      const h = await makeHost(o.subnet ?? "a", o.env);
      if (o.startAgent ?? true) {
        startAgent(h);
        await waitReady(h);
      }
      return h;
    },
    removeHost,
    startAgent,
    stopAgent,
    agentRunning,
    readyz,
    waitReady,
    logs,
    stopEtcd,
    startEtcd,
    addPod,
    removePod,
    canReach,
    ping,
    probeIn,
    routes,
    addBirdPeer,
    close,
    [Symbol.asyncDispose]: close,
  };

  try {
    await addNs("sw");
    for (const br of withRouter ? ["br-a", "br-b"] : ["br-a"]) {
      await ip(sw, ["link", "add", br, "type", "bridge"]);
      await ip(sw, ["link", "set", br, "up"]);
    }
    if (withRouter) {
      const rt = await addNs("rt");
      await plug(
        rt,
        "rt-a",
        "br-a",
        [`${LAB_ADDRESSES.routerA}/24`, ...(options.ipv6 ? ["fd77::fe/64"] : [])],
        "eth0",
      );
      await plug(
        rt,
        "rt-b",
        "br-b",
        [`${LAB_ADDRESSES.routerB}/24`, ...(options.ipv6 ? ["fd78::fe/64"] : [])],
        "eth1",
      );
      await sysctl(
        rt,
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
      );
      if (options.ipv6) await sysctl(rt, "net.ipv6.conf.all.forwarding=1");
      const out = await addNs("out");
      await ip(out, ["link", "add", "eth0", "type", "veth", "peer", "name", "eth2", "netns", rt]);
      await ip(out, ["addr", "add", `${LAB_ADDRESSES.outside}/24`, "dev", "eth0"]);
      await ip(out, ["link", "set", "eth0", "up"]);
      await ip(rt, ["addr", "add", `${LAB_ADDRESSES.routerOutside}/24`, "dev", "eth2"]);
      await ip(rt, ["link", "set", "eth2", "up"]);
      await ip(out, ["route", "add", "default", "via", LAB_ADDRESSES.routerOutside]);
      await probeIn(out);
    }
    if (datastoreKind === "etcd") {
      const etcdNs = await addNs("etcd");
      await plug(etcdNs, "etcd", "br-a", [`${LAB_ADDRESSES.etcd}/24`]);
      if (withRouter) await ip(etcdNs, ["route", "add", "default", "via", LAB_ADDRESSES.routerA]);
      await startBridge();
      await startEtcd();
    }
    for (const s of subnets) await makeHost(s);
    if (startAgents) {
      for (const h of hosts) startAgent(h);
      for (const h of hosts) await waitReady(h);
    }
  } catch (e) {
    const tails = await Promise.all(
      hosts.filter((h) => agents.has(h.name)).map(async (h) => `--- ${h.name} ---\n${await tail(h)}`),
    );
    await close();
    if (tails.length > 0 && e instanceof Error) e.message += `\nagent logs:\n${tails.join("\n")}`;
    throw e;
  }
  return lab;
}
