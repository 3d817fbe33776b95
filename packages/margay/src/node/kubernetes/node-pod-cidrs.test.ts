import { createHttpTransport, createKubeClient } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createWorkloadClient } from "../workload/client.js";
import { NODE_POD_CIDRS_ANNOTATION } from "../workload/protocol.js";
import { type Harness, NODE, startHarness } from "../workload/test-support.js";
import { createNodePodCidrsSource, nodeSpecPodCidrs } from "./node-pod-cidrs.js";

const client = (h: Harness) => createWorkloadClient(h.socketPath, { timeoutMs: 10_000 });

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function fakeCluster() {
  const server = await startFakeKubeApiServer();
  const transport = createHttpTransport({ server: server.url });
  cleanup = async () => {
    transport.close();
    await server.close();
  };
  return { server, kube: createKubeClient(transport) };
}

describe("the Kubernetes Node's pod CIDRs (host-local usePodCidr in Kubernetes mode)", () => {
  it("nodeSpecPodCidrs: podCIDRs, else podCIDR, canonical, malformed dropped", () => {
    expect(
      nodeSpecPodCidrs({
        metadata: { name: "n" },
        spec: { podCIDR: "10.9.0.0/24", podCIDRs: ["10.244.1.0/24", "fd10::/64", "x"] },
      }),
    ).toEqual(["10.244.1.0/24", "fd10::/64"]);
    expect(nodeSpecPodCidrs({ metadata: { name: "n" }, spec: { podCIDR: "10.9.0.0/24" } })).toEqual([
      "10.9.0.0/24",
    ]);
    expect(nodeSpecPodCidrs({ metadata: { name: "n" } })).toEqual([]);
  });

  it("reads this node's Kubernetes Node; undefined while it is missing or has none, and when the API fails", async () => {
    const { server, kube } = await fakeCluster();
    const source = createNodePodCidrsSource({ getter: kube, nodeName: NODE });
    expect(await source.podCidrs()).toBeUndefined(); // no Node yet
    server.create("nodes", { metadata: { name: NODE } });
    expect(await source.podCidrs()).toBeUndefined(); // not assigned yet
    server.failRequests(1, 500);
    expect(await source.podCidrs()).toBeUndefined(); // the API server fails: unknown, no throw
    server.update("nodes", {
      metadata: { name: NODE },
      spec: { podCIDRs: ["10.244.7.0/24", "fd10:0:0:7::/64"] },
    });
    expect(await source.podCidrs()).toEqual(["10.244.7.0/24", "fd10:0:0:7::/64"]);
    // Immutable once set: kept, the API server is not asked again.
    server.failRequests(1_000, 500);
    expect(await source.podCidrs()).toEqual(["10.244.7.0/24", "fd10:0:0:7::/64"]);
    const other = createNodePodCidrsSource({ getter: kube, nodeName: "other" });
    expect(await other.podCidrs()).toBeUndefined();
  });

  it("the workload API status reports them, over the Node annotation", async () => {
    const { server, kube } = await fakeCluster();
    server.create("nodes", { metadata: { name: NODE }, spec: { podCIDRs: ["10.244.3.0/24"] } });
    const source = createNodePodCidrsSource({ getter: kube, nodeName: NODE });
    const h = await startHarness({ api: { nodePodCidrs: (signal) => source.podCidrs(signal) } });
    const prev = cleanup;
    cleanup = async () => {
      await h.close();
      await prev?.();
    };
    expect((await client(h).status()).podCidrs).toEqual(["10.244.3.0/24"]);
    await h.datastore.create({
      apiVersion: "projectcalico.org/v3",
      kind: "Node",
      metadata: { name: NODE, annotations: { [NODE_POD_CIDRS_ANNOTATION]: "10.99.0.0/24" } },
      spec: {},
    } as never);
    expect((await client(h).status()).podCidrs).toEqual(["10.244.3.0/24"]);
  });

  it("the annotation still counts when the Kubernetes Node has none", async () => {
    const { server, kube } = await fakeCluster();
    server.create("nodes", { metadata: { name: NODE } });
    const source = createNodePodCidrsSource({ getter: kube, nodeName: NODE });
    const h = await startHarness({ api: { nodePodCidrs: (signal) => source.podCidrs(signal) } });
    const prev = cleanup;
    cleanup = async () => {
      await h.close();
      await prev?.();
    };
    await h.datastore.create({
      apiVersion: "projectcalico.org/v3",
      kind: "Node",
      metadata: { name: NODE, annotations: { [NODE_POD_CIDRS_ANNOTATION]: "10.99.0.0/24" } },
      spec: {},
    } as never);
    expect((await client(h).status()).podCidrs).toEqual(["10.99.0.0/24"]);
  });
});
