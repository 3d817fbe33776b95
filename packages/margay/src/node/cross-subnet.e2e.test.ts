/**
 * End to end, CrossSubnet: host1 and host2 on subnet A, host3 on subnet B behind the lab's router (which
 * knows no pod routes). One pool with `vxlanMode: CrossSubnet`: traffic within a subnet goes straight to
 * the node, traffic across subnets through VXLAN.
 */
import type { Datastore } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabPod, waitFor } from "../testing/index.js";
import {
  addPods,
  expectFullReachability,
  pool,
  routeCovering,
  VXLAN_DEVICE,
  waitForSessions,
} from "./e2e-support.js";

describe("margay-node CrossSubnet (hosts on two subnets)", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let pods: LabPod[] = [];

  beforeAll(async () => {
    lab = await createClusterLab({
      subnets: ["a", "a", "b"],
      startAgents: false,
      agentBinary: process.env.MARGAY_E2E_AGENT_BINARY,
      agentEnv: { MARGAY_NETWORKING_BACKEND: "bgp", NO_DEFAULT_POOLS: "true", MARGAY_STATUS_INTERVAL: "1s" },
    });
    try {
      ds = lab.datastore();
      await ds.create(pool("cross", "10.246.0.0/16", { vxlanMode: "CrossSubnet" }));
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

  it("meshes across the router", async () => {
    await waitForSessions(lab, ds, (h) => lab.hosts.filter((o) => o !== h).map((o) => o.ip));
  });

  it("pods on every host reach each other", async () => {
    pods = await addPods(lab, "cross", "cross");
    await expectFullReachability(lab, pods);
  });

  it("routes flat within the subnet and through VXLAN across it", async () => {
    const [h1, h2, h3] = lab.hosts;
    const [, p2, p3] = pods;
    const r1 = await lab.routes(h1!);
    expect(routeCovering(r1, p2!.ip), "host1 -> host2 (same subnet)").toMatchObject({
      gateway: h2!.ip,
      dev: "eth0",
    });
    expect(routeCovering(r1, p3!.ip)?.dev, "host1 -> host3 (across)").toBe(VXLAN_DEVICE);
    await waitFor("host3 to reach host1's block through VXLAN", async () => {
      return routeCovering(await lab.routes(h3!), pods[0]!.ip)?.dev === VXLAN_DEVICE;
    });
  });
});
