/**
 * margay-kube-controllers over 10,000 pods, against the fake API server over real HTTP (loopback): the
 * controllers (leader-elected, every controller enabled) follow pods, namespaces, service accounts and
 * NetworkPolicies while they churn and while watches drop, histories compact (410 → relist) and requests
 * fail; an "agent" writes and deletes endpoints meanwhile as CNI ADD/DEL would (some with stale labels,
 * some racing the controller's writes). At the end the datastore holds exactly what the cluster says:
 * every endpoint's labels, service account and profiles are its pod's, no endpoint was created or deleted
 * by the controllers, and profiles and policies are the converted namespaces, service accounts and
 * NetworkPolicies. The memory held at 10,000 pods is printed (not asserted).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { API_VERSION, type Resource, type WorkloadEndpoint } from "@margay/api";
import { createMemoryDatastore } from "@margay/datastore";
import {
  createHttpTransport,
  defaultConverters,
  type KubeObject,
  type KubePod,
  workloadEndpointName,
} from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { resolveControllersConfig } from "./config.js";
import { applyPodToEndpoint } from "./pod-controller.js";
import { type ActiveControllers, runKubeControllers } from "./run.js";

/** mulberry32: a seeded PRNG so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PODS = 10_000;
const NAMESPACES = 25;
const NODES = 20;
const ROUNDS = 8;

async function waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pod cache's size as JSON, and its heap cost measured on a copy (the copy is then dropped). */
function podCacheFigures(active: ActiveControllers) {
  const c = active.pods!.informer.cache;
  const bytes = [...c.values()].reduce((s, p) => s + JSON.stringify(p).length, 0);
  const before = settledHeap();
  let copy: unknown[] | undefined = structuredClone([...c.values()]);
  const heap = settledHeap() - before;
  copy.length = 0;
  copy = undefined;
  return { size: c.size, bytes, heap, sample: structuredClone(c.values().next().value as KubePod) };
}

/** Heap used after a full collection (`--expose-gc` switched on at run time; vitest does not pass it). */
function settledHeap(): number {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return process.memoryUsage().heapUsed;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

it("10,000 pods under churn, watch drops, 410s and failed requests: the datastore ends exact", async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const server = await startFakeKubeApiServer({ bookmarkIntervalMs: 200, historyLimit: 20_000 });
  // A short watch history: the datastore's own growth stays out of the heap figure (and a lagging
  // endpoint watch meets `compacted`, which the controllers must survive too).
  const ds = createMemoryDatastore({ validate: apiValidator, historyLimit: 500 });
  const nsNames = Array.from({ length: NAMESPACES }, (_, i) => `ns-${i}`);
  const nodeNames = Array.from({ length: NODES }, (_, i) => `node-${i}`);
  let serial = 0;
  /** Pods that exist, by key, and the endpoints the "agent" wrote (the only ones that may exist). */
  const livePods: string[] = [];
  const agentEndpoints = new Set<string>();

  const makePod = (ns: string, name: string): KubePod =>
    ({
      metadata: {
        name,
        namespace: ns,
        labels: { app: `app-${serial % 13}`, v: String(serial++) },
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}".padEnd(600, " ") },
        managedFields: [
          { manager: "kubectl", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:metadata": {} } },
        ],
      },
      spec: {
        nodeName: pick(nodeNames),
        serviceAccountName: rand() < 0.5 ? "default" : "worker",
        containers: [{ name: "main", ports: [{ name: "http", containerPort: 8080 }] }],
      },
      status: {
        phase: "Running",
        podIPs: [{ ip: `10.${(serial >> 16) & 255}.${(serial >> 8) & 255}.${serial & 255}` }],
      },
    }) as KubePod;

  /** The agent's CNI ADD: the endpoint with the pod's labels as read then (sometimes already stale). */
  const agentAdd = async (p: KubePod, stale: boolean) => {
    const ns = p.metadata.namespace!;
    const w: WorkloadEndpoint = {
      apiVersion: API_VERSION,
      kind: "WorkloadEndpoint",
      metadata: {
        name: workloadEndpointName(p.spec!.nodeName!, p.metadata.name),
        namespace: ns,
        labels: {
          ...(stale ? { app: "stale" } : p.metadata.labels),
          "projectcalico.org/namespace": ns,
          "projectcalico.org/orchestrator": "k8s",
        },
      },
      spec: {
        orchestrator: "k8s",
        node: p.spec!.nodeName!,
        pod: p.metadata.name,
        endpoint: "eth0",
        containerID: `c${serial++}`,
        ipNetworks: [`${p.status!.podIPs![0]!.ip}/32`],
        profiles: [`kns.${ns}`],
        interfaceName: "mgy0123456789ab",
      },
    };
    await ds.create(w);
    agentEndpoints.add(`${ns}/${w.metadata.name}`);
  };
  const agentDel = async (p: KubePod) => {
    const name = workloadEndpointName(p.spec!.nodeName!, p.metadata.name);
    await ds.delete({ kind: "WorkloadEndpoint", namespace: p.metadata.namespace!, name });
    agentEndpoints.delete(`${p.metadata.namespace}/${name}`);
  };

  // The cluster: namespaces, two service accounts each, a few policies, 10,000 pods; endpoints for 90 %
  // of them (a quarter of those stale), the rest added during the churn.
  for (const ns of nsNames) {
    server.create("namespaces", { metadata: { name: ns, labels: { team: `t${nsNames.indexOf(ns) % 3}` } } });
    for (const sa of ["default", "worker"])
      server.create("serviceaccounts", { metadata: { name: sa, namespace: ns, labels: { sa } } });
    server.create("networkpolicies", {
      metadata: { name: "allow-app", namespace: ns },
      spec: { podSelector: { matchLabels: { app: "app-1" } }, ingress: [{ from: [{ podSelector: {} }] }] },
    } as KubeObject);
  }
  const pending: KubePod[] = [];
  for (let i = 0; i < PODS; i++) {
    const p = server.create("pods", makePod(pick(nsNames), `pod-${i}`));
    livePods.push(`${p.metadata.namespace}/${p.metadata.name}`);
    if (rand() < 0.9) await agentAdd(p, rand() < 0.25);
    else pending.push(p);
  }

  const config = resolveControllersConfig(
    {
      KUBECONFIG: "/nonexistent/kubeconfig", // the test hands the transport
      ETCD_ENDPOINTS: "http://127.0.0.1:1", // and the datastore
      MARGAY_HEALTH_HOST: "127.0.0.1",
      MARGAY_HEALTH_PORT: "0",
      MARGAY_METRICS_HOST: "127.0.0.1",
      MARGAY_METRICS_PORT: "0",
      POD_NAME: "kc-0",
      MARGAY_LEADER_ELECTION_LEASE_DURATION: "4s",
      MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "3s",
      MARGAY_LEADER_ELECTION_RETRY_PERIOD: "300ms",
      MARGAY_IPAM_GC_DRY_RUN_PERIOD: "1h",
    },
    { hostname: "test" },
  );
  const heapBefore = settledHeap();
  const t0 = performance.now();
  const kc = runKubeControllers(config, {
    datastore: ds,
    transport: createHttpTransport({ server: server.url }),
    pageSize: 500,
    watchTimeoutSeconds: 5,
    backoff: { initialMs: 10, maxMs: 300 },
  });
  try {
    await kc.ready;
    const active = await kc.whenLeadingAndSynced();
    const tSync = performance.now();
    await active.podController!.idle();
    const tIdle = performance.now();
    settledHeap();
    const mem = process.memoryUsage();
    const cache = podCacheFigures(active);
    const serverPodBytes = server.list("pods").reduce((s, p) => s + JSON.stringify(p).length, 0);
    console.log(
      `[kube-controllers @ ${cache.size} pods] rss ${mb(mem.rss)}, heap used ${mb(mem.heapUsed)} ` +
        `(+${mb(mem.heapUsed - heapBefore)} since the controllers started: their caches, index and buffers; the ` +
        `fake API server and the memory datastore share this process), pod cache ${mb(cache.heap)} of heap, ${mb(cache.bytes)} as JSON ` +
        `vs ${mb(serverPodBytes)} for the same pods as served; synced in ${(tSync - t0).toFixed(0)} ms, ` +
        `first pass written in ${(tIdle - t0).toFixed(0)} ms; seed ${seed}`,
    );
    expect(cache.size).toBe(PODS);
    expect(cache.sample.metadata.managedFields).toBeUndefined();
    expect(cache.sample.metadata.annotations).toBeUndefined();

    const mutateLabels = (key: string) => {
      const [ns, name] = key.split("/") as [string, string];
      const p = server.get("pods", ns, name) as KubePod;
      p.metadata.labels = { ...p.metadata.labels, v: String(serial++) };
      server.update("pods", p);
    };
    const removePod = async (i: number) => {
      const key = livePods[i]!;
      livePods[i] = livePods[livePods.length - 1]!;
      livePods.pop();
      const [ns, name] = key.split("/") as [string, string];
      const p = server.delete("pods", ns, name) as KubePod;
      if (agentEndpoints.has(`${ns}/${workloadEndpointName(p.spec!.nodeName!, name)}`)) await agentDel(p);
    };

    for (let round = 0; round < ROUNDS; round++) {
      // Label changes on running pods, some racing an agent write to the same endpoint.
      for (let i = 0; i < 400; i++) mutateLabels(pick(livePods));
      for (let i = 0; i < 20; i++) {
        const key = pick(livePods);
        const [ns, name] = key.split("/") as [string, string];
        const p = server.get("pods", ns, name) as KubePod;
        const wepKey = {
          kind: "WorkloadEndpoint",
          namespace: ns,
          name: workloadEndpointName(p.spec!.nodeName!, name),
        };
        if (!agentEndpoints.has(`${ns}/${wepKey.name}`)) continue;
        const w = await ds.get<WorkloadEndpoint>(wepKey);
        await ds.update({
          ...w,
          spec: { ...w.spec, mac: `ee:ee:ee:00:00:${(round % 100).toString(16).padStart(2, "0")}` },
        });
      }
      // Pods deleted (CNI DEL removes their endpoints), new pods (CNI ADD), late endpoints of old pods.
      for (let i = 0; i < 60; i++) await removePod(Math.floor(rand() * livePods.length));
      for (let i = 0; i < 60; i++) {
        const p = server.create("pods", makePod(pick(nsNames), `new-${serial++}`));
        livePods.push(`${p.metadata.namespace}/${p.metadata.name}`);
        await agentAdd(p, rand() < 0.5);
      }
      for (let i = 0; i < 80 && pending.length > 0; i++) {
        const p = pending.pop()!;
        if (server.get("pods", p.metadata.namespace, p.metadata.name) !== undefined) await agentAdd(p, true);
      }
      // Namespaces relabelled, service accounts relabelled, policies created and deleted.
      const ns = pick(nsNames);
      server.update("namespaces", { metadata: { name: ns, labels: { team: `t${serial++}` } } });
      server.update("serviceaccounts", {
        metadata: { name: "worker", namespace: pick(nsNames), labels: { r: String(round) } },
      });
      server.create("networkpolicies", {
        metadata: { name: `np-${round}`, namespace: pick(nsNames) },
        spec: { podSelector: { matchLabels: { v: String(round) } }, policyTypes: ["Ingress"] },
      } as KubeObject);
      if (round > 2) {
        const old = server.list("networkpolicies").find((o) => o.metadata.name === `np-${round - 3}`);
        if (old) server.delete("networkpolicies", old.metadata.namespace, old.metadata.name);
      }
      // Faults: drops, drop + change + compaction (every informer must relist), failed requests (not the
      // Lease's: a deposed leader exits, which is another test's subject).
      const chaos = round % 4;
      if (chaos === 0) server.dropWatches();
      else if (chaos === 1) {
        server.dropWatches();
        for (let i = 0; i < 100; i++) mutateLabels(pick(livePods));
        server.compact();
      } else if (chaos === 2) server.failRequests(5, 503, (r) => !r.path.includes("/leases"));
      await new Promise((r) => setTimeout(r, 150));
    }

    const tChurn = performance.now();
    // Converged: every endpoint carries its pod's fields; profiles and policies are the converted cluster.
    const converters = defaultConverters;
    const diff = async (): Promise<string[]> => {
      const out: string[] = [];
      const weps = (await ds.list<WorkloadEndpoint>("WorkloadEndpoint")).items;
      const present = new Set(weps.map((w) => `${w.metadata.namespace}/${w.metadata.name}`));
      for (const k of agentEndpoints) if (!present.has(k)) out.push(`endpoint ${k} missing`);
      for (const k of present) if (!agentEndpoints.has(k)) out.push(`endpoint ${k} not written by the agent`);
      for (const w of weps) {
        const p = server.get("pods", w.metadata.namespace, w.spec.pod!) as KubePod | undefined;
        if (p === undefined) {
          out.push(`endpoint ${w.metadata.name} without a pod`);
          continue;
        }
        if (applyPodToEndpoint(w, p) !== undefined)
          out.push(`endpoint ${w.metadata.namespace}/${w.metadata.name} stale`);
      }
      const expected = new Map<string, Resource>();
      for (const r of ["namespaces", "serviceaccounts", "networkpolicies"] as const)
        for (const o of server.list(r))
          for (const m of converters[r].convert(o))
            expected.set(`${m.kind}/${m.metadata.namespace ?? ""}/${m.metadata.name}`, m);
      const actual = new Map<string, Resource>();
      for (const kind of ["Profile", "NetworkPolicy"])
        for (const m of (await ds.list<Resource>(kind)).items)
          actual.set(`${m.kind}/${m.metadata.namespace ?? ""}/${m.metadata.name}`, m);
      for (const [k, m] of expected) {
        const a = actual.get(k);
        if (a === undefined) out.push(`${k} missing`);
        else if (
          JSON.stringify((a as { spec?: unknown }).spec) !== JSON.stringify((m as { spec?: unknown }).spec) ||
          JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(m.metadata.labels ?? {})
        )
          out.push(`${k} differs`);
      }
      for (const k of actual.keys()) if (!expected.has(k)) out.push(`${k} not in the cluster`);
      return out;
    };
    // Quiesce first (cheap): every informer past the last change of the churn (bookmarks carry the
    // resourceVersion; the Lease renewals keep moving the server's, so not equality), the writers idle;
    // then compare (the comparison reads everything, so it is not polled in a tight loop). The fake's
    // resourceVersions are integers.
    const informers = [active.pods!.informer, ...active.adapter!.informers.values()];
    const churnEnd = Number(server.resourceVersion);
    await waitFor(
      () => informers.every((i) => Number(i.resourceVersion ?? 0) >= churnEnd),
      "informers past the churn",
      45_000,
    );
    await active.adapter!.idle();
    await active.podController!.idle();
    const deadline = Date.now() + 20_000;
    let left = await diff();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      left = await diff();
    }
    const stats = active.podController!.stats();
    console.log(
      `[kube-controllers] churn ${(tChurn - tIdle).toFixed(0)} ms, converged ${(performance.now() - tChurn).toFixed(0)} ms after it; ` +
        `pod controller ${JSON.stringify(stats)}; server ${JSON.stringify(server.stats)}; ` +
        `${agentEndpoints.size} endpoints, ${livePods.length} pods`,
    );
    expect(kc.isLeader).toBe(true);
    expect(left.slice(0, 20)).toEqual([]);
    expect(stats.updated).toBeGreaterThan(2000);
    expect(server.stats.gone).toBeGreaterThan(0);
    expect(server.stats.dropped).toBeGreaterThan(0);
  } finally {
    await kc.stop();
    await server.close();
    await ds.close();
  }
});
