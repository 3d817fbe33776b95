import { createMemoryDatastore } from "@margay/datastore";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { diffModel, expectedModel } from "./__tests__/model-diff.js";
import { namespace, networkPolicy, node, pod, waitFor } from "./__tests__/helpers.js";
import { isKubeAdapterError, KubeAdapterErrorCode } from "./errors.js";
import { createKubeAdapter, NODE_INDEX } from "./kube-adapter.js";
import type { KubeObject } from "./kube-types.js";
import { startFakeKubeApiServer, type FakeKubeApiServer } from "./testing/index.js";
import { createHttpTransport, type KubeTransport } from "./transport/transport.js";

let server: FakeKubeApiServer;
let transport: KubeTransport;

beforeEach(async () => {
  server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
  transport = createHttpTransport({ server: server.url });
});

afterEach(async () => {
  transport.close();
  await server.close();
});

async function converged(adapter: ReturnType<typeof createKubeAdapter>) {
  await waitFor(
    () => [...adapter.informers.values()].every((i) => i.resourceVersion === server.resourceVersion),
    "informers at the server's resourceVersion",
  );
  await adapter.idle();
}

describe("createKubeAdapter", () => {
  it("refuses a bad interfacePrefix at construction (it would fail every pod and so remove every endpoint)", () => {
    const ds = createMemoryDatastore();
    let caught: unknown;
    try {
      createKubeAdapter({ transport, datastore: ds, resyncIntervalMs: 0, interfacePrefix: "Bad!" });
    } catch (e) {
      caught = e;
    }
    expect(isKubeAdapterError(caught, KubeAdapterErrorCode.Config)).toBe(true);
  });

  it("writes exactly the converted cluster into the datastore and follows changes", async () => {
    server.create("namespaces", namespace("shop", { team: "a" }));
    server.create("serviceaccounts", { metadata: { name: "default", namespace: "shop" } });
    server.create("nodes", node("n1", "10.0.0.1", "10.244.1.0/24"));
    server.create("nodes", node("n2", "10.0.0.2", "10.244.2.0/24"));
    server.create("pods", pod("shop", "web-1", "n1", "10.244.1.5"));
    server.create("pods", pod("shop", "web-2", "n2", "10.244.2.5"));
    server.create("networkpolicies", networkPolicy("shop", "allow-web", "web", "client"));
    const hostNet = pod("shop", "agent", "n1", "10.0.0.1");
    hostNet.spec!.hostNetwork = true;
    server.create("pods", hostNet);
    const ds = createMemoryDatastore();
    await using adapter = createKubeAdapter({ transport, datastore: ds, resyncIntervalMs: 0 });
    await adapter.waitForSync();

    let diff = await diffModel(ds, expectedModel(server));
    expect(diff).toMatchObject({ missing: [], stale: [], duplicates: [] });
    // 2 endpoints, 2 profiles, 2 nodes, 1 policy, 3 tiers.
    expect(diff.owned).toBe(10);
    expect((await ds.list("WorkloadEndpoint")).items.map((w) => w.metadata.name)).toEqual([
      "n1-k8s-web--1-eth0",
      "n2-k8s-web--2-eth0",
    ]);
    const pods = adapter.informers.get("pods")!;
    expect(
      pods.cache
        .byIndex(NODE_INDEX, "n1")
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["agent", "web-1"]);

    // A pod finishing removes its endpoint; a namespace relabel updates its profile.
    const done = server.get("pods", "shop", "web-2")!;
    (done as ReturnType<typeof pod>).status!.phase = "Succeeded";
    server.update("pods", done);
    const ns = server.get("namespaces", undefined, "shop")!;
    ns.metadata.labels = { team: "b" };
    server.update("namespaces", ns);
    server.delete("networkpolicies", "shop", "allow-web");
    await converged(adapter);
    diff = await diffModel(ds, expectedModel(server));
    expect(diff).toMatchObject({ missing: [], stale: [], duplicates: [], owned: 8 });
    const profile = (await ds.get({ kind: "Profile", name: "kns.shop" })) as unknown as {
      spec: { labelsToApply: Record<string, string> };
    };
    expect(profile.spec.labelsToApply["pcns.team"]).toBe("b");
    expect(adapter.stats().sync.deletes).toBe(2);
  });

  it("leaves objects it does not own alone and removes its own leftovers at start-up", async () => {
    server.create("namespaces", namespace("a"));
    const ds = createMemoryDatastore();
    const foreign = { apiVersion: "margay.io/v1", kind: "Profile", metadata: { name: "kns.a" }, spec: {} };
    await ds.create(foreign);
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "Profile",
      metadata: { name: "kns.deleted-while-down", annotations: { "margay.io/owner": "kube-adapter" } },
      spec: {},
    });
    await using adapter = createKubeAdapter({
      transport,
      datastore: ds,
      resources: ["namespaces"],
      resyncIntervalMs: 0,
    });
    await adapter.waitForSync();
    const profiles = (await ds.list("Profile")).items;
    expect(profiles.map((p) => p.metadata.name)).toEqual(["kns.a"]);
    expect(profiles[0]!.metadata.annotations).toBeUndefined();
    expect(adapter.stats().sync.foreignSkips).toBe(1);
    // Only the followed kinds' model kinds (Profile) are managed: no tiers without admin policies.
    expect((await ds.list("Tier")).items).toEqual([]);
  });

  it("skips objects it cannot convert, keeps policies minus their malformed rules, and counts both", async () => {
    const bad = networkPolicy("a", "bad-rule", "web", "x") as ReturnType<typeof networkPolicy> & {
      spec: { ingress: unknown[] };
    };
    bad.spec.ingress = [{ from: [{ ipBlock: { cidr: "300.0.0.0/8" } }] }];
    server.create("networkpolicies", bad);
    server.create("networkpolicies", networkPolicy("a", "good", "web", "x"));
    server.create("adminnetworkpolicies", {
      metadata: { name: "bad-priority" },
      spec: { priority: 5000, subject: { namespaces: {} } },
    } as KubeObject);
    const ds = createMemoryDatastore();
    await using adapter = createKubeAdapter({
      transport,
      datastore: ds,
      resources: ["networkpolicies", "adminnetworkpolicies"],
      resyncIntervalMs: 0,
    });
    await adapter.waitForSync();
    const nps = (await ds.list("NetworkPolicy")).items as unknown as {
      metadata: { name: string };
      spec: { ingress: unknown[] };
    }[];
    expect(nps.map((p) => [p.metadata.name, p.spec.ingress.length])).toEqual([
      ["knp.default.bad-rule", 0],
      ["knp.default.good", 1],
    ]);
    expect((await ds.list("GlobalNetworkPolicy")).items).toEqual([]);
    expect(adapter.stats()).toMatchObject({ convertErrors: 1, convertIssues: 1 });
  });

  it("repairs the datastore on a periodic resync after someone deletes its objects", async () => {
    server.create("namespaces", namespace("a"));
    const ds = createMemoryDatastore();
    await using adapter = createKubeAdapter({
      transport,
      datastore: ds,
      resources: ["namespaces"],
      resyncIntervalMs: 50,
    });
    await adapter.waitForSync();
    await ds.delete({ kind: "Profile", name: "kns.a" });
    await waitFor(
      async () => (await ds.list("Profile")).items.length === 1,
      "resync to recreate the profile",
    );
    expect(adapter.stats().sync.resyncs).toBeGreaterThanOrEqual(2);
  });

  it("closes when its signal aborts", async () => {
    const ac = new AbortController();
    const adapter = createKubeAdapter({
      transport,
      datastore: createMemoryDatastore(),
      resources: ["pods"],
      signal: ac.signal,
    });
    await adapter.waitForSync();
    await waitFor(() => server.openWatches === 1, "watch open");
    ac.abort();
    await waitFor(
      () => [...adapter.informers.values()].every((i) => i.phase === "closed"),
      "informers closed",
    );
    await waitFor(() => server.openWatches === 0, "server sees the watch closed");
  });
});
