import { performance } from "node:perf_hooks";
import { createCalcGraph } from "@margay/policy";
import { createLinuxDataplane, namedNetns } from "@margay/dataplane";
import { resources, routeSide } from "./data.js";
const graph = createCalcGraph({ nodeName: "bench-node" });
for (const r of resources()) graph.upsert(r);
graph.markInSync();
const ups = graph.flush();
const all = [...routeSide(), ...ups, { kind: "in-sync" as const }];
for (let round = 0; round < 4; round++) {
  const t0 = performance.now();
  const marks: string[] = [];
  const runner = {
    async run(argv: readonly string[]) {
      marks.push(
        `${(performance.now() - t0).toFixed(1)} ${argv.includes("nft") ? "nft" : argv.slice(3, 7).join(" ")}`,
      );
      return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" };
    },
  };
  const d = createLinuxDataplane({
    netns: namedNetns("fake"),
    nodeName: "bench-node",
    runner,
    reconcileIntervalMs: 0,
  });
  await d.apply(all);
  console.log(`round ${round}: total ${(performance.now() - t0).toFixed(1)} | ${marks.join(" | ")}`);
}
