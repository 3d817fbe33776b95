/**
 * The node controller and the IPAM GC over a real etcd, beside two agents' IPAM clients writing the
 * same store: a deleted node's leaks and blocks go, live addresses stay, and an address handed out
 * again between the GC's read and its release is never freed (the release is exact under etcd's CAS).
 */
import { createEtcdDatastore, type Datastore } from "@margay/datastore";
import { type EtcdServer, startEtcd } from "@margay/datastore/testing";
import { createIpam, type Ipam, type IpamBlockObject, IpamKind } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
import { createIpamGc } from "./ipam-gc.js";
import { createNodeController } from "./node-controller.js";
import { workloadHandleId } from "../node/workload/endpoint.js";

const GRACE = 60_000;
let etcd: EtcdServer | undefined;
let n = 0;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

describe("controllers on etcd", () => {
  const fresh = () => createEtcdDatastore({ endpoints: etcd!.endpoints, prefix: `/controllers-${++n}` });

  it("a deleted node's leaks and blocks go after the grace, live addresses stay, a re-handed address is never freed", async () => {
    const clock: Clock = { t: 1_700_000_000_000 };
    const ds = fresh();
    const agentDs = createEtcdDatastore({ endpoints: etcd!.endpoints, prefix: `/controllers-${n}` });
    const ipam = await seed(ds, clock);
    // Each agent has its own client (and cache) on the same store.
    const agent1: Ipam = createIpam({ datastore: agentDs, now: () => clock.t });
    const agent2: Ipam = createIpam({ datastore: agentDs, now: () => clock.t });
    const pods = podSource();
    const kube = nodeSource("k1", "k2");
    try {
      await putNode(ds, "n1", "k1");
      await putNode(ds, "n2", "k2");
      const live1 = await allocatePod(agent1, "n1", "default", "live1");
      pods.put(kubePod("default", "live1", "k1", live1.ip));
      await putEndpoint(ds, {
        node: "n1",
        namespace: "default",
        pod: "live1",
        containerId: live1.containerId,
        ip: live1.ip,
      });
      const leak1 = await allocatePod(agent1, "n1", "default", "leak1");
      const racy = await allocatePod(agent1, "n1", "default", "racy");
      const leak2 = await allocatePod(agent2, "n2", "default", "leak2");
      await putEndpoint(ds, {
        node: "n2",
        namespace: "default",
        pod: "leak2",
        containerId: leak2.containerId,
        ip: leak2.ip,
      });
      const live2 = await allocatePod(agent2, "n2", "default", "live2");
      pods.put(kubePod("default", "live2", "k2", live2.ip));

      // The GC's datastore: on the second pass, right after the blocks are read, agent 1 frees `racy`
      // and hands its address to a new, live pod.
      let pass = 0;
      let rehanded: { ip: string; handleId: string } | undefined;
      const gcDs: Datastore = Object.create(ds, {
        list: {
          value: async (kind: string, o?: never) => {
            const r = await ds.list(kind, o);
            if (kind === IpamKind.Block && ++pass === 2) {
              await agent1.releaseByHandle(racy.handleId);
              const handleId = workloadHandleId("c-newcomer", "eth0");
              const attrs = { node: "n1", namespace: "default", pod: "newcomer", containerID: "c-newcomer" };
              const got = await agent1.assignIP(racy.ip, { handleId, attrs, node: "n1" });
              pods.put(kubePod("default", "newcomer", "k1", got.ip));
              rehanded = { ip: got.ip, handleId };
            }
            return r;
          },
        },
      });
      await using gc = createIpamGc({
        datastore: gcDs,
        ipam,
        pods: pods.source,
        nodes: kube.source,
        gracePeriodMs: GRACE,
        dryRunPeriodMs: 0,
        now: () => clock.t,
      });
      await using nc = createNodeController({
        datastore: ds,
        ipam,
        nodes: kube.source,
        pods: pods.source,
        onNodeDeleted: (node) => gc.nodeDeleted(node),
      });

      // Kubernetes Node k2 deleted; its leaked pod's endpoint goes with the node.
      kube.names.delete("k2");
      const removed = await nc.nodeDeleted("k2");
      expect(removed).toMatchObject([{ node: "n2", endpoints: ["default/n2-k8s-leak2-eth0"] }]);

      expect((await gc.runOnce()).candidates).toBe(3); // leak1, racy, leak2
      clock.t += GRACE;
      const r = await gc.runOnce();
      expect(r.released.map((x) => x.handleId).sort()).toEqual([leak1.handleId, leak2.handleId].sort());
      expect(rehanded).toBeDefined();
      // The address handed out again in the race belongs to the newcomer still.
      expect(await ipam.ipsByHandle(rehanded!.handleId)).toEqual([rehanded!.ip]);
      for (const h of [live1, live2]) expect(await ipam.ipsByHandle(h.handleId)).toEqual([h.ip]);

      // n2's block still holds live2 (the pod exists): it stays n2's until that pod goes too.
      const affinityOf = async (ip: string) => {
        const blocks = await ds.list<IpamBlockObject>(IpamKind.Block);
        return blocks.items.filter((b) => b.spec.cidr === block26(ip)).map((b) => b.spec.affinity);
      };
      expect(await affinityOf(live2.ip)).toEqual(["host:n2"]);
      pods.pods.delete("default/live2");
      await gc.runOnce();
      clock.t += GRACE;
      const last = await gc.runOnce();
      expect(last.released.map((x) => x.handleId)).toEqual([live2.handleId]);
      expect(last.affinitiesReleased.map((a) => a.node)).toEqual(["n2"]);
      const left = await ds.list<IpamBlockObject>(IpamKind.Block);
      expect(left.items.every((b) => b.spec.affinity !== "host:n2")).toBe(true);
      expect((await ds.list(IpamKind.Affinity)).items.map((a) => a.metadata.name).join()).not.toMatch(/n2/);
      // n1 was never touched.
      expect((await ds.list("Node")).items.map((x) => x.metadata.name)).toEqual(["n1"]);
    } finally {
      await agent1.close();
      await agent2.close();
      await ipam.close();
      await agentDs.close();
      await ds.close();
    }
  });
});
