/**
 * One end-to-end adapter run in a fresh process (with its own fake API server thread):
 *  1. initial sync of PODS pods in NAMESPACES namespaces into the memory datastore: time, peak memory;
 *  2. sustained watch events per second (API server → informer → converter → datastore).
 * Prints one JSON line.
 *
 *   tsx bench/adapter-child.ts '<json {pods, namespaces, nodes, events}>'
 */
import { createMemoryDatastore } from "@margay/datastore";
import { createHttpTransport, createKubeAdapter } from "../src/index.js";
import { startFakeServerThread } from "./fake-server.js";

const {
  pods: PODS,
  namespaces: NAMESPACES,
  nodes: NODES,
  events: EVENTS,
} = JSON.parse(process.argv[2]!) as {
  pods: number;
  namespaces: number;
  nodes: number;
  events: number;
};

/** Samples RSS and heap while `fn` runs; returns its result and the peaks. */
async function withMemory<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; peakRssMiB: number; peakHeapMiB: number }> {
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 20);
  try {
    const result = await fn();
    sample();
    return { result, peakRssMiB: peakRss / 2 ** 20, peakHeapMiB: peakHeap / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

const server = await startFakeServerThread({ bookmarkIntervalMs: 200, historyLimit: EVENTS * 2 });
await server.call({ op: "populate", pods: PODS, namespaces: NAMESPACES, nodes: NODES });
const transport = createHttpTransport({ server: server.url });
const rssBefore = process.memoryUsage().rss / 2 ** 20;

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

// Watch events: the updates are made while the adapter's watch is held off, then streamed to it in one
// go as the replay of a resumed watch; the clock runs from the moment the server lets it back in until
// every event is in the datastore.
const informer = adapter.informers.get("pods")!;
await server.call({ op: "fail", count: Number.MAX_SAFE_INTEGER, status: 503 });
await server.call({ op: "drop" });
while ((await server.state()).injectedFailures === 0) await new Promise((r) => setTimeout(r, 1));
for (let from = 0; from < EVENTS; from += 10_000)
  await server.call({
    op: "update",
    from,
    count: Math.min(10_000, EVENTS - from),
    pods: PODS,
    namespaces: NAMESPACES,
    nodes: NODES,
  });
const target = (await server.state()).resourceVersion;
const tEvents = performance.now();
const eluEvents = performance.eventLoopUtilization();
await server.call({ op: "fail", count: 0, status: 503 });
while (informer.resourceVersion !== target) await new Promise((r) => setTimeout(r, 1));
const tInformed = performance.now();
await adapter.idle();
const tWritten = performance.now();
// Time the adapter's thread was busy (the fake server's thread is not counted): throughput per core.
const busyMs = performance.eventLoopUtilization(eluEvents).active;
const datastoreUpdates = adapter.stats().sync.updates;
await adapter.close();
await ds.close();
transport.close();
await server.close();

process.stdout.write(
  `${JSON.stringify({
    initialSyncMs,
    initialSyncBusyMs,
    peakRssMiB,
    peakHeapMiB,
    rssBeforeMiB: rssBefore,
    eventsPerSecondEndToEnd: EVENTS / ((tWritten - tEvents) / 1000),
    eventsPerSecondIntoCache: EVENTS / ((tInformed - tEvents) / 1000),
    eventsPerAdapterBusySecond: EVENTS / (busyMs / 1000),
    datastoreUpdates,
  })}\n`,
);
process.exit(0);
