import type { WorkloadEndpoint } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import {
  type KubePod,
  type KubeTransport,
  POD_IPADDRS_ANNOTATION,
  POD_IPV4POOLS_ANNOTATION,
  POD_IPV6POOLS_ANNOTATION,
  convertPod,
  createHttpTransport,
  createKubeClient,
} from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWorkloadClient } from "../workload/client.js";
import { WorkloadCniCode, isWorkloadApiError, toCniError } from "../workload/errors.js";
import { type Harness, NODE, addPool, addRequest, startHarness } from "../workload/test-support.js";
import { createPodInfoSource, podNetworkInfo } from "./pod-info.js";

let server: FakeKubeApiServer;
let transport: KubeTransport;
let h: Harness | undefined;

beforeEach(async () => {
  server = await startFakeKubeApiServer();
  transport = createHttpTransport({ server: server.url, responseTimeoutMs: 2_000 });
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  transport.close();
  await server.close();
});

const weps = async (ds: Datastore) => (await ds.list<WorkloadEndpoint>("WorkloadEndpoint")).items;

function pod(name: string, extra: Partial<KubePod["metadata"]> = {}, sa = "web-sa"): KubePod {
  return {
    metadata: { name, namespace: "shop", labels: { app: "web", tier: "front" }, ...extra },
    spec: {
      nodeName: NODE,
      serviceAccountName: sa,
      containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 }, { containerPort: 9 }] }],
    },
    status: { phase: "Pending" },
  };
}

async function harness(): Promise<Harness> {
  const source = createPodInfoSource({ getter: createKubeClient(transport), nodeName: NODE });
  h = await startHarness({ pools: "dual", api: { enrichAdd: source.enrichAdd } });
  return h;
}

const client = (x: Harness) => createWorkloadClient(x.socketPath, { timeoutMs: 10_000 });
const add = (name: string, extra: Record<string, unknown> = {}) =>
  addRequest(name, { namespace: "shop", ...extra });

describe("Kubernetes mode: the endpoint is written with the pod's labels, service account and profiles", () => {
  it("equals what kube-adapter's convertPod makes of the pod (labels, profiles, serviceAccountName, ports, names)", async () => {
    server.create("namespaces", { metadata: { name: "shop", labels: { team: "a" } } });
    const p = server.create("pods", pod("web-1"));
    const x = await harness();
    const reply = await client(x).add(add("web-1"));
    const [wep] = await weps(x.datastore);
    const want = convertPod({
      ...p,
      status: { ...p.status, podIPs: reply.ips.map((i) => ({ ip: i.address.split("/")[0]! })) },
    })!;
    expect(wep!.metadata.name).toBe(want.metadata.name);
    expect(wep!.metadata.labels).toEqual(want.metadata.labels);
    expect(wep!.metadata.labels).toMatchObject({
      app: "web",
      "projectcalico.org/namespace": "shop",
      "projectcalico.org/orchestrator": "k8s",
      "projectcalico.org/serviceaccount": "web-sa",
    });
    const { containerID: _c, mac: _m, ...spec } = wep!.spec;
    expect(spec).toEqual(want.spec);
    expect(wep!.spec.profiles).toEqual(["kns.shop", "ksa.shop.web-sa"]);
  });

  it("the pod's pool annotation chooses the pool; the namespace's applies when the pod has none", async () => {
    server.create("namespaces", {
      metadata: { name: "shop", annotations: { [POD_IPV4POOLS_ANNOTATION]: '["pool4b"]' } },
    });
    server.create("pods", pod("a", { annotations: { [POD_IPV4POOLS_ANNOTATION]: '["10.70.0.0/24"]' } }));
    server.create("pods", pod("b"));
    const x = await harness();
    await addPool(x.datastore, "pool4b", { cidr: "10.71.0.0/24", blockSize: 28 });
    const a = await client(x).add(add("a"));
    const b = await client(x).add(add("b"));
    // The annotation names IPv4 pools only: no IPv6 address although the node has an IPv6 pool.
    expect(a.ips.map((i) => i.address)).toEqual([expect.stringMatching(/^10\.70\.0\.\d+\/32$/)]);
    expect(b.ips.map((i) => i.address)).toEqual([expect.stringMatching(/^10\.71\.0\.\d+\/32$/)]);
  });

  it("margay.io/ipAddrs assigns exactly that address", async () => {
    server.create("namespaces", { metadata: { name: "shop" } });
    server.create("pods", pod("fixed", { annotations: { [POD_IPADDRS_ANNOTATION]: '["10.70.0.77"]' } }));
    const x = await harness();
    const r = await client(x).add(add("fixed"));
    expect(r.ips.map((i) => i.address)).toContain("10.70.0.77/32");
    expect((await weps(x.datastore))[0]!.spec.ipNetworks).toContain("10.70.0.77/32");
  });

  it("a malformed annotation is a non-retryable invalid-field naming it; nothing is taken", async () => {
    server.create("namespaces", { metadata: { name: "shop" } });
    server.create("pods", pod("bad", { annotations: { [POD_IPADDRS_ANNOTATION]: "10.70.0.5" } }));
    const x = await harness();
    const err = await client(x)
      .add(add("bad"))
      .catch((e: unknown) => e);
    expect(isWorkloadApiError(err, "invalid-field")).toBe(true);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({
      annotation: POD_IPADDRS_ANNOTATION,
    });
    expect(await x.inUse()).toBe(0);
    expect(await weps(x.datastore)).toEqual([]);
  });

  it("fails closed: pod not found → pod-not-found (CNI 11), no endpoint, nothing allocated", async () => {
    server.create("namespaces", { metadata: { name: "shop" } });
    const x = await harness();
    const err = await client(x)
      .add(add("ghost"))
      .catch((e: unknown) => e);
    expect(isWorkloadApiError(err, "pod-not-found")).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect(toCniError(err).code).toBe(WorkloadCniCode.TryAgainLater);
    expect(await weps(x.datastore)).toEqual([]);
    expect(await x.inUse()).toBe(0);
  });

  it("fails closed: API server down or refusing → kubernetes-unavailable (CNI 11), no endpoint", async () => {
    server.create("namespaces", { metadata: { name: "shop" } });
    server.create("pods", pod("web-2"));
    const x = await harness();
    server.failRequests(2, 503);
    const err = await client(x)
      .add(add("web-2"))
      .catch((e: unknown) => e);
    expect(isWorkloadApiError(err, "kubernetes-unavailable")).toBe(true);
    expect(toCniError(err).code).toBe(WorkloadCniCode.TryAgainLater);
    expect((err as { details: Record<string, unknown> }).details).toMatchObject({ status: 503 });
    expect(await weps(x.datastore)).toEqual([]);
    expect(await x.inUse()).toBe(0);
    // The runtime's retry succeeds once the API server answers again.
    const ok = await client(x).add(add("web-2"));
    expect(ok.ips.length).toBeGreaterThan(0);
    await server.close();
    const down = await client(x)
      .add(addRequest("web-3", { namespace: "shop", containerId: "c-web-3" }))
      .catch((e: unknown) => e);
    expect(isWorkloadApiError(down, "kubernetes-unavailable")).toBe(true);
    expect((await weps(x.datastore)).map((w) => w.spec.pod)).toEqual(["web-2"]);
    server = await startFakeKubeApiServer();
  });

  it("an add without a pod (plain CNI workload) does not ask the API server", async () => {
    const x = await harness();
    const before = server.stats.requests;
    await client(x).add({ containerId: "plain", ifName: "eth0", netns: "/var/run/netns/plain" });
    expect(server.stats.requests).toBe(before);
  });
});

describe("podNetworkInfo (pure)", () => {
  it("refuses a host-network pod", () => {
    const p = pod("h");
    p.spec!.hostNetwork = true;
    expect(() => podNetworkInfo(p, undefined, NODE)).toThrow(/host network/);
  });

  it("ipAddrs with a pool annotation is refused, as Calico does; two addresses of one family too", () => {
    const both = pod("x", {
      annotations: { [POD_IPADDRS_ANNOTATION]: '["10.0.0.1"]', [POD_IPV4POOLS_ANNOTATION]: '["p"]' },
    });
    expect(() => podNetworkInfo(both, undefined, NODE)).toThrow(/cannot be used with the pool/);
    const two = pod("y", { annotations: { [POD_IPADDRS_ANNOTATION]: '["10.0.0.1","10.0.0.2"]' } });
    expect(() => podNetworkInfo(two, undefined, NODE)).toThrow(/one address per family/);
  });

  it("per family, the pod's pool annotation overrides the namespace's (Calico's CNI precedence)", () => {
    const ns = {
      metadata: {
        name: "shop",
        annotations: { [POD_IPV4POOLS_ANNOTATION]: '["ns-v4"]', [POD_IPV6POOLS_ANNOTATION]: '["ns-v6"]' },
      },
    };
    const only4 = pod("a", { annotations: { [POD_IPV4POOLS_ANNOTATION]: '["pod-v4"]' } });
    expect(podNetworkInfo(only4, ns, NODE).pools).toEqual(["pod-v4", "ns-v6"]);
    const only6 = pod("b", { annotations: { [POD_IPV6POOLS_ANNOTATION]: '["pod-v6"]' } });
    expect(podNetworkInfo(only6, ns, NODE).pools).toEqual(["ns-v4", "pod-v6"]);
    const both = pod("c", {
      annotations: { [POD_IPV4POOLS_ANNOTATION]: '["pod-v4"]', [POD_IPV6POOLS_ANNOTATION]: '["pod-v6"]' },
    });
    expect(podNetworkInfo(both, ns, NODE).pools).toEqual(["pod-v4", "pod-v6"]);
    expect(podNetworkInfo(pod("d"), ns, NODE).pools).toEqual(["ns-v4", "ns-v6"]);
    // An address by annotation takes no pool, not even the namespace's.
    const addr = pod("e", { annotations: { [POD_IPADDRS_ANNOTATION]: '["10.0.0.1"]' } });
    expect(podNetworkInfo(addr, ns, NODE).pools).toEqual([]);
  });

  it("a pod without a service account gets only the namespace profile", () => {
    const p = pod("n", {}, "");
    const info = podNetworkInfo(p, undefined, NODE);
    expect(info.profiles).toEqual(["kns.shop"]);
    expect(info.serviceAccountName).toBeUndefined();
    expect(info.labels).not.toHaveProperty("projectcalico.org/serviceaccount");
  });
});
