import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataplaneUpdate } from "../stream.js";
import { createNetnsLab, createUnderlay, type LabHost, type NetnsLab } from "../testing/netns-lab.js";
import { watchForGaps } from "../testing/gap-watch.js";
import { type ProbeAgent, startProbeAgent } from "../testing/probe-agent.js";
import { createWorkloadPlumber } from "../workload/plumbing.js";
import { createLinuxDataplane, type LinuxDataplane } from "./linux-driver.js";
import { teardownLinuxDataplane } from "./teardown.js";

// Three hosts on one underlay bridge, one pod per host; pod i is 10.244.i.2 in block 10.244.i.0/26.
const POOL = "10.244.0.0/16";
const block = (i: number) => `10.244.${i}.0/26`;
const podIp = (i: number) => `10.244.${i}.2`;
const vtep = (i: number) => ({
  kind: "vtep-update" as const,
  node: `host${i}`,
  tunnelAddress: `10.244.${i}.1`,
  mac: `02:6d:67:00:00:0${i}`,
  underlayAddress: `10.77.0.${i}`,
});

let lab: NetnsLab;
let hosts: LabHost[];
const drivers: LinuxDataplane[] = [];
const agents: ProbeAgent[] = [];
const pods: { ns: { kind: "named"; name: string }; hostIf: string }[] = [];

function stateFor(i: number, encapsulation: "none" | "vxlan"): DataplaneUpdate[] {
  const ups: DataplaneUpdate[] = hosts.map((h) => ({
    kind: "host-update",
    node: h.node,
    addresses: [h.address],
  }));
  ups.push({ kind: "pool-update", cidr: POOL, encapsulation, crossSubnet: false, natOutgoing: false });
  if (encapsulation === "vxlan") ups.push(...[1, 2, 3].map(vtep));
  for (let j = 1; j <= 3; j++) {
    if (j === i) {
      ups.push({ kind: "route-update", dst: block(j), type: "local-block" });
      ups.push({
        kind: "route-update",
        dst: `${podIp(j)}/32`,
        type: "local-workload",
        ifname: pods[j - 1]!.hostIf,
      });
    } else {
      ups.push({ kind: "route-update", dst: block(j), type: "remote-block", nodes: [`host${j}`] });
    }
  }
  return ups;
}

async function allPairs(): Promise<string[]> {
  const failures: string[] = [];
  for (let a = 1; a <= 3; a++) {
    for (let b = 1; b <= 3; b++) {
      if (a !== b && !(await agents[a - 1]!.probe("tcp", podIp(b), 8080, 1000))) failures.push(`${a}->${b}`);
    }
  }
  return failures;
}

beforeAll(async () => {
  lab = createNetnsLab("mgdp");
  ({ hosts } = await createUnderlay(lab, 3));
  for (let i = 1; i <= 3; i++) {
    const host = hosts[i - 1]!;
    const podNs = await lab.add(`w${i}`);
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host.ns });
    const res = await plumber.add({
      endpoint: { namespace: "default", workload: `pod${i}` },
      containerNetns: podNs,
      addresses: [`${podIp(i)}/32`],
    });
    pods.push({ ns: podNs, hostIf: res.hostIfName });
    agents.push(await startProbeAgent(podNs, { tcp: [8080], udp: [8081] }));
    // Routes only: policy enforcement is proven in policy.netns.test.ts.
    drivers.push(
      createLinuxDataplane({
        netns: host.ns,
        nodeName: host.node,
        reconcileIntervalMs: 0,
        nftables: { enabled: false },
      }),
    );
  }
});

afterAll(async () => {
  for (const a of agents) await a.close();
  for (const d of drivers) await d.close();
  await lab?.close();
});

describe("Linux driver routes across three hosts", () => {
  it("programs nothing before in-sync", async () => {
    const r = await drivers[0]!.apply(stateFor(1, "none"));
    expect(r).toMatchObject({ inSync: false, programmed: false });
    expect((await drivers[0]!.snapshot()).routes).toEqual([]);
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 300)).toBe(false);
  });

  it("flat mode: pods on different hosts reach each other via node IPs", async () => {
    await drivers[0]!.apply([{ kind: "in-sync" }]);
    for (let i = 2; i <= 3; i++) await drivers[i - 1]!.apply([...stateFor(i, "none"), { kind: "in-sync" }]);
    const snap = await drivers[0]!.snapshot();
    expect(snap.routes).toEqual([
      { dst: "10.244.1.0/26", type: "blackhole", nextHops: [] },
      { dst: "10.244.1.2/32", type: "unicast", nextHops: [{ dev: pods[0]!.hostIf, onlink: false }] },
      { dst: "10.244.2.0/26", type: "unicast", nextHops: [{ via: "10.77.0.2", onlink: false }] },
      { dst: "10.244.3.0/26", type: "unicast", nextHops: [{ via: "10.77.0.3", onlink: false }] },
    ]);
    expect(await allPairs()).toEqual([]);
  });

  it("VXLAN mode: switching the pool re-routes through vxlan.margay with neighbours and FDB", async () => {
    for (let i = 1; i <= 3; i++) await drivers[i - 1]!.apply(stateFor(i, "vxlan"));
    const snap = await drivers[0]!.snapshot();
    expect(snap.routes.filter((r) => r.dst.endsWith("/26") && r.type === "unicast")).toEqual([
      {
        dst: "10.244.2.0/26",
        type: "unicast",
        nextHops: [{ via: "10.244.2.1", dev: "vxlan.margay", onlink: true }],
      },
      {
        dst: "10.244.3.0/26",
        type: "unicast",
        nextHops: [{ via: "10.244.3.1", dev: "vxlan.margay", onlink: true }],
      },
    ]);
    expect(snap.vteps).toEqual([
      { address: "10.244.2.1", mac: "02:6d:67:00:00:02", underlay: "10.77.0.2" },
      { address: "10.244.3.1", mac: "02:6d:67:00:00:03", underlay: "10.77.0.3" },
    ]);
    const rx = async () => {
      const out = await lab.exec(hosts[1]!.ns, ["ip", "-s", "-json", "link", "show", "vxlan.margay"]);
      return (JSON.parse(out) as { stats64: { rx: { packets: number } } }[])[0]!.stats64.rx.packets;
    };
    const before = await rx();
    expect(await allPairs()).toEqual([]);
    // The packets really crossed the tunnel: host2's VXLAN device received some.
    expect(await rx()).toBeGreaterThan(before);
  });

  it("ECMP: a block hosted by two nodes gets two next hops", async () => {
    await drivers[0]!.apply([
      { kind: "route-update", dst: "10.244.9.0/26", type: "remote-block", nodes: ["host3", "host2"] },
    ]);
    const r = (await drivers[0]!.snapshot()).routes.find((x) => x.dst === "10.244.9.0/26");
    expect(r?.nextHops).toEqual([
      { via: "10.244.2.1", dev: "vxlan.margay", onlink: true },
      { via: "10.244.3.1", dev: "vxlan.margay", onlink: true },
    ]);
    await drivers[0]!.apply([{ kind: "route-remove", dst: "10.244.9.0/26" }]);
    expect((await drivers[0]!.snapshot()).routes.some((x) => x.dst === "10.244.9.0/26")).toBe(false);
  });

  it("IPIP mode needs the ipip module", async (ctx) => {
    expect(drivers[0]!.ipip).toBeUndefined();
    const r = await drivers[0]!.apply([
      { kind: "pool-update", cidr: POOL, encapsulation: "ipip", crossSubnet: false, natOutgoing: false },
    ]);
    const probe = drivers[0]!.ipip;
    expect(probe).toBeDefined();
    if (!probe!.supported) {
      console.log(`[skip] IPIP: ${probe!.reason}`);
      // The planner drops IPIP next hops with a warning instead of installing a broken route.
      expect(r.warnings.some((w) => w.includes("IPIP is not supported"))).toBe(true);
      await drivers[0]!.apply(stateFor(1, "vxlan"));
      ctx.skip(`IPIP unsupported: ${probe!.reason}`);
    }
    const route = (await drivers[0]!.snapshot()).routes.find((x) => x.dst === block(2));
    expect(route?.nextHops).toEqual([{ via: "10.77.0.2", dev: "tunl0", onlink: true }]);
    await drivers[0]!.apply(stateFor(1, "vxlan"));
  });

  it("CrossSubnet: same-subnet hosts are routed flat even in a VXLAN pool", async () => {
    await drivers[0]!.apply([
      { kind: "pool-update", cidr: POOL, encapsulation: "vxlan", crossSubnet: true, natOutgoing: false },
    ]);
    const r = (await drivers[0]!.snapshot()).routes.find((x) => x.dst === block(2));
    expect(r?.nextHops).toEqual([{ via: "10.77.0.2", onlink: false }]);
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 1000)).toBe(true);
    await drivers[0]!.apply(stateFor(1, "vxlan"));
  });

  it("resolved next hops (as @margay/routing sends them) are programmed as given, also a learned route with no node", async () => {
    // The pool says VXLAN without CrossSubnet; the resolved hop says flat, and wins.
    await drivers[0]!.apply([
      {
        kind: "route-update",
        dst: block(2),
        type: "remote-block",
        nodes: ["host2"],
        nextHops: [{ via: "10.77.0.2", encapsulation: "none", node: "host2" }],
      },
      // A route learned over BGP: an IP next hop (host3's VTEP), no node.
      {
        kind: "route-update",
        dst: block(3),
        type: "remote-block",
        nextHops: [{ via: "10.244.3.1", encapsulation: "vxlan" }],
      },
      {
        kind: "route-update",
        dst: "192.0.2.0/24",
        type: "remote-block",
        nextHops: [{ via: "10.77.0.3", encapsulation: "none" }],
      },
    ]);
    const routes = (await drivers[0]!.snapshot()).routes;
    expect(routes.find((x) => x.dst === block(2))?.nextHops).toEqual([{ via: "10.77.0.2", onlink: false }]);
    expect(routes.find((x) => x.dst === block(3))?.nextHops).toEqual([
      { via: "10.244.3.1", dev: "vxlan.margay", onlink: true },
    ]);
    expect(routes.find((x) => x.dst === "192.0.2.0/24")?.nextHops).toEqual([
      { via: "10.77.0.3", onlink: false },
    ]);
    expect(await allPairs()).toEqual([]);
    await drivers[0]!.apply([...stateFor(1, "vxlan"), { kind: "route-remove", dst: "192.0.2.0/24" }]);
    expect((await drivers[0]!.snapshot()).routes.some((x) => x.dst === "192.0.2.0/24")).toBe(false);
  });

  it("reconcile restores our deleted routes, removes stray routes with our protocol, keeps foreign ones", async () => {
    const ns = hosts[0]!.ns;
    await lab.exec(ns, ["ip", "route", "del", block(2)]);
    await lab.exec(ns, ["ip", "route", "add", "192.0.2.0/24", "via", "10.77.0.3", "proto", "80"]);
    await lab.exec(ns, ["ip", "route", "add", "198.51.100.0/24", "via", "10.77.0.3", "proto", "static"]);
    expect(await drivers[0]!.reconcile()).toEqual({ added: 1, removed: 1 });
    const routes = JSON.parse(await lab.exec(ns, ["ip", "-json", "route", "show"])) as { dst: string }[];
    const dsts = routes.map((r) => r.dst);
    expect(dsts).toContain(block(2));
    expect(dsts).not.toContain("192.0.2.0/24");
    expect(dsts).toContain("198.51.100.0/24");
    expect(await drivers[0]!.reconcile()).toEqual({ added: 0, removed: 0 });
  });

  it("a restarted driver adopts its routes without a traffic gap", async () => {
    // The path crosses both hosts' routes and the VXLAN device the restart must adopt untouched.
    expect(await agents[0]!.probe("udp", podIp(3), 8081, 2000)).toBe(true);
    const watch = watchForGaps(agents[0]!, podIp(3), 8081);
    const kernelState = async () => {
      const ns = hosts[0]!.ns;
      const [link] = JSON.parse(await lab.exec(ns, ["ip", "-json", "link", "show", "vxlan.margay"])) as {
        ifindex: number;
        address: string;
        mtu: number;
      }[];
      return {
        routes: await lab.exec(ns, ["ip", "-json", "route", "show", "table", "all", "proto", "80"]),
        vxlan: { ifindex: link!.ifindex, address: link!.address, mtu: link!.mtu },
        neigh: await lab.exec(ns, ["ip", "-json", "neigh", "show", "dev", "vxlan.margay"]),
      };
    };
    const before = await kernelState();
    await new Promise((r) => setTimeout(r, 100));
    await drivers[0]!.close();
    const fresh = createLinuxDataplane({
      netns: hosts[0]!.ns,
      nodeName: "host1",
      reconcileIntervalMs: 0,
      nftables: { enabled: false },
    });
    drivers[0] = fresh;
    await fresh.apply(stateFor(1, "vxlan"));
    await fresh.apply([{ kind: "in-sync" }]);
    expect(await fresh.reconcile()).toEqual({ added: 0, removed: 0 });
    await new Promise((r) => setTimeout(r, 100));
    const report = await watch.stop();
    expect(report.sent).toBeGreaterThan(5);
    expect(report).toMatchObject({ lost: 0, longestGap: 0 });
    // Adoption touched nothing: same routes, same VXLAN device (ifindex), same neighbours.
    const after = await kernelState();
    expect(after.routes).toBe(before.routes);
    expect(after.vxlan).toEqual(before.vxlan);
    expect(after.neigh).toBe(before.neigh);
  });

  it("removing a pod's route stops traffic to it; restoring brings it back", async () => {
    await drivers[1]!.apply([{ kind: "route-remove", dst: `${podIp(2)}/32` }]);
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 300)).toBe(false);
    await drivers[1]!.apply(stateFor(2, "vxlan"));
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 1000)).toBe(true);
  });

  it("periodic reconciliation restores a deleted route on its own", async () => {
    const ns = hosts[1]!.ns;
    await drivers[1]!.close();
    const periodic = createLinuxDataplane({
      netns: ns,
      nodeName: "host2",
      reconcileIntervalMs: 100,
      nftables: { enabled: false },
    });
    drivers[1] = periodic;
    await periodic.apply([...stateFor(2, "vxlan"), { kind: "in-sync" }]);
    await lab.exec(ns, ["ip", "route", "del", block(1)]);
    const has = async () =>
      (
        JSON.parse(await lab.exec(ns, ["ip", "-json", "route", "show", "proto", "80"])) as { dst: string }[]
      ).some((r) => r.dst === block(1));
    expect(await has()).toBe(false);
    const deadline = Date.now() + 5000;
    while (!(await has()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await has()).toBe(true);
  });

  it("a workload route whose interface is gone is deferred: the rest of the batch lands, the route follows the interface", async () => {
    // A veth removed while the agent was down (or a namespace deleted without a DEL): its endpoint's
    // route cannot be installed. Failing the batch would retry it as it was, forever.
    const ns = hosts[0]!.ns;
    const gone = "mgy0000deadbeef";
    const extra = "10.99.0.0/26";
    const result = await drivers[0]!.apply([
      { kind: "route-update", dst: "10.244.1.9/32", type: "local-workload", ifname: gone },
      { kind: "route-update", dst: extra, type: "remote-block", nodes: ["host2"] },
    ]);
    expect(result.programmed).toBe(true);
    const ours = async () =>
      (
        JSON.parse(await lab.exec(ns, ["ip", "-json", "route", "show", "proto", "80"])) as { dst: string }[]
      ).map((r) => r.dst);
    expect(await ours()).toContain(extra);
    expect(await ours()).not.toContain("10.244.1.9");
    // The interface appears: the next reconcile installs the deferred route.
    await lab.exec(ns, ["ip", "link", "add", gone, "type", "veth", "peer", "name", "mgytmppeer"]);
    await lab.exec(ns, ["ip", "link", "set", gone, "up"]);
    await drivers[0]!.reconcile();
    expect(await ours()).toContain("10.244.1.9");
    await drivers[0]!.apply([
      { kind: "route-remove", dst: "10.244.1.9/32" },
      { kind: "route-remove", dst: extra },
    ]);
    await lab.exec(ns, ["ip", "link", "del", gone]);
    expect(await ours()).not.toContain(extra);
  });

  it("teardown removes what the driver owns and nothing else", async () => {
    const ns = hosts[2]!.ns;
    await drivers[2]!.close();
    await teardownLinuxDataplane({ netns: ns });
    await teardownLinuxDataplane({ netns: ns });
    expect(await lab.exec(ns, ["ip", "-json", "route", "show", "table", "all", "proto", "80"])).toBe("[]\n");
    const links = JSON.parse(await lab.exec(ns, ["ip", "-json", "link", "show"])) as { ifname: string }[];
    expect(links.map((l) => l.ifname)).not.toContain("vxlan.margay");
    expect(links.map((l) => l.ifname)).toContain(pods[2]!.hostIf);
    expect(links.map((l) => l.ifname)).toContain("eth0");
  });
});
