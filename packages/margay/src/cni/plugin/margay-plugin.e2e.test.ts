/**
 * The `margay` CNI plugin against a real `margay-node` (the cluster lab, one host, etcd): the
 * `@margay/cni` conformance kit, every scenario at every spec version the plugin answers; the kit's strict
 * malformed-input table with no address left allocated and no link left behind; agent down → STATUS 50,
 * ADD 11 and nothing allocated, DEL removes the veth and spools the release, which the agent finishes at
 * its start; chaining with Debian's portmap, bandwidth and tuning.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { createCniRuntime, type NetConf } from "@margay/cni";
import {
  ALL_SCENARIOS,
  createNetns,
  formatReport,
  runBadInput,
  runConformance,
  STRICT_BAD_INPUTS,
  validAddInvocation,
  rawExec,
  type Invocation,
} from "@margay/cni/testing";
import type { Datastore, StoredObject } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterLab, createClusterLab, type LabHost, waitFor } from "../../testing/index.js";
import {
  buildAgentBundle,
  buildPluginDir,
  hostWorkloadLinks,
  ipPool,
  margayConfList,
  workloadAllocations,
} from "./test-support.js";

const DEBIAN_CNI = "/usr/lib/cni";
const VERSIONS = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

describe("margay CNI plugin with a real agent (cluster lab)", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  let host: LabHost;
  let binDir: string;
  let allocations: () => Promise<string[]>;

  beforeAll(async () => {
    binDir = await buildPluginDir();
    lab = await createClusterLab({
      agentBinary: await buildAgentBundle(binDir),
      hosts: 1,
      router: false,
      startAgents: false,
      // The kit's GC scenario adds two attachments and GCs one at once: no grace period here (the GC
      // test below restarts the agent with one to show it is honoured).
      agentEnv: {
        NO_DEFAULT_POOLS: "true",
        MARGAY_NETWORKING_BACKEND: "none",
        MARGAY_WORKLOAD_GC_GRACE_PERIOD: "0s",
      },
    });
    try {
      ds = lab.datastore();
      await ds.create(ipPool("pods", "10.246.0.0/16"));
      host = lab.hosts[0]!;
      lab.startAgent(host);
      await lab.waitReady(host);
      allocations = workloadAllocations(ds);
    } catch (e) {
      const logs = lab.hosts.length > 0 ? (await lab.logs(lab.hosts[0]!)).slice(-3000) : "";
      await lab.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs}`, { cause: e });
    }
  });

  afterAll(async () => {
    await lab?.close();
    if (binDir) await rm(binDir, { recursive: true, force: true });
  });

  // Debian's plugins (1.1.1) speak up to 1.0.0: there the chain is margay → tuning, so chained-prev-result
  // runs; at 1.1.0 margay runs alone. CHECK does not exist at 0.3.x: the list says so (disableCheck). GC is
  // a 1.1.0 verb: the kit reports it not applicable below (after probing that the chain refuses it).
  for (const version of VERSIONS) {
    it(`passes every conformance scenario at ${version}`, async () => {
      const chained = version === "1.1.0" ? [] : [{ type: "tuning" }];
      const config = {
        ...margayConfList(host, version, chained),
        ...(version.startsWith("0.3") ? { disableCheck: true } : {}),
      };
      const report = await runConformance({
        config,
        path: [binDir, DEBIAN_CNI],
        allocations,
        concurrency: 6,
        scenarios: ALL_SCENARIOS,
      });
      const text = formatReport(report);
      expect(report.testedVersion, text).toBe(version);
      const outcomes = Object.fromEntries(report.scenarios.map((s) => [s.id, s.outcome]));
      expect(outcomes, text).toEqual({
        version: "pass",
        "add-check-del": "pass",
        "del-without-add": "pass",
        "del-twice": "pass",
        "del-after-netns-gone": "pass",
        "bad-input": "pass",
        "chained-prev-result": version === "1.1.0" ? "not-applicable" : "pass",
        "concurrent-adds": "pass",
        status: version === "1.1.0" ? "pass" : "not-applicable",
        gc: version === "1.1.0" ? "pass" : "not-applicable",
      });
      expect(await allocations()).toEqual([]);
      expect(await hostWorkloadLinks(lab, host)).toEqual([]);
    });
  }

  it("GC (1.1.0) honours MARGAY_WORKLOAD_GC_GRACE_PERIOD: keeps a young stale attachment, frees it once past the grace, keeps the valid one", async () => {
    const GRACE_MS = 8_000;
    await lab.stopAgent(host);
    lab.startAgent(host, { MARGAY_WORKLOAD_GC_GRACE_PERIOD: `${GRACE_MS / 1000}s` });
    await lab.waitReady(host);
    const list = margayConfList(host, "1.1.0");
    await using nsA = await createNetns("mgcnigc");
    await using nsB = await createNetns("mgcnigc");
    const runtime = createCniRuntime({ path: [binDir], cacheDir: join(lab.dir, "cni-cache-gc") });
    const a = { containerId: "gc-keep", netns: nsA.path, ifname: "eth0" };
    const b = { containerId: "gc-stale", netns: nsB.path, ifname: "eth0" };
    try {
      const ra = (await runtime.addNetworkList(list, a)) as { ips: { address: string }[] };
      const rb = (await runtime.addNetworkList(list, b)) as { ips: { address: string }[] };
      const addedAt = Date.now();
      const ipA = ra.ips[0]!.address.split("/")[0]!;
      const ipB = rb.ips[0]!.address.split("/")[0]!;
      // The plugin's GC alone (a runtime's GC also DELs the stale attachments it has cached, which would
      // prove nothing about the plugin's GC).
      const gc = () =>
        rawExec(
          join(binDir, "margay"),
          { CNI_COMMAND: "GC", CNI_PATH: binDir, PATH: process.env.PATH ?? "/usr/bin:/bin" },
          JSON.stringify({
            ...list.plugins[0],
            cniVersion: "1.1.0",
            name: list.name,
            "cni.dev/valid-attachments": [{ containerID: a.containerId, ifname: "eth0" }],
          }),
        );
      // Inside the grace period GC keeps both (an ADD may be in flight): nothing young is taken.
      expect((await gc()).exitCode).toBe(0);
      // Only meaningful if that GC ran inside the grace (a loaded machine may be slower than it).
      if (Date.now() - addedAt < GRACE_MS) expect((await allocations()).sort()).toEqual([ipA, ipB].sort());
      await new Promise((r) => setTimeout(r, Math.max(0, addedAt + GRACE_MS + 500 - Date.now())));
      const r = await gc();
      expect(r.exitCode, r.stdout).toBe(0);
      expect(await allocations()).toEqual([ipA]);
      expect((await hostWorkloadLinks(lab, host)).length).toBe(1);
    } finally {
      await runtime.delNetworkList(list, a).catch(() => undefined);
      await runtime.delNetworkList(list, b).catch(() => undefined);
      // Back to the lab's agent (no grace) for the tests after this one.
      await lab.stopAgent(host);
      lab.startAgent(host);
      await lab.waitReady(host);
    }
    expect(await allocations()).toEqual([]);
    expect(await hostWorkloadLinks(lab, host)).toEqual([]);
  });

  describe(`strict malformed-input table (${STRICT_BAD_INPUTS.length} cases)`, () => {
    let valid: Invocation;
    let conf: NetConf;
    let ns: Awaited<ReturnType<typeof createNetns>>;
    beforeAll(async () => {
      ns = await createNetns("mgcnibad");
      conf = { ...margayConfList(host, "1.1.0").plugins[0]!, cniVersion: "1.1.0", name: "margay" } as NetConf;
      valid = validAddInvocation(conf, { netns: ns.path, path: [binDir] });
    });
    afterAll(async () => {
      await ns?.close();
    });

    it("has at least 45 cases", () => {
      expect(STRICT_BAD_INPUTS.length).toBeGreaterThanOrEqual(45);
    });

    for (const c of STRICT_BAD_INPUTS) {
      it(`${c.name} → ${c.expectCode === "any" ? "an error" : `code ${c.expectCode}`}, nothing allocated, no link`, async () => {
        const r = await runBadInput(join(binDir, "margay"), c, valid, conf);
        expect(r.ok, r.observed).toBe(true);
        expect(r.exec.exitCode).not.toBe(0);
        expect(r.exec.stdout.trim().split("\n")).toHaveLength(1);
        expect(r.exec.stdout).not.toMatch(/\n\s+at /); // never a stack
        expect(await allocations()).toEqual([]);
        expect(await hostWorkloadLinks(lab, host)).toEqual([]);
      });
    }

    it("an address the agent cannot give (outside every pool) is code 140 with the reason, nothing left", async () => {
      const stdin = JSON.stringify({ ...conf, runtimeConfig: { ips: ["192.0.2.7/32"] } });
      const r = await rawExec(join(binDir, "margay"), valid.env, stdin);
      expect(r.exitCode).toBe(1);
      const err = JSON.parse(r.stdout);
      expect(err.code, r.stdout).toBe(140);
      expect(err.msg).toMatch(/192\.0\.2\.7/);
      expect(await allocations()).toEqual([]);
      expect(await hostWorkloadLinks(lab, host)).toEqual([]);
    });
  });

  it("chains with Debian's portmap, bandwidth and tuning (prevResult carried, DEL in reverse)", async () => {
    const list = margayConfList(
      host,
      "1.0.0",
      [
        { type: "portmap", capabilities: { portMappings: true }, snat: true },
        { type: "bandwidth", capabilities: { bandwidth: true } },
        { type: "tuning", sysctl: { "net.ipv4.conf.eth0.accept_redirects": "0" } },
      ],
      {},
    );
    const hostNs = host.ns;
    await using pod = await createNetns("mgcnichain");
    const cache = join(lab.dir, "cni-cache");
    const runtime = createCniRuntime({
      path: [binDir, DEBIAN_CNI],
      cacheDir: cache,
      launcher: ["ip", "netns", "exec", hostNs],
    });
    const rt = {
      containerId: "chain-1",
      netns: pod.path,
      ifname: "eth0",
      // As kubelet's runtimes pass them: IgnoreUnknown, so the chained plugins accept the K8S_ keys.
      args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web-0" },
      capabilityArgs: {
        portMappings: [{ hostPort: 18080, containerPort: 80, protocol: "tcp" }],
        bandwidth: {
          ingressRate: 1_000_000,
          ingressBurst: 100_000,
          egressRate: 1_000_000,
          egressBurst: 100_000,
        },
      },
    };
    let result: { ips: { address: string }[] };
    try {
      result = (await runtime.addNetworkList(list, rt)) as { ips: { address: string }[] };
    } catch (e) {
      await runtime.delNetworkList(list, rt).catch(() => undefined);
      throw e;
    }
    try {
      const ip = result.ips[0]!.address.split("/")[0]!;
      expect(await allocations()).toEqual([ip]);
      const wep = await ds.get<StoredObject & { spec: { pod: string; ipNetworks: string[] } }>({
        kind: "WorkloadEndpoint",
        namespace: "default",
        name: `${host.name}-k8s-web--0-eth0`,
      });
      expect(wep.spec).toMatchObject({ pod: "web-0", ipNetworks: [`${ip}/32`] });
      // tuning set the sysctl inside the pod; portmap wrote its DNAT for the pod in the host namespace.
      expect((await lab.exec(pod.name, ["sysctl", "-n", "net.ipv4.conf.eth0.accept_redirects"])).trim()).toBe(
        "0",
      );
      const nat = await lab
        .exec(hostNs, ["iptables-save", "-t", "nat"])
        .catch(async () => lab.exec(hostNs, ["nft", "list", "ruleset"]));
      expect(nat).toContain(ip);
      // No CHECK of this list: Debian's portmap 1.1.1 fails CHECK of an IPv4-only pod (it looks for its
      // IPv6 DNAT chain); margay's CHECK is covered by the conformance runs.
      await runtime.delNetworkList(list, rt);
    } finally {
      await runtime.delNetworkList(list, rt).catch(() => undefined);
    }
    expect(await allocations()).toEqual([]);
    expect(await hostWorkloadLinks(lab, host)).toEqual([]);
  });

  it("agent down: STATUS 50 and ADD 11 with nothing allocated; DEL removes the veth and spools; the restarted agent finishes the release", async () => {
    const list = margayConfList(host, "1.1.0");
    await using pod = await createNetns("mgcnidown");
    const runtime = createCniRuntime({ path: [binDir], cacheDir: join(lab.dir, "cni-cache-down") });
    const rt = {
      containerId: "down-1",
      netns: pod.path,
      ifname: "eth0",
      args: { K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "db-0" },
    };
    const added = (await runtime.addNetworkList(list, rt)) as {
      ips: { address: string }[];
      interfaces: { name: string }[];
    };
    const ip = added.ips[0]!.address.split("/")[0]!;
    const veth = added.interfaces[0]!.name;
    expect(await hostWorkloadLinks(lab, host)).toEqual([veth]);

    await lab.stopAgent(host, "SIGTERM");
    try {
      const status = await runtime.statusNetworkList(list).then(
        () => undefined,
        (e: { cniCode?: number }) => e,
      );
      expect(status?.cniCode).toBe(50);
      await using other = await createNetns("mgcnidown");
      const add2 = await runtime
        .addNetworkList(list, {
          ...rt,
          containerId: "down-2",
          netns: other.path,
          args: { K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "db-1" },
        })
        .then(
          () => undefined,
          (e: { cniCode?: number; message?: string }) => e,
        );
      expect(add2?.cniCode, add2?.message).toBe(11);
      expect((await allocations()).sort()).toEqual([ip]);

      // DEL must not block: the plugin runs in the host namespace (as a runtime runs it there), removes the
      // host veth itself and spools the release.
      const hostRuntime = createCniRuntime({
        path: [binDir],
        cacheDir: join(lab.dir, "cni-cache-down"),
        launcher: ["ip", "netns", "exec", host.ns],
      });
      await hostRuntime.delNetworkList(list, rt);
      expect(await hostWorkloadLinks(lab, host)).toEqual([]);
      expect(await allocations()).toEqual([ip]); // still held: only the agent releases
    } finally {
      lab.startAgent(host);
    }
    // The workload API reads the spool when it starts: the address is released, the endpoint deleted.
    await waitFor("the agent to finish the spooled DEL", async () => (await allocations()).length === 0, {
      timeoutMs: 60_000,
      intervalMs: 300,
    });
    await expect(
      ds.get({ kind: "WorkloadEndpoint", namespace: "default", name: `${host.name}-k8s-db--0-eth0` }),
    ).rejects.toMatchObject({ code: "not-found" });
  });

  // The restarted agent first programs the endpoint it read at start, whose veth the plugin removed while
  // the agent was down: the Linux driver defers that workload route (the interface is gone) instead of
  // failing the batch, so the agent gets in sync and ready (it retried the same failing batch forever before).
  it("the restarted agent becomes ready after a DEL finished through the spool", async () => {
    await lab.waitReady(host, { timeoutMs: 30_000 });
  });
});
