import { API_VERSION, type WorkloadEndpoint } from "@margay/api";
import {
  createMemoryDatastore,
  type Datastore,
  decorateDatastore,
  type StoredObject,
  unavailableError,
} from "@margay/datastore";
import { createHttpTransport, type KubePod, workloadEndpointName } from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import {
  applyPodToEndpoint,
  createPodController,
  createPodInformer,
  type PodController,
  type SharedPodInformer,
  slimPod,
} from "./pod-controller.js";

function pod(ns: string, name: string, labels: Record<string, string>, sa = "default"): KubePod {
  return {
    metadata: {
      name,
      namespace: ns,
      labels,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "x".repeat(2000) },
      managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }],
    },
    spec: {
      nodeName: "node-1",
      serviceAccountName: sa,
      containers: [{ name: "c", ports: [{ name: "http", containerPort: 80 }] }],
    },
    status: { phase: "Running", podIP: "10.0.0.5", podIPs: [{ ip: "10.0.0.5" }] },
  } as KubePod;
}

/** An endpoint as the agent writes it at CNI ADD (labels as they were then). */
function endpoint(ns: string, podName: string, labels: Record<string, string>, profiles = [`kns.${ns}`]) {
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: workloadEndpointName("node-1", podName),
      namespace: ns,
      labels: { ...labels, "projectcalico.org/namespace": ns, "projectcalico.org/orchestrator": "k8s" },
      annotations: { "margay.io/cni-ifname": "eth0" },
    },
    spec: {
      orchestrator: "k8s",
      node: "node-1",
      pod: podName,
      endpoint: "eth0",
      containerID: `cid-${podName}`,
      ipNetworks: ["10.0.0.5/32"],
      profiles,
      interfaceName: "mgy0123456789ab",
    },
  } satisfies WorkloadEndpoint;
}

/** `ds` with its `update` replaced (to lose a race, or to fail). */
function withUpdate(
  ds: Datastore,
  update: (o: StoredObject, opts?: { signal?: AbortSignal }) => Promise<StoredObject>,
): Datastore {
  return decorateDatastore(ds, { update: update as Datastore["update"] });
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("slimPod and applyPodToEndpoint", () => {
  it("slimPod keeps only what the controllers read", () => {
    const p = pod("ns", "a", { app: "x" });
    p.metadata.resourceVersion = "7";
    p.metadata.uid = "u1";
    const s = slimPod(p);
    expect(s).toEqual({
      metadata: { name: "a", namespace: "ns", uid: "u1", resourceVersion: "7", labels: { app: "x" } },
      spec: { nodeName: "node-1", serviceAccountName: "default" },
      status: { phase: "Running", podIP: "10.0.0.5", podIPs: [{ ip: "10.0.0.5" }] },
    });
    expect(JSON.stringify(s).length).toBeLessThan(JSON.stringify(p).length / 5);
  });

  it("applies labels, service account and Kubernetes profiles; keeps other profiles; undefined when current", () => {
    const wep = endpoint("ns", "a", { app: "old", stale: "1" }, ["kns.ns", "hand-made"]);
    const next = applyPodToEndpoint(wep, pod("ns", "a", { app: "new" }, "worker"))!;
    expect(next.metadata.labels).toEqual({
      app: "new",
      "projectcalico.org/namespace": "ns",
      "projectcalico.org/orchestrator": "k8s",
      "projectcalico.org/serviceaccount": "worker",
    });
    expect(next.spec.serviceAccountName).toBe("worker");
    expect(next.spec.profiles).toEqual(["kns.ns", "ksa.ns.worker", "hand-made"]);
    // Everything else is the agent's and stays.
    expect({ ...next.spec, serviceAccountName: undefined, profiles: undefined }).toEqual({
      ...wep.spec,
      serviceAccountName: undefined,
      profiles: undefined,
    });
    expect(next.metadata.annotations).toEqual(wep.metadata.annotations);
    expect(applyPodToEndpoint(next, pod("ns", "a", { app: "new" }, "worker"))).toBeUndefined();
    // A pod without a service account: the label, field and profile go.
    const noSa = applyPodToEndpoint(next, pod("ns", "a", { app: "new" }, ""))!;
    expect(noSa.spec.serviceAccountName).toBeUndefined();
    expect(noSa.metadata.labels?.["projectcalico.org/serviceaccount"]).toBeUndefined();
    expect(noSa.spec.profiles).toEqual(["kns.ns", "hand-made"]);
  });
});

describe("pod controller", () => {
  let server: FakeKubeApiServer | undefined;
  let pods: SharedPodInformer | undefined;
  let controller: PodController | undefined;
  afterEach(async () => {
    await controller?.close();
    await pods?.informer.close();
    await server?.close();
    controller = pods = server = undefined;
  });

  async function start(ds: Datastore) {
    server ??= await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
    pods = createPodInformer({ transport: createHttpTransport({ server: server.url }) });
    controller = createPodController({ pods, datastore: ds, resyncIntervalMs: 0 });
    await controller.waitForSync();
    await controller.idle();
    return controller;
  }

  const getWep = (ds: Datastore, ns: string, p: string) =>
    ds.get<WorkloadEndpoint>({
      kind: "WorkloadEndpoint",
      namespace: ns,
      name: workloadEndpointName("node-1", p),
    });

  it("updates existing endpoints only: never creates, never deletes; a label change lands within a second", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
    server.create("pods", pod("ns", "a", { app: "a", v: "1" }));
    server.create("pods", pod("ns", "b", { app: "b" })); // no endpoint: none is made
    await ds.create(endpoint("ns", "a", { app: "a", v: "0" }));
    await ds.create(endpoint("ns", "gone", { app: "gone" })); // no pod: left alone
    const cni = {
      ...endpoint("ns", "x", {}),
      spec: { ...endpoint("ns", "x", {}).spec, orchestrator: "cni" },
    };
    await ds.create(cni);
    const c = await start(ds);

    // The informer caches slim pods (its transform): no managedFields, annotations or containers.
    const cached = pods!.informer.cache.get("ns/a")!;
    expect(cached.metadata.managedFields).toBeUndefined();
    expect(cached.metadata.annotations).toBeUndefined();
    expect(cached.spec?.containers).toBeUndefined();
    expect(cached.metadata.labels).toEqual({ app: "a", v: "1" });
    expect((await getWep(ds, "ns", "a")).metadata.labels).toMatchObject({ app: "a", v: "1" });
    expect((await getWep(ds, "ns", "a")).spec.profiles).toEqual(["kns.ns", "ksa.ns.default"]);
    expect((await ds.list("WorkloadEndpoint")).items.map((w) => w.metadata.name).sort()).toEqual(
      [
        workloadEndpointName("node-1", "a"),
        workloadEndpointName("node-1", "gone"),
        workloadEndpointName("node-1", "x"),
      ].sort(),
    );
    expect((await getWep(ds, "ns", "gone")).metadata.labels).toMatchObject({ app: "gone" });
    expect((await getWep(ds, "ns", "x")).metadata.labels).toEqual(cni.metadata.labels);

    // A label change on the running pod.
    const t0 = Date.now();
    server.update("pods", pod("ns", "a", { app: "a", v: "2" }));
    await waitFor(async () => (await getWep(ds, "ns", "a")).metadata.labels?.v === "2", "label change");
    const elapsed = Date.now() - t0;
    console.log(`label change reached the endpoint in ${elapsed} ms`);

    // The pod is deleted: the endpoint stays (the agent's DEL or the IPAM GC removes it).
    server.delete("pods", "ns", "a");
    await new Promise((r) => setTimeout(r, 200));
    await c.idle();
    expect((await getWep(ds, "ns", "a")).metadata.labels?.v).toBe("2");
    expect(c.stats()).toMatchObject({ updated: 2, failures: 0 });
  });

  it("fixes an endpoint the agent writes after the pod changed (stale labels at CNI ADD)", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
    server.create("pods", pod("ns", "late", { app: "late", v: "new" }, "worker"));
    await start(ds);
    await ds.create(endpoint("ns", "late", { app: "late", v: "old" }));
    await waitFor(
      async () => (await getWep(ds, "ns", "late")).metadata.labels?.v === "new",
      "late endpoint fixed",
    );
    expect((await getWep(ds, "ns", "late")).spec.serviceAccountName).toBe("worker");
  });

  it("compare-and-swap: a concurrent write between read and update is kept, the pod's fields applied on top", async () => {
    const mem = createMemoryDatastore({ validate: apiValidator });
    let raced = false;
    // A datastore whose first endpoint update loses a race against another writer (the agent).
    const ds = withUpdate(mem, async (o, opts) => {
      if (!raced && o.kind === "WorkloadEndpoint") {
        raced = true;
        const cur = await mem.get<WorkloadEndpoint>({ kind: o.kind, ...o.metadata });
        await mem.update({ ...cur, spec: { ...cur.spec, mac: "ee:ee:ee:ee:ee:ee" } });
      }
      return mem.update(o, opts);
    });
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
    server.create("pods", pod("ns", "r", { app: "r", v: "1" }));
    await mem.create(endpoint("ns", "r", { app: "r" }));
    const c = await start(ds);
    const w = await getWep(mem, "ns", "r");
    expect(raced).toBe(true);
    expect(w.metadata.labels?.v).toBe("1");
    expect(w.spec.mac).toBe("ee:ee:ee:ee:ee:ee");
    expect(c.stats().conflicts).toBe(1);
    expect(c.stats().updated).toBe(1);
  });

  it("a failing datastore is retried with back-off until the write lands", async () => {
    const mem = createMemoryDatastore({ validate: apiValidator });
    let failuresLeft = 2;
    const ds = withUpdate(mem, async (o, opts) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        throw unavailableError("etcd is down");
      }
      return mem.update(o, opts);
    });
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
    server.create("pods", pod("ns", "f", { app: "f", v: "1" }));
    await mem.create(endpoint("ns", "f", { app: "f" }));
    const c = await start(ds);
    expect((await getWep(mem, "ns", "f")).metadata.labels?.v).toBe("1");
    expect(c.stats()).toMatchObject({ failures: 2, updated: 1, queued: 0 });
  });
});
