/**
 * Benchmark of @margay/kube-adapter against a fake API server (real HTTP, on its own thread):
 *  1. end to end (adapter-child.ts, a fresh process per run): initial sync of 50,000 pods in 1,000
 *     namespaces into the memory datastore (time, peak memory), then sustained watch events per second;
 *  2. the informer alone against @kubernetes/client-node's informer, the peer (list-child.ts): each list
 *     is a cold start in a fresh process against the same server (held by this process), the order
 *     alternating run by run, and both caches must hold the same objects (a digest of namespace/name,
 *     resourceVersion, pod IP and labels is compared) or the run fails.
 * RUNS (3) runs of each; min/median/max. `BENCH_QUICK=1`: 2,000 pods. Writes `kube-adapter.json`.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, size, type Summary, summarizeBy, writeResult } from "../../../scripts/bench-kit.js";
import { startFakeServerThread } from "./fake-server.js";

const PODS = Number(process.env.BENCH_PODS ?? size(50_000, 2_000));
const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? size(1_000, 40));
const NODES = 500;
const EVENTS = Number(process.env.BENCH_EVENTS ?? size(100_000, 5_000));
const RUNS = 3;

const here = fileURLToPath(new URL(".", import.meta.url));
const progress = (what: string) => process.stderr.write(`[kube-adapter bench] ${what}\n`);

/** Runs a bench script in a fresh Node process (tsx loader) and parses its one JSON line. */
function child<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(here, script), ...args], {
      cwd: join(here, ".."),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.on("exit", (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split("\n").pop()!) as T)
        : reject(new Error(`${script} ${args[0]} exited ${code}`)),
    );
  });
}

interface ListRun {
  ms: number;
  objects: number;
  digest: string;
  rssMiB: number;
  version?: string;
}
interface AdapterRun {
  initialSyncMs: number;
  initialSyncBusyMs: number;
  peakRssMiB: number;
  peakHeapMiB: number;
  rssBeforeMiB: number;
  eventsPerSecondEndToEnd: number;
  eventsPerSecondIntoCache: number;
  eventsPerAdapterBusySecond: number;
  datastoreUpdates: number;
}

async function main() {
  // 1. End to end, each run in a fresh process with its own server thread.
  const adapterRuns: AdapterRun[] = [];
  for (let r = 0; r < RUNS; r++) {
    adapterRuns.push(
      await child<AdapterRun>("adapter-child.ts", [
        JSON.stringify({ pods: PODS, namespaces: NAMESPACES, nodes: NODES, events: EVENTS }),
      ]),
    );
    progress(`adapter run ${r + 1}: sync ${Math.round(adapterRuns[r]!.initialSyncMs)} ms`);
  }

  // 2. Informer lists, ours and the peer's, each cold in a fresh process, alternating which goes first.
  const server = await startFakeServerThread({ bookmarkIntervalMs: 200 });
  const ours: ListRun[] = [];
  const peer: ListRun[] = [];
  try {
    await server.call({ op: "populate", pods: PODS, namespaces: NAMESPACES, nodes: NODES });
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? (["ours", "peer"] as const) : (["peer", "ours"] as const);
      for (const side of order) {
        const x = await child<ListRun>("list-child.ts", [side, server.url]);
        (side === "ours" ? ours : peer).push(x);
        progress(`list run ${r + 1} ${side}: ${Math.round(x.ms)} ms, ${x.objects} objects`);
      }
    }
  } finally {
    await server.close();
  }
  for (const x of [...ours, ...peer]) {
    if (x.objects !== PODS || x.digest !== ours[0]!.digest)
      throw new Error(
        `the two informers did not hold the same ${PODS} pods (${x.objects}, digest ${x.digest})`,
      );
  }

  const results = {
    pods: PODS,
    namespaces: NAMESPACES,
    runs: RUNS,
    endToEnd: {
      initialSyncMs: summarizeBy(adapterRuns, (r) => r.initialSyncMs),
      initialSyncAdapterBusyMs: summarizeBy(adapterRuns, (r) => r.initialSyncBusyMs),
      peakRssMiB: summarizeBy(adapterRuns, (r) => r.peakRssMiB),
      events: EVENTS,
      eventsPerSecondEndToEnd: summarizeBy(adapterRuns, (r) => r.eventsPerSecondEndToEnd),
      eventsPerSecondIntoCache: summarizeBy(adapterRuns, (r) => r.eventsPerSecondIntoCache),
      eventsPerAdapterBusySecond: summarizeBy(adapterRuns, (r) => r.eventsPerAdapterBusySecond),
      runs: adapterRuns,
    },
    informerList: {
      method:
        "each list a cold start in a fresh process (imports loaded before the clock starts), order alternating; both caches hold the same objects (digest compared)",
      ours: {
        name: "@margay/kube-adapter createInformer",
        ms: summarizeBy(ours, (r) => r.ms),
        rssMiB: summarizeBy(ours, (r) => r.rssMiB),
      },
      peer: {
        name: `@kubernetes/client-node ${peer[0]!.version} makeInformer`,
        ms: summarizeBy(peer, (r) => r.ms),
        rssMiB: summarizeBy(peer, (r) => r.rssMiB),
      },
      objects: PODS,
      digest: ours[0]!.digest,
    },
    node: process.version,
  };
  const s = (x: Summary) => fmt(x, 0);
  console.table({
    "initial sync (ms)": s(results.endToEnd.initialSyncMs),
    "peak RSS (MiB)": s(results.endToEnd.peakRssMiB),
    "events/s end to end": s(results.endToEnd.eventsPerSecondEndToEnd),
    [`list ${PODS} pods, ours (ms)`]: s(results.informerList.ours.ms),
    [`list ${PODS} pods, client-node (ms)`]: s(results.informerList.peer.ms),
  });
  writeResult("kube-adapter", results);
}

await main();
