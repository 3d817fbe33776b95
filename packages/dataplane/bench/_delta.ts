import { performance } from "node:perf_hooks";
import { createCalcGraph } from "@margay/policy";
import { createDataplaneModel, createLinuxDataplane, createProcessRunner, type DataplaneUpdate, type CommandRunner, diffRuleset, inNetns, renderRuleset } from "@margay/dataplane";
import { createNetnsLab } from "@margay/dataplane/testing";
import { ENDPOINTS, ifOf, ipOf, median, resources, routeSide, workload } from "./data.js";
const base = createProcessRunner();
const t: Record<string, number> = {};
const runner: CommandRunner = {
  async run(argv, o) { const t0 = performance.now(); try { return await base.run(argv, o); } finally { t.nft = performance.now() - t0; } },
  start(argv) { return base.start!(argv); },
};
const RENDER = { table: "margay", workloadPrefixes: ["mgy"], marks: { allow: 0x10000, pass: 0x20000 }, endpointToHost: "accept" as const, priority: 0 };
const lab = createNetnsLab("mgdpb");
try {
  const ns = await lab.add("node");
  const links = ["link add eth0 type veth peer name eth0p", "addr add 172.20.0.1/16 dev eth0", "link set eth0 up", "link set eth0p up"];
  for (let i = 0; i < ENDPOINTS; i++) links.push(`link add ${ifOf(i)} type veth peer name ${ifOf(i).replace("mgyb", "peer")}`, `link set ${ifOf(i)} up`);
  await base.run(["ip", "-n", ns.name, "-batch", "-"], { stdin: `${links.join("\n")}\n` });
  const graph = createCalcGraph({ nodeName: "bench-node" });
  for (const r of resources()) graph.upsert(r);
  graph.markInSync();
  const all: DataplaneUpdate[] = [...routeSide(), ...graph.flush()];
  const model = createDataplaneModel(); model.applyBatch(all);
  let prev = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER);
  const d = createLinuxDataplane({ netns: ns, nodeName: "bench-node", reconcileIntervalMs: 0, runner });
  await d.apply([...all, { kind: "in-sync" }]);
  const ours: number[] = [], raw: number[] = [], nftOurs: number[] = [], rawIp: number[] = [], rawNft: number[] = [], js: number[] = [];
  for (let k = 0; k < 30; k++) {
    const i = ENDPOINTS + k;
    await base.run(["ip", "-n", ns.name, "link", "add", ifOf(i), "type", "veth", "peer", "name", `peerx${k}`]);
    await base.run(["ip", "-n", ns.name, "link", "set", ifOf(i), "up"]);
    graph.upsert(workload(i));
    const ups: DataplaneUpdate[] = [{ kind: "route-update", dst: `${ipOf(i)}/32`, type: "local-workload", ifname: ifOf(i) }, ...graph.flush()];
    let t0 = performance.now();
    await d.apply(ups);
    ours.push(performance.now() - t0); nftOurs.push(t.nft!);
    model.applyBatch(ups);
    const next = renderRuleset(model.policy, [...model.routes.pools.values()], RENDER);
    const fwd = diffRuleset(prev, next, RENDER), back = diffRuleset(next, prev, RENDER);
    await base.run(inNetns(ns, ["nft", "-f", "-"]), { stdin: back });
    await base.run(["ip", "-n", ns.name, "route", "del", `${ipOf(i)}/32`, "proto", "80"]);
    t0 = performance.now();
    await base.run(["ip", "-n", ns.name, "-batch", "-"], { stdin: `route replace ${ipOf(i)}/32 dev ${ifOf(i)} scope link proto 80 table 254\n` });
    const t1 = performance.now();
    await base.run(inNetns(ns, ["nft", "-f", "-"]), { stdin: fwd });
    const t2 = performance.now();
    raw.push(t2 - t0); rawIp.push(t1 - t0); rawNft.push(t2 - t1);
    prev = next;
  }
  const f = (xs: number[]) => median(xs).toFixed(1);
  console.log("ours", f(ours), "ours-nft", f(nftOurs), "| raw", f(raw), "raw-ip", f(rawIp), "raw-nft", f(rawNft));
  await d.close();
} finally { await lab.close(); }
