/**
 * The proof of "never miss or invent an object": 10,000 Kubernetes objects under random creates,
 * updates and deletes while watch connections drop, histories compact (forcing 410 → relist) and
 * requests fail, and at the end the datastore holds exactly the converted server state.
 */

import { createMemoryDatastore } from "@margay/datastore";
import { expect, it } from "vitest";
import { waitFor } from "./__tests__/helpers.js";
import { diffModel, expectedModel } from "./__tests__/model-diff.js";
import { createKubeAdapter } from "./kube-adapter.js";
import type { KubeObject, KubePod } from "./kube-types.js";
import type { KubeResourceName } from "./resources.js";
import { startFakeKubeApiServer } from "./testing/index.js";
import { createHttpTransport } from "./transport/transport.js";

/** mulberry32: a small seeded PRNG so a failing run can be replayed with its seed. */
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

const TOTAL_OBJECTS = 10_000;
const NAMESPACES = 40;
const NODES = 25;

it("converges to exactly the converted server state under churn, drops, compactions and failures", async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50, historyLimit: 5_000 });
  const transport = createHttpTransport({ server: server.url });
  const ds = createMemoryDatastore();
  // An object someone else wrote must survive everything.
  await ds.create({ apiVersion: "margay.io/v1", kind: "Profile", metadata: { name: "hand-made" }, spec: {} });
  let serial = 0;
  // Live objects per resource (namespace, name), kept here so picking one does not scan the server.
  const live = new Map<KubeResourceName, [string | undefined, string][]>();
  const create = (resource: KubeResourceName, o: KubeObject) => {
    const stored = server.create(resource, o);
    let xs = live.get(resource);
    if (xs === undefined) live.set(resource, (xs = []));
    xs.push([stored.metadata.namespace, stored.metadata.name]);
  };
  const nsNames = Array.from({ length: NAMESPACES }, (_, i) => `ns-${i}`);
  const nodeNames = Array.from({ length: NODES }, (_, i) => `node-${i}`);

  const makePod = (ns: string): KubePod => {
    const n = serial++;
    const r = rand();
    return {
      metadata: { name: `pod-${n}`, namespace: ns, labels: { app: `app-${n % 17}`, v: "0" } },
      spec: {
        nodeName: pick(nodeNames),
        serviceAccountName: r < 0.5 ? "default" : "worker",
        hostNetwork: r > 0.97,
        containers: [{ name: "c", ports: [{ name: "http", containerPort: 8000 + (n % 100) }] }],
      },
      status: {
        phase: r > 0.95 && r <= 0.97 ? "Succeeded" : "Running",
        podIPs: [{ ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` }],
      },
    };
  };
  const makeOther = (): [KubeResourceName, KubeObject] => {
    const r = rand();
    const n = serial++;
    const ns = pick(nsNames);
    if (r < 0.4)
      return ["serviceaccounts", { metadata: { name: `sa-${n}`, namespace: ns, labels: { k: "0" } } }];
    if (r < 0.8) {
      const invalid = rand() < 0.05;
      return [
        "networkpolicies",
        {
          metadata: { name: `np-${n}`, namespace: ns },
          spec: {
            podSelector: { matchLabels: { app: `app-${n % 17}` } },
            ingress: [{ from: [invalid ? { ipBlock: { cidr: "10.0.0.0/99" } } : { podSelector: {} }] }],
          },
        } as KubeObject,
      ];
    }
    return [
      "adminnetworkpolicies",
      {
        metadata: { name: `anp-${n}` },
        spec: {
          priority: n % 1000,
          subject: { namespaces: { matchLabels: { team: "x" } } },
          ingress: [{ action: "Deny", from: [{ namespaces: {} }] }],
        },
      } as KubeObject,
    ];
  };

  // Initial population: namespaces, nodes, the baseline policy, then pods and other objects.
  for (const ns of nsNames) server.create("namespaces", { metadata: { name: ns, labels: { team: "x" } } });
  for (const node of nodeNames) {
    server.create("nodes", {
      metadata: { name: node },
      spec: { podCIDR: "10.244.0.0/24" },
      status: { addresses: [{ type: "InternalIP", address: `192.168.0.${nodeNames.indexOf(node) + 1}` }] },
    });
  }
  server.create("baselineadminnetworkpolicies", {
    metadata: { name: "default" },
    spec: { subject: { namespaces: {} }, ingress: [{ action: "Allow", from: [{ namespaces: {} }] }] },
  } as KubeObject);
  let count = NAMESPACES + NODES + 1;
  while (count < TOTAL_OBJECTS) {
    if (rand() < 0.9) create("pods", makePod(pick(nsNames)));
    else create(...makeOther());
    count++;
  }

  const adapter = createKubeAdapter({
    transport,
    datastore: ds,
    pageSize: 500,
    watchTimeoutSeconds: 3,
    backoff: { initialMs: 5, maxMs: 200 },
    resyncIntervalMs: 0,
  });
  try {
    const t0 = performance.now();
    await adapter.waitForSync();
    const tSync = performance.now();

    const mutable: KubeResourceName[] = [
      "pods",
      "pods",
      "pods",
      "pods",
      "serviceaccounts",
      "networkpolicies",
    ];
    const randomOp = () => {
      const r = rand();
      const resource = pick(mutable);
      const existing = live.get(resource) ?? [];
      if (r < 0.35 || existing.length === 0) {
        if (resource === "pods") create("pods", makePod(pick(nsNames)));
        else create(...makeOther());
      } else if (r < 0.75) {
        const [ns, name] = pick(existing);
        const o = server.get(resource, ns, name) as KubePod;
        o.metadata.labels = { ...(o.metadata.labels ?? {}), v: String(serial++) };
        if (resource === "pods" && rand() < 0.2) o.status = { ...o.status, phase: "Failed" };
        if (resource === "pods" && rand() < 0.2)
          o.status = { ...o.status, podIPs: [{ ip: `fd00::${serial++ % 65535}` }] };
        server.update(resource, o);
      } else {
        const i = Math.floor(rand() * existing.length);
        const [ns, name] = existing[i]!;
        existing[i] = existing[existing.length - 1]!;
        existing.pop();
        server.delete(resource, ns, name);
      }
    };

    const ROUNDS = 60;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < 150; i++) randomOp();
      const chaos = rand();
      if (chaos < 0.3) {
        // Drop, change, and compact before anyone can resume: every informer must relist.
        server.dropWatches();
        for (let i = 0; i < 100; i++) randomOp();
        server.compact();
      } else if (chaos < 0.6) {
        server.dropWatches();
      } else if (chaos < 0.7) {
        server.failRequests(3, 503);
      }
      // Let the adapter run between bursts.
      await new Promise((r) => setTimeout(r, 5));
    }

    // Quiesce: every informer has seen the final resourceVersion (bookmarks carry it) and all is written.
    await waitFor(
      () => [...adapter.informers.values()].every((i) => i.resourceVersion === server.resourceVersion),
      "informers at the final resourceVersion",
      45_000,
    );
    await adapter.idle();
    const tEnd = performance.now();

    const expected = expectedModel(server);
    const diff = await diffModel(ds, expected);
    const stats = adapter.stats();
    const gone = Object.values(stats.informers).reduce((s, i) => s + i.gone, 0);
    const relistDeletes = Object.values(stats.informers).reduce((s, i) => s + i.relistDeletes, 0);
    const summary = {
      seed,
      expected: expected.size,
      owned: diff.owned,
      missing: diff.missing.length,
      stale: diff.stale.length,
      duplicates: diff.duplicates.length,
      dropped: server.stats.dropped,
      gone,
      relistDeletes,
      initialSyncMs: Math.round(tSync - t0),
      churnAndConvergeMs: Math.round(tEnd - tSync),
    };
    console.info("kube-adapter chaos", summary);
    expect(
      summary,
      JSON.stringify({ ...summary, firstMissing: diff.missing[0], firstStale: diff.stale[0] }),
    ).toMatchObject({
      missing: 0,
      stale: 0,
      duplicates: 0,
    });
    expect(diff.owned).toBe(expected.size);
    // The chaos really happened: connections were cut, histories compacted, relists ran.
    expect(server.stats.dropped).toBeGreaterThan(0);
    expect(gone).toBeGreaterThan(0);
    expect(relistDeletes).toBeGreaterThan(0);
    expect(stats.convertIssues).toBeGreaterThan(0);
    expect((await ds.get({ kind: "Profile", name: "hand-made" })).metadata.annotations).toBeUndefined();
  } finally {
    await adapter.close();
    transport.close();
    await server.close();
  }
}, 120_000);
