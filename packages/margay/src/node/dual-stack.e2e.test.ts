/**
 * End to end, dual stack: two hosts with IPv4 and IPv6 underlay addresses, one pool of each family, pods
 * with one address of each family reaching each other across hosts over both.
 */
import { API_VERSION } from "@margay/api";
import type { Datastore, StoredObject } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, waitFor } from "../testing/index.js";

describe("margay-node dual stack (2 hosts)", () => {
  let lab: ClusterLab;
  let ds: Datastore;

  beforeAll(async () => {
    lab = await createClusterLab({
      hosts: 2,
      ipv6: true,
      startAgents: false,
      // A bundle other than the package's dist (e.g. one built from a work tree); default: dist.
      agentBinary: process.env.MARGAY_E2E_AGENT_BINARY,
      agentEnv: { MARGAY_NETWORKING_BACKEND: "bgp", NO_DEFAULT_POOLS: "true" },
    });
    try {
      ds = lab.datastore();
      const pool = (name: string, cidr: string, blockSize: number) =>
        ({
          apiVersion: API_VERSION,
          kind: "IPPool",
          metadata: { name },
          spec: {
            cidr,
            blockSize,
            ipipMode: "Never",
            vxlanMode: "Never",
            natOutgoing: false,
            nodeSelector: "all()",
          },
        }) as StoredObject;
      await ds.create(pool("v4", "10.244.0.0/16", 26));
      await ds.create(pool("v6", "fd00:244::/48", 122));
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

  it("gives each pod an IPv4 and an IPv6 address, and both reach the other host's pod", async () => {
    const [h1, h2] = lab.hosts;
    const a = await lab.addPod(h1!, { name: "ds-a", pools: ["v4", "v6"] });
    const b = await lab.addPod(h2!, { name: "ds-b", pools: ["v4", "v6"] });
    for (const p of [a, b]) {
      expect(p.ips.filter((i) => !i.includes(":"))).toHaveLength(1);
      expect(p.ips.filter((i) => i.includes(":"))).toHaveLength(1);
    }
    const v6 = (p: typeof a) => p.ips.find((i) => i.includes(":"))!;
    await waitFor("IPv4 pod to pod across hosts", () => lab.canReach(a, b));
    await waitFor("IPv6 pod to pod across hosts", () => lab.canReach(a, v6(b)), { timeoutMs: 30_000 });
    expect(await lab.canReach(b, v6(a), { proto: "udp" })).toBe(true);
    expect(await lab.canReach(b, v6(a), { proto: "icmp" })).toBe(true);
    const routes6 = await lab.routes(h1!, 6);
    expect(routes6.some((r) => r.gateway === h2!.address6!.split("/")[0])).toBe(true);
  });
});
