import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import type { DataplaneUpdate } from "../stream.js";
import { createNetnsLab, type NetnsLab } from "../testing/netns-lab.js";
import { type ProbeAgent, startProbeAgent } from "../testing/probe-agent.js";
import { createWorkloadPlumber } from "../workload/plumbing.js";
import { createLinuxDataplane, type LinuxDataplane } from "./linux-driver.js";

// Two hosts on different subnets joined by a router (a flat pool, no encapsulation):
//   host1 eth0 10.78.1.1/24 ── 10.78.1.254 router 10.78.2.254 ── 10.78.2.2/24 eth0 host2
// host1 reaches 10.78.2.0/24 via the router (and host2 the other way). Neither host is a valid gateway
// for the other: the remote block must go via the router, as BIRD's `gateway recursive` installs it.
// The router's routes to the pod blocks stand in for what it would learn from the nodes over BGP.
const POOL = "10.244.0.0/16";
const block = (i: number) => `10.244.${i}.0/26`;
const podIp = (i: number) => `10.244.${i}.2`;
const hostIp = (i: number) => `10.78.${i}.${i}`;
const routerIp = (i: number) => `10.78.${i}.254`;

let lab: NetnsLab;
const hosts: (Awaited<ReturnType<NetnsLab["add"]>> & {})[] = [];
const drivers: LinuxDataplane[] = [];
const agents: ProbeAgent[] = [];
const pods: string[] = [];

function stateFor(i: number, extraHosts: DataplaneUpdate[] = []): DataplaneUpdate[] {
  const ups: DataplaneUpdate[] = [1, 2].map((j) => ({
    kind: "host-update",
    node: `host${j}`,
    addresses: [`${hostIp(j)}/24`],
  }));
  ups.push(...extraHosts);
  ups.push({
    kind: "pool-update",
    cidr: POOL,
    encapsulation: "none",
    crossSubnet: false,
    natOutgoing: false,
  });
  for (let j = 1; j <= 2; j++) {
    if (j === i) {
      ups.push({ kind: "route-update", dst: block(j), type: "local-block" });
      ups.push({ kind: "route-update", dst: `${podIp(j)}/32`, type: "local-workload", ifname: pods[j - 1]! });
    } else ups.push({ kind: "route-update", dst: block(j), type: "remote-block", nodes: [`host${j}`] });
  }
  return ups;
}

const ip = (ns: { name: string }, ...args: string[]) => lab.runner.run(["ip", "-n", ns.name, ...args]);

beforeAll(async () => {
  lab = createNetnsLab("mgrr");
  const router = await lab.add("rt");
  await lab.sysctl(router, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0");
  for (let i = 1; i <= 2; i++) {
    const h = await lab.add(`h${i}`);
    hosts.push(h);
    await ip(h, "link", "add", "eth0", "type", "veth", "peer", "name", `r${i}`, "netns", router.name);
    await ip(h, "addr", "add", `${hostIp(i)}/24`, "dev", "eth0");
    await ip(h, "link", "set", "eth0", "up");
    await ip(router, "addr", "add", `${routerIp(i)}/24`, "dev", `r${i}`);
    await ip(router, "link", "set", `r${i}`, "up");
    await lab.sysctl(
      h,
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
    );
    await ip(router, "route", "add", block(i), "via", hostIp(i));
  }
  await ip(hosts[0]!, "route", "add", "10.78.2.0/24", "via", routerIp(1));
  await ip(hosts[1]!, "route", "add", "10.78.1.0/24", "via", routerIp(2));
  for (let i = 1; i <= 2; i++) {
    const podNs = await lab.add(`w${i}`);
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: hosts[i - 1]! });
    const res = await plumber.add({
      endpoint: { namespace: "default", workload: `pod${i}` },
      containerNetns: podNs,
      addresses: [`${podIp(i)}/32`],
    });
    pods.push(res.hostIfName);
    agents.push(await startProbeAgent(podNs, { tcp: [8080], udp: [8081] }));
    drivers.push(
      createLinuxDataplane({
        netns: hosts[i - 1]!,
        nodeName: `host${i}`,
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

const remoteRoute = async (d: LinuxDataplane, dst: string) =>
  (await d.snapshot()).routes.find((r) => r.dst === dst);

describe("flat routes to a node behind a router", () => {
  it("go via the router (gateway recursive) and pods on the two subnets reach each other", async () => {
    for (let i = 1; i <= 2; i++) {
      const r = await drivers[i - 1]!.apply([...stateFor(i), { kind: "in-sync" }]);
      expect(r.warnings).toEqual([]);
    }
    expect(await remoteRoute(drivers[0]!, block(2))).toEqual({
      dst: block(2),
      type: "unicast",
      nextHops: [{ via: routerIp(1), onlink: false }],
    });
    expect(await remoteRoute(drivers[1]!, block(1))).toEqual({
      dst: block(1),
      type: "unicast",
      nextHops: [{ via: routerIp(2), onlink: false }],
    });
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 2000)).toBe(true);
    expect(await agents[1]!.probe("tcp", podIp(1), 8080, 2000)).toBe(true);
  });

  it("a node with no route to it is reported unresolved (warning), not a failed kernel line", async () => {
    const r = await drivers[0]!.apply([
      { kind: "host-update", node: "host9", addresses: ["172.31.9.9/24"] },
      { kind: "route-update", dst: block(9), type: "remote-block", nodes: ["host9"] },
    ]);
    expect(r.warnings).toEqual([
      `route ${block(9)}: next hop 172.31.9.9 (node host9) is unreachable: Network is unreachable`,
    ]);
    expect(await remoteRoute(drivers[0]!, block(9))).toBeUndefined();
    expect(drivers[0]!.unresolvedRoutes).toEqual(
      new Map([[block(9), "next hop 172.31.9.9 (node host9) is unreachable: Network is unreachable"]]),
    );
    // The other routes are untouched.
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 2000)).toBe(true);
    await drivers[0]!.apply([
      { kind: "route-remove", dst: block(9) },
      { kind: "host-remove", node: "host9" },
    ]);
    expect(drivers[0]!.unresolvedRoutes.size).toBe(0);
  });

  it("a route line the kernel refuses fails the batch, naming the route; the retry re-reads and re-resolves", async () => {
    // host1 briefly has a leg on 10.78.2.0/25 (more specific than its route via the router), so host2's address is resolved as connected; the leg goes
    // (the underlay changed) before a new block of host2 is programmed through the remembered answer.
    const d = drivers[0]!;
    // (A veth pair: this kernel may have no dummy module.)
    await ip(hosts[0]!, "link", "add", "leg", "type", "veth", "peer", "name", "legp");
    await ip(hosts[0]!, "addr", "add", "10.78.2.100/25", "dev", "leg");
    await ip(hosts[0]!, "link", "set", "legp", "up");
    await ip(hosts[0]!, "link", "set", "leg", "up");
    await d.reconcile();
    expect((await remoteRoute(d, block(2)))?.nextHops).toEqual([{ via: hostIp(2), onlink: false }]);
    await ip(hosts[0]!, "link", "del", "leg");
    // Deleting the leg took the kernel's route through it too; the driver has not re-resolved yet.
    const batch: DataplaneUpdate[] = [
      { kind: "route-update", dst: "10.244.2.64/26", type: "remote-block", nodes: ["host2"] },
    ];
    const err = await d.apply(batch).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDataplaneError(err, "command-failed")).toBe(true);
    expect((err as Error).message).toMatch(
      /^kernel rejected "route replace 10\.244\.2\.64\/26 via 10\.78\.2\.2 .*": Nexthop has invalid gateway/,
    );
    // The pipeline retries the same batch: it must not find "nothing to do" in a cache that believes the
    // refused line landed. It re-reads the kernel, re-resolves and programs both blocks via the router.
    await d.apply(batch);
    expect((await remoteRoute(d, "10.244.2.64/26"))?.nextHops).toEqual([{ via: routerIp(1), onlink: false }]);
    expect((await remoteRoute(d, block(2)))?.nextHops).toEqual([{ via: routerIp(1), onlink: false }]);
    expect(await agents[0]!.probe("tcp", podIp(2), 8080, 2000)).toBe(true);
  });
});
