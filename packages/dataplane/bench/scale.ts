/**
 * Dataplane growth curve (`npm run bench:scale`, or `npx tsx packages/dataplane/bench/scale.ts`; needs root
 * and netns): the wall time of a one-endpoint change through the Linux driver's policy half, versus the
 * endpoints already programmed (100, 1,000, 3,000).
 *
 * At each size a fresh scratch namespace gets the driver's first in-sync with N local endpoints (one policy
 * per 10 endpoints, selected by app label, each allowing its neighbour app: one IP set per policy), then
 * CHANGES one-endpoint changes, each a new pod: its endpoint update and its IP-set member (what the calc
 * graph emits for it), one `apply` each. Only policy updates go in, so the time is the nftables side.
 * The curve is `one-endpoint-change-vs-endpoints`: median ms per change; goal: flat, < 30 ms at 3,000.
 * Each point is the median over `--runs` runs (default 3) of the per-run median. The same runs measure the
 * baseline `one-endpoint-change-one-shot-vs-endpoints`: one `nft -f -` per change, as before the driver kept
 * a long-lived `nft -i`. BENCH_QUICK=1: fewer changes.
 *
 * On a shared machine wall time mostly measures the wait for a core, so each mode also has a CPU curve
 * (`...-cpu-vs-endpoints`): the CPU time one change costs, ours plus nft's plus the kernel's work done for
 * nft (this process's user + system time, the `nft -i` child's run time from /proc/<pid>/schedstat, and
 * the user + system time of exited `nft -f` children), the run's total over its changes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createCalcGraph, type PolicyModelResource } from "@margay/policy";
import { quick } from "../../../scripts/bench-kit.js";
import { argValue, emitCurve, makeCurve } from "../../../scripts/scale-kit.js";
import {
  type CommandRunner,
  createLinuxDataplane,
  createProcessRunner,
  type DataplaneUpdate,
  type NetnsHandle,
} from "../src/index.js";
import { createNetnsLab } from "../src/testing/index.js";

const SIZES = [100, 1000, 3000].filter((x) => x <= Number(argValue("max", "Infinity")));
const RUNS = Number(argValue("runs", quick ? "1" : "3"));
const CHANGES = quick ? 5 : 20;
const API_VERSION = "margay.io/v1" as const;

/**
 * CPU time in ms: this process (`self`), and its live children (schedstat, ns) plus its exited,
 * waited-for children (`nft`: the nft processes, with the kernel work they ask for).
 */
function cpuMs(): { self: number; nft: number } {
  const usage = process.cpuUsage();
  const self = (usage.user + usage.system) / 1000;
  let ms = 0;
  try {
    // Fields after the command name: state is field 3; cutime and cstime are fields 16 and 17.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ms += ((Number(f[13]) + Number(f[14])) * 1000) / 100;
    for (const tid of readdirSync("/proc/self/task")) {
      for (const pid of readFileSync(`/proc/self/task/${tid}/children`, "utf8").split(" ").filter(Boolean)) {
        try {
          ms += Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
        } catch {
          // Exited meanwhile: counted in cutime once waited for.
        }
      }
    }
  } catch {
    // No /proc: this process only.
  }
  return { self, nft: ms };
}

export const ifOf = (i: number) => `mgys${i.toString(16).padStart(6, "0")}`;
export const ipOf = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

export function workload(i: number, apps: number): PolicyModelResource {
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: `pod-${i}`, namespace: "bench", labels: { app: `app-${i % apps}` } },
    spec: {
      node: "bench-node",
      interfaceName: ifOf(i),
      ipNetworks: [`${ipOf(i)}/32`],
      profiles: ["kns.bench"],
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  } as PolicyModelResource;
}

export function cluster(endpoints: number): PolicyModelResource[] {
  const apps = Math.max(1, endpoints / 10);
  const out: PolicyModelResource[] = [
    {
      apiVersion: API_VERSION,
      kind: "Profile",
      metadata: { name: "kns.bench" },
      spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
    } as PolicyModelResource,
  ];
  for (let p = 0; p < apps; p++) {
    out.push({
      apiVersion: API_VERSION,
      kind: "NetworkPolicy",
      metadata: { name: `pol-${p}`, namespace: "bench" },
      spec: {
        selector: `app == 'app-${p}'`,
        types: ["Ingress", "Egress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: `app == 'app-${(p + 1) % apps}'` },
            destination: { ports: [80, 443, "http"] },
          },
          { action: "Allow", protocol: "UDP", destination: { ports: [53] } },
        ],
        egress: [{ action: "Allow", destination: { nets: ["10.0.0.0/8"] } }, { action: "Deny" }],
      },
    } as PolicyModelResource);
  }
  for (let i = 0; i < endpoints; i++) out.push(workload(i, apps));
  return out;
}

/**
 * A Linux driver in `ns` programmed with {@link cluster}`(endpoints)` (the calc graph in sync, its first
 * flush applied), and the graph, so a benchmark can make one-pod changes and apply their flushes.
 */
export async function syncedDriver(ns: NetnsHandle, runner: CommandRunner, endpoints: number) {
  const graph = createCalcGraph({ nodeName: "bench-node" });
  for (const r of cluster(endpoints)) graph.upsert(r);
  graph.markInSync();
  const driver = createLinuxDataplane({ netns: ns, nodeName: "bench-node", reconcileIntervalMs: 0, runner });
  try {
    await driver.apply([
      { kind: "host-update", node: "bench-node", addresses: ["172.20.0.1/16"] },
      ...(graph.flush() as DataplaneUpdate[]),
    ]);
  } catch (e) {
    await driver.close();
    throw e;
  }
  return { graph, driver };
}

/**
 * `session`: the driver as shipped (differences through a long-lived `nft -i`); `one-shot`: the same driver
 * with a runner that cannot keep a process, so every change is its own `nft -f -` (the path before the
 * session, measured in the same run as the baseline).
 */
type Mode = "session" | "one-shot";

async function oneRun(
  endpoints: number,
  mode: Mode,
): Promise<{ wall: number; cpu: number; selfCpu: number }> {
  const lab = createNetnsLab("mgdps");
  try {
    const ns = await lab.add("node");
    const apps = Math.max(1, endpoints / 10);
    const real = createProcessRunner();
    const runner: CommandRunner = mode === "session" ? real : { run: real.run.bind(real) };
    const { graph, driver } = await syncedDriver(ns, runner, endpoints);
    try {
      const times: number[] = [];
      let cpu = 0;
      let selfCpu = 0;
      for (let c = 0; c < CHANGES; c++) {
        graph.upsert(workload(endpoints + c, apps));
        const ups = graph.flush() as DataplaneUpdate[];
        const c0 = cpuMs();
        const t0 = performance.now();
        await driver.apply(ups);
        times.push(performance.now() - t0);
        const c1 = cpuMs();
        cpu += c1.self + c1.nft - c0.self - c0.nft;
        selfCpu += c1.self - c0.self;
      }
      times.sort((a, b) => a - b);
      return { wall: times[Math.floor(times.length / 2)]!, cpu: cpu / CHANGES, selfCpu: selfCpu / CHANGES };
    } finally {
      await driver.close();
    }
  } finally {
    await lab.close();
  }
}

async function main() {
  const samples: Record<Mode, Map<number, number[]>> = { session: new Map(), "one-shot": new Map() };
  const cpuSamples: Record<Mode, Map<number, number[]>> = { session: new Map(), "one-shot": new Map() };
  const failures: Record<Mode, string[]> = { session: [], "one-shot": [] };
  for (const n of SIZES) {
    for (const m of [...Object.values(samples), ...Object.values(cpuSamples)]) m.set(n, []);
    for (let r = 0; r < RUNS; r++) {
      // Alternate which mode goes first, so drift in the machine's load falls on both.
      const order: Mode[] = r % 2 === 0 ? ["session", "one-shot"] : ["one-shot", "session"];
      for (const mode of order) {
        try {
          const { wall, cpu, selfCpu } = await oneRun(n, mode);
          samples[mode].get(n)!.push(wall);
          cpuSamples[mode].get(n)!.push(cpu);
          process.stderr.write(
            `dataplane scale ${n} ${mode}: ${wall.toFixed(1)} ms wall, ${cpu.toFixed(1)} ms CPU (${selfCpu.toFixed(1)} ms of it this process)\n`,
          );
        } catch (e) {
          failures[mode].push(`${n} endpoints: ${(e as Error).message}`);
        }
      }
    }
  }
  const method = (mode: Mode) =>
    `fresh netns per run; N local endpoints, N/10 policies; ${CHANGES} new-pod changes (endpoint + IP-set member, policy updates only), one apply each; ${mode === "session" ? "the driver as shipped (long-lived nft -i)" : "the driver with a runner that cannot keep a process (one nft -f per change: the path before the session)"}; point = median over ${RUNS} runs of the per-run median; modes alternate within each run`;
  emitCurve(
    makeCurve(
      {
        package: "dataplane",
        name: "one-endpoint-change-vs-endpoints",
        title: "Linux driver one-endpoint change (nftables) vs endpoints programmed",
        x: "endpoints",
        y: "ms per change (wall)",
        expectedSlope: 0,
        goal: "flat; < 30 ms at 3,000 endpoints",
        method: method("session"),
        failures: failures.session.length ? failures.session : undefined,
      },
      samples.session,
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "dataplane",
        name: "one-endpoint-change-one-shot-vs-endpoints",
        title: "baseline: the same change with one nft -f per change",
        x: "endpoints",
        y: "ms per change (wall)",
        expectedSlope: 0,
        method: method("one-shot"),
        failures: failures["one-shot"].length ? failures["one-shot"] : undefined,
      },
      samples["one-shot"],
    ),
  );
  for (const mode of ["session", "one-shot"] as const) {
    emitCurve(
      makeCurve(
        {
          package: "dataplane",
          name:
            mode === "session"
              ? "one-endpoint-change-cpu-vs-endpoints"
              : "one-endpoint-change-one-shot-cpu-vs-endpoints",
          title: `${mode === "session" ? "Linux driver" : "baseline (one nft -f per change)"}: CPU time of a one-endpoint change vs endpoints programmed`,
          x: "endpoints",
          y: "ms CPU per change (ours + nft + kernel for nft)",
          expectedSlope: 0,
          method: `${method(mode)}; CPU = this process's user+system, the nft -i child's schedstat run time, exited children's user+system (10 ms ticks), summed over the run's changes / ${CHANGES}`,
          failures: failures[mode].length ? failures[mode] : undefined,
        },
        cpuSamples[mode],
      ),
    );
  }
}

// Run only as a script, so an experiment can import the cluster generator.
if (process.argv[1]?.endsWith("scale.ts")) await main();
