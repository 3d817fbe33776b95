/**
 * The whole agent in-process, acting on a namespace this test creates (the agent's "host"): memory
 * datastore in a scratch state directory, VXLAN backend, real Linux driver, real workload API socket and
 * real ops endpoints on loopback. It becomes ready, names its components on /readyz, writes its Node and
 * NodeStatus, and a SIGTERM-equivalent stop leaves its routes and rules; a restart adopts them and keeps
 * the node's tunnel address. Then two agents (two namespaces on one underlay link) share one etcd: one
 * default pool, each host routes the other's block through its VXLAN device, and a ping crosses it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger, type IPPool, type Node, type NodeStatus } from "@margay/api";
import { createNetnsLab, type NetnsLab } from "@margay/dataplane/testing";
import { createMemoryDatastore } from "@margay/datastore";
import { freePort, startEtcd } from "@margay/datastore/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningAgent, runNodeAgent } from "./agent.js";
import { resolveBootstrapConfig } from "./config/resolve.js";
import type { AgentConfig } from "./config/types.js";

interface KernelRoute {
  dst: string;
  type?: string;
  dev?: string;
}

let lab: NetnsLab;
let ns: Awaited<ReturnType<NetnsLab["add"]>>;
let stateDir: string;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  lab = createNetnsLab("mgag");
  cleanup.push(() => lab.close());
  ns = await lab.add("h1");
  const r = (argv: string[]) => lab.exec(ns, argv);
  // The underlay: a veth pair with both ends in the namespace (no module needed).
  await r(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "ul0"]);
  await r(["ip", "link", "set", "ul0", "up"]);
  await r(["ip", "link", "set", "eth0", "up"]);
  await r(["ip", "addr", "add", "10.77.0.1/24", "dev", "eth0"]);
  stateDir = await mkdtemp(join(tmpdir(), "margay-agent-"));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function agentConfig(): Promise<{
  config: AgentConfig;
  sources: ReturnType<typeof resolveBootstrapConfig>["sources"];
}> {
  const port = await freePort();
  const mport = await freePort();
  const { config, sources } = resolveBootstrapConfig({
    env: {
      NODENAME: "agent-node",
      DATASTORE_TYPE: "memory",
      MARGAY_STATE_DIR: stateDir,
      MARGAY_NETWORKING_BACKEND: "vxlan",
      IP_AUTODETECTION_METHOD: "interface=eth0",
      MARGAY_IPV4POOL_CIDR: "10.66.0.0/16",
      MARGAY_AGENT_SOCKET: join(stateDir, "run", "agent.sock"),
      MARGAY_HEALTH_ENABLED: "true",
      MARGAY_HEALTH_HOST: "127.0.0.1",
      MARGAY_HEALTH_PORT: String(port),
      MARGAY_METRICS_ENABLED: "true",
      MARGAY_METRICS_HOST: "127.0.0.1",
      MARGAY_METRICS_PORT: String(mport),
    },
    hostname: "agent-node",
  });
  return { config, sources };
}

async function start(): Promise<RunningAgent> {
  const { config, sources } = await agentConfig();
  const agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: ns });
  cleanup.push(() => agent.stop("cleanup"));
  return agent;
}

async function routes(): Promise<KernelRoute[]> {
  return JSON.parse(await lab.exec(ns, ["ip", "-j", "route", "show", "proto", "80"])) as KernelRoute[];
}

describe("runNodeAgent in a namespace", () => {
  it("becomes ready, serves /readyz with its components, writes Node and NodeStatus; stop keeps routes; restart adopts", async () => {
    const agent = await start();
    await agent.ready;
    const ctx = agent.context();
    if (ctx === undefined) throw new Error("no context after ready");
    const ops = agent.ops();
    const readyz = await fetch(`http://127.0.0.1:${ops?.health?.port}/readyz`);
    const body = (await readyz.json()) as { status: string; components: { name: string; ready: boolean }[] };
    const names = body.components.map((c) => c.name);
    for (const n of ["agent", "datastore", "dataplane", "workload-api"]) expect(names).toContain(n);
    expect(readyz.status === 200).toBe(body.status === "ok");
    // /metrics: the IPAM gauges count the node's tunnel address in the default pool.
    const inUse = 'margay_ipam_pool_addresses{pool="default-ipv4-ippool",state="in_use"}';
    let metricsText = "";
    for (let i = 0; i < 250 && !metricsText.includes(inUse); i++) {
      const res = await fetch(`http://127.0.0.1:${ops?.metrics?.port}/metrics`);
      expect(res.status).toBe(200);
      metricsText = await res.text();
      if (!metricsText.includes(inUse)) await new Promise((r) => setTimeout(r, 20));
    }
    expect(metricsText).toContain(`${inUse} 1`);
    expect(metricsText).toContain('margay_agent_component_ready{component="agent"} 1');

    // The Node: the chosen address, a VXLAN tunnel address from the default pool, a stable MAC.
    const node = await ctx.datastore.get<Node>({ kind: "Node", name: "agent-node" });
    expect(node.spec.bgp?.ipv4Address).toBe("10.77.0.1/24");
    expect(node.spec.addresses).toEqual([{ address: "10.77.0.1/24", type: "CalicoNodeIP" }]);
    expect(node.spec.ipv4VXLANTunnelAddr).toMatch(/^10\.66\./);
    expect(node.spec.vxlanTunnelMACAddr).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
    const pools = await ctx.datastore.list("IPPool");
    expect(pools.items.map((p) => p.metadata.name)).toEqual(["default-ipv4-ippool"]);

    // The NodeStatus: written, and shows the dataplane in sync once ready.
    let status: NodeStatus | undefined;
    for (let i = 0; i < 500; i++) {
      status = await ctx.datastore
        .get<NodeStatus>({ kind: "NodeStatus", name: "agent-node" })
        .catch(() => undefined);
      if (
        status?.status?.dataplane?.inSync === true &&
        status.status.agent?.components.some((c) => c.name === "agent" && c.ready)
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(status?.status?.addresses).toEqual({ ipv4: "10.77.0.1/24", interface: "eth0" });
    expect(status?.status?.mtu).toBe(1450);
    expect(status?.status?.dataplane?.inSync).toBe(true);
    expect(status?.status?.bgp).toBeUndefined();

    // The node's block is programmed (blackhole for its own block, from the tunnel address allocation).
    const before = await routes();
    expect(before).toContainEqual(expect.objectContaining({ type: "blackhole" }));
    const nftBefore = await lab.exec(ns, ["nft", "list", "table", "inet", "margay"]);

    // SIGTERM-equivalent: routes and rules stay.
    await agent.stop("SIGTERM");
    expect(await routes()).toEqual(before);
    expect(await lab.exec(ns, ["nft", "list", "table", "inet", "margay"])).toContain("table inet margay");
    expect(nftBefore).toContain("table inet margay");
    await expect(fetch(`http://127.0.0.1:${ops?.health?.port}/livez`)).rejects.toThrow();
    // The last NodeStatus says the agent stopped (read from the snapshot the stopped agent left).
    const snapshot = createMemoryDatastore({ snapshotPath: join(stateDir, "datastore.json") });
    const last = await snapshot.get<NodeStatus>({ kind: "NodeStatus", name: "agent-node" });
    await snapshot.close();
    expect(last.status?.agent?.ready).toBe(false);
    expect(last.status?.agent?.components).toContainEqual({
      name: "agent",
      live: true,
      ready: false,
      reason: "stopping",
    });

    // Restart on the same state: the same tunnel address, routes adopted.
    const again = await start();
    await again.ready;
    const node2 = await again.context()?.datastore.get<Node>({ kind: "Node", name: "agent-node" });
    expect(node2?.spec.ipv4VXLANTunnelAddr).toBe(node.spec.ipv4VXLANTunnelAddr);
    expect(node2?.spec.vxlanTunnelMACAddr).toBe(node.spec.vxlanTunnelMACAddr);
    expect(await routes()).toEqual(before);
    await again.stop("SIGTERM");
  });

  it("a startup failure is typed and names its step (no address on the chosen interface)", async () => {
    const { config, sources } = await agentConfig();
    const bad = {
      ...config,
      ipv4: { mode: "autodetect" as const, method: { kind: "interface" as const, patterns: ["nosuch.*"] } },
    };
    const logger = createRecordingLogger();
    const agent = await runNodeAgent(bad, { logger, sources, netns: ns });
    cleanup.push(() => agent.stop("cleanup"));
    const err = await agent.ready.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "no-address" });
    expect(logger.find({ level: "error" })).toHaveLength(1);
    expect(logger.find({ level: "error" })[0]).toMatchObject({
      message: "agent startup failed",
      attributes: { code: "no-address", step: "addresses", reason: expect.any(String) },
    });
    expect(agent.health.snapshot().live).toBe(false);
    await agent.stop("SIGTERM");
  });
});

describe("two agents on one etcd (two hosts as namespaces)", () => {
  it("one default pool, both Nodes registered, each host routes the other's block over VXLAN and a ping crosses the tunnel", async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const hosts = [await lab.add("e1"), await lab.add("e2")];
    // The underlay: one veth pair between the two namespaces.
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    await lab.exec(a, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.name]);
    for (const [h, addr] of [
      [a, "10.78.0.1/24"],
      [b, "10.78.0.2/24"],
    ] as const) {
      await lab.exec(h, ["ip", "addr", "add", addr, "dev", "eth0"]);
      await lab.exec(h, ["ip", "link", "set", "eth0", "up"]);
    }
    const agents: RunningAgent[] = [];
    await Promise.all(
      hosts.map(async (h, i) => {
        const dir = await mkdtemp(join(tmpdir(), "margay-agent-etcd-"));
        cleanup.push(() => rm(dir, { recursive: true, force: true }));
        const { config, sources } = resolveBootstrapConfig({
          env: {
            NODENAME: `etcd-node-${i + 1}`,
            DATASTORE_TYPE: "etcd",
            ETCD_ENDPOINTS: etcd.endpoints.join(","),
            MARGAY_STATE_DIR: dir,
            MARGAY_NETWORKING_BACKEND: "vxlan",
            IP_AUTODETECTION_METHOD: "interface=eth0",
            MARGAY_IPV4POOL_CIDR: "10.67.0.0/16",
            MARGAY_AGENT_SOCKET: join(dir, "agent.sock"),
            // Two agents in one process share the host's loopback: no default ports.
            MARGAY_HEALTH_ENABLED: "false",
            MARGAY_METRICS_ENABLED: "false",
          },
          hostname: `etcd-node-${i + 1}`,
        });
        const agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: h });
        cleanup.push(() => agent.stop("cleanup"));
        agents.push(agent);
        await agent.ready;
      }),
    );
    const ds = agents[0]?.context()?.datastore;
    if (ds === undefined) throw new Error("no datastore");
    expect((await ds.list("IPPool")).items.map((p) => p.metadata.name)).toEqual(["default-ipv4-ippool"]);
    const nodes = (await ds.list<Node>("Node")).items;
    expect(nodes.map((n) => n.metadata.name)).toEqual(["etcd-node-1", "etcd-node-2"]);
    const blocks = (
      await ds.list<{
        kind: string;
        metadata: { name: string };
        spec: { cidr: string; affinity: string | null };
      }>("IPAMBlock")
    ).items;
    const blockOf = (node: string) => blocks.find((x) => x.spec.affinity === `host:${node}`)?.spec.cidr;
    // Each host routes the other's block through its VXLAN device (eventually: the other node may have
    // registered after this one's first sync).
    for (const [h, other] of [
      [a, "etcd-node-2"],
      [b, "etcd-node-1"],
    ] as const) {
      const cidr = blockOf(other);
      expect(cidr).toBeDefined();
      let found: KernelRoute | undefined;
      for (let i = 0; i < 500 && found === undefined; i++) {
        const rs = JSON.parse(
          await lab.exec(h, ["ip", "-j", "route", "show", "proto", "80"]),
        ) as KernelRoute[];
        found = rs.find((r) => r.dst === cidr);
        if (found === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(found?.dev).toMatch(/vxlan/);
    }
    // Real packets through the tunnel: host a reaches host b's VXLAN tunnel address.
    const tunnelB = nodes.find((n) => n.metadata.name === "etcd-node-2")?.spec.ipv4VXLANTunnelAddr;
    expect(tunnelB).toBeDefined();
    await lab.exec(a, ["ping", "-c", "1", "-W", "5", tunnelB as string]);
    await Promise.all(agents.map((x) => x.stop("SIGTERM")));
  });
});

describe("a pool switched to VXLAN while two agents run (two hosts as namespaces, one etcd)", () => {
  it("both Nodes get a tunnel address and MAC, each host routes the other's block over VXLAN and a ping crosses the tunnel, without a restart", async () => {
    const etcd = await startEtcd();
    cleanup.push(() => etcd.stop());
    const hosts = [await lab.add("s1"), await lab.add("s2")];
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    await lab.exec(a, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.name]);
    for (const [h, addr] of [
      [a, "10.79.0.1/24"],
      [b, "10.79.0.2/24"],
    ] as const) {
      await lab.exec(h, ["ip", "addr", "add", addr, "dev", "eth0"]);
      await lab.exec(h, ["ip", "link", "set", "eth0", "up"]);
    }
    const agents: RunningAgent[] = [];
    // Backend bgp with a flat pool: nothing asks for VXLAN at start, so no Node gets a tunnel address.
    for (const [i, h] of hosts.entries()) {
      const dir = await mkdtemp(join(tmpdir(), "margay-agent-switch-"));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      const { config, sources } = resolveBootstrapConfig({
        env: {
          NODENAME: `switch-node-${i + 1}`,
          DATASTORE_TYPE: "etcd",
          ETCD_ENDPOINTS: etcd.endpoints.join(","),
          MARGAY_STATE_DIR: dir,
          MARGAY_NETWORKING_BACKEND: "bgp",
          IP_AUTODETECTION_METHOD: "interface=eth0",
          MARGAY_IPV4POOL_CIDR: "10.68.0.0/16",
          MARGAY_IPV4POOL_VXLAN: "Never",
          MARGAY_AGENT_SOCKET: join(dir, "agent.sock"),
          MARGAY_HEALTH_ENABLED: "false",
          MARGAY_METRICS_ENABLED: "false",
        },
        hostname: `switch-node-${i + 1}`,
      });
      const agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: h });
      cleanup.push(() => agent.stop("cleanup"));
      agents.push(agent);
      await agent.ready;
    }
    const ds = agents[0]?.context()?.datastore;
    if (ds === undefined) throw new Error("no datastore");
    const nodesNow = async () => (await ds.list<Node>("Node")).items;
    expect((await nodesNow()).map((n) => n.spec.ipv4VXLANTunnelAddr)).toEqual([undefined, undefined]);

    const p = await ds.get<IPPool>({ kind: "IPPool", name: "default-ipv4-ippool" });
    await ds.update({ ...p, spec: { ...p.spec, vxlanMode: "Always" } });

    let nodes: Node[] = [];
    for (let i = 0; i < 500; i++) {
      nodes = await nodesNow();
      if (
        nodes.every(
          (n) => n.spec.ipv4VXLANTunnelAddr !== undefined && n.spec.vxlanTunnelMACAddr !== undefined,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(nodes.map((n) => n.spec.ipv4VXLANTunnelAddr)).toEqual([
      expect.stringMatching(/^10\.68\./),
      expect.stringMatching(/^10\.68\./),
    ]);
    const tunnelB = nodes.find((n) => n.metadata.name === "switch-node-2")?.spec
      .ipv4VXLANTunnelAddr as string;
    // Host a reaches host b's tunnel address through its VXLAN device (eventually: both pipelines follow).
    let route: KernelRoute | undefined;
    for (let i = 0; i < 500; i++) {
      const rs = JSON.parse(await lab.exec(a, ["ip", "-j", "route", "show", "proto", "80"])) as KernelRoute[];
      route = rs.find((r) => r.dev !== undefined && /vxlan/.test(r.dev));
      if (route !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(route?.dev).toMatch(/vxlan/);
    let pinged = false;
    for (let i = 0; i < 20 && !pinged; i++) {
      pinged = await lab
        .exec(a, ["ping", "-c", "1", "-W", "1", tunnelB])
        .then(() => true)
        .catch(() => false);
    }
    expect(pinged).toBe(true);
    await Promise.all(agents.map((x) => x.stop("SIGTERM")));
  });
});
