/**
 * The `margay` plugin delegating IPAM to Debian's real `host-local` (as Calico allows), against a real
 * `margay-node` in the cluster lab: `subnet: "usePodCidr"` takes the node's pod CIDR (the Node annotation
 * the agent reports), explicit ranges work as given, the agent's IPAM holds nothing, and the conformance
 * kit passes (DEL, CHECK and GC delegated too; GC through host-local's own store, since Debian's host-local
 * 1.1.1 has no GC) with host-local's store as the allocations inspector.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCniRuntime, ipFamily, type NetConfList } from "@margay/cni";
import { ALL_SCENARIOS, createNetns, formatReport, rawExec, runConformance } from "@margay/cni/testing";
import type { Datastore } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabHost } from "../../testing/index.js";
import { NODE_POD_CIDRS_ANNOTATION } from "../../node/workload/protocol.js";
import {
  buildAgentBundle,
  buildPluginDir,
  hostWorkloadLinks,
  ipPool,
  workloadAllocations,
} from "./test-support.js";

const DEBIAN_CNI = "/usr/lib/cni";
const POD_CIDR = "10.245.7.0/24";

describe("margay with host-local IPAM (Debian's host-local, real agent)", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let host: LabHost;
  let binDir: string;
  let dataDir: string;
  let agentAllocations: () => Promise<string[]>;

  beforeAll(async () => {
    binDir = await buildPluginDir();
    dataDir = await mkdtemp(join(tmpdir(), "margay-host-local-"));
    lab = await createClusterLab({
      agentBinary: await buildAgentBundle(binDir),
      hosts: 1,
      router: false,
      startAgents: false,
      agentEnv: {
        NO_DEFAULT_POOLS: "true",
        MARGAY_NETWORKING_BACKEND: "none",
        MARGAY_WORKLOAD_GC_GRACE_PERIOD: "0s",
      },
    });
    try {
      ds = lab.datastore();
      // A pool of the agent's own: host-local's addresses must not come from it.
      await ds.create(ipPool("pods", "10.246.0.0/16"));
      host = lab.hosts[0]!;
      lab.startAgent(host);
      await lab.waitReady(host);
      agentAllocations = workloadAllocations(ds);
    } catch (e) {
      const logs = lab.hosts.length > 0 ? (await lab.logs(lab.hosts[0]!)).slice(-3000) : "";
      await lab.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs}`, { cause: e });
    }
  });

  afterAll(async () => {
    await lab?.close();
    if (binDir) await rm(binDir, { recursive: true, force: true });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Sets (or clears) this node's pod CIDRs as kube-adapter records them. */
  async function setPodCidrs(cidrs: string | undefined) {
    for (let attempt = 0; ; attempt++) {
      const node = await ds.get<{
        kind: string;
        metadata: { name: string; resourceVersion?: string; annotations?: Record<string, string> };
      }>({ kind: "Node", name: host.name });
      const annotations = { ...node.metadata.annotations };
      if (cidrs === undefined) delete annotations[NODE_POD_CIDRS_ANNOTATION];
      else annotations[NODE_POD_CIDRS_ANNOTATION] = cidrs;
      try {
        await ds.update({ ...node, metadata: { ...node.metadata, annotations } } as never);
        return;
      } catch (e) {
        if (attempt > 5) throw e;
      }
    }
  }

  const list = (version: string, network: string, ipam: Record<string, unknown>): NetConfList => ({
    cniVersion: version,
    name: network,
    plugins: [
      {
        type: "margay",
        agent_socket: host.socket,
        state_dir: host.stateDir,
        ipam: { type: "host-local", dataDir, ...ipam },
      },
    ] as NetConfList["plugins"],
  });

  /** host-local's reservations of `network` (its store: one file per address). */
  const reserved = (network: string) => async () => {
    try {
      return (await readdir(join(dataDir, network))).filter((f) => ipFamily(f) !== 0).sort();
    } catch {
      return [];
    }
  };

  it('"subnet": "usePodCidr" allocates from the node\'s pod CIDR; the agent plumbs it and holds nothing', async () => {
    await setPodCidrs(`${POD_CIDR},fd10:0:0:7::/64`);
    const conf = list("1.0.0", "hl-pod", { subnet: "usePodCidr" });
    const runtime = createCniRuntime({ path: [binDir, DEBIAN_CNI], cacheDir: join(lab.dir, "cni-cache-hl") });
    await using ns = await createNetns("mghl");
    const att = { containerId: "hl-1", netns: ns.path, ifname: "eth0" };
    const r = (await runtime.addNetworkList(conf, att)) as {
      ips: { address: string; gateway?: string }[];
      interfaces: { name: string; sandbox?: string }[];
    };
    try {
      expect(r.ips).toHaveLength(1);
      const ip = r.ips[0]!.address.split("/")[0]!;
      expect(ip).toMatch(/^10\.245\.7\.\d+$/);
      // Plumbed as every margay pod: a /32 behind the link-local gateway.
      expect(r.ips[0]).toMatchObject({ address: `${ip}/32`, gateway: "169.254.1.1" });
      expect(await reserved("hl-pod")()).toEqual([ip]);
      expect(await agentAllocations()).toEqual([]);
      const inPod = await lab.exec(ns.name, ["ip", "-j", "addr", "show", "dev", "eth0"]);
      expect(inPod).toContain(ip);
      expect(await hostWorkloadLinks(lab, host)).toHaveLength(1);
      await runtime.checkNetworkList(conf, att);
    } finally {
      await runtime.delNetworkList(conf, att);
    }
    expect(await reserved("hl-pod")()).toEqual([]);
    expect(await hostWorkloadLinks(lab, host)).toEqual([]);
  });

  it("explicit ranges are used as given; usePodCidrIPv6 without an IPv6 pod CIDR is code 11 with nothing left", async () => {
    await setPodCidrs(POD_CIDR);
    const conf = list("1.1.0", "hl-ranges", {
      ranges: [[{ subnet: "10.250.3.0/28", rangeStart: "10.250.3.9" }]],
    });
    const runtime = createCniRuntime({
      path: [binDir, DEBIAN_CNI],
      cacheDir: join(lab.dir, "cni-cache-hl2"),
    });
    await using ns = await createNetns("mghl");
    const att = { containerId: "hl-2", netns: ns.path, ifname: "eth0" };
    const r = (await runtime.addNetworkList(conf, att)) as { ips: { address: string }[] };
    expect(r.ips.map((i) => i.address)).toEqual(["10.250.3.9/32"]);
    await runtime.delNetworkList(conf, att);
    expect(await reserved("hl-ranges")()).toEqual([]);

    const v6 = list("1.1.0", "hl-v6", { ranges: [[{ subnet: "usePodCidrIPv6" }]] });
    const add = await rawExec(
      join(binDir, "margay"),
      {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "hl-3",
        CNI_NETNS: ns.path,
        CNI_IFNAME: "eth0",
        CNI_PATH: `${binDir}:${DEBIAN_CNI}`,
        PATH: process.env.PATH ?? "/usr/bin:/bin",
      },
      JSON.stringify({ ...v6.plugins[0], cniVersion: "1.1.0", name: v6.name }),
    );
    expect(add.exitCode).not.toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({
      code: 11,
      msg: expect.stringContaining("no IPv6 pod CIDR"),
    });
    expect(await reserved("hl-v6")()).toEqual([]);
    expect(await hostWorkloadLinks(lab, host)).toEqual([]);
    expect(await agentAllocations()).toEqual([]);
  });

  for (const version of ["0.3.1", "1.0.0", "1.1.0"] as const) {
    it(`passes every conformance scenario at ${version} with host-local's store as the allocations`, async () => {
      await setPodCidrs(POD_CIDR);
      const network = `hl-kit-${version.replaceAll(".", "")}`;
      const conf = {
        ...list(version, network, { subnet: "usePodCidr" }),
        ...(version.startsWith("0.3") ? { disableCheck: true } : {}),
      };
      const report = await runConformance({
        config: conf,
        path: [binDir, DEBIAN_CNI],
        allocations: reserved(network),
        concurrency: 6,
        scenarios: ALL_SCENARIOS,
      });
      const text = formatReport(report);
      expect(report.testedVersion, text).toBe(version);
      const failed = report.scenarios.filter((s) => s.outcome === "fail");
      expect(failed, text).toEqual([]);
      const outcomes = Object.fromEntries(report.scenarios.map((s) => [s.id, s.outcome]));
      expect(outcomes.gc, text).toBe(version === "1.1.0" ? "pass" : "not-applicable");
      expect(outcomes["concurrent-adds"], text).toBe("pass");
      expect(await reserved(network)()).toEqual([]);
      expect(await agentAllocations()).toEqual([]);
      expect(await hostWorkloadLinks(lab, host)).toEqual([]);
    });
  }
});
