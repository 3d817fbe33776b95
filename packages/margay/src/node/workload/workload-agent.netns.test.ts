/**
 * The workload API inside the whole agent (runNodeAgent in-process on a namespace this test creates):
 * real pipeline, real Linux driver, real plumber. When add replies, the pod's route and its policy are
 * already in the kernel: the reply waited for them (another pod cannot reach it until a profile allows
 * it, then can through the veths). del removes the veth and, soon after, the route.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger } from "@margay/api";
import { type NetnsLab, createNetnsLab } from "@margay/dataplane/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningAgent, runNodeAgent } from "../agent.js";
import { resolveBootstrapConfig } from "../config/resolve.js";
import { createWorkloadClient } from "./client.js";

let lab: NetnsLab;
let host: Awaited<ReturnType<NetnsLab["add"]>>;
let pod: Awaited<ReturnType<NetnsLab["add"]>>;
let peer: Awaited<ReturnType<NetnsLab["add"]>>;
let stateDir: string;
let agent: RunningAgent | undefined;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  lab = createNetnsLab("mgwa");
  cleanup.push(() => lab.close());
  host = await lab.add("host");
  pod = await lab.add("pod");
  peer = await lab.add("peer");
  const r = (argv: string[]) => lab.exec(host, argv);
  // An underlay interface for address autodetection (both veth ends stay in the namespace).
  await r(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "ul0"]);
  await r(["ip", "link", "set", "ul0", "up"]);
  await r(["ip", "link", "set", "eth0", "up"]);
  await r(["ip", "addr", "add", "10.78.0.1/24", "dev", "eth0"]);
  stateDir = await mkdtemp(join(tmpdir(), "margay-wl-agent-"));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
  const { config, sources } = resolveBootstrapConfig({
    env: {
      NODENAME: "wl-node",
      DATASTORE_TYPE: "memory",
      MARGAY_STATE_DIR: stateDir,
      MARGAY_NETWORKING_BACKEND: "vxlan",
      IP_AUTODETECTION_METHOD: "interface=eth0",
      MARGAY_IPV4POOL_CIDR: "10.67.0.0/16",
      MARGAY_AGENT_SOCKET: join(stateDir, "run", "agent.sock"),
      MARGAY_HEALTH_ENABLED: "false",
      MARGAY_METRICS_ENABLED: "false",
    },
    hostname: "wl-node",
  });
  agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: host });
  cleanup.push(() => agent!.stop("cleanup"));
  await agent.ready;
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

const routeTo = async (ip: string) =>
  JSON.parse(await lab.exec(host, ["ip", "-j", "route", "show", `${ip}/32`])) as { dev?: string }[];

describe("workload API in the running agent", () => {
  it("add replies once the pod's route and policy are programmed; del takes them away", async () => {
    const client = createWorkloadClient(join(stateDir, "run", "agent.sock"), { timeoutMs: 60_000 });
    expect(await client.status()).toMatchObject({ ready: true, node: "wl-node" });
    const req = {
      containerId: "agentctr",
      ifName: "eth0",
      netns: `/run/netns/${pod.name}`,
      namespace: "default",
      pod: "web",
    };
    const r = await client.add(req);
    const ip = r.ips[0]!.address.split("/")[0]!;
    expect(ip).toMatch(/^10\.67\./);
    // No polling: at reply time the kernel already routes to the pod and nftables knows its interface.
    expect(await routeTo(ip)).toEqual([expect.objectContaining({ dev: r.hostInterface })]);
    const ruleset = await lab.exec(host, ["nft", "list", "ruleset"]);
    expect(ruleset).toContain(r.hostInterface);
    // Policy from the first packet: another pod cannot reach it while no profile allows anything...
    const other = await client.add({
      containerId: "peerctr",
      ifName: "eth0",
      netns: `/run/netns/${peer.name}`,
      namespace: "default",
      pod: "peer",
    });
    const ping = () =>
      lab.exec(peer, ["ping", "-c", "1", "-W", "1", ip]).then(
        () => true,
        () => false,
      );
    expect(await ping()).toBe(false);
    // ...and can once the namespace's profile allows it (as kube-adapter writes it for a Namespace).
    await agent!.context()!.datastore.create({
      apiVersion: "margay.io/v1",
      kind: "Profile",
      metadata: { name: "kns.default" },
      spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
    });
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) reached = await ping();
    expect(reached).toBe(true);
    expect(other.hostInterface).not.toBe(r.hostInterface);
    expect(await client.check(req)).toMatchObject({ ok: true });

    const d = await client.del({ containerId: "agentctr", ifName: "eth0", namespace: "default", pod: "web" });
    expect(d).toMatchObject({ endpointDeleted: true, interfaceRemoved: true, released: [ip] });
    for (let i = 0; i < 100 && (await routeTo(ip)).length > 0; i++)
      await new Promise((s) => setTimeout(s, 50));
    expect(await routeTo(ip)).toEqual([]);
  });
});
