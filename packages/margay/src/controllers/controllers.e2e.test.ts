/**
 * End to end: `margay-kube-controllers` in the node agents' cluster lab. Three hosts (network namespaces
 * on one underlay bridge), etcd in its own namespace, a real `margay-node` process per host, pods added
 * through the agents' workload API, real packets; the project's fake API server (started here, on
 * loopback) is the cluster's API, and two replicas of the built `margay-kube-controllers` bundle run
 * as real processes against it and the lab's etcd, one leading by the Lease. One lab for the file; the
 * tests run in order and build on each other.
 *
 * - A pod's label change in the API flips a real cross-host packet verdict (a NetworkPolicy selecting
 *   the label, converted by the controllers; the pod controller relabels the pod's endpoint).
 * - A deleted Kubernetes Node: its Margay Node goes, the endpoint of its gone pod goes, and after the
 *   GC's grace period the pod's address and the node's blocks are freed.
 * - The leader killed with SIGKILL (no Lease release): the standby takes the Lease once it expires and
 *   carries on, so a later label change still lands.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkloadEndpoint } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import type { BlockAffinityObject } from "@margay/ipam";
import { type IpamBlockObject, IpamKind } from "@margay/ipam";
import type { KubeLease, KubePod } from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { freePort } from "@margay/datastore/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayNodeBundle } from "../node/config/build-bundle.js";
import { pool } from "../node/e2e-support.js";
import { type ClusterLab, createClusterLab, type LabHost, type LabPod, waitFor } from "../testing/index.js";
import { buildKubeControllersBundle } from "./build-bundle.js";

const TOKEN = "e2e-controllers-token";
const LEASE = { namespace: "kube-system", name: "margay-kube-controllers" };
/** The IPAM GC's grace period in this lab (Calico's 15 minutes would outlast the test). */
const GRACE = "4s";

interface Replica {
  readonly name: string;
  /** Its metrics endpoint (loopback). */
  readonly metricsUrl: string;
  readonly log: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe("margay-kube-controllers in the cluster lab (fake API server, 3 hosts, 2 replicas)", () => {
  let dir: string;
  let lab: ClusterLab;
  let ds: Datastore;
  let api: FakeKubeApiServer;
  let bundle: string;
  let kubeconfig: string;
  const replicas: Replica[] = [];
  let db: LabPod;
  let client: LabPod;

  const tail = async (r: Replica) =>
    `--- ${r.name}\n${(await readFile(r.log, "utf8").catch(() => "")).slice(-4000)}`;
  const replicaLogs = async () => (await Promise.all(replicas.map(tail))).join("\n");

  async function startReplica(name: string): Promise<Replica> {
    const log = join(dir, `${name}.log`);
    const metricsPort = await freePort();
    const fd = openSync(log, "a");
    const child = spawn(process.execPath, [bundle, "run"], {
      stdio: ["ignore", fd, fd],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        KUBECONFIG: kubeconfig,
        DATASTORE_TYPE: "etcdv3",
        ETCD_ENDPOINTS: lab.etcdClientEndpoint!,
        LOG_LEVEL: "debug",
        POD_NAME: name,
        MARGAY_HEALTH_HOST: "127.0.0.1",
        MARGAY_HEALTH_PORT: "0",
        MARGAY_METRICS_HOST: "127.0.0.1",
        MARGAY_METRICS_PORT: String(metricsPort),
        MARGAY_LEADER_ELECTION_LEASE_DURATION: "3s",
        MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "2s",
        MARGAY_LEADER_ELECTION_RETRY_PERIOD: "300ms",
        MARGAY_IPAM_GC_GRACE_PERIOD: GRACE,
        MARGAY_IPAM_GC_DRY_RUN_PERIOD: "1s",
        MARGAY_RECONCILER_PERIOD: "10s",
      },
    });
    closeSync(fd);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    const r = { name, log, child, exited, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
    replicas.push(r);
    return r;
  }

  const leaseHolder = () =>
    (api.get("leases", LEASE.namespace, LEASE.name) as KubeLease | undefined)?.spec?.holderIdentity;

  /** The pod as the API holds it, created to match a lab pod. */
  function putKubePod(p: LabPod): void {
    api.create<KubePod>("pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { namespace: p.namespace, name: p.name, labels: { ...p.labels } },
      spec: { nodeName: p.host.name, containers: [{ name: "main" }] },
      status: { phase: "Running", podIP: p.ip, podIPs: [{ ip: p.ip }] },
    });
  }

  function relabel(p: LabPod, labels: Record<string, string>): void {
    const cur = api.get("pods", p.namespace, p.name) as KubePod;
    api.update("pods", { ...cur, metadata: { ...cur.metadata, labels } });
  }

  async function endpointLabels(p: LabPod): Promise<Record<string, string>> {
    const weps = await ds.list<WorkloadEndpoint>("WorkloadEndpoint", { namespace: p.namespace });
    return weps.items.find((w) => w.spec.pod === p.name)?.metadata.labels ?? {};
  }

  const reaches = (from: LabPod, to: LabPod) => lab.canReach(from, to, { proto: "tcp", timeoutMs: 1_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-controllers-e2e-"));
    const [agent] = await Promise.all([
      buildMargayNodeBundle(join(dir, "margay-node.cjs")),
      buildKubeControllersBundle(join(dir, "margay-kube-controllers.cjs")).then((b) => {
        bundle = b.path;
      }),
    ]);
    api = await startFakeKubeApiServer({ token: TOKEN });
    kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "lab", cluster: { server: api.url } }],
        users: [{ name: "controllers", user: { token: TOKEN } }],
        contexts: [{ name: "lab", context: { cluster: "lab", user: "controllers" } }],
        "current-context": "lab",
      }),
    );
    lab = await createClusterLab({
      hosts: 3,
      router: false,
      startAgents: false,
      agentBinary: agent.path,
      // The controllers make the namespace profiles here, from the API's Namespaces.
      namespaceProfiles: false,
      agentEnv: { MARGAY_NETWORKING_BACKEND: "bgp", NO_DEFAULT_POOLS: "true" },
    });
    try {
      ds = lab.datastore();
      await ds.create(pool("pods", "10.246.0.0/16"));
      for (const ns of ["default", "kube-system"])
        api.create("namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
      for (const h of lab.hosts)
        api.create("nodes", { apiVersion: "v1", kind: "Node", metadata: { name: h.name } });
      for (const h of lab.hosts) lab.startAgent(h);
      for (const h of lab.hosts) await lab.waitReady(h);
    } catch (e) {
      await lab.close();
      throw e;
    }
  });

  afterAll(async () => {
    for (const r of replicas)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
    await lab?.close();
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("replica A leads, B stands by; the namespace profiles and a NetworkPolicy come from the API", async () => {
    await startReplica("replica-a");
    await waitFor("replica-a to hold the Lease", () => leaseHolder() === "replica-a", {
      timeoutMs: 60_000,
      describe: replicaLogs,
    });
    await startReplica("replica-b");
    api.create("networkpolicies", {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { namespace: "default", name: "db-from-frontend" },
      spec: {
        podSelector: { matchLabels: { app: "db" } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: { matchLabels: { role: "frontend" } } }] }],
      },
    });
    await waitFor(
      "the namespace profile and the policy in the datastore",
      async () => {
        const profiles = (await ds.list("Profile")).items.map((p) => p.metadata.name);
        const policies = (await ds.list("NetworkPolicy")).items.map((p) => p.metadata.name);
        return profiles.includes("kns.default") && policies.some((n) => n.includes("db-from-frontend"));
      },
      { timeoutMs: 60_000, describe: replicaLogs },
    );
    // The standby writes nothing and keeps campaigning.
    expect(leaseHolder()).toBe("replica-a");
    expect(replicas[1]!.child.exitCode).toBeNull();
  });

  it("a pod's label change in the API flips a real cross-host packet verdict", async () => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost, LabHost];
    db = await lab.addPod(h2, { name: "db", labels: { app: "db" } });
    client = await lab.addPod(h1, { name: "client", labels: { role: "backend" } });
    putKubePod(db);
    putKubePod(client);
    await waitFor("client -> db denied (not a frontend)", async () => !(await reaches(client, db)), {
      timeoutMs: 60_000,
    });
    relabel(client, { role: "frontend" });
    await waitFor(
      "the client's endpoint relabelled",
      async () => (await endpointLabels(client)).role === "frontend",
      {
        timeoutMs: 30_000,
        describe: replicaLogs,
      },
    );
    await waitFor("client -> db allowed (now a frontend)", () => reaches(client, db), { timeoutMs: 30_000 });
    relabel(client, { role: "backend" });
    await waitFor("client -> db denied again", async () => !(await reaches(client, db)), {
      timeoutMs: 30_000,
    });
  });

  it("deleting a Kubernetes Node removes its Node and, after the grace period, frees its pod's address and its blocks", async () => {
    const h3 = lab.hosts[2]!;
    const victim = await lab.addPod(h3, { name: "victim", labels: { app: "victim" } });
    putKubePod(victim);
    const affine = async () =>
      (await ds.list<IpamBlockObject>(IpamKind.Block)).items.filter(
        (b) => b.spec.affinity === `host:${h3.name}`,
      );
    expect((await affine()).length).toBeGreaterThan(0);
    // The host dies: its agent is killed (no CNI DEL ever runs), then the cluster forgets the pod and node.
    await lab.stopAgent(h3, "SIGKILL");
    api.delete("pods", "default", "victim");
    api.delete("nodes", undefined, h3.name);
    await waitFor(
      "the Margay Node and the gone pod's endpoint removed",
      async () => {
        const nodes = (await ds.list("Node")).items.map((n) => n.metadata.name);
        const weps = (await ds.list<WorkloadEndpoint>("WorkloadEndpoint")).items;
        return !nodes.includes(h3.name) && !weps.some((w) => w.spec.pod === "victim");
      },
      { timeoutMs: 30_000, describe: replicaLogs },
    );
    await waitFor(
      "the victim's address freed and the node's blocks released",
      async () => {
        const blocks = await affine();
        const affinities = (await ds.list<BlockAffinityObject>(IpamKind.Affinity)).items;
        const held = (await ds.list<IpamBlockObject>(IpamKind.Block)).items.some((b) =>
          b.spec.attributes.some((a) => a.secondary?.pod === "victim"),
        );
        return blocks.length === 0 && !affinities.some((a) => a.spec.node === h3.name) && !held;
      },
      { timeoutMs: 60_000, describe: replicaLogs },
    );
    // The leader's metrics count what its GC found and freed.
    const metrics = await (await fetch(replicas[0]!.metricsUrl)).text();
    const value = (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? Number.NaN);
    expect(value("margay_ipam_gc_leaks_found_total"), metrics).toBeGreaterThanOrEqual(1);
    expect(value("margay_ipam_gc_addresses_released_total"), metrics).toBeGreaterThanOrEqual(1);
    expect(value("margay_ipam_gc_affinities_released_total"), metrics).toBeGreaterThanOrEqual(1);
    expect(value("margay_node_controller_nodes_removed_total"), metrics).toBe(1);
    // The live pods of the other hosts kept their addresses.
    const blocks = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    for (const p of [db, client]) {
      expect(blocks.some((b) => b.spec.attributes.some((a) => a.secondary?.pod === p.name))).toBe(true);
    }
    expect(await reaches(client, db)).toBe(false); // still denied: nothing else changed
  });

  it("the leader killed with SIGKILL: the standby takes the Lease and carries on (a later label change lands)", async () => {
    const [a, b] = replicas as [Replica, Replica];
    a.child.kill("SIGKILL");
    expect((await a.exited).signal).toBe("SIGKILL");
    // Not released: B takes it once the lease has run out.
    await waitFor("replica-b to hold the Lease", () => leaseHolder() === "replica-b", {
      timeoutMs: 60_000,
      describe: replicaLogs,
    });
    relabel(client, { role: "frontend" });
    await waitFor(
      "the client's endpoint relabelled by replica-b",
      async () => (await endpointLabels(client)).role === "frontend",
      {
        timeoutMs: 30_000,
        describe: replicaLogs,
      },
    );
    await waitFor("client -> db allowed after the failover", () => reaches(client, db), {
      timeoutMs: 30_000,
    });
    expect(b.child.exitCode).toBeNull();
  });
  it("a node deleted and registered again under the same name keeps what is live; its leak still goes", async () => {
    const h4 = await lab.addHost({ startAgent: false });
    api.create("nodes", { apiVersion: "v1", kind: "Node", metadata: { name: h4.name } });
    lab.startAgent(h4);
    await lab.waitReady(h4);
    const survivor = await lab.addPod(h4, { name: "survivor", labels: { app: "survivor" } });
    await lab.addPod(h4, { name: "leaked", labels: { app: "leaked" } });
    putKubePod(survivor);
    await waitFor("client -> survivor", () => reaches(client, survivor), { timeoutMs: 60_000 });
    // The host goes away for a while: its pod "leaked" is gone from the API, "survivor" is not.
    await lab.stopAgent(h4, "SIGKILL");
    api.delete("nodes", undefined, h4.name);
    await waitFor(
      "the Node and the gone pod's endpoint removed, the live pod's endpoint kept",
      async () => {
        const nodes = (await ds.list("Node")).items.map((n) => n.metadata.name);
        const pods = (await ds.list<WorkloadEndpoint>("WorkloadEndpoint")).items.map((w) => w.spec.pod);
        return !nodes.includes(h4.name) && !pods.includes("leaked") && pods.includes("survivor");
      },
      { timeoutMs: 30_000, describe: replicaLogs },
    );
    // It comes back under the same name, in Kubernetes and as a Margay Node.
    api.create("nodes", { apiVersion: "v1", kind: "Node", metadata: { name: h4.name } });
    lab.startAgent(h4);
    await lab.waitReady(h4);
    const holder = async (pod: string) =>
      (await ds.list<IpamBlockObject>(IpamKind.Block)).items.find((b) =>
        b.spec.attributes.some((a, i) => a.secondary?.pod === pod && b.spec.allocations.includes(i)),
      );
    await waitFor("the leaked pod's address freed", async () => (await holder("leaked")) === undefined, {
      timeoutMs: 60_000,
      describe: replicaLogs,
    });
    // Several grace periods later the live pod still holds its address, in a block still the node's.
    await new Promise((r) => setTimeout(r, 3 * 4_000));
    const block = await holder("survivor");
    expect(block?.spec.affinity).toBe(`host:${h4.name}`);
    await waitFor("client -> survivor after the node came back", () => reaches(client, survivor), {
      timeoutMs: 60_000,
    });
  });
});
