import { performance } from "node:perf_hooks";
import { createCalcGraph } from "@margay/policy";
import { createLinuxDataplane, namedNetns } from "../dist/index.js";

import { ENDPOINTS, ifOf, ipOf, resources, routeSide, workload } from "./data.js";
const runner = { async run(argv: readonly string[], o?: { stdin?: string }) { return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" }; } };
const graph = createCalcGraph({ nodeName: "bench-node" });
for (const r of resources()) graph.upsert(r);
graph.markInSync();
const ups = graph.flush();
const d = createLinuxDataplane({ netns: namedNetns("fake"), nodeName: "bench-node", runner, reconcileIntervalMs: 0 });
let t = performance.now();
await d.apply([...routeSide(), ...ups, { kind: "in-sync" }]);
console.log("full (JS only)", (performance.now() - t).toFixed(1));
for (let k = 0; k < 30; k++) {
  const i = ENDPOINTS + k;
  graph.upsert(workload(i));
  const delta = [{ kind: "route-update" as const, dst: `${ipOf(i)}/32`, type: "local-workload" as const, ifname: ifOf(i) }, ...graph.flush()];
  t = performance.now();
  await d.apply(delta);
  console.log("delta (JS only)", (performance.now() - t).toFixed(1));
}
