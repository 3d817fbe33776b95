/**
 * The workload MTU follows the pools while the agent runs (runNodeAgent in-process on a namespace this
 * test creates, real Linux driver, real plumber, real workload API socket): the agent starts with a pool
 * without encapsulation on a 9000-byte underlay, so pods get 9000; the pool is then switched to VXLAN,
 * and the next pod's veth (both ends) gets 8950, as does the VXLAN device the switch brings, while the
 * pod added before keeps 9000. The workload API status, NodeStatus and the metrics gauge show the change.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger, type IPPool, type NodeStatus } from "@margay/api";
import { createNetnsLab, type NetnsLab } from "@margay/dataplane/testing";
import { freePort } from "@margay/datastore/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningAgent, runNodeAgent } from "./agent.js";
import { resolveBootstrapConfig } from "./config/resolve.js";
import { createWorkloadClient } from "./workload/client.js";
import { WORKLOAD_MTU_METRIC } from "./workload-mtu.js";

let lab: NetnsLab;
let host: Awaited<ReturnType<NetnsLab["add"]>>;
let pods: Awaited<ReturnType<NetnsLab["add"]>>[];
let stateDir: string;
let agent: RunningAgent;
let metricsPort: number;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  lab = createNetnsLab("mgmtu");
  cleanup.push(() => lab.close());
  host = await lab.add("host");
  pods = [await lab.add("pod1"), await lab.add("pod2")];
  const r = (argv: string[]) => lab.exec(host, argv);
  // A jumbo-frame underlay (both veth ends stay in the namespace), so every MTU below is the agent's.
  await r(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "ul0"]);
  await r(["ip", "link", "set", "ul0", "mtu", "9000", "up"]);
  await r(["ip", "link", "set", "eth0", "mtu", "9000", "up"]);
  await r(["ip", "addr", "add", "10.79.0.1/24", "dev", "eth0"]);
  stateDir = await mkdtemp(join(tmpdir(), "margay-mtu-"));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
  metricsPort = await freePort();
  const { config, sources } = resolveBootstrapConfig({
    env: {
      NODENAME: "mtu-node",
      DATASTORE_TYPE: "memory",
      MARGAY_STATE_DIR: stateDir,
      // Backend none: one host, no BGP speaker; pools decide the encapsulation.
      MARGAY_NETWORKING_BACKEND: "none",
      MARGAY_IPV4POOL_VXLAN: "Never",
      MARGAY_IPV4POOL_IPIP: "Never",
      IP_AUTODETECTION_METHOD: "interface=eth0",
      MARGAY_IPV4POOL_CIDR: "10.68.0.0/16",
      MARGAY_AGENT_SOCKET: join(stateDir, "run", "agent.sock"),
      MARGAY_HEALTH_ENABLED: "false",
      MARGAY_METRICS_ENABLED: "true",
      MARGAY_METRICS_HOST: "127.0.0.1",
      MARGAY_METRICS_PORT: String(metricsPort),
    },
    hostname: "mtu-node",
  });
  agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: host });
  cleanup.push(() => agent.stop("cleanup"));
  await agent.ready;
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function linkMtu(ns: (typeof pods)[0], dev: string): Promise<number | undefined> {
  const out = await lab.exec(ns, ["ip", "-j", "link", "show", "dev", dev]).catch(() => "[]");
  return (JSON.parse(out) as { mtu?: number }[])[0]?.mtu;
}

async function poll<T>(read: () => Promise<T>, done: (v: T) => boolean, tries = 300): Promise<T> {
  let v = await read();
  for (let i = 0; i < tries && !done(v); i++) {
    await new Promise((s) => setTimeout(s, 100));
    v = await read();
  }
  return v;
}

describe("the workload MTU follows the pools while the agent runs", () => {
  it("a pool switched to VXLAN gives the next pod's veth and the VXLAN device the VXLAN MTU; the pod before keeps its own and passes CHECK", async () => {
    const client = createWorkloadClient(join(stateDir, "run", "agent.sock"), { timeoutMs: 60_000 });
    expect(await client.status()).toMatchObject({ ready: true, mtu: 9000 });
    const request = (i: number) => ({
      containerId: `mtuctr${i}`,
      ifName: "eth0",
      netns: `/run/netns/${pods[i]!.name}`,
      namespace: "default",
      pod: `p${i}`,
    });
    const add = (i: number) => client.add(request(i));
    const before = await add(0);
    expect(await linkMtu(host, before.hostInterface)).toBe(9000);
    expect(await linkMtu(pods[0]!, "eth0")).toBe(9000);

    const ds = agent.context()!.datastore;
    const pool = (await ds.list<IPPool>("IPPool")).items[0]!;
    await ds.update({ ...pool, spec: { ...pool.spec, vxlanMode: "Always" } });

    const status = await poll(
      () => client.status(),
      (s) => s.mtu !== 9000,
    );
    const after = await add(1);
    expect(await linkMtu(host, after.hostInterface)).toBe(8950);
    expect(await linkMtu(pods[1]!, "eth0")).toBe(8950);
    expect(status.mtu).toBe(8950);
    // Existing pods keep theirs (felix does not touch them either).
    expect(await linkMtu(host, before.hostInterface)).toBe(9000);
    expect(await linkMtu(pods[0]!, "eth0")).toBe(9000);
    // ... and CHECK holds each pod to the MTU it was made with, not the agent's current one.
    expect(await client.check(request(0))).toMatchObject({ ok: true });
    expect(await client.check(request(1))).toMatchObject({ ok: true });

    // The switch gives the node a VTEP, and the VXLAN device the VXLAN MTU (not the one derived at start).
    const device = agent.context()!.config.vxlan.device;
    expect(
      await poll(
        () => linkMtu(host, device),
        (m) => m === 8950,
      ),
    ).toBe(8950);

    const nodeStatus = await poll(
      () => ds.get<NodeStatus>({ kind: "NodeStatus", name: "mtu-node" }).catch(() => undefined),
      (s) => s?.status?.mtu === 8950,
    );
    expect(nodeStatus?.status?.mtu).toBe(8950);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain(`${WORKLOAD_MTU_METRIC} 8950`);
  });
});
