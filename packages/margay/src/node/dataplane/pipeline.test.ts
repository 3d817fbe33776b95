import type { RouteSideUpdate } from "@margay/dataplane-contract";
import {
  createMemoryDataplane,
  DataplaneError,
  DataplaneErrorCode,
  type DataplaneDriver,
  type DataplaneUpdate,
} from "@margay/dataplane";
import {
  compactedError,
  createMemoryDatastore,
  type Datastore,
  decorateDatastore,
  type StoredObject,
  unavailableError,
  type Watch,
} from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentDriver } from "./driver.js";
import { isPipelineError } from "./errors.js";
import { startDataplanePipeline, type RunningDataplanePipeline } from "./pipeline.js";
import {
  allowPolicy,
  eventually,
  node,
  pool,
  type TestContext,
  type TestObject,
  testContext,
  wep,
} from "./pipeline.test-util.js";

const running: RunningDataplanePipeline[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.close();
});

async function start(ctx: TestContext, driver: AgentDriver, extra: { retryMs?: number } = {}) {
  const p = await startDataplanePipeline(ctx, {
    driver,
    addresses: { ipv4: "10.77.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
    retry: { initialMs: extra.retryMs ?? 10, maxMs: extra.retryMs ?? 50 },
    syncerRetry: { initialMs: 10, maxMs: 50 },
  });
  running.push(p);
  return p;
}

/** Pool, two nodes, one block each (allocated by the real IPAM), one pod on node-a. */
async function seedCluster(ds: Datastore, encap: "none" | "vxlan" = "none") {
  await ds.create(pool("default", "10.65.0.0/16", encap === "vxlan" ? { vxlanMode: "Always" } : {}));
  const vtep = (i: number) =>
    encap === "vxlan" ? { address: `10.65.${i}.250`, mac: `66:00:00:00:00:0${i}` } : undefined;
  await ds.create(node("node-a", "10.77.0.1/24", vtep(1)));
  await ds.create(node("node-b", "10.77.0.2/24", vtep(2)));
  const ipam = createIpam({ datastore: ds });
  const a = await ipam.autoAssign({ handleId: "pod-a", node: "node-a", num4: 1 });
  const b = await ipam.autoAssign({ handleId: "pod-b", node: "node-b", num4: 1 });
  const podA = a.ipv4[0]!;
  const podB = b.ipv4[0]!;
  const created = await ds.create(wep("shop", "node--a-k8s-web-eth0", "node-a", podA.ip, "mgy0a1b2c3d4e5"));
  await ds.create(wep("shop", "node--b-k8s-db-eth0", "node-b", podB.ip, "mgy9f8e7d6c5b4"));
  return { podA, podB, wepRevision: created.metadata.resourceVersion! };
}

/** A driver wrapper that records batches and can be slowed down or made to fail. */
function instrumented(inner: DataplaneDriver) {
  const batches: DataplaneUpdate[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let gate: Promise<void> | undefined;
  let failWith: Error | undefined;
  let tornDown = false;
  let closed = false;
  const driver: AgentDriver = {
    async apply(updates, options) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        batches.push([...updates]);
        if (gate !== undefined) await gate;
        if (failWith !== undefined) throw failWith;
        return await inner.apply(updates, options);
      } finally {
        inFlight--;
      }
    },
    snapshot: (o) => inner.snapshot(o),
    async close() {
      closed = true;
      await inner.close();
    },
    [Symbol.asyncDispose]: () => inner.close(),
    async teardown() {
      tornDown = true;
    },
  };
  return {
    driver,
    batches,
    get maxInFlight() {
      return maxInFlight;
    },
    get tornDown() {
      return tornDown;
    },
    get closed() {
      return closed;
    },
    hold() {
      let release!: () => void;
      gate = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    fail(e: Error | undefined) {
      failWith = e;
    },
  };
}

function metricValue(ctx: TestContext, name: string) {
  return ctx.metrics.getSingleMetric(name)?.get();
}

describe("dataplane pipeline: datastore to driver", () => {
  it("programs policy, the own block's blackhole, the remote block and the local workload", async () => {
    const ctx = testContext();
    const { podA, podB } = await seedCluster(ctx.datastore);
    await ctx.datastore.create(allowPolicy("allow-web", "projectcalico.org/namespace == 'shop'", 80));
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    const snap = await mem.snapshot();
    const routes = new Map(snap.routes.map((r) => [r.dst, r]));
    expect(routes.get(podA.block)?.type).toBe("blackhole");
    expect(routes.get(podB.block)).toEqual({
      dst: podB.block,
      type: "unicast",
      nextHops: [{ via: "10.77.0.2", onlink: false }],
    });
    expect(routes.get(`${podA.ip}/32`)?.nextHops).toEqual([{ dev: "mgy0a1b2c3d4e5", onlink: false }]);
    // Only the local endpoint is programmed; the remote one only feeds IP sets.
    expect(snap.endpoints.map((e) => e.ifname)).toEqual(["mgy0a1b2c3d4e5"]);
    expect(snap.policies.some((id) => id.includes("allow-web"))).toBe(true);
    // The route side as the pipeline reports it (what BGP exports from).
    expect(p.routes().get(podA.block)).toEqual({
      kind: "route-update",
      dst: podA.block,
      type: "local-block",
    });
    expect(p.routes().get("host:node-b")).toEqual({
      kind: "host-update",
      node: "node-b",
      addresses: ["10.77.0.2/24"],
    });
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
    expect(ctx.health.snapshot().components.datastore).toEqual({ live: true, ready: true });
    expect((await metricValue(ctx, "margay_dataplane_in_sync"))?.values[0]?.value).toBe(1);
  });

  it("sends one first batch that ends with in-sync and carries the whole state", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver);
    await eventually(() => p.inSync);
    const first = probe.batches[0]!;
    expect(first.at(-1)).toEqual({ kind: "in-sync" });
    expect(first.filter((u) => u.kind === "in-sync")).toHaveLength(1);
    // Policy updates (calc-graph order) before the route side.
    const firstRoute = first.findIndex((u) => u.kind.startsWith("route-") || u.kind.startsWith("pool-"));
    const lastPolicy = first.findLastIndex((u) => u.kind.includes("endpoint") || u.kind.includes("profile"));
    expect(lastPolicy).toBeLessThan(firstRoute);
    expect(first.some((u) => u.kind === "workload-endpoint-update")).toBe(true);
  });

  it("gives the driver the local VTEP and the remote one in VXLAN mode", async () => {
    const ctx = testContext();
    const { podB } = await seedCluster(ctx.datastore, "vxlan");
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver);
    await eventually(() => p.inSync);
    const vteps = probe.batches.flat().filter((u) => u.kind === "vtep-update");
    expect(vteps).toContainEqual({
      kind: "vtep-update",
      node: "node-a",
      tunnelAddress: "10.65.1.250",
      mac: "66:00:00:00:00:01",
      underlayAddress: "10.77.0.1",
    });
    const snap = await probe.driver.snapshot();
    expect(snap.vteps).toEqual([{ address: "10.65.2.250", mac: "66:00:00:00:00:02", underlay: "10.77.0.2" }]);
    const remote = snap.routes.find((r) => r.dst === podB.block);
    expect(remote?.nextHops).toEqual([{ via: "10.65.2.250", dev: "vxlan.margay", onlink: true }]);
  });

  it("programs a policy change made after in-sync and counts it in the metrics", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    expect((await mem.snapshot()).policies).toEqual([]);
    await ctx.datastore.create(allowPolicy("late", "all()", 443));
    await eventually(async () => (await mem.snapshot()).policies.some((id) => id.includes("late")));
    const enforce = await metricValue(ctx, "margay_time_to_enforce_seconds");
    const count = enforce?.values.find(
      (v) => (v as { metricName?: string }).metricName === "margay_time_to_enforce_seconds_count",
    );
    expect(count?.value).toBeGreaterThan(0);
    const events = await metricValue(ctx, "margay_syncer_events_total");
    expect(events?.values.find((v) => v.labels.kind === "GlobalNetworkPolicy")?.value).toBe(1);
    const calc = await metricValue(ctx, "margay_calc_graph_updates_total");
    expect(calc?.values.find((v) => v.labels.kind === "active-policy-update")?.value).toBeGreaterThan(0);
    expect(await ctx.metrics.metrics()).toContain("etcd events carry no timestamp");
  });

  it("backend none: local routes and policy only, no route to another host", async () => {
    const ctx = testContext({ config: { networkingBackend: "none" } });
    const { podA, podB } = await seedCluster(ctx.datastore);
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    p.learned([
      { kind: "learned", source: "10.77.0.254", prefix: "192.168.50.0/24", nextHops: ["10.77.0.254"] },
    ]);
    const ipam = createIpam({ datastore: ctx.datastore });
    const more = await ipam.autoAssign({ handleId: "pod-c", node: "node-b", num4: 1 });
    await eventually(() => p.status().applies >= 2);
    await new Promise((r) => setTimeout(r, 50));
    const dsts = (await mem.snapshot()).routes.map((r) => r.dst).sort();
    expect(dsts).toEqual([podA.block, `${podA.ip}/32`].sort());
    expect(dsts).not.toContain(podB.block);
    expect(dsts).not.toContain(more.ipv4[0]!.block);
    expect((await mem.snapshot()).endpoints).toHaveLength(1);
  });

  it("treats a malformed pool as absent instead of failing", async () => {
    const ctx = testContext({
      // No validation: the datastore may hold what another writer put there.
      datastore: createMemoryDatastore(),
    });
    await seedCluster(ctx.datastore);
    await ctx.datastore.create(pool("broken", "not-a-cidr"));
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    expect([...p.routes().keys()].filter((k) => k.startsWith("pool:"))).toEqual(["pool:10.65.0.0/16"]);
    expect(ctx.logger.records.some((r) => r.message === "route input invalid; treated as absent")).toBe(true);
  });
});

describe("dataplane pipeline: waiting for endpoints", () => {
  it("resolves once the endpoint's revision is applied, at once when it already is", async () => {
    const ctx = testContext();
    const { wepRevision } = await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const release = probe.hold();
    const p = await start(ctx, probe.driver);
    let resolved = false;
    const waiting = p.waitForEndpoint("shop/node--a-k8s-web-eth0", wepRevision).then(() => {
      resolved = true;
    });
    await eventually(() => probe.batches.length === 1);
    expect(resolved).toBe(false); // the driver has not finished the batch
    release();
    await waiting;
    expect((await probe.driver.snapshot()).endpoints).toHaveLength(1);
    // Already applied: resolves without another batch.
    const before = probe.batches.length;
    await p.waitForEndpoint("shop/node--a-k8s-web-eth0", wepRevision);
    expect(probe.batches.length).toBe(before);
  });

  it("waits for a newer revision and for a deletion", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    const key = { kind: "WorkloadEndpoint", namespace: "shop", name: "node--a-k8s-web-eth0" };
    const current = await ctx.datastore.get<StoredObject & { spec: { ipNetworks: string[] } }>(key);
    const updated = await ctx.datastore.update({
      ...current,
      metadata: { ...current.metadata, labels: { ...current.metadata.labels, tier: "front" } },
    });
    await p.waitForEndpoint("shop/node--a-k8s-web-eth0", updated.metadata.resourceVersion!);
    const gone = await ctx.datastore.delete(key);
    await p.waitForEndpoint("shop/node--a-k8s-web-eth0", gone.metadata.resourceVersion!, { deleted: true });
    expect((await mem.snapshot()).endpoints).toEqual([]);
    expect(p.routes().has(`${current.spec.ipNetworks[0]}`)).toBe(false);
  });

  it("rejects on abort and on close, with typed errors", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const p = await start(ctx, createMemoryDataplane({ nodeName: "node-a" }));
    await eventually(() => p.inSync);
    const ac = new AbortController();
    const aborted = p.waitForEndpoint("shop/never", "999999", { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toSatisfy((e) => isPipelineError(e, "aborted"));
    await expect(p.waitForEndpoint("bad-key", "1")).rejects.toSatisfy((e) =>
      isPipelineError(e, "invalid-options"),
    );
    const pending = p.waitForEndpoint("shop/never", "999999");
    await p.close();
    await expect(pending).rejects.toSatisfy((e) => isPipelineError(e, "closed"));
    await expect(p.waitForEndpoint("shop/x", "1")).rejects.toSatisfy((e) => isPipelineError(e, "closed"));
  });
});

describe("dataplane pipeline: learned routes and route listeners", () => {
  it("applies BGP-learned routes in the next batch and tells listeners", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    const calls: (readonly RouteSideUpdate[])[] = [];
    p.onRoutes((u) => calls.push(u));
    await eventually(() => calls.length === 1);
    expect(calls[0]).toEqual([...p.routes().values()]); // the full current set first
    p.learned([
      { kind: "learned", source: "10.77.0.254", prefix: "192.168.50.0/24", nextHops: ["10.77.0.254"] },
    ]);
    await eventually(() => calls.length === 2);
    expect(calls[1]).toEqual([
      {
        kind: "route-update",
        dst: "192.168.50.0/24",
        type: "remote-block",
        nextHops: [{ via: "10.77.0.254", encapsulation: "none" }],
      },
    ]);
    const route = (await mem.snapshot()).routes.find((r) => r.dst === "192.168.50.0/24");
    expect(route?.nextHops).toEqual([{ via: "10.77.0.254", onlink: false }]);
    p.learned([{ kind: "learned", source: "10.77.0.254", prefix: "192.168.50.0/24", nextHops: null }]);
    await eventually(() => calls.length === 3);
    expect(calls[2]).toEqual([{ kind: "route-remove", dst: "192.168.50.0/24" }]);
    // A malformed learned route is logged and skipped, never thrown at the BGP part.
    expect(() =>
      p.learned([{ kind: "learned", source: "x", prefix: "not-a-prefix", nextHops: ["10.0.0.1"] }]),
    ).not.toThrow();
  });

  it("a listener registered before in-sync gets the full set with the first batch", async () => {
    const ctx = testContext();
    const { podA } = await seedCluster(ctx.datastore);
    const p = await start(ctx, createMemoryDataplane({ nodeName: "node-a" }));
    const calls: (readonly RouteSideUpdate[])[] = [];
    p.onRoutes((u) => calls.push(u));
    await eventually(() => calls.length === 1);
    expect(calls[0]!.some((u) => u.kind === "route-update" && u.dst === podA.block)).toBe(true);
  });
});

describe("dataplane pipeline: batching and failures", () => {
  it("never applies concurrently and coalesces changes made during a slow apply", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver);
    await eventually(() => p.inSync);
    const release = probe.hold();
    let last = "";
    for (let i = 0; i < 20; i++) {
      const w = await ctx.datastore.create(
        wep("shop", `node--a-k8s-p${i}-eth0`, "node-a", `10.65.${i < 10 ? 200 : 201}.${i + 1}`, `mgyp${i}`),
      );
      last = w.metadata.resourceVersion!;
      if (i === 0) await eventually(() => probe.batches.length === 2); // the first one is in flight
    }
    const applied = p.waitForEndpoint("shop/node--a-k8s-p19-eth0", last);
    // Changes delivered but not programmed yet show as lag (the in-flight batch's included).
    const lag = async () => (await metricValue(ctx, "margay_syncer_lag_seconds"))?.values[0]?.value ?? -1;
    expect(await lag()).toBeGreaterThan(0);
    release();
    await applied;
    expect(await lag()).toBe(0);
    expect(probe.maxInFlight).toBe(1);
    // 1 initial batch, 1 for the first pod, and the other 19 in far fewer than 19 batches.
    expect(probe.batches.length).toBeLessThan(2 + 19);
    expect((await probe.driver.snapshot()).endpoints).toHaveLength(21);
  });

  it("reports a rejected apply as not ready, retries with back-off, and recovers", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver, { retryMs: 20 });
    await eventually(() => p.inSync);
    probe.fail(
      new DataplaneError(DataplaneErrorCode.NftablesRejected, "nftables rejected the transaction", {
        details: { stderr: "Error: Could not process rule: No such file or directory\n" },
      }),
    );
    const w = await ctx.datastore.create(
      wep("shop", "node--a-k8s-new-eth0", "node-a", "10.65.200.9", "mgynew0"),
    );
    await eventually(() => ctx.health.snapshot().components.dataplane?.ready === false);
    expect(ctx.health.snapshot().components.dataplane?.reason).toBe(
      "dataplane not in sync: nftables rejected the transaction: Error: Could not process rule: No such file or directory",
    );
    let done = false;
    const waiting = p.waitForEndpoint("shop/node--a-k8s-new-eth0", w.metadata.resourceVersion!).then(() => {
      done = true;
    });
    const failedSoFar = probe.batches.length;
    await eventually(() => probe.batches.length >= failedSoFar + 2); // retried
    expect(done).toBe(false); // never counted as programmed while rejected
    expect(p.status().lastApplyError).toMatch(/^dataplane not in sync/);
    expect((await metricValue(ctx, "margay_dataplane_in_sync"))?.values[0]?.value).toBe(0);
    probe.fail(undefined);
    await waiting;
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
    expect((await probe.driver.snapshot()).endpoints.map((e) => e.ifname)).toContain("mgynew0");
    // Every retry carried the whole owed batch: the endpoint update is in each of them.
    for (const b of probe.batches.slice(failedSoFar)) {
      expect(b.some((u) => u.kind === "workload-endpoint-update" && u.ifname === "mgynew0")).toBe(true);
    }
  });

  it("a rejected first batch keeps the dataplane unready until a retry succeeds", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    probe.fail(new DataplaneError(DataplaneErrorCode.CommandFailed, "ip batch failed"));
    const p = await start(ctx, probe.driver, { retryMs: 20 });
    await eventually(() => probe.batches.length >= 2);
    expect(p.inSync).toBe(false);
    expect(ctx.health.snapshot().components.dataplane?.reason).toBe("dataplane not in sync: ip batch failed");
    probe.fail(undefined);
    await eventually(() => p.inSync);
    expect(probe.batches.at(-1)!.filter((u) => u.kind === "in-sync")).toHaveLength(1);
    expect(ctx.health.snapshot().components.dataplane?.ready).toBe(true);
  });

  it("close() without teardown leaves the driver's state; with teardown it removes it", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver);
    await eventually(() => p.inSync);
    await p.close();
    expect(probe.closed).toBe(true);
    expect(probe.tornDown).toBe(false);
    expect(ctx.health.snapshot().components.dataplane?.ready).toBe(false);
    // The syncer is stopped: a later write reaches no driver.
    const batches = probe.batches.length;
    await ctx.datastore.create(allowPolicy("after-close", "all()", 1));
    await new Promise((r) => setTimeout(r, 50));
    expect(probe.batches.length).toBe(batches);

    const ctx2 = testContext({ datastore: ctx.datastore });
    const probe2 = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p2 = await start(ctx2, probe2.driver);
    await eventually(() => p2.inSync);
    await p2.close({ teardown: true });
    expect(probe2.tornDown).toBe(true);
  });

  it("a local endpoint with an invalid interface name is treated as absent instead of wedging the driver", async () => {
    const ctx = testContext({ datastore: createMemoryDatastore() }); // unvalidated: any writer's objects
    await seedCluster(ctx.datastore);
    await ctx.datastore.create(wep("shop", "bad", "node-a", "10.65.0.99", "this-name-is-way-too-long"));
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    expect((await mem.snapshot()).endpoints.map((e) => e.ifname)).toEqual(["mgy0a1b2c3d4e5"]);
    expect(ctx.logger.records.map((r) => r.message)).toContain(
      "workload endpoint has an invalid interface name; treated as absent",
    );
    expect(p.status().applyFailures).toBe(0);
  });

  it("an update the driver refuses as malformed is dropped, the rest programmed", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const inner = createMemoryDataplane({ nodeName: "node-a" });
    // A driver stricter than ours (a vendor's): it refuses one endpoint, naming its index, and changes nothing.
    const strict: AgentDriver = {
      async apply(updates, options) {
        const index = updates.findIndex(
          (u) => u.kind === "workload-endpoint-update" && u.ifname === "mgystrict",
        );
        if (index >= 0) {
          throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "interface name reserved", {
            details: { index },
          });
        }
        return inner.apply(updates, options);
      },
      snapshot: (o) => inner.snapshot(o),
      close: () => inner.close(),
      [Symbol.asyncDispose]: () => inner.close(),
    };
    await ctx.datastore.create(wep("shop", "strict", "node-a", "10.65.0.98", "mgystrict"));
    const p = await start(ctx, strict);
    await eventually(() => p.inSync);
    const snap = await inner.snapshot();
    expect(snap.endpoints.map((e) => e.ifname)).toEqual(["mgy0a1b2c3d4e5"]);
    expect(snap.routes.some((r) => r.dst === "10.65.0.98/32")).toBe(true);
    const dropped = await metricValue(ctx, "margay_dataplane_updates_dropped_total");
    expect(dropped?.values[0]?.value).toBe(1);
    expect(ctx.logger.records.map((r) => r.message)).toContain(
      "dataplane update rejected as invalid; dropped",
    );
    // Later changes still flow.
    await ctx.datastore.create(allowPolicy("later", "all()", 22));
    await eventually(async () => (await inner.snapshot()).policies.some((id) => id.includes("later")));
  });

  it("close() does not hang on a driver whose apply never returns", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    probe.hold(); // never released: the first apply hangs and ignores its abort signal
    const p = await startDataplanePipeline(ctx, { driver: probe.driver, closeTimeoutMs: 50 });
    await eventually(() => probe.batches.length === 1);
    await p.close();
    expect(probe.closed).toBe(true);
    expect(ctx.logger.records.map((r) => r.message)).toContain(
      "dataplane apply still running at close; not waiting",
    );
  });

  it("stops when the agent's signal aborts", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const probe = instrumented(createMemoryDataplane({ nodeName: "node-a" }));
    const p = await start(ctx, probe.driver);
    await eventually(() => p.inSync);
    ctx.abort.abort();
    await eventually(() => probe.closed);
    expect(probe.tornDown).toBe(false);
  });
});

/** A datastore whose reads can be made to fail as an unreachable etcd's do. */
function flaky(inner: Datastore) {
  let down = false;
  const live = new Set<{ fail: (e: Error) => void }>();
  const err = () =>
    unavailableError("etcd unreachable: connect ECONNREFUSED 127.0.0.1:2379", { backend: "test" });
  const ds: Datastore = decorateDatastore(inner, {
    list: (kind, o) => (down ? Promise.reject(err()) : inner.list(kind, o)),
    watch<T extends StoredObject>(kind: string, o?: Parameters<Datastore["watch"]>[1]): Watch<T> {
      const w = inner.watch<T>(kind, o);
      let failed: ((e: Error) => void) | undefined;
      const broken = new Promise<never>((_, reject) => {
        failed = reject;
      });
      broken.catch(() => undefined);
      const entry = { fail: (e: Error) => failed?.(e) };
      if (down) entry.fail(err());
      else live.add(entry);
      return {
        close: () => w.close(),
        [Symbol.asyncDispose]: () => w.close(),
        async *[Symbol.asyncIterator]() {
          const it = w[Symbol.asyncIterator]();
          try {
            for (;;) {
              const r = await Promise.race([it.next(), broken]);
              if (r.done) return;
              yield r.value;
            }
          } finally {
            live.delete(entry);
            await w.close();
          }
        },
      };
    },
  });

  return {
    ds,
    down() {
      down = true;
      for (const e of live) e.fail(err());
    },
    /** Fails every live watch with `compacted` (history gone): the syncer relists. */
    compact() {
      for (const e of live) e.fail(compactedError({ backend: "test" }));
    },
    up() {
      down = false;
    },
  };
}

describe("dataplane pipeline: datastore outage", () => {
  it("a syncer stopped for good reports the datastore not live, and the dataplane keeps its state", async () => {
    const ctx = testContext();
    await seedCluster(ctx.datastore);
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await startDataplanePipeline(ctx, { driver: mem, datastoreProbeMs: 20 });
    running.push(p);
    await eventually(() => p.inSync);
    const before = await mem.snapshot();
    await ctx.datastore.close();
    await eventually(() => ctx.health.snapshot().components.datastore?.live === false);
    expect(ctx.health.snapshot().components.datastore?.reason).toMatch(/^datastore syncer stopped: /);
    await new Promise((r) => setTimeout(r, 100)); // probes would have run by now
    expect(ctx.health.snapshot().components.datastore?.live).toBe(false);
    expect(await mem.snapshot()).toEqual(before);
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
  });

  it("reports the datastore unready with the syncer's error while the dataplane keeps its state", async () => {
    const base = testContext();
    await seedCluster(base.datastore);
    const f = flaky(base.datastore);
    const ctx = testContext({ datastore: f.ds });
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await start(ctx, mem);
    await eventually(() => p.inSync);
    const before = await mem.snapshot();
    f.down();
    await eventually(() => ctx.health.snapshot().components.datastore?.ready === false);
    expect(ctx.health.snapshot().components.datastore?.reason).toBe(
      "datastore unavailable: etcd unreachable: connect ECONNREFUSED 127.0.0.1:2379",
    );
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
    expect(await mem.snapshot()).toEqual(before); // nothing withdrawn while the datastore is away
    f.up();
    await eventually(() => ctx.health.snapshot().components.datastore?.ready === true);
    // A relist after compaction is routine: the datastore stays ready (the outage's error is not re-reported).
    const relists = p.status().syncer.relists;
    const flips: boolean[] = [];
    const probe = setInterval(
      () => flips.push(ctx.health.snapshot().components.datastore?.ready === true),
      1,
    );
    f.compact();
    await eventually(() => p.status().syncer.relists > relists && p.status().syncer.state === "in-sync");
    clearInterval(probe);
    expect(flips).not.toContain(false);
    expect(ctx.health.snapshot().components.datastore).toEqual({ live: true, ready: true });
    // And changes flow again.
    await base.datastore.create(allowPolicy("after-outage", "all()", 8080));
    await eventually(async () => (await mem.snapshot()).policies.some((id) => id.includes("after-outage")));
  });
});

describe("dataplane pipeline: unresolved routes in status", () => {
  it("names the calculator's unresolved routes (VXLAN to a node without a VTEP) and the driver's", async () => {
    const ctx = testContext();
    const ds = ctx.datastore;
    await ds.create(pool("default", "10.65.0.0/16", { vxlanMode: "Always" }));
    await ds.create(node("node-a", "10.77.0.1/24", { address: "10.65.1.250", mac: "66:00:00:00:00:01" }));
    await ds.create(node("node-b", "10.77.0.2/24"));
    const ipam = createIpam({ datastore: ds });
    const b = (await ipam.autoAssign({ handleId: "pod-b", node: "node-b", num4: 1 })).ipv4[0]!;
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    // A driver that, like the Linux one, names the routes it left out of the last batch.
    const driver: AgentDriver & { unresolvedRoutes: ReadonlyMap<string, string> } = {
      apply: (u, o) => mem.apply(u, o),
      snapshot: () => mem.snapshot(),
      close: () => mem.close(),
      [Symbol.asyncDispose]: () => mem.close(),
      unresolvedRoutes: new Map([["172.16.9.0/26", "ip route get 10.99.0.9: Network is unreachable"]]),
    };
    const p = await start(ctx, driver);
    await eventually(() => p.inSync);
    expect(p.status().unresolvedRoutes).toEqual([
      { dst: b.block, reason: "no-vtep", node: "node-b", source: "calculator" },
      {
        dst: "172.16.9.0/26",
        reason: "ip route get 10.99.0.9: Network is unreachable",
        source: "driver",
      },
    ]);
    // node-b gets its VTEP: the route resolves and leaves the list.
    const nb = await ds.get<TestObject>({ kind: "Node", name: "node-b" });
    await ds.update({
      ...nb,
      spec: { ...nb.spec, ipv4VXLANTunnelAddr: "10.65.2.250", vxlanTunnelMACAddr: "66:00:00:00:00:02" },
    });
    await eventually(() => p.status().unresolvedRoutes.every((u) => u.source === "driver"));
    await ipam.close();
  });
});
