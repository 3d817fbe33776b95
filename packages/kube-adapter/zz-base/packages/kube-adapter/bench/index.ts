/**
 * Benchmark of @margay/kube-adapter against the fake API server (same process, real HTTP):
 *  1. initial sync of 50,000 pods in 1,000 namespaces into the memory datastore: time, peak memory;
 *  2. the informer alone (list into the cache) against @kubernetes/client-node's informer, the peer;
 *  3. sustained watch events per second, end to end (API server → informer → converter → datastore).
 * The fake API server runs on a worker thread, as a real one runs elsewhere, so its own work is not
 * charged to the adapter. Writes JSON to <repo>/bench-results/kube-adapter.json.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createMemoryDatastore } from "@margay/datastore";
import {
  createHttpTransport,
  createInformer,
  createKubeAdapter,
  KubeResources,
  loadKubeConfig,
} from "../src/index.js";
import type { WorkerCommand } from "./fake-server-worker.js";

const PODS = Number(process.env.BENCH_PODS ?? 50_000);
const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 1_000);
const NODES = 500;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Samples RSS and heap while `fn` runs; returns its result and the peaks. */
async function withMemory<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; peakRssMiB: number; peakHeapMiB: number }> {
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  try {
    const result = await fn();
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    return { result, peakRssMiB: peakRss / 2 ** 20, peakHeapMiB: peakHeap / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

const progress = (what: string) => process.stderr.write(`[kube-adapter bench] ${what}\n`);

async function main() {
  // The fake API server runs on its own thread (see fake-server-worker.ts).
  const entry = new URL("./fake-server-worker.ts", import.meta.url).href;
  // An eval'd bootstrap registers tsx in the worker, then loads the TypeScript entry.
  const worker = new Worker(
    `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`,
    { eval: true, workerData: { bookmarkIntervalMs: 200, historyLimit: EVENTS * 2 } },
  );
  const pending = new Map<number, (v: unknown) => void>();
  let nextId = 1;
  const ready = new Promise<string>((res) => pending.set(0, (v) => res(v as string)));
  worker.on("message", (m: { id: number; result: unknown }) => {
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  });
  type Cmd = WorkerCommand extends infer C ? (C extends { id: number } ? Omit<C, "id"> : never) : never;
  const call = <T = unknown>(cmd: Cmd): Promise<T> => {
    const id = nextId++;
    return new Promise<T>((res) => {
      pending.set(id, (v) => res(v as T));
      worker.postMessage({ ...cmd, id });
    });
  };
  const state = () => call<{ resourceVersion: string; injectedFailures: number }>({ op: "state" });
  const server = { url: await ready };
  await call({ op: "populate", pods: PODS, namespaces: NAMESPACES, nodes: NODES });
  const transport = createHttpTransport({ server: server.url });
  progress(`fake API server holds ${PODS} pods in ${NAMESPACES} namespaces`);
  const rssBefore = process.memoryUsage().rss / 2 ** 20;

  // 1. Initial sync, end to end.
  const ds = createMemoryDatastore({ historyLimit: 1000 });
  const t0 = performance.now();
  const eluSync = performance.eventLoopUtilization();
  const {
    result: adapter,
    peakRssMiB,
    peakHeapMiB,
  } = await withMemory(async () => {
    const a = createKubeAdapter({
      transport,
      backoff: { initialMs: 1, maxMs: 5 },
      datastore: ds,
      resources: ["namespaces", "pods"],
      resyncIntervalMs: 0,
    });
    await a.waitForSync();
    return a;
  });
  const initialSyncMs = performance.now() - t0;
  const initialSyncBusyMs = performance.eventLoopUtilization(eluSync).active;
  const weps = (await ds.list("WorkloadEndpoint")).items.length;
  if (weps !== PODS) throw new Error(`expected ${PODS} endpoints, found ${weps}`);

  progress(`initial sync: ${Math.round(initialSyncMs)} ms`);
  // 3. Watch events, end to end. The fake server runs in this process, so its own cost of applying
  // updates would be charged to the adapter; instead the updates are made while the adapter's watch is
  // held off, then streamed to it in one go as the replay of a resumed watch, and the clock runs from
  // the moment the server lets it back in until every event is in the datastore.
  const pods = adapter.informers.get("pods")!;
  await call({ op: "fail", count: Number.MAX_SAFE_INTEGER, status: 503 });
  await call({ op: "drop" });
  while ((await state()).injectedFailures === 0) await new Promise((r) => setTimeout(r, 1));
  for (let from = 0; from < EVENTS; from += 10_000) {
    await call({
      op: "update",
      from,
      count: Math.min(10_000, EVENTS - from),
      pods: PODS,
      namespaces: NAMESPACES,
      nodes: NODES,
    });
  }
  const target = (await state()).resourceVersion;
  progress(`${EVENTS} updates queued behind the held-off watch`);
  const tEvents = performance.now();
  const eluEvents = performance.eventLoopUtilization();
  await call({ op: "fail", count: 0, status: 503 });
  while (pods.resourceVersion !== target) await new Promise((r) => setTimeout(r, 1));
  const tInformed = performance.now();
  await adapter.idle();
  const tWritten = performance.now();
  // Time the adapter's thread was busy (the fake server's thread is not counted): throughput per core.
  const busyMs = performance.eventLoopUtilization(eluEvents).active;
  const eventsPerBusySecond = EVENTS / (busyMs / 1000);
  const eventsPerSecond = EVENTS / ((tWritten - tEvents) / 1000);
  const informedPerSecond = EVENTS / ((tInformed - tEvents) / 1000);
  const syncStats = adapter.stats().sync;
  await adapter.close();
  await ds.close();

  progress(`events: ${Math.round(eventsPerSecond)}/s`);
  // 2. Informer alone vs the peer, both listing the same 50,000 pods into a cache.
  const tOurs = performance.now();
  const ours = createInformer({ transport, resource: KubeResources.pods });
  await ours.waitForSync();
  const oursListMs = performance.now() - tOurs;
  const oursCount = ours.cache.size;
  await ours.close();

  progress(`our informer listed ${oursCount} pods in ${Math.round(oursListMs)} ms`);
  let peer: { listMs: number; count: number; version: string } | { error: string };
  try {
    const k8s = await import("@kubernetes/client-node");
    const kc = loadKubeConfig({
      text: JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "fake", cluster: { server: server.url, "insecure-skip-tls-verify": true } }],
        users: [{ name: "u", user: {} }],
        contexts: [{ name: "c", context: { cluster: "fake", user: "u" } }],
        "current-context": "c",
      }),
    });
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const tPeer = performance.now();
    const informer = k8s.makeInformer(kc, "/api/v1/pods", () => api.listPodForAllNamespaces());
    // start() resolves once the list is in its cache and the watch request is made.
    await informer.start();
    const listMs = performance.now() - tPeer;
    const count = informer.list().length;
    await informer.stop();
    const { createRequire } = await import("node:module");
    const version = createRequire(import.meta.url)("@kubernetes/client-node/package.json").version as string;
    peer = { listMs, count, version };
  } catch (e) {
    peer = { error: (e as Error).message };
  }

  transport.close();
  await call({ op: "close" });
  await worker.terminate();

  const results = {
    pods: PODS,
    namespaces: NAMESPACES,
    initialSync: {
      ms: Math.round(initialSyncMs),
      adapterThreadBusyMs: Math.round(initialSyncBusyMs),
      goalMs: 10_000,
      peakRssMiB: Math.round(peakRssMiB),
      rssBeforeMiB: Math.round(rssBefore),
      peakHeapMiB: Math.round(peakHeapMiB),
    },
    watch: {
      events: EVENTS,
      eventsPerSecondEndToEnd: Math.round(eventsPerSecond),
      eventsPerSecondIntoCache: Math.round(informedPerSecond),
      eventsPerAdapterBusySecond: Math.round(eventsPerBusySecond),
      goalEventsPerSecond: 10_000,
      datastoreUpdates: syncStats.updates,
    },
    informerListVsPeer: {
      ours: { ms: Math.round(oursListMs), objects: oursCount },
      peer:
        "error" in peer
          ? peer
          : {
              name: `@kubernetes/client-node ${peer.version} makeInformer`,
              ms: Math.round(peer.listMs),
              objects: peer.count,
            },
      ratio: "error" in peer ? null : Number((peer.listMs / oursListMs).toFixed(2)),
    },
    node: process.version,
    date: new Date().toISOString(),
  };
  console.table({
    "initial sync (ms)": { value: results.initialSync.ms, goal: "< 10000" },
    "initial sync, adapter busy (ms)": { value: results.initialSync.adapterThreadBusyMs, goal: "" },
    "peak RSS (MiB)": { value: results.initialSync.peakRssMiB, goal: "" },
    "events/s end to end": { value: results.watch.eventsPerSecondEndToEnd, goal: ">= 10000" },
    "events per adapter-busy second": { value: results.watch.eventsPerAdapterBusySecond, goal: "" },
    [`list ${PODS} pods: ours (ms)`]: { value: results.informerListVsPeer.ours.ms, goal: "" },
    [`list ${PODS} pods: client-node (ms)`]: {
      value: "error" in peer ? peer.error : Math.round(peer.listMs),
      goal:
        results.informerListVsPeer.ratio === null ? "" : `peer/ours = ${results.informerListVsPeer.ratio}`,
    },
  });
  const out = resolve(repoRoot, "bench-results/kube-adapter.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
