/**
 * `npm run bench`: the policy calculation graph on a synthetic cluster (10,000 endpoints, 1,000 policies,
 * 200 namespaces). Measures time to the first in-sync, sustained endpoint label changes per second and
 * heap, next to a brute-force recomputation (a from-scratch calculation per change) fed the same changes.
 *
 * Method, so a reader can check it:
 * - every (scenario, side) runs in a fresh process (this file re-spawned with `--child`), ours and the
 *   brute force alike, alternating which side goes first;
 * - every change is a real label change: an endpoint moves to an app it does not have (no no-ops);
 * - ours: the changes go in as SAMPLES equal chunks, each chunk one rate sample; brute force: the first
 *   SAMPLES of the same changes, each one full recomputation, one rate sample each. Both sides have the
 *   same number of samples; the table gives min/median/max of each;
 * - rates per wall-clock second and per CPU second of the measuring process (the steadier figure on a
 *   shared machine). No figure is divided by a typed-in constant: Calico's own calc graph is not run here,
 *   so no ratio against it is claimed.
 *
 * `BENCH_QUICK=1` runs a tiny cluster. Writes `policy.json` (see scripts/bench-kit.ts for where).
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createCalcGraph, type PolicyModelResource } from "../src/index.js";
import { fmt, type Summary, size, summarize, writeResult } from "../../../scripts/bench-kit.js";
import { APPS, buildCluster, type ClusterSpec, endpoint, initialApp, rng } from "./cluster.js";

const SPEC: ClusterSpec = size(
  { namespaces: 200, endpoints: 10_000, policies: 1_000, globalShare: 0.2, nodes: 100 },
  { namespaces: 20, endpoints: 500, policies: 50, globalShare: 0.2, nodes: 10 },
);
const LABEL_CHANGES = size(20_000, 1_000);
const BATCH = 100;
/** Rate samples per side: ours splits its changes into this many chunks; brute force recomputes this often. */
const SAMPLES = size(10, 3);
/** Fresh-process repetitions of each (scenario, side). */
const RUNS = size(3, 1);

const SCENARIOS = [
  { name: `one node (${Math.round(SPEC.endpoints / SPEC.nodes)} local endpoints)`, nodeName: "node-0" },
  { name: "all endpoints local", nodeName: undefined },
] as const;

type Side = "incremental" | "brute-force";

interface ChildResult {
  firstInSyncMs: number;
  initialUpdates: number;
  heapMb: number;
  /** Changes per wall-clock second, one per sample. */
  rates: number[];
  /** Changes per CPU second, one per sample. */
  cpuRates: number[];
  updatesEmitted: number;
  stats?: unknown;
}

/** The same real label changes for every process: each moves an endpoint to an app it does not have. */
function labelChanges(spec: ClusterSpec, count: number) {
  const r = rng(7);
  const app = Array.from({ length: spec.endpoints }, (_, i) => initialApp(i, spec));
  return Array.from({ length: count }, () => {
    const i = Math.floor(r() * spec.endpoints);
    const next = (app[i]! + 1 + Math.floor(r() * (APPS - 1))) % APPS;
    app[i] = next;
    return endpoint(i, spec, next);
  });
}

function firstSync(resources: readonly PolicyModelResource[], nodeName: string | undefined) {
  const t0 = performance.now();
  const graph = createCalcGraph({ nodeName });
  for (const r of resources) graph.upsert(r);
  graph.markInSync();
  const updates = graph.flush();
  return { graph, ms: performance.now() - t0, updates: updates.length };
}

const key = (x: PolicyModelResource) => `${x.kind}/${x.metadata.namespace ?? ""}/${x.metadata.name}`;

function child(scenario: number, side: Side): ChildResult {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heapMb = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed / 1024 / 1024;
  };
  const nodeName = SCENARIOS[scenario]!.nodeName;
  const resources = buildCluster(SPEC);
  const changes = labelChanges(SPEC, LABEL_CHANGES);
  const before = heapMb();
  const { graph, ms, updates } = firstSync(resources, nodeName);
  const heap = heapMb() - before;
  const rates: number[] = [];
  const cpuRates: number[] = [];
  let emitted = 0;
  if (side === "incremental") {
    const chunk = Math.floor(LABEL_CHANGES / SAMPLES);
    for (let s = 0; s < SAMPLES; s++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      for (let n = s * chunk; n < (s + 1) * chunk; n++) {
        graph.upsert(changes[n]!);
        if ((n + 1) % BATCH === 0) emitted += graph.flush().length;
      }
      emitted += graph.flush().length;
      const cpu = process.cpuUsage(c0);
      rates.push(chunk / ((performance.now() - t0) / 1000));
      cpuRates.push(chunk / ((cpu.user + cpu.system) / 1e6));
    }
    return {
      firstInSyncMs: ms,
      initialUpdates: updates,
      heapMb: heap,
      rates,
      cpuRates,
      updatesEmitted: emitted,
      stats: graph.stats(),
    };
  }
  // Brute force: what a non-incremental implementation does for each change (recompute everything).
  const state = new Map(resources.map((x) => [key(x), x]));
  for (let s = 0; s < SAMPLES; s++) {
    const c = changes[s]!;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    state.set(key(c), c);
    emitted += firstSync([...state.values()], nodeName).updates;
    const cpu = process.cpuUsage(c0);
    rates.push(1 / ((performance.now() - t0) / 1000));
    cpuRates.push(1 / ((cpu.user + cpu.system) / 1e6));
  }
  return {
    firstInSyncMs: ms,
    initialUpdates: updates,
    heapMb: heap,
    rates,
    cpuRates,
    updatesEmitted: emitted,
  };
}

function spawnChild(scenario: number, side: Side): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, "--child", String(scenario), side],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.on("exit", (code) => {
      if (code !== 0) reject(new Error(`policy bench child ${scenario}/${side} exited ${code}`));
      else resolve(JSON.parse(out.trim().split("\n").pop()!) as ChildResult);
    });
  });
}

async function main() {
  const ci = process.argv.indexOf("--child");
  if (ci >= 0) {
    const r = child(Number(process.argv[ci + 1]), process.argv[ci + 2] as Side);
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  console.log(
    `@margay/policy calc graph: ${SPEC.endpoints} endpoints, ${SPEC.policies} policies, ${SPEC.namespaces} namespaces; ` +
      `${RUNS} fresh-process runs per side, ${SAMPLES} rate samples per run`,
  );
  const results = [];
  for (let s = 0; s < SCENARIOS.length; s++) {
    const runs: Record<Side, ChildResult[]> = { incremental: [], "brute-force": [] };
    for (let r = 0; r < RUNS; r++) {
      const order: Side[] = r % 2 === 0 ? ["incremental", "brute-force"] : ["brute-force", "incremental"];
      for (const side of order) runs[side].push(await spawnChild(s, side));
    }
    const all = (side: Side, f: (c: ChildResult) => number[]) => summarize(runs[side].flatMap(f));
    const inc = runs.incremental;
    const row = {
      scenario: SCENARIOS[s]!.name,
      firstInSyncMs: summarize(inc.map((c) => c.firstInSyncMs)),
      initialUpdates: inc[0]!.initialUpdates,
      heapMb: summarize(inc.map((c) => c.heapMb)),
      incremental: {
        changesPerSecond: all("incremental", (c) => c.rates),
        changesPerCpuSecond: all("incremental", (c) => c.cpuRates),
        updatesEmitted: inc[0]!.updatesEmitted,
      },
      bruteForce: {
        changesPerSecond: all("brute-force", (c) => c.rates),
        changesPerCpuSecond: all("brute-force", (c) => c.cpuRates),
      },
      stats: inc[0]!.stats,
    };
    results.push(row);
  }
  const f = (x: Summary, d = 0) => fmt(x, d);
  console.table(
    results.map((x) => ({
      scenario: x.scenario,
      "first in-sync ms": f(x.firstInSyncMs),
      "changes/s (wall)": f(x.incremental.changesPerSecond),
      "changes/CPU s": f(x.incremental.changesPerCpuSecond),
      "brute force/s (wall)": f(x.bruteForce.changesPerSecond, 2),
      "incremental ÷ brute (medians)": `${(x.incremental.changesPerSecond.median / x.bruteForce.changesPerSecond.median).toFixed(0)}×`,
      "heap MB": f(x.heapMb),
    })),
  );
  writeResult("policy", {
    benchmark: "policy-calc-graph",
    node: process.version,
    cluster: SPEC,
    labelChanges: LABEL_CHANGES,
    batch: BATCH,
    samplesPerRun: SAMPLES,
    runs: RUNS,
    method:
      "fresh process per (scenario, side), order alternating; only real label changes; incremental: LABEL_CHANGES in SAMPLES chunks, one rate per chunk; brute force: the first SAMPLES of the same changes, one full recomputation each",
    results,
  });
}

await main();
