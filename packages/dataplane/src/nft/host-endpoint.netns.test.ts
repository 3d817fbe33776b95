import {
  createCalcGraph,
  createStreamMirror,
  evaluateMirror,
  type PolicyModelResource,
  type PolicyUpdate,
} from "@margay/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLinuxDataplane, type LinuxDataplane } from "../linux/linux-driver.js";
import { createNetnsLab, createUnderlay, type LabHost, type NetnsLab } from "../testing/netns-lab.js";
import { type ProbeAgent, startProbeAgent } from "../testing/probe-agent.js";
import { createWorkloadPlumber } from "../workload/plumbing.js";
import { nftNames } from "./names.js";

/** `API_VERSION` of `@margay/api`: the resources the policy calculation reads carry it. */
const API_VERSION = "margay.io/v1" as const;

// host1 (the driver's node, eth0 = 10.79.0.1 is a host endpoint) and host2 (the "outside", which routes
// the pod range through host1 so host1 forwards). host1 serves TCP 9001 and UDP 9003 itself; its pod
// serves TCP 7000 and 7001. Each stage is shown by packets where the hook makes a difference, and its
// verdicts for direct (un-NATed) traffic are compared with @margay/policy's reference evaluator.
const HOST_IP = "10.79.0.1";
const OUTSIDE_IP = "10.79.0.2";
const POD_IP = "10.66.0.2";

const gnp = (name: string, spec: Record<string, unknown>): PolicyModelResource =>
  ({ apiVersion: API_VERSION, kind: "GlobalNetworkPolicy", metadata: { name }, spec }) as PolicyModelResource;

const hep: PolicyModelResource = {
  apiVersion: API_VERSION,
  kind: "HostEndpoint",
  metadata: { name: "host1-eth0", labels: { role: "node" } },
  spec: { node: "host1", interfaceName: "eth0", expectedIPs: [HOST_IP] },
};
/** Normal host policy: everything in and out (so only the stage under test decides). */
const hostOpen = gnp("host-open", {
  order: 1000,
  selector: "role == 'node'",
  types: ["Ingress", "Egress"],
  ingress: [{ action: "Allow" }],
  egress: [{ action: "Allow" }],
});

let lab: NetnsLab;
let hosts: LabHost[];
let driver: LinuxDataplane;
let hostAgent: ProbeAgent;
let podAgent: ProbeAgent;
let outside: ProbeAgent;
const graph = createCalcGraph({ nodeName: "host1" });
const mirror = createStreamMirror();

async function push(updates: readonly PolicyUpdate[]): Promise<void> {
  mirror.apply(updates);
  await driver.apply(updates);
}
async function set(...resources: PolicyModelResource[]): Promise<void> {
  for (const r of resources) graph.upsert(r);
  await push(graph.flush());
}
async function unset(...names: string[]): Promise<void> {
  for (const name of names) graph.remove({ kind: "GlobalNetworkPolicy", name });
  await push(graph.flush());
}
const verdict = (protocol: "TCP" | "UDP", dstPort: number) =>
  evaluateMirror(mirror, { srcIp: OUTSIDE_IP, dstIp: HOST_IP, protocol, dstPort });
const nft = (...args: string[]) => lab.exec(hosts[0]!.ns, ["nft", ...args]);
async function counter(name: string): Promise<number> {
  const text = await nft("list", "counter", "inet", "mgprobe", name);
  return Number(/packets (\d+)/.exec(text)?.[1] ?? Number.NaN);
}

beforeAll(async () => {
  lab = createNetnsLab("mgdph");
  ({ hosts } = await createUnderlay(lab, 2, "10.79.0"));
  const host = hosts[0]!;
  const podNs = await lab.add("pod");
  const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host.ns });
  const pod = await plumber.add({
    endpoint: { namespace: "default", workload: "fwd" },
    containerNetns: podNs,
    addresses: [`${POD_IP}/32`],
  });
  await lab.exec(hosts[1]!.ns, ["ip", "route", "add", "10.66.0.0/24", "via", HOST_IP]);
  driver = createLinuxDataplane({ netns: host.ns, nodeName: "host1", reconcileIntervalMs: 0 });
  graph.upsert({
    apiVersion: API_VERSION,
    kind: "Profile",
    metadata: { name: "kns.default" },
    spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
  });
  graph.upsert({
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: "fwd", namespace: "default", labels: { "projectcalico.org/namespace": "default" } },
    spec: {
      node: "host1",
      interfaceName: pod.hostIfName,
      ipNetworks: [`${POD_IP}/32`],
      profiles: ["kns.default"],
    },
  });
  graph.upsert(hep);
  graph.upsert(hostOpen);
  graph.markInSync();
  const initial = graph.flush();
  mirror.apply(initial);
  await driver.apply([
    {
      kind: "pool-update",
      cidr: "10.66.0.0/24",
      encapsulation: "none",
      crossSubnet: false,
      natOutgoing: false,
    },
    { kind: "host-update", node: "host1", addresses: [host.address] },
    { kind: "route-update", dst: `${POD_IP}/32`, type: "local-workload", ifname: pod.hostIfName },
    ...initial,
  ]);
  hostAgent = await startProbeAgent(host.ns, { tcp: [9001], udp: [9003] });
  podAgent = await startProbeAgent(podNs, { tcp: [7000, 7001] });
  outside = await startProbeAgent(hosts[1]!.ns);
  // Test fixtures of our own in host1 (never in margay's table): counters of tracked and untracked
  // datagrams to UDP 9003, and a DNAT of TCP 8080 to the host's 9001.
  await lab.exec(
    host.ns,
    ["nft", "-f", "-"],
    [
      "table inet mgprobe {",
      "  counter untracked {}",
      "  counter tracked {}",
      "  chain in {",
      "    type filter hook input priority -5; policy accept;",
      "    udp dport 9003 ct state untracked counter name untracked",
      "    udp dport 9003 ct state new counter name tracked",
      "  }",
      "}",
      "table ip mgprobe-nat {",
      "  chain pre {",
      "    type nat hook prerouting priority dstnat; policy accept;",
      "    tcp dport 8080 redirect to :9001",
      "  }",
      "}",
      "",
    ].join("\n"),
  );
});

afterAll(async () => {
  for (const a of [hostAgent, podAgent, outside]) await a?.close();
  await driver?.close();
  await lab?.close();
});

describe("host endpoint stages in their Calico hooks", () => {
  it("renders untracked tiers at raw priority with notrack, pre-DNAT before dstnat, forward in forward", async () => {
    const untracked = gnp("untracked", {
      order: 10,
      doNotTrack: true,
      applyOnForward: true,
      selector: "role == 'node'",
      types: ["Ingress"],
      ingress: [{ action: "Allow", protocol: "UDP", destination: { ports: [9003] } }],
    });
    const prednat = gnp("prednat", {
      order: 10,
      preDNAT: true,
      applyOnForward: true,
      selector: "role == 'node'",
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [8080] } }],
    });
    const forward = gnp("forward", {
      order: 10,
      applyOnForward: true,
      selector: "role == 'node'",
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [7001] } }, { action: "Allow" }],
    });
    await set(untracked, prednat, forward);
    try {
      const raw = await nft("list", "chain", "inet", "margay", "raw-prerouting");
      expect(raw).toMatch(/type filter hook prerouting priority raw; policy accept;/);
      expect(raw).toMatch(/jump hep-raw-in-dispatch\s+meta mark & 0x00010000 == 0x00010000 notrack accept/);
      expect(await nft("list", "chain", "inet", "margay", "raw-output")).toMatch(
        /type filter hook output priority raw;/,
      );
      expect(await nft("list", "chain", "inet", "margay", "prednat")).toMatch(
        /type filter hook prerouting priority dstnat - 10;/,
      );
      expect(await nft("list", "chain", "inet", "margay", "forward")).toMatch(/jump hep-fwd-in-dispatch/);
      // eth0 is dispatched to its own stage chain in each map, and each stage holds only its policies.
      const id = "host1-eth0";
      const uiChain = nftNames.hostStage(id, "untracked", "in");
      const diChain = nftNames.hostStage(id, "pre-dnat", "in");
      const fiChain = nftNames.hostStage(id, "forward", "in");
      expect(await nft("list", "map", "inet", "margay", "hep-raw-in")).toContain(`"eth0" : goto ${uiChain}`);
      expect(await nft("list", "map", "inet", "margay", "hep-prednat")).toContain(`"eth0" : goto ${diChain}`);
      expect(await nft("list", "map", "inet", "margay", "hep-fwd-in")).toContain(`"eth0" : goto ${fiChain}`);
      const chainText = (c: string) => nft("list", "chain", "inet", "margay", c);
      const [ui, di, fi, hi] = await Promise.all(
        [uiChain, diChain, fiChain, nftNames.host(id, "in")].map(chainText),
      );
      const jumpsTo = (text: string) => [...text.matchAll(/jump (pi-[0-9a-f]+)/g)].map((m) => m[1]).sort();
      const chainOf = (name: string) => nftNames.policy(name, "in");
      expect(jumpsTo(ui!)).toEqual([chainOf("default/untracked")].sort());
      expect(jumpsTo(di!)).toEqual([chainOf("default/prednat")].sort());
      expect(jumpsTo(fi!)).toEqual([chainOf("default/forward")].sort());
      expect(jumpsTo(hi!)).toEqual([chainOf("default/forward"), chainOf("default/host-open")].sort());
      // Nothing is decided by the untracked and pre-DNAT stages unless a rule matched: no trailing drop.
      expect(ui!.trim().split("\n").slice(-2)[0]).not.toMatch(/^\s*drop$/);
    } finally {
      await unset("untracked", "prednat", "forward");
    }
  });

  it("an untracked (doNotTrack) allow leaves the flow untracked; a normal allow does not", async () => {
    expect(verdict("UDP", 9003)).toBe("allow");
    const t0 = await counter("tracked");
    const u0 = await counter("untracked");
    expect(await outside.probe("udp", HOST_IP, 9003, 2000)).toBe(true);
    expect(await counter("tracked")).toBeGreaterThan(t0);
    expect(await counter("untracked")).toBe(u0);

    await set(
      gnp("untracked", {
        order: 10,
        doNotTrack: true,
        applyOnForward: true,
        selector: "role == 'node'",
        types: ["Ingress", "Egress"],
        ingress: [{ action: "Allow", protocol: "UDP", destination: { ports: [9003] } }],
        egress: [{ action: "Allow", protocol: "UDP", source: { ports: [9003] } }],
      }),
    );
    try {
      expect(verdict("UDP", 9003)).toBe("allow");
      const t1 = await counter("tracked");
      expect(await outside.probe("udp", HOST_IP, 9003, 2000)).toBe(true);
      expect(await counter("untracked")).toBeGreaterThan(u0);
      expect(await counter("tracked")).toBe(t1);
    } finally {
      await unset("untracked");
    }
  });

  it("an untracked deny drops before the normal policy is consulted", async () => {
    await set(
      gnp("untracked-deny", {
        order: 10,
        doNotTrack: true,
        applyOnForward: true,
        selector: "role == 'node'",
        types: ["Ingress"],
        ingress: [{ action: "Deny", protocol: "UDP", destination: { ports: [9003] } }],
      }),
    );
    try {
      expect(verdict("UDP", 9003)).toBe("deny");
      expect(await outside.probe("udp", HOST_IP, 9003, 500)).toBe(false);
      expect(verdict("TCP", 9001)).toBe("allow");
      expect(await outside.probe("tcp", HOST_IP, 9001, 2000)).toBe(true);
    } finally {
      await unset("untracked-deny");
    }
    expect(await outside.probe("udp", HOST_IP, 9003, 2000)).toBe(true);
  });

  it("a pre-DNAT deny sees the original port; a normal deny sees the translated one", async () => {
    // TCP 8080 is redirected to 9001 by the fixture's DNAT.
    expect(await outside.probe("tcp", HOST_IP, 8080, 2000)).toBe(true);
    const denyIngress8080 = {
      selector: "role == 'node'",
      types: ["Ingress"],
      ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [8080] } }],
    };
    // A normal policy runs in the input hook, after DNAT: it never sees port 8080.
    await set(gnp("normal-deny", { order: 10, ...denyIngress8080 }));
    try {
      expect(await outside.probe("tcp", HOST_IP, 8080, 2000)).toBe(true);
    } finally {
      await unset("normal-deny");
    }
    await set(gnp("prednat-deny", { order: 10, preDNAT: true, applyOnForward: true, ...denyIngress8080 }));
    try {
      expect(verdict("TCP", 8080)).toBe("deny");
      expect(await outside.probe("tcp", HOST_IP, 8080, 500)).toBe(false);
      expect(verdict("TCP", 9001)).toBe("allow");
      expect(await outside.probe("tcp", HOST_IP, 9001, 2000)).toBe(true);
    } finally {
      await unset("prednat-deny");
    }
    expect(await outside.probe("tcp", HOST_IP, 8080, 2000)).toBe(true);
  });

  it("applyOnForward tiers police traffic forwarded through the host endpoint", async () => {
    // No applyOnForward policy: forwarded traffic is not policed by the host endpoint.
    for (const port of [7000, 7001]) expect(await outside.probe("tcp", POD_IP, port, 2000)).toBe(true);
    await set(
      gnp("forward", {
        order: 10,
        applyOnForward: true,
        selector: "role == 'node'",
        types: ["Ingress"],
        ingress: [{ action: "Deny", protocol: "TCP", destination: { ports: [7001] } }, { action: "Allow" }],
      }),
    );
    try {
      expect(await outside.probe("tcp", POD_IP, 7000, 2000)).toBe(true);
      expect(await outside.probe("tcp", POD_IP, 7001, 500)).toBe(false);
    } finally {
      await unset("forward");
    }
    expect(await outside.probe("tcp", POD_IP, 7001, 2000)).toBe(true);
  });
});
