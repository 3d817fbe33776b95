/**
 * What one `nft -i` transaction costs by command form, versus the ruleset around it
 * (`npx tsx packages/dataplane/bench/nft-commands.ts [--n 3000]`; needs root and netns). It programs the
 * `scale.ts` cluster of `--n` endpoints into a scratch namespace, then times (median of 30) one-command
 * transactions through the driver's long-lived session. nft refills its cache after every commit (each
 * moves the ruleset generation), so a form's cost shows what that refill lists: `add element` lists every
 * set, a verdict naming a chain every chain too, a set or map declaration only the tables (the rest of a
 * declaration with a chain verdict is the kernel validating the jumps at commit). Prints one line per form.
 */
import { performance } from "node:perf_hooks";
import { createCalcGraph } from "@margay/policy";
import { argValue } from "../../../scripts/scale-kit.js";
import { createLinuxDataplane, createProcessRunner, type DataplaneUpdate } from "../src/index.js";
import { inNetns } from "../src/kernel/netns.js";
import { createNftSession } from "../src/nft/session.js";
import { createNetnsLab } from "../src/testing/index.js";
import { cluster } from "./scale.js";

const n = Number(argValue("n", "3000"));
const lab = createNetnsLab("mgdpc");
try {
  const ns = await lab.add("node");
  const graph = createCalcGraph({ nodeName: "bench-node" });
  for (const r of cluster(n)) graph.upsert(r);
  graph.markInSync();
  const runner = createProcessRunner();
  const driver = createLinuxDataplane({ netns: ns, nodeName: "bench-node", reconcileIntervalMs: 0, runner });
  try {
    await driver.apply([
      { kind: "host-update", node: "bench-node", addresses: ["172.20.0.1/16"] },
      ...(graph.flush() as DataplaneUpdate[]),
    ]);
    const listing = (await runner.run(inNetns(ns, ["nft", "list", "ruleset"]))).stdout.split("\n");
    const named = (kw: string) =>
      listing.filter((l) => l.trim().startsWith(`${kw} `)).map((l) => l.trim().split(" ")[1]!);
    const sets = named("set");
    const chains = named("chain");
    const plain = sets.find((s) => s.startsWith("a4-"))!;
    const chain = chains.find((c) => c.startsWith("ei-"))!;
    process.stdout.write(`${n} endpoints: ${sets.length} sets, ${chains.length} chains\n`);
    const t = "inet margay";
    const ip = (k: number, i: number) => `10.${250 + k}.${i >> 8}.${i & 255}`;
    const forms: Record<string, (i: number) => string> = {
      "add table (lists nothing)": () => `add table ${t}`,
      "add element, plain set": (i) => `add element ${t} ${plain} { ${ip(0, i)} }`,
      "delete element, plain set": (i) => `delete element ${t} ${plain} { ${ip(0, i)} }`,
      "add set declaration with element": (i) =>
        `add set ${t} ${plain} { type ipv4_addr; elements = { ${ip(1, i)} } }`,
      "add element, verdict map, goto chain": (i) => `add element ${t} wl-to { "xa${i}" : goto ${chain} }`,
      "add map declaration, goto chain": (i) =>
        `add map ${t} wl-to { type ifname : verdict; elements = { "xb${i}" : goto ${chain} } }`,
      "add map declaration, drop (no jump to validate)": (i) =>
        `add map ${t} wl-to { type ifname : verdict; elements = { "xd${i}" : drop } }`,
      "delete element, verdict map": (i) => `delete element ${t} wl-to { "xb${i}" }`,
      "add chain": (i) => `add chain ${t} xc${i}`,
      "flush chain": (i) => `flush chain ${t} xc${i}`,
    };
    const session = createNftSession(runner, ns, "margay")!;
    try {
      for (const [name, line] of Object.entries(forms)) {
        const times: number[] = [];
        for (let i = 0; i < 30; i++) {
          const t0 = performance.now();
          await session.run(line(i));
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        process.stdout.write(`  ${name}: ${times[15]!.toFixed(2)} ms\n`);
      }
    } finally {
      session.close();
    }
  } finally {
    await driver.close();
  }
} finally {
  await lab.close();
}
