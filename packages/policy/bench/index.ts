/**
 * `npm run bench`: the policy calculation graph on a synthetic cluster (10,000 endpoints, 1,000 policies,
 * 200 namespaces). Measures time to the first in-sync, sustained endpoint label changes per second, and
 * heap, next to a brute-force recomputation (a from-scratch calculation per change) in the same run.
 * Rates are given per wall-clock second and per CPU second of this process: on a shared machine the
 * second is the steadier figure. Writes `<repo>/bench-results/policy.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createCalcGraph, type PolicyModelResource } from "../src/index.js";
import { APPS, buildCluster, type ClusterSpec, endpoint, rng } from "./cluster.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

const SPEC: ClusterSpec = {
  namespaces: 200,
  endpoints: 10_000,
  policies: 1_000,
  globalShare: 0.2,
  nodes: 100,
};
const LABEL_CHANGES = 20_000;
const BATCH = 100;
const BRUTE_SAMPLES = 3;
const CALICO_DESIGN_RATE = 1_000;

interface Scenario {
  readonly name: string;
  readonly nodeName: string | undefined;
}

function firstSync(resources: readonly PolicyModelResource[], nodeName: string | undefined) {
  const t0 = performance.now();
  const graph = createCalcGraph({ nodeName });
  for (const r of resources) graph.upsert(r);
  graph.markInSync();
  const updates = graph.flush();
  return { graph, ms: performance.now() - t0, updates: updates.length };
}

function run(s: Scenario, resources: readonly PolicyModelResource[]) {
  const before = heapMb();
  const { graph, ms: syncMs, updates } = firstSync(resources, s.nodeName);
  const heap = heapMb() - before;
  const stats = graph.stats();

  const r = rng(7);
  const changes = Array.from({ length: LABEL_CHANGES }, () => {
    const i = Math.floor(r() * SPEC.endpoints);
    return endpoint(i, SPEC, Math.floor(r() * APPS));
  });
  let emitted = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let n = 0; n < changes.length; n++) {
    graph.upsert(changes[n]!);
    if ((n + 1) % BATCH === 0) emitted += graph.flush().length;
  }
  emitted += graph.flush().length;
  const rate = LABEL_CHANGES / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(c0);
  const cpuRate = LABEL_CHANGES / ((cpu.user + cpu.system) / 1e6);

  // Brute force: what a non-incremental implementation does for each change (recompute everything).
  const state = new Map(
    resources.map((x) => [`${x.kind}/${x.metadata.namespace ?? ""}/${x.metadata.name}`, x]),
  );
  const b0 = performance.now();
  const bc0 = process.cpuUsage();
  for (let n = 0; n < BRUTE_SAMPLES; n++) {
    const c = changes[n]!;
    state.set(`${c.kind}/${c.metadata.namespace ?? ""}/${c.metadata.name}`, c);
    firstSync([...state.values()], s.nodeName);
  }
  const bruteRate = BRUTE_SAMPLES / ((performance.now() - b0) / 1000);
  const bcpu = process.cpuUsage(bc0);
  const bruteCpuRate = BRUTE_SAMPLES / ((bcpu.user + bcpu.system) / 1e6);
  return {
    scenario: s.name,
    syncMs,
    updates,
    heapMb: heap,
    stats,
    rate,
    cpuRate,
    emitted,
    bruteRate,
    bruteCpuRate,
  };
}

function main() {
  const resources = buildCluster(SPEC);
  const scenarios: Scenario[] = [
    { name: "one node (100 local endpoints)", nodeName: "node-0" },
    { name: "all 10,000 endpoints local", nodeName: undefined },
  ];
  const results = scenarios.map((s) => run(s, resources));
  const rows = results.map((x) => ({
    scenario: x.scenario,
    "first in-sync (ms)": x.syncMs.toFixed(0),
    "initial updates": x.updates,
    "label changes/s (wall)": x.rate.toFixed(0),
    "label changes/s (CPU)": x.cpuRate.toFixed(0),
    "brute force/s (wall)": x.bruteRate.toFixed(2),
    "incremental ÷ brute": `${(x.rate / x.bruteRate).toFixed(0)}×`,
    "vs Calico 1,000/s": `${(x.rate / CALICO_DESIGN_RATE).toFixed(1)}×`,
    "heap (MB)": x.heapMb.toFixed(0),
  }));
  console.log(
    `@margay/policy calc graph: ${SPEC.endpoints} endpoints, ${SPEC.policies} policies, ${SPEC.namespaces} namespaces`,
  );
  console.table(rows);
  const root = new URL("../../../", import.meta.url);
  mkdirSync(new URL("bench-results/", root), { recursive: true });
  const file = new URL("bench-results/policy.json", root);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        benchmark: "policy-calc-graph",
        date: new Date().toISOString(),
        node: process.version,
        cluster: SPEC,
        labelChanges: LABEL_CHANGES,
        batch: BATCH,
        calicoDesignRatePerSecond: CALICO_DESIGN_RATE,
        results: results.map((x) => ({
          scenario: x.scenario,
          firstInSyncMs: Math.round(x.syncMs),
          initialUpdates: x.updates,
          labelChangesPerSecond: Math.round(x.rate),
          labelChangesPerCpuSecond: Math.round(x.cpuRate),
          updatesEmitted: x.emitted,
          bruteForceChangesPerSecond: Number(x.bruteRate.toFixed(3)),
          bruteForceChangesPerCpuSecond: Number(x.bruteCpuRate.toFixed(3)),
          ratioIncrementalOverBruteForce: Math.round(x.rate / x.bruteRate),
          ratioOverCalicoDesign: Number((x.rate / CALICO_DESIGN_RATE).toFixed(2)),
          heapMb: Math.round(x.heapMb),
          stats: x.stats,
        })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${file.pathname}`);
}

main();
