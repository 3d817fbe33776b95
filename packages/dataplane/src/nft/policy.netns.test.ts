import {
  createCalcGraph,
  createStreamMirror,
  evaluateMirror,
  type PolicyModelResource,
  type PolicyUpdate,
  type ResourceKey,
} from "@margay/policy";
import { createRecordingLogger, workloadInterfaceName } from "@margay/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { nftNames } from "./names.js";
import type { DataplaneUpdate } from "../stream.js";
import { createLinuxDataplane, type LinuxDataplane } from "../linux/linux-driver.js";
import { createNetnsLab, createUnderlay, type LabHost, type NetnsLab } from "../testing/netns-lab.js";
import { watchForGaps } from "../testing/gap-watch.js";
import { renderedRule } from "../testing/rendered-rule.js";
import { type ProbeAgent, startProbeAgent } from "../testing/probe-agent.js";
import { createWorkloadPlumber } from "../workload/plumbing.js";

/** `API_VERSION` of `@margay/api`: the resources the policy calculation reads carry it. */
const API_VERSION = "margay.io/v1" as const;

// One host with four pods (plus a second host as an "outside" address for NAT). Pods serve TCP 80 and
// 5432 and UDP 53; every case probes every ordered pair on every port and compares with the verdict that
// @margay/policy's reference (evaluateMirror over the same stream) gives.
const PODS = [
  { name: "web", ip: "10.65.0.2", labels: { app: "web" } },
  { name: "db", ip: "10.65.0.3", labels: { app: "db" } },
  { name: "client", ip: "10.65.0.4", labels: { app: "client" } },
  { name: "other", ip: "10.65.0.5", labels: { app: "other" } },
] as const;
const PROBES = [
  { proto: "tcp", port: 80 },
  { proto: "tcp", port: 5432 },
  { proto: "udp", port: 53 },
] as const;

const allowAll = { action: "Allow" as const };
const profile: PolicyModelResource = {
  apiVersion: API_VERSION,
  kind: "Profile",
  metadata: { name: "kns.default" },
  spec: { ingress: [allowAll], egress: [allowAll] },
};

interface Case {
  readonly name: string;
  readonly resources: readonly PolicyModelResource[];
}

const gnp = (name: string, spec: Record<string, unknown>): PolicyModelResource =>
  ({ apiVersion: API_VERSION, kind: "GlobalNetworkPolicy", metadata: { name }, spec }) as PolicyModelResource;
const np = (name: string, spec: Record<string, unknown>): PolicyModelResource =>
  ({
    apiVersion: API_VERSION,
    kind: "NetworkPolicy",
    metadata: { name, namespace: "default" },
    spec,
  }) as PolicyModelResource;

const CASES: readonly Case[] = [
  { name: "no policy: the namespace profile allows everything", resources: [] },
  {
    name: "allow: db accepts only web on its named port",
    resources: [
      np("db-from-web", {
        selector: "app == 'db'",
        types: ["Ingress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: "app == 'web'" },
            destination: { ports: ["pg"] },
          },
        ],
      }),
    ],
  },
  {
    name: "deny then allow: client may not reach db, everyone else may",
    resources: [
      np("db-deny-client", {
        selector: "app == 'db'",
        types: ["Ingress"],
        ingress: [{ action: "Deny", source: { selector: "app == 'client'" } }, { action: "Allow" }],
      }),
    ],
  },
  {
    name: "default deny on egress for client, except UDP 53",
    resources: [
      np("client-egress", {
        selector: "app == 'client'",
        types: ["Egress"],
        egress: [{ action: "Allow", protocol: "UDP", destination: { ports: [53] } }],
      }),
    ],
  },
  {
    name: "tiers and pass: security tier denies other, passes web to the default tier",
    resources: [
      {
        apiVersion: API_VERSION,
        kind: "Tier",
        metadata: { name: "security" },
        spec: { order: 100 },
      } as PolicyModelResource,
      gnp("security.gate", {
        tier: "security",
        order: 10,
        selector: "all()",
        types: ["Ingress"],
        ingress: [
          { action: "Pass", source: { selector: "app == 'web'" } },
          { action: "Deny", source: { selector: "app == 'other'" } },
          { action: "Allow", protocol: "UDP" },
        ],
      }),
      np("default-web-to-db", {
        selector: "app == 'db'",
        types: ["Ingress"],
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [80] } }],
      }),
    ],
  },
  {
    name: "ipBlock with except: web accepts the pod range except client",
    resources: [
      np("web-ipblock", {
        selector: "app == 'web'",
        types: ["Ingress"],
        ingress: [{ action: "Allow", source: { nets: ["10.65.0.0/24"], notNets: ["10.65.0.4/32"] } }],
      }),
    ],
  },
];

let lab: NetnsLab;
let hosts: LabHost[];
let driver: LinuxDataplane;
const agents: ProbeAgent[] = [];
const ifnames: string[] = [];
const logger = createRecordingLogger();
let outsideAgent: ProbeAgent;
const graph = createCalcGraph({ nodeName: "host1" });
/** Every resource currently in `graph`, so a restarted driver can be fed the same state. */
const replayResources: PolicyModelResource[] = [];
let replayRouteSide: DataplaneUpdate[] = [];
const mirror = createStreamMirror();

async function push(updates: readonly PolicyUpdate[]): Promise<void> {
  mirror.apply(updates);
  await driver.apply(updates);
}

async function matrix(): Promise<{ got: string[]; want: string[] }> {
  const jobs: Promise<string>[] = [];
  const want: string[] = [];
  PODS.forEach((from, a) => {
    PODS.forEach((to, b) => {
      if (a === b) return;
      for (const p of PROBES) {
        const label = `${from.name}->${to.name} ${p.proto}/${p.port}`;
        const v = evaluateMirror(mirror, {
          srcIp: from.ip,
          dstIp: to.ip,
          protocol: p.proto.toUpperCase(),
          dstPort: p.port,
        });
        want.push(`${label} ${v}`);
        jobs.push(
          agents[a]!.probe(p.proto, to.ip, p.port, 400).then((ok) => `${label} ${ok ? "allow" : "deny"}`),
        );
      }
    });
  });
  return { got: await Promise.all(jobs), want };
}

beforeAll(async () => {
  lab = createNetnsLab("mgdpp");
  ({ hosts } = await createUnderlay(lab, 2, "10.78.0"));
  const host = hosts[0]!;
  const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host.ns });
  driver = createLinuxDataplane({
    netns: host.ns,
    nodeName: "host1",
    reconcileIntervalMs: 0,
    logger,
  });
  const routes = [];
  for (const pod of PODS) {
    const ns = await lab.add(pod.name);
    const r = await plumber.add({
      endpoint: { namespace: "default", workload: pod.name },
      containerNetns: ns,
      addresses: [`${pod.ip}/32`],
    });
    ifnames.push(r.hostIfName);
    routes.push({
      kind: "route-update" as const,
      dst: `${pod.ip}/32`,
      type: "local-workload" as const,
      ifname: r.hostIfName,
    });
    agents.push(await startProbeAgent(ns, { tcp: [80, 5432], udp: [53] }));
    const wep: PolicyModelResource = {
      apiVersion: API_VERSION,
      kind: "WorkloadEndpoint",
      metadata: {
        name: pod.name,
        namespace: "default",
        labels: { ...pod.labels, "projectcalico.org/namespace": "default" },
      },
      spec: {
        node: "host1",
        // Named from the endpoint's identity as convertPod names it, not from the plumber's answer: the
        // policy below is enforced only if the two agree.
        interfaceName: workloadInterfaceName({ namespace: "default", workload: pod.name }),
        ipNetworks: [`${pod.ip}/32`],
        profiles: ["kns.default"],
        ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
      },
    };
    graph.upsert(wep);
    replayResources.push(wep);
  }
  graph.upsert(profile);
  replayResources.push(profile);
  graph.markInSync();
  const initial = graph.flush();
  mirror.apply(initial);
  replayRouteSide = [
    {
      kind: "pool-update",
      cidr: "10.65.0.0/24",
      encapsulation: "none",
      crossSubnet: false,
      natOutgoing: true,
    },
    { kind: "host-update", node: "host1", addresses: [host.address] },
    ...routes,
  ];
  await driver.apply([...replayRouteSide, ...initial]);
  outsideAgent = await startProbeAgent(hosts[1]!.ns, { tcp: [9000] });
});

afterAll(async () => {
  for (const a of agents) await a.close();
  await outsideAgent?.close();
  await driver?.close();
  await lab?.close();
});

describe("nftables policy with real packets", () => {
  let previous: readonly PolicyModelResource[] = [];
  for (const c of CASES) {
    it(c.name, async () => {
      for (const r of previous) {
        graph.remove(keyOf(r));
        replayResources.splice(replayResources.indexOf(r), 1);
      }
      for (const r of c.resources) {
        graph.upsert(r);
        replayResources.push(r);
      }
      previous = c.resources;
      await push(graph.flush());
      const { got, want } = await matrix();
      expect(got).toEqual(want);
      // Guard against a vacuous table: each case has some allowed and (except the first) some denied pairs.
      expect(want.some((w) => w.endsWith("allow"))).toBe(true);
      if (c.resources.length > 0) expect(want.some((w) => w.endsWith("deny"))).toBe(true);
    });
  }

  it("a selector's IP set is a plain nft set while it holds addresses, an interval set once a network joins", async () => {
    interface NftSetJson {
      set?: { name: string; flags?: string[]; elem?: unknown[] };
    }
    // The address sets of our table that hold `ip` (JSON elements: strings, or {prefix} objects).
    const setsWith = async (ip: string) => {
      const out = await lab.exec(hosts[0]!.ns, ["nft", "-j", "list", "table", "inet", "margay"]);
      const items = (JSON.parse(out) as { nftables: NftSetJson[] }).nftables;
      return items
        .map((i) => i.set)
        .filter((x): x is NonNullable<NftSetJson["set"]> => x !== undefined)
        .filter((x) => JSON.stringify(x.elem ?? []).includes(`"${ip}"`))
        .map((x) => ({ name: x.name.slice(0, 3), interval: x.flags?.includes("interval") ?? false }));
    };
    const policy = gnp("db-from-trusted-nets", {
      selector: "app == 'db'",
      types: ["Ingress"],
      ingress: [{ action: "Allow", source: { selector: "role == 'trusted'" } }],
    });
    const clientTrusted: PolicyModelResource = {
      apiVersion: API_VERSION,
      kind: "GlobalNetworkSet",
      metadata: { name: "trusted-client", labels: { role: "trusted" } },
      spec: { nets: ["10.65.0.4/32"] },
    } as PolicyModelResource;
    // The /31 holds web (10.65.0.2) and db: web may reach db once it is in.
    const webNet: PolicyModelResource = {
      apiVersion: API_VERSION,
      kind: "GlobalNetworkSet",
      metadata: { name: "trusted-web", labels: { role: "trusted" } },
      spec: { nets: ["10.65.0.2/31"] },
    } as PolicyModelResource;
    const step = async (upsert: PolicyModelResource[], remove: PolicyModelResource[] = []) => {
      for (const r of remove) graph.remove(keyOf(r));
      for (const r of upsert) graph.upsert(r);
      await push(graph.flush());
      const { got, want } = await matrix();
      expect(got).toEqual(want);
      return want;
    };
    try {
      const before = await step([policy, clientTrusted]);
      expect(before).toContain("client->db tcp/80 allow");
      expect(before).toContain("web->db tcp/80 deny");
      // Only single addresses: no interval flag (nft then need not read its elements back per change).
      expect(await setsWith("10.65.0.4")).toEqual([{ name: "a4-", interval: false }]);
      const widened = await step([webNet]);
      expect(widened).toContain("web->db tcp/80 allow");
      expect(await setsWith("10.65.0.4")).toEqual([{ name: "s4-", interval: true }]);
      const narrowed = await step([], [webNet]);
      expect(narrowed).toContain("web->db tcp/80 deny");
      expect(await setsWith("10.65.0.4")).toEqual([{ name: "a4-", interval: false }]);
    } finally {
      for (const r of [policy, clientTrusted, webNet]) graph.remove(keyOf(r));
      await push(graph.flush());
    }
  });

  it("the plumber's interfaces are the ones the endpoints name, so each pod is policed", () => {
    expect(ifnames).toEqual(
      PODS.map((p) => workloadInterfaceName({ namespace: "default", workload: p.name })),
    );
    expect(driver.unclaimedInterfaces).toEqual([]);
  });

  it("drops traffic from a workload interface that has no endpoint (fail closed), and logs it", async () => {
    const ns = await lab.add("rogue");
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: hosts[0]!.ns });
    const r = await plumber.add({
      endpoint: { namespace: "default", workload: "rogue" },
      containerNetns: ns,
      addresses: ["10.65.0.9/32"],
    });
    await driver.apply([
      { kind: "route-update", dst: "10.65.0.9/32", type: "local-workload", ifname: r.hostIfName },
    ]);
    const rogue = await startProbeAgent(ns, { tcp: [80] });
    try {
      expect(await rogue.probe("tcp", PODS[0].ip, 80, 400)).toBe(false);
      expect(await agents[0]!.probe("tcp", "10.65.0.9", 80, 400)).toBe(false);
    } finally {
      await rogue.close();
    }
    await driver.reconcile();
    expect(driver.unclaimedInterfaces).toEqual([r.hostIfName]);
    const warned = logger.find({ level: "warn" }).filter((w) => w.attributes.ifname === r.hostIfName);
    expect(warned.map((w) => w.message)).toEqual([
      "workload interface has no endpoint; its traffic is dropped",
    ]);
  });

  it("masquerades pool traffic leaving the pools (natOutgoing)", async () => {
    expect(await agents[0]!.peerAddress("10.78.0.2", 9000)).toBe("10.78.0.1");
    await driver.apply([
      {
        kind: "pool-update",
        cidr: "10.65.0.0/24",
        encapsulation: "none",
        crossSubnet: false,
        natOutgoing: false,
      },
    ]);
    // Without NAT the outside host sees the pod address (and has no route back, so no answer).
    expect(await agents[0]!.peerAddress("10.78.0.2", 9000, 400)).toBeUndefined();
    await driver.apply([
      {
        kind: "pool-update",
        cidr: "10.65.0.0/24",
        encapsulation: "none",
        crossSubnet: false,
        natOutgoing: true,
      },
    ]);
    expect(await agents[0]!.peerAddress("10.78.0.2", 9000)).toBe("10.78.0.1");
  });

  it("a rejected transaction leaves the last good ruleset and is reported", async () => {
    const ns = hosts[0]!.ns;
    const list = () => lab.exec(ns, ["nft", "-s", "list", "table", "inet", "margay"]);
    const lines = (t: string) =>
      t
        .split("\n")
        .map((l) => l.trim())
        .sort();
    const baseline = await list();
    const extra: PolicyUpdate = {
      kind: "active-policy-update",
      id: "default/extra",
      tier: "default",
      name: "extra",
      inbound: [],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    };
    await driver.apply([extra]);
    // Someone tampers with our table: a chain of theirs jumps to one of ours, so deleting ours fails.
    await lab.exec(ns, ["nft", "add", "chain", "inet", "margay", "tamper"]);
    await lab.exec(ns, [
      "nft",
      "add",
      "rule",
      "inet",
      "margay",
      "tamper",
      "jump",
      nftNames.policy("default/extra", "in"),
    ]);
    const before = await list();
    const err = await driver
      .apply([{ kind: "active-policy-remove", id: "default/extra" }])
      .catch((e: unknown) => e);
    expect(isDataplaneError(err, "nftables-rejected")).toBe(true);
    expect((err as { details: { stderr: string } }).details.stderr).toMatch(/busy|Could not process rule/i);
    expect(await list()).toBe(before);
    // The snapshot tells what the kernel holds: the refused removal did not happen.
    expect((await driver.snapshot()).policies).toContain("default/extra");
    const { got, want } = await matrix();
    expect(got).toEqual(want);
    // Reconcile replaces the whole table (it is ours): the tampering goes, the state is as asked.
    await driver.reconcile();
    const after = await list();
    expect(after).not.toContain("tamper");
    expect(lines(after)).toEqual(lines(baseline));
    expect((await driver.snapshot()).policies).not.toContain("default/extra");
  });

  it("rejects a rule that would smuggle text into a transaction, before touching the kernel", async () => {
    const before = await lab.exec(hosts[0]!.ns, ["nft", "list", "table", "inet", "margay"]);
    const evil: PolicyUpdate = {
      kind: "active-policy-update",
      id: "default/evil",
      tier: "default",
      name: "evil",
      inbound: [
        renderedRule({
          ruleId: "evil-0",
          srcNets: ["10.0.0.0/8 } accept; flush ruleset; add rule inet margay forward {"],
        }),
      ],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    };
    const err = await driver.apply([evil]).catch((e: unknown) => e);
    expect(isDataplaneError(err, "invalid-update")).toBe(true);
    expect(await lab.exec(hosts[0]!.ns, ["nft", "list", "table", "inet", "margay"])).toBe(before);
  });

  it("a restarted driver replaces its table atomically: allowed traffic never drops", async () => {
    // UDP 53 is allowed web -> db in the state the cases left (checked against the reference below).
    expect(
      evaluateMirror(mirror, { srcIp: PODS[0].ip, dstIp: PODS[1].ip, protocol: "UDP", dstPort: 53 }),
    ).toBe("allow");
    expect(await agents[0]!.probe("udp", PODS[1].ip, 53, 2000)).toBe(true);
    const watch = watchForGaps(agents[0]!, PODS[1].ip, 53);
    await new Promise((r) => setTimeout(r, 100));
    await driver.close();
    driver = createLinuxDataplane({ netns: hosts[0]!.ns, nodeName: "host1", reconcileIntervalMs: 0 });
    // The new driver is fed the whole state again (as a restarted agent's calc graph would produce it).
    const replay = createCalcGraph({ nodeName: "host1" });
    for (const r of replayResources) replay.upsert(r);
    replay.markInSync();
    await driver.apply([...replayRouteSide, ...replay.flush()]);
    await new Promise((r) => setTimeout(r, 100));
    const report = await watch.stop();
    expect(report.sent).toBeGreaterThan(5);
    expect(report).toMatchObject({ lost: 0, longestGap: 0 });
    // Afterwards the new driver's table gives the reference's verdicts for every pair.
    const { got, want } = await matrix();
    expect(got).toEqual(want);
  });

  it("host endpoint: default deny with failsafe ports still open", async () => {
    const hostAgent = await startProbeAgent(hosts[0]!.ns, { tcp: [22, 9001] });
    const hep: PolicyModelResource = {
      apiVersion: API_VERSION,
      kind: "HostEndpoint",
      metadata: { name: "host1-eth0", labels: { role: "node" } },
      spec: { node: "host1", interfaceName: "eth0", expectedIPs: ["10.78.0.1"] },
    };
    try {
      expect(await outsideAgent.probe("tcp", "10.78.0.1", 9001, 400)).toBe(true);
      graph.upsert(hep);
      await push(graph.flush());
      for (const port of [22, 9001]) {
        const want = evaluateMirror(mirror, {
          srcIp: "10.78.0.2",
          dstIp: "10.78.0.1",
          protocol: "TCP",
          dstPort: port,
        });
        expect(want).toBe(port === 22 ? "allow" : "deny");
        expect(await outsideAgent.probe("tcp", "10.78.0.1", port, 400)).toBe(want === "allow");
      }
      graph.remove({ kind: "HostEndpoint", name: "host1-eth0" });
      await push(graph.flush());
      expect(await outsideAgent.probe("tcp", "10.78.0.1", 9001, 400)).toBe(true);
    } finally {
      await hostAgent.close();
    }
  });
});

function keyOf(r: PolicyModelResource): ResourceKey {
  return r.kind === "NetworkPolicy"
    ? { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace ?? "" }
    : { kind: r.kind, name: r.metadata.name };
}
