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
 *
 * The session runs also measure, beside each change and the same way, what the kernel charges any
 * writer (see {@link Probe}): `nft-jump-floor-...` (one jump verdict added to the dispatch map: the
 * kernel re-validates the table's whole jump graph at commit, O(ruleset)), named as the `floor` of the
 * driver's wall and CPU curves, and `nft-no-jump-...` (one set member, no verdict). So the report shows
 * how much of the driver's growth is above that floor.
 *
 * A probe is charged only its own work: its CPU is the run time (schedstat) of its own `nft -i` child
 * over the transaction (nft's work plus the kernel's for it), not this process's CPU nor the driver's
 * children's. Its JS (one line written, the answer read: the same session code the driver runs; this
 * process's CPU over the probe, ~0.4 ms on the shared machine, is printed beside it on stderr) is left
 * out, since this process's CPU also holds the V8 helper threads (GC, compiler) still busy with the
 * driver's change. Before each probe the bench waits until the driver's `nft -i` and this
 * process are idle (see {@link quiet}), so the probe's wall time is not shared with their tail either.
 * The driver's change is measured as before (this process plus all children, over the apply). What
 * its work leaves running after the apply (V8 helper threads, its nft -i finishing) now falls in the
 * wait before the next probe, counted by no curve; it used to fall in the probe's window. Extending the
 * driver's window to the quiet point was tried and dropped: the first run of a process (100 endpoints,
 * session mode first) then absorbed the process's whole JIT warm-up (the wait timed out, busy, 14 times
 * in 60), 2.5 -> 7-10 ms CPU per change at 100 against ~4 at 1,000, which bent the driver's CPU curve
 * downward.
 *
 * Until 7 Dec a probe's CPU was this process's plus every child's over its window, right after the
 * driver's change, and came out above its wall time (1.21 vs 0.74 ms at 100 endpoints) although a probe
 * is sequential: the driver's concurrent tail landed in the floor.
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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
import { createNftSession } from "../src/nft/session.js";
import { createNetnsLab } from "../src/testing/index.js";

const SIZES = [100, 1000, 3000].filter((x) => x <= Number(argValue("max", "Infinity")));
const RUNS = Number(argValue("runs", quick ? "1" : "3"));
const CHANGES = quick ? 5 : 20;
/**
 * Changes made (the same way) before the measured ones and not counted: the first changes after the
 * set-up run while V8 still (re)compiles the change path (the set-up's large batches leave other type
 * feedback), on helper threads whose CPU would land in those changes' windows, more of it the larger N.
 */
const WARMUP = quick ? 2 : 5;
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
    for (const pid of childPids()) ms += runMs(pid) ?? 0;
  } catch {
    // No /proc: this process only.
  }
  return { self, nft: ms };
}

/** This process's live children (every thread's). */
function childPids(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync("/proc/self/task")) {
    for (const pid of readFileSync(`/proc/self/task/${tid}/children`, "utf8").split(" ").filter(Boolean)) {
      out.push(Number(pid));
    }
  }
  return out;
}

/** Run time (ms on a CPU) of process `pid` from its schedstat, or undefined once it is gone. */
function runMs(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return undefined;
  }
}

/**
 * Waits (up to 200 ms) until the previous step's work has stopped: one turn of the event loop, then
 * 5 ms slices until one in which our live children ran less than 0.05 ms and this process (all its
 * threads, V8's GC and compiler helpers included) less than 0.3 ms. Cheap to watch (process.cpuUsage
 * and one schedstat read per child). Outside every measured window.
 */
async function quiet(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  const pids = childPids();
  const read = () => {
    const u = process.cpuUsage();
    let kids = 0;
    for (const pid of pids) kids += runMs(pid) ?? 0;
    return { self: (u.user + u.system) / 1000, kids };
  };
  const deadline = performance.now() + 200;
  let last = read();
  while (performance.now() < deadline) {
    await sleep(5);
    const now = read();
    const idle = now.kids - last.kids < 0.05 && now.self - last.self < 0.3;
    last = now;
    if (idle) return;
  }
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

/** What one run measures per change: median wall ms and mean CPU ms (see {@link cpuMs}). */
interface Cost {
  wall: number;
  cpu: number;
  selfCpu: number;
}

/**
 * The probes measured beside the driver's change in a `session` run, each written as one transaction
 * through a second long-lived `nft -i` in the same namespace (an {@link NftSession} as the driver's):
 * - `floor`: one `goto` element added to the workload dispatch map (`wl-from`), in the form the driver
 *   writes map elements, to a chain that exists (as a new pod's shared endpoint chains usually do). Any
 *   change that makes an endpoint reachable through a jump pays this, whatever writes it: a GOTO/JUMP
 *   element added to a verdict map sets the table's validate state to NEED (nf_tables `nft_add_set_elem`;
 *   a rule with a jump does the same), and the commit then runs `nft_table_validate`: from every base
 *   chain, every rule of every reachable chain, through every element of every verdict map (6.18's chain
 *   `vstate` visits each chain once per hook and depth, but still walks every map element), O(ruleset).
 *   nft's own part of the transaction is flat (its cache refill lists only the tables).
 * - `no-jump`: one member added to a plain address set (the driver's form, `add set` with elements),
 *   no verdict: what the same session and commit cost without the validation.
 */
type Probe = "floor" | "no-jump";
const PROBES: readonly Probe[] = ["floor", "no-jump"];

function probeText(probe: Probe, c: number): string {
  const t = "inet margay";
  if (probe === "floor")
    return `add map ${t} wl-from { type ifname : verdict; elements = { "mgyf${c}" : goto mgy-floor } }\n`;
  return `add set ${t} mgy-floor4 { type ipv4_addr; elements = { 10.250.${(c >> 8) & 255}.${c & 255} } }\n`;
}

/**
 * A full garbage collection, then a moment for the collector's helper threads to finish: the set-up
 * (N endpoints through the calc graph and the first full render) leaves garbage whose collection would
 * otherwise land, partly on helper threads, in the measured changes' CPU windows, more of it the larger N.
 */
async function settle(): Promise<void> {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  await sleep(100);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function oneRun(endpoints: number, mode: Mode): Promise<Record<"change" | Probe, Cost | undefined>> {
  const lab = createNetnsLab("mgdps");
  try {
    const ns = await lab.add("node");
    const apps = Math.max(1, endpoints / 10);
    const real = createProcessRunner();
    const runner: CommandRunner = mode === "session" ? real : { run: real.run.bind(real) };
    const { graph, driver } = await syncedDriver(ns, runner, endpoints);
    const probe = mode === "session" ? createNftSession(real, ns, "margay") : undefined;
    try {
      const before = new Set(childPids());
      await probe?.run(
        "add chain inet margay mgy-floor\nadd set inet margay mgy-floor4 { type ipv4_addr; }\n",
      );
      // The probe session's `nft -i` (nsenter and env exec it, so it keeps the pid): the one new child.
      const started = childPids().filter((pid) => !before.has(pid));
      if (probe !== undefined && started.length !== 1)
        throw new Error(`probe session: ${started.length} new children, not one`);
      const probePid = started[0];
      const walls = { change: [] as number[], floor: [] as number[], "no-jump": [] as number[] };
      const cpus = { change: 0, floor: 0, "no-jump": 0 };
      const selfs = { change: 0, floor: 0, "no-jump": 0 };
      let measured = false;
      const timed = async (key: "change" | Probe, f: () => Promise<unknown>) => {
        if (!measured) {
          await f();
          return;
        }
        if (key === "change") {
          // As before: this process and every child, over the apply.
          const c0 = cpuMs();
          const t0 = performance.now();
          await f();
          walls[key].push(performance.now() - t0);
          const c1 = cpuMs();
          cpus[key] += c1.self + c1.nft - c0.self - c0.nft;
          selfs[key] += c1.self - c0.self;
          return;
        }
        // A probe: from a quiet point, charged its own nft -i child's run time only.
        await quiet();
        const r0 = runMs(probePid!);
        const s0 = process.cpuUsage();
        const t0 = performance.now();
        await f();
        walls[key].push(performance.now() - t0);
        const r1 = runMs(probePid!);
        if (r0 === undefined || r1 === undefined) throw new Error("probe session's nft -i exited");
        cpus[key] += r1 - r0;
        const s1 = process.cpuUsage(s0);
        // Not in the probe's CPU: shown beside it on stderr only.
        selfs[key] += (s1.user + s1.system) / 1000;
      };
      for (let c = 0; c < WARMUP + CHANGES; c++) {
        if (c === WARMUP) {
          await settle();
          measured = true;
        }
        const steps: (() => Promise<void>)[] = [
          async () => {
            graph.upsert(workload(endpoints + c, apps));
            const ups = graph.flush() as DataplaneUpdate[];
            await timed("change", () => driver.apply(ups));
          },
          ...(probe === undefined ? [] : PROBES.map((p) => () => timed(p, () => probe.run(probeText(p, c))))),
        ];
        // Rotate which goes first, so a change never always follows the same one.
        for (let i = 0; i < steps.length; i++) await steps[(i + c) % steps.length]!();
      }
      const cost = (key: "change" | Probe): Cost | undefined =>
        walls[key].length === 0
          ? undefined
          : { wall: median(walls[key]), cpu: cpus[key] / CHANGES, selfCpu: selfs[key] / CHANGES };
      return { change: cost("change"), floor: cost("floor"), "no-jump": cost("no-jump") };
    } finally {
      probe?.close();
      await driver.close();
    }
  } finally {
    await lab.close();
  }
}

/** Curve names: the driver's change in each mode and the probes measured beside it. */
const CURVES = {
  session: { wall: "one-endpoint-change-vs-endpoints", cpu: "one-endpoint-change-cpu-vs-endpoints" },
  "one-shot": {
    wall: "one-endpoint-change-one-shot-vs-endpoints",
    cpu: "one-endpoint-change-one-shot-cpu-vs-endpoints",
  },
  floor: { wall: "nft-jump-floor-vs-endpoints", cpu: "nft-jump-floor-cpu-vs-endpoints" },
  "no-jump": { wall: "nft-no-jump-vs-endpoints", cpu: "nft-no-jump-cpu-vs-endpoints" },
} as const;
type Series = keyof typeof CURVES;

async function main() {
  const series = Object.keys(CURVES) as Series[];
  const samples = Object.fromEntries(series.map((k) => [k, new Map<number, number[]>()])) as Record<
    Series,
    Map<number, number[]>
  >;
  const cpuSamples = Object.fromEntries(series.map((k) => [k, new Map<number, number[]>()])) as Record<
    Series,
    Map<number, number[]>
  >;
  const failures = Object.fromEntries(series.map((k) => [k, [] as string[]])) as Record<Series, string[]>;
  for (const n of SIZES) {
    for (const m of [...Object.values(samples), ...Object.values(cpuSamples)]) m.set(n, []);
    for (let r = 0; r < RUNS; r++) {
      // Alternate which mode goes first, so drift in the machine's load falls on both.
      const order: Mode[] = r % 2 === 0 ? ["session", "one-shot"] : ["one-shot", "session"];
      for (const mode of order) {
        try {
          const run = await oneRun(n, mode);
          for (const [key, cost] of [
            [mode, run.change],
            ["floor", run.floor],
            ["no-jump", run["no-jump"]],
          ] as const) {
            if (cost === undefined) continue;
            samples[key].get(n)!.push(cost.wall);
            cpuSamples[key].get(n)!.push(cost.cpu);
            process.stderr.write(
              `dataplane scale ${n} ${key}: ${cost.wall.toFixed(2)} ms wall, ${cost.cpu.toFixed(2)} ms CPU (${cost.selfCpu.toFixed(2)} ms of it this process)\n`,
            );
          }
        } catch (e) {
          const why = `${n} endpoints: ${(e as Error).message}`;
          failures[mode].push(why);
          if (mode === "session") for (const p of PROBES) failures[p].push(why);
        }
      }
    }
  }
  const common = `fresh netns per run; N local endpoints, N/10 policies; ${WARMUP} warm-up changes (not counted), a full GC, then ${CHANGES} measured changes per run; point = median over ${RUNS} runs of the per-run median; modes alternate within each run`;
  const how: Record<Series, string> = {
    session: `${common}; new-pod changes (endpoint + IP-set member, policy updates only), one apply each, the driver as shipped (long-lived nft -i)`,
    "one-shot": `${common}; the same changes through the driver with a runner that cannot keep a process (one nft -f per change: the path before the session)`,
    floor: `${common}; in the session runs, beside each driver change (rotating order), each probe started once the driver's nft -i and this process were idle (a 5 ms slice with < 0.05 ms of children's and < 0.3 ms of this process's CPU; at most 200 ms): one transaction through a second long-lived nft -i in the same namespace adding one goto element (to an existing empty chain) to the wl-from verdict map (add map ... elements): the kernel validates the table's whole jump graph at commit`,
    "no-jump": `${common}; in the session runs, beside each driver change (rotating order), started once the driver's nft -i and this process were idle (a 5 ms slice with < 0.05 ms of children's and < 0.3 ms of this process's CPU; at most 200 ms): one transaction through a second long-lived nft -i adding one address to a plain set (add set ... elements), no verdict`,
  };
  const driverCpu =
    "CPU = this process's user+system (all threads), the nft -i children's schedstat run time, exited children's user+system (10 ms ticks), over the apply (the run's probes are not in it: they run after a wait for quiet, outside this window)";
  const probeCpu =
    "CPU = the schedstat run time of the probe's own nft -i child over its transaction only (nft plus the kernel's work for it); this process's CPU (the probe's JS, but also V8 helper threads still busy with the driver's change) and the driver's children are not counted";
  const cpuHow: Record<Series, string> = {
    session: driverCpu,
    "one-shot": driverCpu,
    floor: probeCpu,
    "no-jump": probeCpu,
  };
  // The floor's commit walks the ruleset (linear in it on top of a constant cost); everything else should be flat.
  const meta: Record<Series, { title: string; goal?: string; floor?: Series; expectedSlope?: 1 }> = {
    session: {
      title: "Linux driver one-endpoint change (nftables) vs endpoints programmed",
      goal: "flat; < 30 ms at 3,000 endpoints",
      floor: "floor",
    },
    "one-shot": { title: "baseline: the same change with one nft -f per change" },
    floor: {
      title:
        "floor: one dispatch jump added (one goto element in the verdict map, nft -i), whatever writes it: the kernel validates the jump graph at commit",
      expectedSlope: 1,
    },
    "no-jump": { title: "the same session and commit without a jump verdict (one set member)" },
  };
  for (const key of series) {
    const m = meta[key];
    const failed = failures[key].length ? failures[key] : undefined;
    emitCurve(
      makeCurve(
        {
          package: "dataplane",
          name: CURVES[key].wall,
          title: m.title,
          x: "endpoints",
          y: "ms per change (wall)",
          expectedSlope: m.expectedSlope ?? 0,
          goal: m.goal,
          method: how[key],
          failures: failed,
          floor: m.floor && CURVES[m.floor].wall,
        },
        samples[key],
      ),
    );
  }
  for (const key of series) {
    const m = meta[key];
    emitCurve(
      makeCurve(
        {
          package: "dataplane",
          name: CURVES[key].cpu,
          title: `${m.title}: CPU time`,
          x: "endpoints",
          y:
            key === "floor" || key === "no-jump"
              ? "ms CPU per change (the probe's nft + kernel for it)"
              : "ms CPU per change (ours + nft + kernel for nft)",
          expectedSlope: m.expectedSlope ?? 0,
          method: `${how[key]}; ${cpuHow[key]}, summed over the run's changes / ${CHANGES}`,
          failures: failures[key].length ? failures[key] : undefined,
          floor: m.floor && CURVES[m.floor].cpu,
        },
        cpuSamples[key],
      ),
    );
  }
}

// Run only as a script, so an experiment can import the cluster generator.
if (process.argv[1]?.endsWith("scale.ts")) await main();
