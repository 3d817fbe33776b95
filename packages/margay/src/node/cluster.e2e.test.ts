/**
 * End to end: three hosts (network namespaces on one underlay bridge), etcd in its own namespace, a real
 * `margay-node` process per host (the built bundle), pods added through the agents' workload API, real
 * packets. One lab for the whole file; the tests run in order and build on each other's pods.
 *
 * Pools are made before the agents start (no default pool), one per encapsulation, and each pod names its
 * pool, so one lab covers flat and VXLAN (CrossSubnet, which needs a second subnet, has its own file).
 */
import { API_VERSION } from "@margay/api";
import { createProcessRunner, namedNetns, probeIpip } from "@margay/dataplane";
import type { Datastore, StoredObject } from "@margay/datastore";
import { convertNetworkPolicy, createEvaluator, type PolicyModelResource } from "@margay/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, LAB_ADDRESSES, type LabPod, waitFor } from "../testing/index.js";
import {
  addPods,
  bgpPeers,
  expectFullReachability,
  pool,
  routeCovering,
  VXLAN_DEVICE,
  waitForSessions,
} from "./e2e-support.js";

const FLAT = "10.244.0.0/16";
const VXLAN = "10.245.0.0/16";

describe("margay-node cluster (3 hosts, etcd, BGP mesh)", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let flat: LabPod[] = [];

  beforeAll(async () => {
    lab = await createClusterLab({
      hosts: 3,
      startAgents: false,
      // A bundle other than the package's dist (e.g. one built from a work tree); default: dist.
      agentBinary: process.env.MARGAY_E2E_AGENT_BINARY,
      agentEnv: {
        MARGAY_NETWORKING_BACKEND: "bgp",
        NO_DEFAULT_POOLS: "true",
        MARGAY_STATUS_INTERVAL: "1s",
      },
    });
    try {
      ds = lab.datastore();
      await ds.create(pool("flat", FLAT, { natOutgoing: true }));
      await ds.create(pool("vxlan", VXLAN, { vxlanMode: "Always" }));
      for (const h of lab.hosts) lab.startAgent(h);
      for (const h of lab.hosts) await lab.waitReady(h);
    } catch (e) {
      const logs = await Promise.all(
        lab.hosts.map(async (h) => `--- ${h.name}\n${(await lab.logs(h)).slice(-3000)}`),
      );
      await lab.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs.join("\n")}`, { cause: e });
    }
  });

  afterAll(async () => {
    await lab?.close();
  });

  it("brings up the full node-to-node mesh: every node's status shows its peers Established", async () => {
    await waitForSessions(lab, ds, (h) => lab.hosts.filter((o) => o !== h).map((o) => o.ip));
    for (const h of lab.hosts) {
      const peers = await bgpPeers(ds, h.name);
      expect(peers.every((p) => p.type === "NodeMesh")).toBe(true);
    }
  });

  it("flat mode: pods on every host reach pods on every other host; routes go straight to the node", async () => {
    flat = await addPods(lab, "flat", "flat");
    for (const p of flat) expect(p.ip.startsWith("10.244.")).toBe(true);
    await expectFullReachability(lab, flat);
    const [h1, h2] = lab.hosts;
    const r = routeCovering(await lab.routes(h1!), flat[1]!.ip);
    expect(r, JSON.stringify(await lab.routes(h1!))).toMatchObject({ gateway: h2!.ip, dev: "eth0" });
  });

  it("VXLAN mode: pods reach each other across hosts through the VXLAN device", async () => {
    const pods = await addPods(lab, "vx", "vxlan");
    await expectFullReachability(lab, pods);
    const r = routeCovering(await lab.routes(lab.hosts[0]!), pods[1]!.ip);
    expect(r?.dev).toBe(VXLAN_DEVICE);
  });

  it("IPIP mode, when the kernel can make ipip links", async (ctx) => {
    const probe = await probeIpip(createProcessRunner(), namedNetns(lab.hosts[0]!.ns));
    if (!probe.supported) ctx.skip(probe.reason);
    await ds.create(pool("ipip", "10.247.0.0/16", { ipipMode: "Always" }));
    const pods = await addPods(lab, "ipip", "ipip");
    await expectFullReachability(lab, pods);
    expect(routeCovering(await lab.routes(lab.hosts[0]!), pods[1]!.ip)?.dev).toBe("tunl0");
  });

  it("natOutgoing: a pod of a NAT pool reaches an outside address as its node; a pod of another pool does not leave", async () => {
    const [p1] = flat;
    const seen = await waitFor("the outside host to answer the flat pod", () =>
      p1!.probe.peerAddress(LAB_ADDRESSES.outside, 8080),
    );
    expect(seen).toBe(p1!.host.ip);
    // The vxlan pool has no natOutgoing: the outside host sees the pod address and has no way back.
    const vx = await lab.addPod(lab.hosts[0]!, { name: "vx-nonat", pools: ["vxlan"] });
    expect(await vx.probe.peerAddress(LAB_ADDRESSES.outside, 8080, 1_500)).toBeUndefined();
  });

  it("a converted Kubernetes NetworkPolicy allows and denies real cross-host packets as the reference evaluator says", async () => {
    const [h1, h2, h3] = lab.hosts;
    const web = await lab.addPod(h2!, { name: "web", labels: { app: "web" }, pools: ["flat"] });
    const client = await lab.addPod(h1!, { name: "client", labels: { app: "client" }, pools: ["flat"] });
    const other = await lab.addPod(h3!, { name: "other", labels: { app: "other" }, pools: ["flat"] });
    // Before any policy the namespace profile allows everything.
    for (const from of [client, other]) {
      await waitFor(`${from.name} -> web before the policy`, () => lab.canReach(from, web));
    }
    const policy = convertNetworkPolicy({
      metadata: { name: "web-from-client", namespace: "default" },
      spec: {
        podSelector: { matchLabels: { app: "web" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { app: "client" } } }],
            ports: [{ protocol: "TCP", port: 8080 }],
          },
        ],
      },
    });
    await ds.create(policy as unknown as StoredObject);

    const model: PolicyModelResource[] = [];
    for (const kind of ["WorkloadEndpoint", "NetworkPolicy", "Profile"]) {
      model.push(...((await ds.list(kind)).items as unknown as PolicyModelResource[]));
    }
    const evaluator = createEvaluator(model);
    const endpointOf = (p: LabPod) => {
      const wep = (model as unknown as StoredObject[]).find(
        (r) =>
          r.kind === "WorkloadEndpoint" &&
          ((r as unknown as { spec: { ipNetworks?: string[] } }).spec.ipNetworks ?? []).some(
            (n) => n.split("/")[0] === p.ip,
          ),
      );
      if (wep === undefined) throw new Error(`no WorkloadEndpoint holds ${p.ip}`);
      return `${wep.metadata.namespace}/${wep.metadata.name}`;
    };
    const cases = [
      { from: client, proto: "tcp" as const, port: 8080, expected: "allow" },
      { from: other, proto: "tcp" as const, port: 8080, expected: "deny" },
      { from: client, proto: "udp" as const, port: 9090, expected: "deny" },
    ];
    for (const c of cases) {
      const verdict = evaluator.evaluate({
        source: { workload: endpointOf(c.from) },
        destination: { workload: endpointOf(web) },
        protocol: c.proto.toUpperCase() as "TCP" | "UDP",
        dstPort: c.port,
      }).verdict;
      // The evaluator is the oracle; this pins the oracle to what the policy plainly says.
      expect(verdict, `${c.from.name} ${c.proto}/${c.port}`).toBe(c.expected);
      await waitFor(
        `${c.from.name} -> web ${c.proto}/${c.port} to be ${verdict === "allow" ? "allowed" : "denied"}`,
        async () =>
          (await lab.canReach(c.from, web, { proto: c.proto, port: c.port, timeoutMs: 700 })) ===
          (verdict === "allow"),
        { timeoutMs: 20_000 },
      );
    }
    // The policy only selects web: other pods still talk to each other.
    expect(await lab.canReach(other, client)).toBe(true);
  });

  it("SIGTERM of an agent with a flow running: exit 0, no packet lost, its routes never leave the peers", async () => {
    await agentRestartKeepsTraffic(lab, "SIGTERM", flat);
  });

  it("SIGKILL and restart of an agent with a flow running: no packet lost, its routes never leave the peers", async () => {
    await agentRestartKeepsTraffic(lab, "SIGKILL", flat);
  });

  it("etcd stopped for 10 s: traffic goes on; the agents resync and serve new pods after", async () => {
    const [a, b] = flat;
    const ping = lab.ping(a!.ns, b!.ip, { count: 260, intervalS: 0.05 });
    await lab.stopEtcd();
    await new Promise((r) => setTimeout(r, 10_000));
    await lab.startEtcd();
    const r = await ping;
    expect(r.transmitted, r.output).toBe(260);
    expect(r.received, r.output).toBe(r.transmitted);
    for (const h of lab.hosts) await lab.waitReady(h, { timeoutMs: 60_000 });
    // A pod added after the outage is reachable from another host: the agents are back in step with etcd.
    const late = await lab.addPod(lab.hosts[2]!, { name: "after-etcd", pools: ["flat"] });
    await waitFor("a pod made after the etcd outage to be reachable", () => lab.canReach(a!, late));
  });

  it("BIRD as a top-of-rack peer learns every node's pod blocks, and the route it announces is installed on the hosts", async () => {
    const tor = await lab.addBirdPeer({ asNumber: 64513, announce: ["10.99.0.0/24"] });
    try {
      await ds.create({
        apiVersion: API_VERSION,
        kind: "BGPPeer",
        metadata: { name: "tor" },
        spec: { peerIP: tor.address, asNumber: 64513 },
      } as StoredObject);
      await waitFor(
        "BIRD's sessions to every host Established",
        async () => Object.values(await tor.sessions()).every((s) => s === "Established"),
        { timeoutMs: 60_000, describe: async () => JSON.stringify(await tor.sessions()) },
      );
      for (const p of flat) {
        // From the pod's own node, with that node as next hop (other nodes may pass it on as well).
        await waitFor(
          `BIRD to learn ${p.host.name}'s block of ${p.ip} from ${p.host.name} via ${p.host.ip}`,
          async () =>
            (await tor.paths()).some(
              (r) =>
                r.protocol === p.host.name &&
                r.nextHop === p.host.ip &&
                routeCovering([{ dst: r.prefix }], p.ip) !== undefined,
            ),
          { timeoutMs: 30_000, describe: async () => JSON.stringify(await tor.paths()) },
        );
      }
      for (const h of lab.hosts) {
        await waitFor(`${h.name} to install 10.99.0.0/24 via ${tor.address}`, async () =>
          (await lab.routes(h)).some((r) => r.dst === "10.99.0.0/24" && r.gateway === tor.address),
        );
      }
      await tor.withdraw("10.99.0.0/24");
      for (const h of lab.hosts) {
        await waitFor(
          `${h.name} to remove 10.99.0.0/24`,
          async () => !(await lab.routes(h)).some((r) => r.dst === "10.99.0.0/24"),
        );
      }
    } finally {
      await ds.delete({ kind: "BGPPeer", name: "tor" }).catch(() => undefined);
      await tor.close();
    }
  });

  it("a 4th host joins (its pods reachable from every host) and leaves (its routes withdrawn everywhere)", async () => {
    const h4 = await lab.addHost();
    try {
      const all = lab.hosts;
      await waitForSessions(lab, ds, (h) => all.filter((o) => o !== h).map((o) => o.ip));
      const f4 = await lab.addPod(h4, { name: "flat-host4", pools: ["flat"] });
      const v4 = await lab.addPod(h4, { name: "vx-host4", pools: ["vxlan"] });
      await expectFullReachability(lab, [flat[0]!, flat[2]!, f4]);
      for (const h of all.filter((o) => o !== h4)) {
        await waitFor(
          `${h.name} to route ${f4.ip} to host4`,
          async () => routeCovering(await lab.routes(h), f4.ip)?.gateway === h4.ip,
        );
        await waitFor(
          `${h.name} to route ${v4.ip} through VXLAN`,
          async () => routeCovering(await lab.routes(h), v4.ip)?.dev === VXLAN_DEVICE,
        );
      }
      await lab.removeHost(h4);
      for (const h of lab.hosts) {
        for (const ip of [f4.ip, v4.ip]) {
          await waitFor(
            `${h.name} to withdraw its route to ${ip} (host4 left)`,
            async () => routeCovering(await lab.routes(h), ip) === undefined,
            {
              timeoutMs: 60_000,
              describe: async () => JSON.stringify(routeCovering(await lab.routes(h), ip)),
            },
          );
        }
      }
      await waitForSessions(lab, ds, (h) => lab.hosts.filter((o) => o !== h).map((o) => o.ip));
    } finally {
      if (lab.hosts.includes(h4)) await lab.removeHost(h4);
    }
  });

  it("route reflector with the mesh off: sessions only to the reflector, routes still everywhere", async () => {
    const [rr, h2, h3] = lab.hosts;
    // host1 becomes the reflector (label + cluster ID on its Node), every node peers with it, mesh off.
    for (let attempt = 0; ; attempt++) {
      const node = await ds.get<StoredObject & { spec: { bgp?: Record<string, unknown> } }>({
        kind: "Node",
        name: rr!.name,
      });
      node.metadata.labels = { ...node.metadata.labels, "route-reflector": "true" };
      node.spec.bgp = { ...node.spec.bgp, routeReflectorClusterID: "244.0.0.1" };
      try {
        await ds.update(node);
        break;
      } catch (e) {
        if (attempt > 5 || (e as { code?: string }).code !== "conflict") throw e;
      }
    }
    await ds.create({
      apiVersion: API_VERSION,
      kind: "BGPPeer",
      metadata: { name: "peer-with-rr" },
      spec: { nodeSelector: "all()", peerSelector: "route-reflector == 'true'" },
    } as StoredObject);
    await ds.create({
      apiVersion: API_VERSION,
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { nodeToNodeMeshEnabled: false },
    } as StoredObject);
    await waitForSessions(lab, ds, (h) => (h === rr ? [h2!.ip, h3!.ip] : [rr!.ip]));
    // host2 and host3 have no session with each other. Blocks made only now (a new pool) can reach them
    // only through the reflector, with the originating node kept as next hop.
    await ds.create(pool("after-rr", "10.248.0.0/16"));
    const [p2, p3] = await addPods(lab, "rr", "after-rr", [h2!, h3!]);
    await waitFor("host2 to route host3's new block via host3 (reflected by host1)", async () => {
      return routeCovering(await lab.routes(h2!), p3!.ip)?.gateway === h3!.ip;
    });
    await waitFor("host3 to route host2's new block via host2 (reflected by host1)", async () => {
      return routeCovering(await lab.routes(h3!), p2!.ip)?.gateway === h2!.ip;
    });
    await expectFullReachability(lab, [p2!, p3!, flat[0]!]);
  });
});

/**
 * Stops `host2`'s agent with `signal` while a pod on host1 pings a pod on host2 every 50 ms, then starts it
 * again. No echo may be lost, and host1's route to host2's block must be there at every look.
 */
async function agentRestartKeepsTraffic(
  lab: ClusterLab,
  signal: "SIGTERM" | "SIGKILL",
  flat: readonly LabPod[],
) {
  const [a, b] = flat;
  const h1 = a!.host;
  const h2 = b!.host;
  const before = routeCovering(await lab.routes(h1), b!.ip);
  expect(before?.gateway).toBe(h2.ip);
  let watching = true;
  const missing: string[] = [];
  const watch = (async () => {
    while (watching) {
      const r = routeCovering(await lab.routes(h1), b!.ip);
      if (r?.gateway !== h2.ip) missing.push(`${new Date().toISOString()} ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const ping = lab.ping(a!.ns, b!.ip, { count: 200, intervalS: 0.05 });
  await new Promise((r) => setTimeout(r, 1_000));
  const exit = await lab.stopAgent(h2, signal);
  if (signal === "SIGTERM") expect(exit, await lab.logs(h2)).toEqual({ code: 0, signal: null });
  else expect(exit.signal).toBe("SIGKILL");
  await new Promise((r) => setTimeout(r, 1_500));
  lab.startAgent(h2);
  await lab.waitReady(h2);
  const result = await ping;
  watching = false;
  await watch;
  expect(result.transmitted, result.output).toBe(200);
  expect(result.received, result.output).toBe(result.transmitted);
  expect(missing, "host1's route to host2's block went missing").toEqual([]);
  // And the restarted agent serves: a new pod on host2 is reachable from host1.
  const fresh = await lab.addPod(h2, { name: `after-${signal.toLowerCase()}`, pools: ["flat"] });
  await waitFor("a pod added after the restart to be reachable", () => lab.canReach(a!, fresh));
}
