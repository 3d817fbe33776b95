import type { Node } from "@margay/api";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { type Ipam, type IpamBlockObject, IpamKind } from "@margay/ipam";
import { createHttpTransport, type KubeNode } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  allocatePod,
  type Clock,
  kubePod,
  nodeSource,
  podSource,
  putEndpoint,
  putNode,
  seed,
} from "./controllers-test-support.js";
import {
  createNodeController,
  createNodeInformer,
  kubeNodeOf,
  type NodeControllerOptions,
  slimNode,
} from "./node-controller.js";

const kubeNode = (name: string): KubeNode => ({ apiVersion: "v1", kind: "Node", metadata: { name } });

describe("createNodeController", () => {
  let ds: Datastore;
  let ipam: Ipam;
  let clock: Clock;
  let pods: ReturnType<typeof podSource>;
  let kube: ReturnType<typeof nodeSource>;

  beforeEach(async () => {
    ds = createMemoryDatastore();
    clock = { t: 1_700_000_000_000 };
    ipam = await seed(ds, clock);
    pods = podSource();
    kube = nodeSource();
  });
  afterEach(async () => {
    await ipam.close();
    await ds.close();
  });

  const controllerOf = (o: Partial<NodeControllerOptions> = {}) =>
    createNodeController({ datastore: ds, ipam, nodes: kube.source, pods: pods.source, ...o });

  const names = async (kind: string) => (await ds.list(kind)).items.map((o) => o.metadata.name).sort();

  it("a deleted Kubernetes Node removes its Node, NodeStatus, the endpoints of its gone pods and its empty blocks", async () => {
    await putNode(ds, "host-a", "k-a");
    await putNode(ds, "host-b", "k-b");
    await ds.create({ kind: "NodeStatus", metadata: { name: "host-a" }, spec: { node: "host-a" } } as never);
    const gone = await allocatePod(ipam, "host-a", "default", "gone");
    await putEndpoint(ds, {
      node: "host-a",
      namespace: "default",
      pod: "gone",
      containerId: gone.containerId,
      ip: gone.ip,
    });
    const still = await allocatePod(ipam, "host-a", "default", "still");
    pods.put(kubePod("default", "still", "k-a", still.ip));
    await putEndpoint(ds, {
      node: "host-a",
      namespace: "default",
      pod: "still",
      containerId: still.containerId,
      ip: still.ip,
    });
    await putEndpoint(ds, { node: "host-b", namespace: "default", pod: "elsewhere", containerId: "c-x" });
    await ipam.claimAffinity("10.80.4.0/26", "host-a");
    const deleted: string[] = [];
    const registry = new Registry();
    await using nc = controllerOf({ onNodeDeleted: (n) => deleted.push(n), registry });
    kube.names.add("k-b");

    nc.onNodeEvent({ type: "deleted", key: "k-a", object: kubeNode("k-a"), fromRelist: false });
    await nc.idle();

    expect(await names("Node")).toEqual(["host-b"]);
    expect(await names("NodeStatus")).toEqual([]);
    expect(await names("WorkloadEndpoint")).toEqual(["host-a-k8s-still-eth0", "host-b-k8s-elsewhere-eth0"]);
    const blocks = await ds.list<IpamBlockObject>(IpamKind.Block);
    // The empty block is gone; the one holding addresses stays the node's until the GC frees them.
    expect(blocks.items.map((b) => b.spec.affinity)).toEqual(["host:host-a"]);
    expect(deleted).toEqual(["host-a"]);
    expect(await registry.metrics()).toMatch(/^margay_node_controller_nodes_removed_total 1$/m);
    expect(await registry.metrics()).toMatch(/^margay_node_controller_endpoints_removed_total 1$/m);
  });

  it("ignores events other than deletions", async () => {
    await putNode(ds, "k-a", "k-a");
    await using nc = controllerOf();
    nc.onNodeEvent({ type: "modified", key: "k-a", object: kubeNode("k-a"), fromRelist: false });
    nc.onNodeEvent({ type: "added", key: "k-a", object: kubeNode("k-a"), fromRelist: false });
    await nc.idle();
    expect(await names("Node")).toEqual(["k-a"]);
  });

  it("a Node without orchRefs stands for the Kubernetes Node of its name on a deletion, never in a resync", async () => {
    await putNode(ds, "plain");
    await putNode(ds, "bare-metal");
    await using nc = controllerOf();
    expect(await nc.resync()).toEqual([]);
    expect(await names("Node")).toEqual(["bare-metal", "plain"]);
    const r = await nc.nodeDeleted("plain");
    expect(r).toMatchObject([{ kubeNode: "plain", node: "plain" }]);
    expect(await names("Node")).toEqual(["bare-metal"]);
  });

  it("the resync removes Nodes whose orchRefs name a Kubernetes Node that does not exist, once synced", async () => {
    await putNode(ds, "host-a", "k-a");
    await putNode(ds, "host-b", "k-b");
    kube.names.add("k-b");
    kube.synced = false;
    await using nc = controllerOf();
    expect(await nc.resync()).toEqual([]);
    kube.synced = true;
    expect((await nc.resync()).map((r) => r.node)).toEqual(["host-a"]);
    expect(await names("Node")).toEqual(["host-b"]);
  });

  it("records orchRefs on a Node named after an existing Kubernetes Node, so a later resync catches a missed deletion", async () => {
    await putNode(ds, "host-x");
    await putNode(ds, "bare-metal");
    kube.names.add("host-x");
    const registry = new Registry();
    await using nc = controllerOf({ registry });
    expect(await nc.resync()).toEqual([]);
    const node = await ds.get<Node>({ kind: "Node", name: "host-x" });
    expect(node.spec.orchRefs).toEqual([{ orchestrator: "k8s", nodeName: "host-x" }]);
    expect((await ds.get<Node>({ kind: "Node", name: "bare-metal" })).spec.orchRefs).toBeUndefined();
    // The deletion happens while no controller watches: the next resync removes the Node.
    kube.names.delete("host-x");
    expect((await nc.resync()).map((r) => r.node)).toEqual(["host-x"]);
    expect(await names("Node")).toEqual(["bare-metal"]);
    expect(await registry.metrics()).toMatch(/^margay_node_controller_nodes_adopted_total 1$/m);
  });

  it("an ADDED Kubernetes Node records its name in the Node's orchRefs at once", async () => {
    await putNode(ds, "host-y");
    await using nc = controllerOf();
    kube.names.add("host-y");
    nc.onNodeEvent({ type: "added", key: "host-y", object: kubeNode("host-y"), fromRelist: false });
    await nc.idle();
    expect(kubeNodeOf(await ds.get<Node>({ kind: "Node", name: "host-y" }))).toBe("host-y");
  });

  it("a Node registered again (its Kubernetes Node back) is not removed", async () => {
    await putNode(ds, "host-a", "k-a");
    await using nc = controllerOf();
    kube.names.add("k-a"); // the deletion event arrives after the Node came back
    expect(await nc.nodeDeleted("k-a")).toEqual([]);
    expect(await names("Node")).toEqual(["host-a"]);
  });

  it("a Node written between the read and the delete (re-registration) wins: compare-and-swap", async () => {
    await putNode(ds, "host-a", "k-a");
    // The agent re-registers between the controller's listing and its delete.
    const racing: Datastore = Object.create(ds, {
      list: {
        value: async (kind: string, o?: never) => {
          const r = await ds.list(kind, o);
          if (kind === "Node") {
            const cur = await ds.get({ kind: "Node", name: "host-a" });
            await ds.update({ ...cur, metadata: { ...cur.metadata, labels: { again: "yes" } } });
          }
          return r;
        },
      },
    });
    await using nc = controllerOf({ datastore: racing });
    expect(await nc.nodeDeleted("k-a")).toEqual([]);
    expect(await names("Node")).toEqual(["host-a"]);
  });

  it("start() resyncs once the node source has synced (deletions missed while no controller ran)", async () => {
    await putNode(ds, "host-a", "k-a");
    kube.synced = false;
    await using nc = controllerOf();
    nc.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(await names("Node")).toEqual(["host-a"]);
    kube.synced = true;
    await expect.poll(() => names("Node")).toEqual([]);
  });

  it("with a transport it follows the API server's Nodes itself: a deletion there removes the Node", async () => {
    await using server = await startFakeKubeApiServer();
    server.create("nodes", kubeNode("k-a"));
    server.create("nodes", kubeNode("k-b"));
    await putNode(ds, "host-a", "k-a");
    await putNode(ds, "host-b", "k-b");
    const transport = createHttpTransport({ server: server.url });
    try {
      await using nc = createNodeController({ datastore: ds, ipam, transport });
      expect(nc.nodes.hasSynced()).toBe(false);
      nc.start();
      await expect.poll(() => nc.nodes.hasSynced()).toBe(true);
      expect(nc.nodes.cache.has("k-a")).toBe(true);
      server.delete("nodes", undefined, "k-a");
      await expect.poll(() => names("Node")).toEqual(["host-b"]);
    } finally {
      transport.close();
    }
  });

  it("the node informer caches slim Nodes: name, uid and resourceVersion only", async () => {
    await using server = await startFakeKubeApiServer();
    const whole = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: "k-a",
        labels: { "kubernetes.io/hostname": "k-a" },
        annotations: { "node.alpha.kubernetes.io/ttl": "0" },
        managedFields: [{ manager: "kubelet", operation: "Update" }],
      },
      spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] },
      status: {
        addresses: [{ type: "InternalIP", address: "192.0.2.1" }],
        conditions: [{ type: "Ready", status: "True" }],
        images: [{ names: ["registry.k8s.io/pause:3.9"], sizeBytes: 321_520 }],
      },
    } as KubeNode;
    server.create("nodes", whole);
    const transport = createHttpTransport({ server: server.url });
    const informer = createNodeInformer({ transport });
    try {
      await informer.waitForSync();
      const cached = informer.cache.get("k-a")!;
      expect(Object.keys(cached.metadata).sort()).toEqual(["name", "resourceVersion", "uid"]);
      expect(cached.spec).toBeUndefined();
      expect(cached.status).toBeUndefined();
      expect(cached).toEqual(slimNode(cached));
    } finally {
      await informer.close();
      transport.close();
    }
  });

  it("without a pod source every Kubernetes endpoint of the node is kept", async () => {
    await putNode(ds, "host-a", "k-a");
    await putEndpoint(ds, { node: "host-a", namespace: "default", pod: "p", containerId: "c" });
    await using nc = controllerOf({ pods: undefined });
    await nc.nodeDeleted("k-a");
    expect(await names("Node")).toEqual([]);
    expect(await names("WorkloadEndpoint")).toEqual(["host-a-k8s-p-eth0"]);
  });

  it("needs a transport or a node source, and a positive resync interval", () => {
    expect(() => createNodeController({ datastore: ds, ipam })).toThrow(TypeError);
    expect(() => controllerOf({ resyncIntervalMs: 0 })).toThrow(RangeError);
  });

  it("kubeNodeOf reads the k8s orchRef", () => {
    expect(kubeNodeOf({ spec: { orchRefs: [{ orchestrator: "k8s", nodeName: "x" }] } })).toBe("x");
    expect(kubeNodeOf({ spec: { orchRefs: [{ orchestrator: "other", nodeName: "x" }] } })).toBeUndefined();
    expect(kubeNodeOf({ spec: {} })).toBeUndefined();
  });
});
