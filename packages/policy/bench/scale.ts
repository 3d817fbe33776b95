/**
 * Policy calc-graph growth curves (`npm run bench:scale`, or `npx tsx packages/policy/bench/scale.ts`) on
 * the realistic cluster of `realistic-cluster.ts`: endpoints 1k → 100k with policies 1:10 and namespaces
 * 1:50, every endpoint known cluster-wide and 250 of them local (node-0). At each size:
 *
 * - `first-sync-vs-endpoints`: wall seconds from an empty graph to the first flush that carries `in-sync`
 *   (every resource upserted, then one flush); goal at 100k: < 10 s;
 * - `heap-vs-endpoints`: heap held after the first sync, less the heap before it (the resources themselves
 *   are built before, and stay referenced until after the reading: the child reports their count at the
 *   end), after two forced GCs; goal at 100k: < 1 GB. Before 7 Dec nothing read the resources after the
 *   first sync, so V8 could collect what the graph does not share of them before the reading, and the
 *   figure came out short by that much (262 → 335 MB at 100k, 30 → 37 MB at 10k, in one A/B);
 * - `change-vs-endpoints`: CPU µs per endpoint label change (a pod moves to another app of its namespace;
 *   flushed every 100 changes), i.e. 1e6 / changes per CPU second; incremental work should not grow with
 *   the cluster (flat). The changed pods are drawn uniformly over all pods, as churn falls in a real
 *   cluster, so with Zipf namespace sizes a changed pod's namespace is larger at larger N (mean 120 pods at
 *   1k, ~2,500 at 100k). That does not make the work per change grow: the graph's work for a label change
 *   does not depend on the namespace's size (the pod is re-filed under its new app within its namespace,
 *   and only selectors filed under its labels are evaluated), which the next curve counts rather than
 *   assumes, and which a matched draw confirmed (at 100k, pods drawn only from namespaces of at most 274
 *   pods, the largest at 1k, mean 79, cost the same as the uniform draws in two A/B pairs: 129.8 vs
 *   130.1 and 102.9 vs 105.4 µs); so the draws are kept uniform;
 * - `change-selector-evaluations-vs-endpoints`: the work the same changes made, counted: selector
 *   evaluations per change (`stats().selectorsEvaluated`); the child also prints the dataplane updates
 *   per change, which fall with N (0.80 at 1k, 0.12 at 100k: a moved pod less often concerns node-0's
 *   active rules, so at small N part of each change's cost is policy activation and endpoint updates, at
 *   large N hash-table traffic over every endpoint). What the change curve gains from 30k to 100k (about
 *   +40% in the runs of 7 Dec; noisy on the shared machine) is that traffic, not work: the evaluations
 *   are flat, the same 1k graph and changes cost the same alone and in a process that also holds a 100k
 *   graph (so neither GC nor heap size does it), and the CPU profile shows the same calls (two posting
 *   moves, ~4 selector evaluations per change) taking longer on tables of every endpoint;
 * - `change-floor-vs-endpoints`: the floor of `change-vs-endpoints`, the same changes in the same process
 *   replayed on the least an incremental label index keeps (`change-floor.ts`: each endpoint's labels by
 *   key and the endpoints under each label value, holding all N, filled before the first sync so that
 *   it goes through the same forced GCs), before or after the graph's change loop (alternating between
 *   runs), each loop after a full GC and a 50 ms pause, with each change's input (key string, label map)
 *   built before the timing as the graph's resources are: until 7 Dec the floor's loop ran right after
 *   the graph's with no collection between, so whole-process CPU could charge it with the graph's
 *   concurrent marking and sweeping, and it built a Map and an entries array per change. What grows
 *   there is the memory hierarchy (hash tables of every endpoint, hundreds of MB of heap), not work; the
 *   report fits the change curve's slope above it. The graph touches more tables of every endpoint per change than
 *   the floor (its items, the index's items and postings, each started or stopped selector's matches),
 *   so its growth above the floor is that same effect, larger, not a scan;
 * - `first-sync-cpu-vs-endpoints-adversarial`: the first sync's CPU seconds on the adversarial cluster of
 *   `cluster.ts` (each global policy selects a fixed share of ALL endpoints, so references grow as N²),
 *   1k → 30k endpoints: the row the issue's first measurement came from, kept beside the realistic one.
 *
 * Each (size, run) is a fresh process (this file re-spawned with `--child`), so one size's garbage does not
 * weigh on the next. Every point is the median of `--runs` runs (default 3). Options: `--max <endpoints>`,
 * `--sizes 1000,100000` (only these), `--runs <n>`, `--skip-adversarial`; BENCH_QUICK=1 runs tiny sizes.
 * Prints one JSON line per curve (scripts/scale-kit.ts).
 */
import { spawn } from "node:child_process";
import type { WorkloadEndpoint } from "@margay/api";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { quick } from "../../../scripts/bench-kit.js";
import { argValue, cpuMicros, emitCurve, makeCurve } from "../../../scripts/scale-kit.js";
import { createCalcGraph } from "../src/index.js";
import { PostingsFloor } from "./change-floor.js";
import { buildCluster, rng } from "./cluster.js";
import {
  buildRealisticCluster,
  type RealisticSpec,
  realisticApp,
  realisticEndpoint,
  realisticLayout,
} from "./realistic-cluster.js";

const only = argValue("sizes", "");
const SIZES = (
  only !== "" ? only.split(",").map(Number) : quick ? [1_000, 3_000] : [1_000, 3_000, 10_000, 30_000, 100_000]
).filter((x) => x <= Number(argValue("max", "Infinity")));
const RUNS = Number(argValue("runs", quick ? "1" : "3"));
const CHANGES = quick ? 1_000 : 5_000;
const BATCH = 100;
const LOCAL = 250;

const specFor = (endpoints: number): RealisticSpec => ({
  endpoints,
  policies: endpoints / 10,
  namespaces: endpoints / 50,
  localPerNode: LOCAL,
});

interface ChildResult {
  firstSyncS: number;
  firstSyncCpuS: number;
  heapMb: number;
  /** Resources of the cluster (read after the heap reading, which keeps them alive through it). */
  resources: number;
  changeUs: number;
  /** Selector evaluations per change. */
  changeEvaluations: number;
  /** Dataplane updates the changes' flushes emitted, per change. */
  changeUpdates: number;
  /** Mean size of the changed pods' namespaces. */
  changedNamespaceSize: number;
  /** CPU µs per change on the floor index (`change-floor.ts`). */
  changeFloorUs: number;
  stats: unknown;
}

/**
 * A full GC, then a moment for V8's concurrent sweeper and marker threads to finish, before a timed loop:
 * whole-process CPU would otherwise charge the loop with collecting what the step before it left.
 */
async function settle(gc: () => void): Promise<void> {
  gc();
  await sleep(50);
}

async function child(endpoints: number, floorFirst: boolean): Promise<ChildResult> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heapMb = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / 1024 / 1024;
  };
  const spec = specFor(endpoints);
  const resources = buildRealisticCluster(spec);
  const layout = realisticLayout(spec);
  // The changes, built before measuring: each pod moves to an app of its namespace it does not have.
  const r = rng(7);
  const app = Array.from({ length: endpoints }, (_, i) => realisticApp(layout, i));
  const changes: WorkloadEndpoint[] = [];
  let nsSizes = 0;
  for (let c = 0; c < CHANGES; c++) {
    const i = Math.floor(r() * endpoints);
    const apps = layout.apps[layout.podNs[i]!]!;
    if (apps < 2) continue;
    app[i] = (app[i]! + 1 + Math.floor(r() * (apps - 1))) % apps;
    nsSizes += layout.sizes[layout.podNs[i]!]!;
    changes.push(realisticEndpoint(i, layout.podNs[i]!, layout.podIndex[i]!, app[i]!, spec));
  }
  // The floor's inputs too (key string and label map), so its loop times the index's work only.
  const floorChanges = changes.map((x) => PostingsFloor.prepare(x));
  // The floor index of the same endpoints, filled before the heap reading (so the graph's heap figure
  // leaves it out, as it leaves out the resources) and before the forced GCs the graph's structures also
  // go through.
  const floor = new PostingsFloor();
  for (const x of resources) if (x.kind === "WorkloadEndpoint") floor.set(x);
  if (floor.size !== endpoints) throw new Error(`floor holds ${floor.size} endpoints, not ${endpoints}`);
  const before = heapMb();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const graph = createCalcGraph({ nodeName: "node-0" });
  for (const x of resources) graph.upsert(x);
  graph.markInSync();
  graph.flush();
  const firstSyncS = (performance.now() - t0) / 1000;
  const syncCpu = process.cpuUsage(cpu0);
  const firstSyncCpuS = (syncCpu.user + syncCpu.system) / 1e6;
  // `resources` is read again below, so it is alive here and the difference is the graph's.
  const heap = heapMb() - before;
  const evaluated0 = graph.stats().selectorsEvaluated;
  let updates = 0;
  let graphCpu = 0;
  let floorCpu = 0;
  const graphLoop = async () => {
    await settle(gc);
    const g0 = cpuMicros();
    for (let n = 0; n < changes.length; n++) {
      graph.upsert(changes[n]!);
      if ((n + 1) % BATCH === 0) updates += graph.flush().length;
    }
    updates += graph.flush().length;
    graphCpu = cpuMicros() - g0;
  };
  // The same changes on the floor, on their own (interleaving them batch by batch would have each evict
  // the other's working set and so change what the graph's figure means at the small sizes).
  const floorLoop = async () => {
    await settle(gc);
    const f0 = cpuMicros();
    for (const x of floorChanges) floor.apply(x);
    floorCpu = cpuMicros() - f0;
  };
  // Which loop goes first alternates between runs (the parent passes --floor-first on odd runs).
  for (const loop of floorFirst ? [floorLoop, graphLoop] : [graphLoop, floorLoop]) await loop();
  const stats = graph.stats();
  return {
    firstSyncS,
    firstSyncCpuS,
    heapMb: heap,
    resources: resources.length,
    changeUs: graphCpu / changes.length,
    changeEvaluations: (stats.selectorsEvaluated - evaluated0) / changes.length,
    changeUpdates: updates / changes.length,
    changedNamespaceSize: nsSizes / changes.length,
    changeFloorUs: floorCpu / changes.length,
    stats,
  };
}

/** First sync on the adversarial cluster (`cluster.ts`, as `bench/index.ts` builds it), in a fresh process. */
function adversarialChild(endpoints: number): { firstSyncS: number; firstSyncCpuS: number } {
  const resources = buildCluster({
    namespaces: endpoints / 50,
    endpoints,
    policies: endpoints / 10,
    globalShare: 0.2,
    nodes: endpoints / 100,
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const graph = createCalcGraph({ nodeName: "node-0" });
  for (const x of resources) graph.upsert(x);
  graph.markInSync();
  graph.flush();
  const cpu = process.cpuUsage(cpu0);
  return { firstSyncS: (performance.now() - t0) / 1000, firstSyncCpuS: (cpu.user + cpu.system) / 1e6 };
}

const ADVERSARIAL_SIZES = (quick ? [1_000, 3_000] : [1_000, 3_000, 10_000, 30_000]).filter(
  (x) => x <= Number(argValue("max", "Infinity")),
);

function spawnChild<T = ChildResult>(endpoints: number, mode = "--child", extra: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const argv = [...process.execArgv, process.argv[1]!, mode, String(endpoints), ...extra];
    const p = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.on("exit", (code, signal) => {
      if (code !== 0) reject(new Error(`policy scale child ${endpoints} exited ${code ?? signal}`));
      else resolve(JSON.parse(out.trim().split("\n").pop()!) as T);
    });
  });
}

async function main() {
  const ci = process.argv.indexOf("--child");
  if (ci >= 0) {
    const result = await child(Number(process.argv[ci + 1]), process.argv.includes("--floor-first"));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const ai = process.argv.indexOf("--adversarial");
  if (ai >= 0) {
    process.stdout.write(`${JSON.stringify(adversarialChild(Number(process.argv[ai + 1])))}\n`);
    return;
  }
  const sync = new Map<number, number[]>();
  const syncCpu = new Map<number, number[]>();
  const heap = new Map<number, number[]>();
  const change = new Map<number, number[]>();
  const evaluations = new Map<number, number[]>();
  const changeFloor = new Map<number, number[]>();
  const failures: string[] = [];
  for (const n of SIZES) {
    for (const m of [sync, syncCpu, heap, change, evaluations, changeFloor]) m.set(n, []);
    for (let run = 0; run < RUNS; run++) {
      try {
        const c = await spawnChild(n, "--child", run % 2 === 1 ? ["--floor-first"] : []);
        sync.get(n)!.push(c.firstSyncS);
        syncCpu.get(n)!.push(c.firstSyncCpuS);
        heap.get(n)!.push(c.heapMb);
        change.get(n)!.push(c.changeUs);
        evaluations.get(n)!.push(c.changeEvaluations);
        changeFloor.get(n)!.push(c.changeFloorUs);
        process.stderr.write(`policy scale ${n}: ${JSON.stringify(c)}\n`);
      } catch (e) {
        failures.push(`${n} endpoints: ${(e as Error).message}`);
      }
    }
  }
  const method =
    `realistic cluster (bench/realistic-cluster.ts: Zipf namespace sizes, per-namespace NetworkPolicies by app, ~1% ` +
    `global policies of bounded reach), policies = endpoints/10, namespaces = endpoints/50, ${LOCAL} endpoints local ` +
    `(node-0), all known cluster-wide; a fresh process per (size, run); median of ${RUNS} runs`;
  const LOOPS =
    "the graph's and the floor's change loops run one after the other in each run, the graph's first in even runs and the floor's first in odd ones, each after a full GC and a 50 ms pause (so neither is charged with collecting what the other or the set-up left)";
  const common = {
    package: "policy",
    x: "endpoints",
    method,
    failures: failures.length ? failures : undefined,
  };
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "first-sync-vs-endpoints",
        title: "calc graph first sync vs endpoints (realistic cluster)",
        y: "s to first in-sync",
        expectedSlope: 1,
        goal: "< 10 s at 100k endpoints / 10k policies / 2k namespaces",
      },
      sync,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "first-sync-cpu-vs-endpoints",
        title: "calc graph first sync CPU time vs endpoints (realistic cluster)",
        y: "CPU s to first in-sync",
        expectedSlope: 1,
        goal: "< 10 s at 100k endpoints (the CPU figure: what load on the shared machine moves least)",
      },
      syncCpu,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "heap-vs-endpoints",
        title: "calc graph heap after first sync vs endpoints (realistic cluster)",
        y: "MB heap",
        expectedSlope: 1,
        goal: "< 1 GB at 100k endpoints",
      },
      heap,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "change-vs-endpoints",
        title: "calc graph CPU per endpoint label change vs endpoints (realistic cluster)",
        y: "CPU µs per change (flush every 100)",
        expectedSlope: 0,
        goal: "incremental work proportional to the change (flat)",
        floor: "change-floor-vs-endpoints",
        method: `${method}; ${CHANGES} changes per run, each pod drawn uniformly over all pods (so from larger namespaces at larger N; the counted work, change-selector-evaluations-vs-endpoints, does not grow with it), built before the timing, flushed every ${BATCH}; ${LOOPS}; CPU time (whole process) of the change loop and its flushes`,
      },
      change,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "change-selector-evaluations-vs-endpoints",
        title: "calc graph selector evaluations per endpoint label change vs endpoints (realistic cluster)",
        y: "selector evaluations per change",
        expectedSlope: 0,
        goal: "the work of a change does not grow with the cluster (flat)",
        method: `${method}; the changes of change-vs-endpoints, counted by the label index (stats().selectorsEvaluated)`,
      },
      evaluations,
    ),
  );
  emitCurve(
    makeCurve(
      {
        ...common,
        name: "change-floor-vs-endpoints",
        title:
          "floor of an endpoint label change: the same changes on a minimal label index of the same endpoints, same process",
        y: "CPU µs per change",
        expectedSlope: 0,
        method: `${method}; in the same process with the graph alive, the same changes replayed on bench/change-floor.ts (filled with all endpoints before the first sync) (each endpoint's labels by key, endpoints by label value: one key lookup and one posting move per changed label), each change's input (key string, label map) built before the timing; ${LOOPS}; CPU time (whole process) of that loop; what grows here is the memory hierarchy of N-entry hash tables, not work`,
      },
      changeFloor,
    ),
  );
  if (process.argv.includes("--skip-adversarial")) return;
  const adversarial = new Map<number, number[]>();
  const advFailures: string[] = [];
  for (const n of ADVERSARIAL_SIZES) {
    adversarial.set(n, []);
    for (let run = 0; run < RUNS; run++) {
      try {
        const c = await spawnChild<{ firstSyncS: number; firstSyncCpuS: number }>(n, "--adversarial");
        adversarial.get(n)!.push(c.firstSyncCpuS);
        process.stderr.write(`policy scale adversarial ${n}: ${JSON.stringify(c)}\n`);
      } catch (e) {
        advFailures.push(`${n} endpoints: ${(e as Error).message}`);
      }
    }
  }
  emitCurve(
    makeCurve(
      {
        package: "policy",
        x: "endpoints",
        name: "first-sync-cpu-vs-endpoints-adversarial",
        title:
          "calc graph first sync CPU time vs endpoints (adversarial cluster: global policies select a fixed share of all endpoints)",
        y: "CPU s to first in-sync",
        expectedSlope: 1,
        method: `bench/cluster.ts as bench/index.ts uses it: namespaces = endpoints/50, policies = endpoints/10 (20% global, each selecting a fixed share of all endpoints, so selector references grow as endpoints²), nodes = endpoints/100, local node node-0; a fresh process per (size, run); median of ${RUNS} runs. Kept beside the realistic rows: a slope near 2 here is the generator's N² references, not the calc graph's`,
        failures: advFailures.length ? advFailures : undefined,
      },
      adversarial,
    ),
  );
}

await main();
