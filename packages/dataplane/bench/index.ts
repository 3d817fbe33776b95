/**
 * Benchmark: program 10,000 routes and 1,000 endpoints with their policies into a scratch namespace,
 * then change one endpoint; compare with applying the same kernel content raw in the same run, two ways:
 * - naive raw: a fresh `ip -batch` of the pre-rendered route lines, then a fresh `nft -f` of the
 *   pre-rendered ruleset, one after the other (what a shell script does);
 * - fair raw: a long-lived `ip -batch -` (started before the clock, as ours keeps one) fed the same
 *   lines while `nft -f` of the same ruleset runs in parallel (the overlap ours exploits).
 * Rounds interleave the three; min/median/max of each. Our driver runs in this process (a fresh driver
 * per round); the baselines are the kernel tools themselves.
 *
 *   npm run bench            (root; needs root and netns)   BENCH_QUICK=1: 500 routes, 50 endpoints
 *
 * Writes dataplane.json where scripts/bench-kit.ts says.
 */
import { performance } from "node:perf_hooks";
import { createCalcGraph, type PolicyUpdate } from "@margay/policy";
// The built package (`prebench` runs tsup): the code users run, without a dev loader in the way.
import {
  createDataplaneModel,
  createLinuxDataplane,
  type DataplaneUpdate,
  diffRoutes,
  diffRuleset,
  inNetns,
  type NftRenderOptions,
  renderFull,
  renderRuleset,
} from "@margay/dataplane";
import { createNetnsLab } from "@margay/dataplane/testing";
import { fmt, summarize, writeResult } from "../../../scripts/bench-kit.js";
import {
  DELTAS,
  ENDPOINTS,
  POLICIES,
  ROUNDS,
  ifOf,
  ipOf,
  ms,
  resources,
  routeSide,
  workload,
} from "./data.js";
import { type RawIpSession, startRawIp } from "./raw-ip.js";

const RENDER: NftRenderOptions = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept",
  priority: 0,
};

async function main() {
  const lab = createNetnsLab("mgdpb");
  let fairIp: RawIpSession | undefined;
  try {
    const ns = await lab.add("node");
    const run = (argv: string[], stdin?: string) => lab.runner.run(argv, { stdin });
    // Setup (not timed): an uplink and 1,000 workload interfaces.
    const links = [
      "link add eth0 type veth peer name eth0p",
      "addr add 172.20.0.1/16 dev eth0",
      "link set eth0 up",
      "link set eth0p up",
    ];
    for (let i = 0; i < ENDPOINTS; i++)
      links.push(
        `link add ${ifOf(i)} type veth peer name ${ifOf(i).replace("mgyb", "peer")}`,
        `link set ${ifOf(i)} up`,
      );
    await run(["ip", "-n", ns.name, "-batch", "-"], `${links.join("\n")}\n`);

    const graph = createCalcGraph({ nodeName: "bench-node" });
    for (const r of resources()) graph.upsert(r);
    graph.markInSync();
    const policyUpdates: PolicyUpdate[] = graph.flush();
    const all: DataplaneUpdate[] = [...routeSide(), ...policyUpdates];

    // Pre-render the same kernel content for the raw baseline.
    const model = createDataplaneModel();
    model.applyBatch(all);
    const plan = model.planRoutes({
      nodeName: "bench-node",
      vxlanDevice: "vxlan.margay",
      vxlanVni: 4096,
      vxlanPort: 4789,
      vxlanMtu: 1450,
      ipipDevice: "tunl0",
      ipipSupported: false,
    });
    const routeText = `${diffRoutes(new Map(), plan.routes, { table: 254, protocol: 80 }).lines.join("\n")}\n`;
    const ruleset = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER);
    const nftText = renderFull(ruleset, RENDER);
    const clear = async () => {
      await run(["ip", "-n", ns.name, "route", "flush", "proto", "80"]);
      await run(inNetns(ns, ["nft", "-f", "-"]), "add table inet margay\ndelete table inet margay\n");
    };

    const routeLines = routeText.trimEnd().split("\n");
    const rawFull: number[] = [];
    const fairFull: number[] = [];
    const oursFull: number[] = [];
    fairIp = startRawIp(ns.name);
    for (let round = 0; round < ROUNDS; round++) {
      await clear();
      let t0 = performance.now();
      await run(["ip", "-n", ns.name, "-force", "-batch", "-"], routeText);
      await run(inNetns(ns, ["nft", "-f", "-"]), nftText);
      rawFull.push(ms(t0));
      await clear();
      t0 = performance.now();
      await Promise.all([fairIp.run(routeLines), run(inNetns(ns, ["nft", "-f", "-"]), nftText)]);
      fairFull.push(ms(t0));
      await clear();
      const driver = createLinuxDataplane({ netns: ns, nodeName: "bench-node", reconcileIntervalMs: 0 });
      t0 = performance.now();
      await driver.apply([...all, { kind: "in-sync" }]);
      oursFull.push(ms(t0));
      if (round < ROUNDS - 1) await driver.close();
      else {
        // One-endpoint changes on the fully programmed node: a new pod (route, endpoint, set members).
        const oursDelta: number[] = [];
        const rawDelta: number[] = [];
        const fairDelta: number[] = [];
        let prevRuleset = ruleset;
        for (let d = 0; d < DELTAS; d++) {
          const i = ENDPOINTS + d;
          await run([
            "ip",
            "-n",
            ns.name,
            "link",
            "add",
            ifOf(i),
            "type",
            "veth",
            "peer",
            "name",
            `peerx${d}`,
          ]);
          await run(["ip", "-n", ns.name, "link", "set", ifOf(i), "up"]);
          graph.upsert(workload(i));
          const ups: DataplaneUpdate[] = [
            { kind: "route-update", dst: `${ipOf(i)}/32`, type: "local-workload", ifname: ifOf(i) },
            ...graph.flush(),
          ];
          t0 = performance.now();
          await driver.apply(ups);
          oursDelta.push(ms(t0));
          // Raw: the same route line and the same nft difference, pre-rendered, applied to a copy of the change
          // (undo ours first so the raw apply does the same kernel work).
          model.applyBatch(ups);
          const nextRuleset = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER);
          const forward = diffRuleset(prevRuleset, nextRuleset, RENDER);
          const backward = diffRuleset(nextRuleset, prevRuleset, RENDER);
          await run(inNetns(ns, ["nft", "-f", "-"]), backward);
          await run(["ip", "-n", ns.name, "route", "del", `${ipOf(i)}/32`, "proto", "80"]);
          t0 = performance.now();
          await run(
            ["ip", "-n", ns.name, "-batch", "-"],
            `route replace ${ipOf(i)}/32 dev ${ifOf(i)} scope link proto 80 table 254\n`,
          );
          await run(inNetns(ns, ["nft", "-f", "-"]), forward);
          rawDelta.push(ms(t0));
          // Fair raw: undo again, then the long-lived ip and nft -f in parallel.
          await run(inNetns(ns, ["nft", "-f", "-"]), backward);
          await run(["ip", "-n", ns.name, "route", "del", `${ipOf(i)}/32`, "proto", "80"]);
          t0 = performance.now();
          await Promise.all([
            fairIp.run([`route replace ${ipOf(i)}/32 dev ${ifOf(i)} scope link proto 80 table 254`]),
            run(inNetns(ns, ["nft", "-f", "-"]), forward),
          ]);
          fairDelta.push(ms(t0));
          prevRuleset = nextRuleset;
        }
        const snap = await driver.snapshot();
        await driver.close();
        const cmp = (ours: number[], naive: number[], fair: number[]) => {
          const o = summarize(ours);
          const n = summarize(naive);
          const f = summarize(fair);
          return {
            oursMs: o,
            naiveRawMs: n,
            fairRawMs: f,
            oursOverNaiveRaw: o.median / n.median,
            oursOverFairRaw: o.median / f.median,
          };
        };
        const result = {
          scale: {
            routes: plan.routes.size,
            endpoints: ENDPOINTS,
            policies: POLICIES,
            ipSets: model.policy.ipSets.size,
            nftBytes: nftText.length,
          },
          fullSync: cmp(oursFull, rawFull, fairFull),
          oneEndpoint: cmp(oursDelta, rawDelta, fairDelta),
          programmedRoutes: snap.routes.length,
          node: process.version,
        };
        console.table({
          [`full sync (${result.scale.routes} routes, ${ENDPOINTS} endpoints)`]: {
            "ours ms": fmt(result.fullSync.oursMs),
            "naive raw ms": fmt(result.fullSync.naiveRawMs),
            "fair raw ms": fmt(result.fullSync.fairRawMs),
            "ours/fair (medians)": result.fullSync.oursOverFairRaw.toFixed(2),
          },
          "one-endpoint change": {
            "ours ms": fmt(result.oneEndpoint.oursMs),
            "naive raw ms": fmt(result.oneEndpoint.naiveRawMs),
            "fair raw ms": fmt(result.oneEndpoint.fairRawMs),
            "ours/fair (medians)": result.oneEndpoint.oursOverFairRaw.toFixed(2),
          },
        });
        console.log(
          `routes programmed: ${result.programmedRoutes}, ip sets: ${result.scale.ipSets}, nft bytes: ${result.scale.nftBytes}`,
        );
        writeResult("dataplane", result);
      }
    }
  } finally {
    await fairIp?.close();
    await lab.close();
  }
}

await main();
