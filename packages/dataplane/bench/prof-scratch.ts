import { performance } from "node:perf_hooks";
import { createCalcGraph } from "@margay/policy";
import { createDataplaneModel } from "../src/model.js";
import { renderRuleset, diffRuleset, renderFull } from "../src/nft/render.js";
const RENDER = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept" as const,
  priority: 0,
};
const mod = await import("./data.js");
const graph = createCalcGraph({ nodeName: "bench-node" });
for (const r of mod.resources()) graph.upsert(r);
graph.markInSync();
const ups = graph.flush();
const model = createDataplaneModel();
model.applyBatch([...mod.routeSide(), ...ups]);
let t = performance.now();
const cache = (await import("../src/nft/render.js")).createNftRenderCache();
const a = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER, cache);
console.log("render full state", performance.now() - t);
t = performance.now();
const txt = renderFull(a, RENDER);
console.log("renderFull text", performance.now() - t, txt.length);
graph.upsert(mod.workload(1000));
const d = graph.flush();
console.log("delta updates", d.map((u) => u.kind).join(","));
t = performance.now();
model.applyBatch(d);
console.log("applyBatch", performance.now() - t);
t = performance.now();
const b = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER, cache);
console.log("render again", performance.now() - t);
t = performance.now();
const diff = diffRuleset(a, b, RENDER);
console.log("diff", performance.now() - t, diff.length);
console.log(diff.slice(0, 1500));
const sizes = new Map<string, number>();
for (const [n, s] of a.sets) sizes.set("sets", (sizes.get("sets") ?? 0) + s.elements.join(",").length);
for (const [n, c] of a.chains)
  sizes.set(n.slice(0, 2), (sizes.get(n.slice(0, 2)) ?? 0) + c.join("\n").length);
console.log(sizes);
