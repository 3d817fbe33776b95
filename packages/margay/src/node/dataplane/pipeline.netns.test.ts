/**
 * The pipeline with the real Linux driver in a namespace this test creates: the datastore's pools, nodes,
 * blocks and endpoints become kernel routes and an nftables table; a restart adopts them without removing
 * or re-adding a route.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { nftNames } from "@margay/dataplane";
import { createNetnsLab, type NetnsLab } from "@margay/dataplane/testing";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentDriver } from "./driver.js";
import { type RunningDataplanePipeline, startDataplanePipeline } from "./pipeline.js";
import {
  allowPolicy,
  eventually,
  node,
  pool,
  type TestContext,
  testContext,
  wep,
} from "./pipeline.test-util.js";

interface KernelRoute {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

let lab: NetnsLab;
let nsName: string;
let ns: Awaited<ReturnType<NetnsLab["add"]>>;
const cleanup: (() => Promise<void>)[] = [];

async function ipRoutes(on = ns): Promise<KernelRoute[]> {
  const out = await lab.exec(on, ["ip", "-j", "route", "show", "proto", "80"]);
  return (JSON.parse(out) as KernelRoute[]).sort((a, b) => a.dst.localeCompare(b.dst));
}

async function nftTable(): Promise<string> {
  return lab.exec(ns, ["nft", "list", "table", "inet", "margay"]);
}

/** `ip monitor route` in the namespace, started and known to be listening. */
async function monitorRoutes(): Promise<{ lines: () => string[]; stop: () => void }> {
  const child: ChildProcess = spawn("ip", ["-n", nsName, "monitor", "route"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout?.on("data", (d: Buffer) => {
    text += d.toString();
  });
  const stop = () => {
    if (child.exitCode === null) child.kill("SIGTERM");
  };
  cleanup.push(async () => stop());
  // A marker route (not ours: protocol static) proves the monitor is listening before we measure.
  const marker = "198.51.100.7";
  await eventually(async () => {
    await lab.exec(ns, ["ip", "route", "replace", "blackhole", `${marker}/32`, "proto", "static"]);
    return text.includes(marker);
  });
  await lab.exec(ns, ["ip", "route", "del", "blackhole", `${marker}/32`]);
  await eventually(() => text.includes(`Deleted blackhole ${marker}`));
  text = "";
  // Routes the kernel makes itself (`proto kernel`: an IPv6 link-local route appearing late on a new veth)
  // are neither ours nor the driver's doing.
  return {
    lines: () => text.split("\n").filter((l) => l.trim() !== "" && !/\bproto kernel\b/.test(l)),
    stop,
  };
}

beforeAll(async () => {
  lab = createNetnsLab("mgpl");
  cleanup.push(() => lab.close());
  ns = await lab.add("h1");
  nsName = ns.name;
  const r = (argv: string[]) => lab.exec(ns, argv);
  // veth pairs with both ends in the namespace (no dummy module needed): the underlay, the host side of
  // a pod's veth, and a workload-prefixed interface no endpoint names.
  const pair = async (name: string, peer: string) => {
    await r(["ip", "link", "add", name, "type", "veth", "peer", "name", peer]);
    await r(["ip", "link", "set", peer, "up"]);
    await r(["ip", "link", "set", name, "up"]);
  };
  await pair("eth0", "ul0");
  await r(["ip", "addr", "add", "10.77.0.1/24", "dev", "eth0"]);
  await pair("mgyweb0", "podweb0");
  await pair("mgystray0", "podstray0");
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function startOn(ctx: TestContext, on = ns, mtu = 1450): Promise<RunningDataplanePipeline> {
  const driver = await createAgentDriver(ctx, { netns: on, mtu });
  const p = await startDataplanePipeline(ctx, {
    driver,
    addresses: { ipv4: "10.77.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
  });
  cleanup.push(() => p.close());
  return p;
}

describe("dataplane pipeline with the Linux driver in a namespace", () => {
  it("programs routes and policy, keeps them over close(), and a restart adopts them", async () => {
    const ctx = testContext();
    const ds = ctx.datastore;
    await ds.create(pool("default", "10.65.0.0/16"));
    await ds.create(node("node-a", "10.77.0.1/24"));
    await ds.create(node("node-b", "10.77.0.2/24"));
    const ipam = createIpam({ datastore: ds });
    const podA = (await ipam.autoAssign({ handleId: "web", node: "node-a", num4: 1 })).ipv4[0]!;
    const podB = (await ipam.autoAssign({ handleId: "db", node: "node-b", num4: 1 })).ipv4[0]!;
    const w = await ds.create(
      wep("shop", "node--a-k8s-web-eth0", "node-a", podA.ip, "mgyweb0", { app: "web" }),
    );

    const first = await startOn(ctx);
    await first.waitForEndpoint("shop/node--a-k8s-web-eth0", w.metadata.resourceVersion!);
    const routes = await ipRoutes();
    expect(routes).toContainEqual(expect.objectContaining({ dst: podA.block, type: "blackhole" }));
    expect(routes).toContainEqual(
      expect.objectContaining({ dst: podB.block, gateway: "10.77.0.2", dev: "eth0" }),
    );
    expect(routes).toContainEqual(expect.objectContaining({ dst: podA.ip, dev: "mgyweb0" }));
    expect(await nftTable()).toContain("table inet margay");
    // Fail closed: the stray workload interface is known to the driver as unclaimed (its traffic dropped).
    const linux = first.driver as unknown as { unclaimedInterfaces: readonly string[] };
    expect(linux.unclaimedInterfaces).toEqual(["mgystray0"]);

    // A policy change reaches the kernel.
    await ds.create(allowPolicy("allow-web", "app == 'web'", 80));
    let policyId = "";
    await eventually(async () => {
      const snap = await first.driver.snapshot();
      policyId = snap.policies.find((id) => id.includes("allow-web")) ?? "";
      return policyId !== "";
    });
    expect(await nftTable()).toContain(nftNames.policy(policyId, "in"));

    // SIGTERM path: close without teardown leaves routes and rules.
    await first.close();
    expect(await ipRoutes()).toEqual(routes);
    expect(await nftTable()).toContain(nftNames.policy(policyId, "in"));

    // A restart adopts them: no route is removed or re-added.
    const monitor = await monitorRoutes();
    const ctx2 = testContext({ datastore: ds });
    const second = await startOn(ctx2);
    await eventually(() => second.inSync);
    await (second.driver as unknown as { reconcile(): Promise<{ added: number; removed: number }> })
      .reconcile()
      .then((r) => expect(r).toEqual({ added: 0, removed: 0 }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    monitor.stop();
    expect(monitor.lines()).toEqual([]);
    expect(await ipRoutes()).toEqual(routes);
    expect(await nftTable()).toContain(nftNames.policy(policyId, "in"));
    expect(ctx2.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });

    // Teardown removes what the driver owns (and only that: the workload interfaces stay).
    await second.close({ teardown: true });
    expect(await ipRoutes()).toEqual([]);
    await expect(nftTable()).rejects.toThrow();
    expect(await lab.exec(ns, ["ip", "-br", "link", "show", "mgyweb0"])).toContain("mgyweb0");
  });

  it("VXLAN: this node's VTEP from its Node becomes the tunnel device (with the agent's MTU) and remote blocks go through it", async () => {
    const h2 = await lab.add("h2");
    await lab.exec(h2, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "ul0"]);
    await lab.exec(h2, ["ip", "link", "set", "ul0", "up"]);
    await lab.exec(h2, ["ip", "addr", "add", "10.77.0.1/24", "dev", "eth0"]);
    await lab.exec(h2, ["ip", "link", "set", "eth0", "up"]);
    const ctx = testContext();
    const ds = ctx.datastore;
    await ds.create(pool("default", "10.65.0.0/16", { vxlanMode: "Always" }));
    await ds.create(node("node-a", "10.77.0.1/24", { address: "10.65.0.250", mac: "66:00:00:00:00:0a" }));
    await ds.create(node("node-b", "10.77.0.2/24", { address: "10.65.1.250", mac: "66:00:00:00:00:0b" }));
    const ipam = createIpam({ datastore: ds });
    const podB = (await ipam.autoAssign({ handleId: "db", node: "node-b", num4: 1 })).ipv4[0]!;
    const p = await startOn(ctx, h2, 1410);
    await eventually(() => p.inSync);
    const [dev] = JSON.parse(
      await lab.exec(h2, ["ip", "-j", "-d", "addr", "show", "dev", "vxlan.margay"]),
    ) as {
      mtu: number;
      address: string;
      addr_info: { local: string; prefixlen: number }[];
      linkinfo: { info_data: { id: number; local: string; port: number } };
    }[];
    expect(dev?.mtu).toBe(1410);
    expect(dev?.address).toBe("66:00:00:00:00:0a");
    expect(dev?.addr_info.map((a) => a.local)).toContain("10.65.0.250");
    expect(dev?.linkinfo.info_data).toMatchObject({ id: 4096, local: "10.77.0.1", port: 4789 });
    expect(await ipRoutes(h2)).toContainEqual(
      expect.objectContaining({ dst: podB.block, gateway: "10.65.1.250", dev: "vxlan.margay" }),
    );
    await p.close({ teardown: true });
    await expect(lab.exec(h2, ["ip", "link", "show", "vxlan.margay"])).rejects.toThrow();
  });
});
