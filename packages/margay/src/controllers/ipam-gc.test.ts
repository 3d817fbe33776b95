import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { type Ipam, type IpamBlockObject, IpamKind } from "@margay/ipam";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  allocatePod,
  block26,
  type Clock,
  kubePod,
  nodeSource,
  podSource,
  putEndpoint,
  putNode,
  seed,
} from "./controllers-test-support.js";
import { createIpamGc, DEFAULT_IPAM_GC_GRACE_PERIOD_MS, type IpamGcOptions } from "./ipam-gc.js";

const GRACE = 60_000;

describe("createIpamGc", () => {
  let ds: Datastore;
  let ipam: Ipam;
  let clock: Clock;
  let pods: ReturnType<typeof podSource>;

  beforeEach(async () => {
    ds = createMemoryDatastore();
    clock = { t: 1_700_000_000_000 };
    ipam = await seed(ds, clock);
    pods = podSource();
  });
  afterEach(async () => {
    await ipam.close();
    await ds.close();
  });

  const gcOf = (o: Partial<IpamGcOptions> = {}) =>
    createIpamGc({
      datastore: ds,
      ipam,
      pods: pods.source,
      gracePeriodMs: GRACE,
      dryRunPeriodMs: 0,
      now: () => clock.t,
      ...o,
    });

  it("frees an address whose pod, endpoint and node all let it go, only once the grace period has passed", async () => {
    const a = await allocatePod(ipam, "n1", "default", "gone");
    await using gc = gcOf();
    const first = await gc.runOnce();
    expect(first).toMatchObject({ allocations: 1, candidates: 1, confirmed: 0, released: [] });
    clock.t += GRACE - 1;
    expect((await gc.runOnce()).released).toEqual([]);
    expect(await ipam.ipsByHandle(a.handleId)).toEqual([a.ip]);
    clock.t += 1;
    const r = await gc.runOnce();
    expect(r.released).toEqual([{ handleId: a.handleId, ips: [a.ip] }]);
    expect(await ipam.ipsByHandle(a.handleId)).toEqual([]);
    // The handle object went with its last address.
    await expect(ds.get({ kind: IpamKind.Handle, name: a.handleId })).rejects.toMatchObject({
      code: "not-found",
    });
  });

  it("counts the grace period from the first pass that saw the leak, not from the allocation", async () => {
    const a = await allocatePod(ipam, "n1", "default", "old");
    clock.t += 10 * GRACE; // allocated long ago; the controller only starts now
    await using gc = gcOf();
    expect((await gc.runOnce()).released).toEqual([]);
    clock.t += GRACE;
    expect((await gc.runOnce()).released.map((x) => x.handleId)).toEqual([a.handleId]);
  });

  it("keeps an allocation any one signal holds", async () => {
    // pod: exists on the allocation's node, addresses not reported yet
    const p1 = await allocatePod(ipam, "n1", "default", "p1");
    pods.put(kubePod("default", "p1", "n1"));
    // pod: exists and reports this very address
    const p2 = await allocatePod(ipam, "n1", "default", "p2");
    pods.put(kubePod("default", "p2", "n1", p2.ip));
    // endpoint by handle (container id + interface), without addresses
    const e1 = await allocatePod(ipam, "n1", "default", "e1");
    await putEndpoint(ds, { node: "n1", namespace: "default", pod: "e1", containerId: e1.containerId });
    // endpoint by address only (another container id)
    const e2 = await allocatePod(ipam, "n1", "default", "e2");
    await putEndpoint(ds, { node: "n1", namespace: "default", pod: "e2", containerId: "other", ip: e2.ip });
    // node: a tunnel address of an existing Node
    await putNode(ds, "n1");
    const tunnel = await ipam.autoAssign({
      handleId: "vxlan-tunnel-addr-n1",
      node: "n1",
      num4: 1,
      attrs: { node: "n1", type: "vxlanTunnelAddress" },
    });
    // unknown source: no pod attributes
    const other = await ipam.autoAssign({
      handleId: "someone-else",
      node: "n1",
      num4: 1,
      attrs: { node: "n1" },
    });

    await using gc = gcOf();
    await gc.runOnce();
    clock.t += 10 * GRACE;
    const r = await gc.runOnce();
    expect(r).toMatchObject({ allocations: 6, candidates: 0, released: [] });
    for (const h of [p1, p2, e1, e2]) expect(await ipam.ipsByHandle(h.handleId)).toEqual([h.ip]);
    expect(await ipam.ipsByHandle("vxlan-tunnel-addr-n1")).toEqual([tunnel.ipv4[0]!.ip]);
    expect(await ipam.ipsByHandle("someone-else")).toEqual([other.ipv4[0]!.ip]);
  });

  it("takes a pod that no longer holds the address as no signal: rescheduled, evicted, other address", async () => {
    await putNode(ds, "n1", "k1"); // the allocation's node, known to Kubernetes as k1
    const moved = await allocatePod(ipam, "n1", "default", "moved");
    pods.put(kubePod("default", "moved", "k2"));
    // The same pod name on k1 (the allocation's node under its Kubernetes name) holds it.
    const stays = await allocatePod(ipam, "n1", "default", "stays");
    pods.put(kubePod("default", "stays", "k1"));
    const evicted = await allocatePod(ipam, "n1", "default", "evicted");
    pods.put({
      ...kubePod("default", "evicted", "k1", "10.99.0.1"),
      status: { phase: "Failed", reason: "Evicted", podIP: "10.99.0.1" } as never,
    });
    const other = await allocatePod(ipam, "n1", "default", "other");
    pods.put(kubePod("default", "other", "k1", "10.99.0.2"));
    await using gc = gcOf();
    expect((await gc.runOnce()).candidates).toBe(3);
    expect(await ipam.ipsByHandle(stays.handleId)).toEqual([stays.ip]);
    clock.t += GRACE;
    const r = await gc.runOnce();
    expect(r.released.map((x) => x.handleId).sort()).toEqual(
      [moved.handleId, evicted.handleId, other.handleId].sort(),
    );
  });

  it("a tunnel address is freed once its Node is gone", async () => {
    const t = await ipam.autoAssign({
      handleId: "vxlan-tunnel-addr-n9",
      node: "n9",
      num4: 1,
      attrs: { node: "n9", type: "vxlanTunnelAddress" },
    });
    await using gc = gcOf();
    await gc.runOnce();
    clock.t += GRACE;
    expect((await gc.runOnce()).released).toEqual([
      { handleId: "vxlan-tunnel-addr-n9", ips: [t.ipv4[0]!.ip] },
    ]);
  });

  it("a leak that comes back to life is forgotten, and its grace period starts again", async () => {
    const a = await allocatePod(ipam, "n1", "default", "flappy");
    await using gc = gcOf();
    await gc.runOnce();
    clock.t += GRACE - 10;
    pods.put(kubePod("default", "flappy", "n1", a.ip));
    expect((await gc.runOnce()).candidates).toBe(0);
    pods.pods.clear();
    clock.t += 10;
    expect((await gc.runOnce()).released).toEqual([]); // a fresh candidate
    clock.t += GRACE;
    expect((await gc.runOnce()).released.map((x) => x.handleId)).toEqual([a.handleId]);
  });

  it("frees a handle all or nothing: one held address keeps the others", async () => {
    const handleId = "margay:multi:eth0";
    const attrs = { node: "n1", namespace: "default", pod: "multi", containerID: "multi", ifname: "eth0" };
    const r = await ipam.autoAssign({ handleId, node: "n1", num4: 2, attrs });
    const [ip1, ip2] = r.ipv4.map((x) => x.ip);
    await putEndpoint(ds, { node: "n1", namespace: "default", pod: "x", containerId: "x", ip: ip2 });
    await using gc = gcOf();
    await gc.runOnce();
    clock.t += GRACE;
    const pass = await gc.runOnce();
    expect(pass).toMatchObject({ candidates: 1, confirmed: 1, released: [] });
    expect((await ipam.ipsByHandle(handleId)).sort()).toEqual([ip1, ip2].sort());
  });

  it("reads the pod from the API before freeing when a reader is given; a failing read keeps the address", async () => {
    const a = await allocatePod(ipam, "n1", "default", "lagging");
    let answer: "exists" | "absent" | "fail" = "exists";
    const getPod = async (ns: string, name: string) => {
      if (answer === "fail") throw new Error("API down");
      return answer === "exists" ? kubePod(ns, name, "n1", a.ip) : undefined;
    };
    await using gc = gcOf({ getPod });
    await gc.runOnce();
    clock.t += GRACE;
    expect((await gc.runOnce()).released).toEqual([]); // the cache lagged: the pod is there
    answer = "fail";
    clock.t += GRACE;
    await gc.runOnce();
    clock.t += GRACE;
    expect((await gc.runOnce()).released).toEqual([]);
    answer = "absent";
    clock.t += GRACE;
    await gc.runOnce();
    clock.t += GRACE;
    expect((await gc.runOnce()).released.map((x) => x.handleId)).toEqual([a.handleId]);
  });

  it("never frees an allocation younger than the grace period", async () => {
    await using gc = gcOf();
    const a = await allocatePod(ipam, "n1", "default", "first");
    await gc.runOnce();
    clock.t += GRACE;
    // Same container id and handle allocated again just now (a retried ADD): the handle is young.
    await ipam.releaseByHandle(a.handleId);
    const again = await allocatePod(ipam, "n1", "default", "first");
    expect(again.handleId).toBe(a.handleId);
    expect((await gc.runOnce()).released).toEqual([]);
  });

  it("only logs and counts what it would free during the dry-run window", async () => {
    const registry = new Registry();
    const a = await allocatePod(ipam, "n1", "default", "dry");
    await using gc = gcOf({ dryRunPeriodMs: 3 * GRACE, registry });
    expect(gc.dryRun).toBe(true);
    await gc.runOnce();
    clock.t += GRACE;
    const r = await gc.runOnce();
    expect(r).toMatchObject({
      dryRun: true,
      released: [],
      wouldRelease: [{ handleId: a.handleId, ips: [a.ip] }],
    });
    expect(await ipam.ipsByHandle(a.handleId)).toEqual([a.ip]);
    clock.t += 2 * GRACE;
    expect(gc.dryRun).toBe(false);
    expect((await gc.runOnce()).released).toEqual([{ handleId: a.handleId, ips: [a.ip] }]);
    const text = await registry.metrics();
    expect(text).toMatch(/^margay_ipam_gc_leaks_found_total 1$/m);
    expect(text).toMatch(/^margay_ipam_gc_dry_run_addresses_total 1$/m);
    expect(text).toMatch(/^margay_ipam_gc_addresses_released_total 1$/m);
    expect(text).toMatch(/^margay_ipam_gc_leak_candidates 0$/m);
    expect(text).toMatch(/^margay_ipam_gc_passes_total\{result="ok"\} 3$/m);
  });

  it("does nothing before the pods (and nodes) have synced", async () => {
    await allocatePod(ipam, "n1", "default", "x");
    pods.synced = false;
    const nodes = nodeSource();
    await using gc = gcOf({ nodes: nodes.source });
    expect(await gc.runOnce()).toMatchObject({ skipped: "not-synced", candidates: 0 });
    pods.synced = true;
    nodes.synced = false;
    expect(await gc.runOnce()).toMatchObject({ skipped: "not-synced" });
    nodes.synced = true;
    expect(await gc.runOnce()).toMatchObject({ candidates: 1 });
  });

  it("a node the node controller removed: empty blocks released at once, the rest after its leaks are freed", async () => {
    const live = await allocatePod(ipam, "gone", "default", "live");
    pods.put(kubePod("default", "live", "gone", live.ip));
    const leak = await allocatePod(ipam, "gone", "default", "leak");
    // A second block of the node, emptied by a DEL.
    await ipam.claimAffinity("10.80.1.0/26", "gone");
    await using gc = gcOf({ nodes: nodeSource().source });
    gc.nodeDeleted("gone");
    const r = await gc.runOnce();
    expect(r.affinitiesReleased).toEqual([{ node: "gone", blocks: ["10.80.1.0/26"] }]);
    clock.t += GRACE;
    const r2 = await gc.runOnce();
    expect(r2.released.map((x) => x.handleId)).toEqual([leak.handleId]);
    // The first block still holds the live pod: it stays the node's.
    expect(r2.affinitiesReleased).toEqual([]);
    const blocks = await ds.list<IpamBlockObject>(IpamKind.Block);
    const liveBlock = block26(live.ip);
    expect(blocks.items.map((b) => [b.spec.cidr, b.spec.affinity])).toEqual([[liveBlock, "host:gone"]]);
    // The pod goes too: after the grace its address is freed and the node's last block released.
    pods.pods.clear();
    await gc.runOnce();
    clock.t += GRACE;
    const r3 = await gc.runOnce();
    expect(r3.released.map((x) => x.handleId)).toEqual([live.handleId]);
    expect(r3.affinitiesReleased).toEqual([{ node: "gone", blocks: [liveBlock] }]);
    expect((await ds.list(IpamKind.Block)).items).toEqual([]);
    expect((await ds.list(IpamKind.Affinity)).items).toEqual([]);
  });

  it("a gone node nobody reported is released only after it has been gone for the grace period", async () => {
    await ipam.claimAffinity("10.80.2.0/26", "quiet");
    await using gc = gcOf();
    expect((await gc.runOnce()).affinitiesReleased).toEqual([]);
    clock.t += GRACE;
    expect((await gc.runOnce()).affinitiesReleased).toEqual([{ node: "quiet", blocks: ["10.80.2.0/26"] }]);
  });

  it("a node that registers again under the same name keeps its blocks and its live addresses", async () => {
    const live = await allocatePod(ipam, "back", "default", "live");
    pods.put(kubePod("default", "live", "back", live.ip));
    await ipam.claimAffinity("10.80.3.0/26", "back");
    const kube = nodeSource();
    await using gc = gcOf({ nodes: kube.source });
    gc.nodeDeleted("back");
    // It registers again before the pass runs: in Kubernetes, and as a Margay Node.
    kube.names.add("back");
    await putNode(ds, "back", "back");
    clock.t += 2 * GRACE;
    const r = await gc.runOnce();
    expect(r).toMatchObject({ candidates: 0, released: [], affinitiesReleased: [] });
    clock.t += 2 * GRACE;
    expect((await gc.runOnce()).affinitiesReleased).toEqual([]);
    expect(await ipam.ipsByHandle(live.handleId)).toEqual([live.ip]);
    expect((await ds.list(IpamKind.Block)).items).toHaveLength(2);
  });

  it("runs a pass at start and one at once when triggered, not waiting for the interval", async () => {
    const registry = new Registry();
    const a = await allocatePod(ipam, "n1", "default", "loop");
    const gc = gcOf({ intervalMs: 3_600_000, registry });
    const passes = async () => (await registry.getSingleMetric("margay_ipam_gc_passes_total")!.get()).values;
    try {
      gc.start();
      await expect.poll(async () => (await passes()).length).toBe(1);
      clock.t += GRACE;
      gc.trigger("test");
      await expect.poll(() => ipam.ipsByHandle(a.handleId)).toEqual([]);
    } finally {
      await gc.close();
    }
  });

  it("rejects bad durations with a RangeError and defaults to Calico's 15 minutes", () => {
    expect(() => gcOf({ gracePeriodMs: -1 })).toThrow(RangeError);
    expect(() => gcOf({ dryRunPeriodMs: Number.NaN })).toThrow(RangeError);
    expect(DEFAULT_IPAM_GC_GRACE_PERIOD_MS).toBe(15 * 60_000);
  });
});
