/**
 * IPAM growth curves (`npm run bench:scale`, or `npx tsx packages/ipam/bench/scale.ts`): one IPAM
 * client on the memory backend fills a /8 pool (blocks of 64) for 1,000 hosts, one address per call,
 * round-robin over the hosts. At each checkpoint (addresses in use) it measures
 *
 * - `allocate-vs-in-use`: CPU µs per allocation over the next 1,000 single-address allocations (random
 *   hosts); the goal is flat (≤ 1.3× from 10k to 1M);
 * - `fill-vs-in-use`: CPU seconds the fill took to reach the checkpoint (linear; goal: 1M in under 60 s),
 *   and `fill-wall-vs-in-use`, the same in wall-clock seconds;
 * - `cold-reads-vs-in-use`: objects a fresh client (another process, say a restarted agent) reads from
 *   the datastore for its first allocation on a host that holds two blocks (outside the fill): what
 *   its host owns, not the cluster (flat).
 *
 * Times are the process's CPU time (user + system): the machine these run on is shared, and CPU time
 * is what load on other cores moves least; the allocation path is one thread, so on an idle machine
 * it is the wall time. Each run starts from an empty store; every point is the median of `--runs` runs (default 3). Prints
 * one JSON line per curve (scripts/scale-kit.ts). Options: `--max <in use>` stops the curve early (a
 * slow build), `--runs <n>`; BENCH_QUICK=1 runs tiny sizes.
 */
import {
  createMemoryDatastore,
  type Datastore,
  decorateDatastore,
  type ListOptions,
  type ObjectKey,
  type StoredObject,
} from "@margay/datastore";
import { quick } from "../../../scripts/bench-kit.js";
import { argValue, cpuMicros, emitCurve, makeCurve } from "../../../scripts/scale-kit.js";
import { createIpam } from "../src/index.js";
import { putIpamConfig, putPool } from "../src/test-support.js";

const HOSTS = quick ? 20 : 1000;
/**
 * Addresses per host at the checkpoints: 40, 104, 296 and 1,000, all 40 more than a multiple of 64, so
 * at every checkpoint each host's current block is 40/64 full. An allocation rewrites its block, and the
 * block's size grows with its own fill (one attribute per allocation); checkpoints at other fills
 * (10k in use is 10 per host, 100k is 36) would measure how full the current block is, not the scale.
 */
const PER_HOST = [40, 104, 296, 1000];
const CHECKPOINTS = PER_HOST.map((n) => n * HOSTS).filter((x) => x <= Number(argValue("max", "Infinity")));
const RUNS = Number(argValue("runs", "3"));
const PROBES = quick ? 200 : 1000;

/** A datastore that counts the objects its reads return. */
function counting(ds: Datastore): Datastore & { objectsRead: number } {
  const c = Object.assign(
    decorateDatastore(ds, {
      get: async <T extends StoredObject>(key: ObjectKey, o?: { signal?: AbortSignal }) => {
        const r = await ds.get<T>(key, o);
        c.objectsRead++;
        return r;
      },
      list: async <T extends StoredObject>(kind: string, o?: ListOptions) => {
        const r = await ds.list<T>(kind, o);
        c.objectsRead += r.items.length;
        return r;
      },
    }),
    { objectsRead: 0 },
  );
  return c;
}

interface RunResult {
  allocUs: Map<number, number>;
  fillSeconds: Map<number, number>;
  fillWallSeconds: Map<number, number>;
  coldReads: Map<number, number>;
}

async function run(r: number): Promise<RunResult> {
  const ds = createMemoryDatastore();
  await putIpamConfig(ds, { maxBlocksPerHost: 0 });
  await putPool(ds, "scale-v4", { cidr: "10.0.0.0/8", blockSize: 26 });
  const ipam = createIpam({ datastore: ds });
  const out: RunResult = {
    allocUs: new Map(),
    fillSeconds: new Map(),
    fillWallSeconds: new Map(),
    coldReads: new Map(),
  };
  runs.push(out);
  let inUse = 0;
  let fillNs = 0n;
  let fillCpuUs = 0;
  // The cold client's host: two blocks of its own (65 addresses), the same at every checkpoint.
  await ipam.autoAssign({ handleId: "probe-host", node: "probe-host", num4: 65 });
  let rand = 0x9e3779b9 ^ r;
  const random = () => {
    // xorshift32: the probes' hosts are the same in every build measured.
    rand ^= rand << 13;
    rand ^= rand >>> 17;
    rand ^= rand << 5;
    return (rand >>> 0) / 2 ** 32;
  };
  for (const target of CHECKPOINTS) {
    const t0 = process.hrtime.bigint();
    const c0 = cpuMicros();
    while (inUse < target) {
      await ipam.autoAssign({ handleId: `f${inUse}`, node: `host-${inUse % HOSTS}`, num4: 1 });
      inUse++;
      // On the memory backend every await is already resolved: let the event loop run now and then,
      // or a SIGTERM (see below) would wait for the whole run.
      if (inUse % 1000 === 0) await new Promise<void>((r) => setImmediate(r));
    }
    fillCpuUs += cpuMicros() - c0;
    fillNs += process.hrtime.bigint() - t0;
    out.fillSeconds.set(target, fillCpuUs / 1e6);
    out.fillWallSeconds.set(target, Number(fillNs) / 1e9);
    const c1 = cpuMicros();
    for (let i = 0; i < PROBES; i++) {
      await ipam.autoAssign({ handleId: `p${inUse}`, node: `host-${Math.floor(random() * HOSTS)}`, num4: 1 });
      inUse++;
    }
    out.allocUs.set(target, (cpuMicros() - c1) / PROBES);
    const cds = counting(ds);
    const cold = createIpam({ datastore: cds });
    await cold.autoAssign({ handleId: `c${inUse}`, node: "probe-host", num4: 1 });
    inUse++;
    out.coldReads.set(target, cds.objectsRead);
    await cold.close();
    process.stderr.write(
      `  run ${r + 1}: ${target} in use, fill ${(fillCpuUs / 1e6).toFixed(1)} CPU s (${(Number(fillNs) / 1e9).toFixed(1)} s wall), ${out.allocUs.get(target)!.toFixed(1)} CPU µs/alloc, cold client read ${cds.objectsRead} objects\n`,
    );
  }
  await ipam.close();
  await ds.close();
  return out;
}

/** Every run's points so far, the current one included (see {@link emitAll}). */
const runs: RunResult[] = [];

/**
 * Prints the curves of the points measured so far. Called at the end, and on SIGTERM: a run stopped
 * for time still reports its finished points (each with its own run count) and exits non-zero, so the
 * runner marks the package failed.
 */
function emitAll(): void {
  const collect = (f: (x: RunResult) => Map<number, number>) =>
    new Map(CHECKPOINTS.map((x) => [x, runs.map((rr) => f(rr).get(x)).filter((v) => v !== undefined)]));
  const method = `memory backend, one client, ${HOSTS} hosts, pool /8 of /26 blocks; fill one address per call round-robin over the hosts, checkpoints at ${PER_HOST.join(", ")} addresses per host (every host's current block 40/64 full at each); ${RUNS} runs from an empty store`;
  emitCurve(
    makeCurve(
      {
        package: "ipam",
        name: "allocate-vs-in-use",
        title: `autoAssign latency vs addresses in use (${HOSTS} hosts)`,
        x: "addresses in use",
        y: "CPU µs per allocation",
        expectedSlope: 0,
        goal: "flat: ≤ 1.3× up to 1M in use",
        method: `${method}; a sample is the mean over ${PROBES} single-address allocations on random hosts at the checkpoint`,
      },
      collect((x) => x.allocUs),
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "ipam",
        name: "fill-vs-in-use",
        title: "CPU time to fill the pool up to the checkpoint",
        x: "addresses in use",
        y: "CPU seconds",
        expectedSlope: 1,
        // The goal ("completes in under a minute") is the wall-clock row's; CPU time also counts V8's
        // garbage collector threads, which run beside the allocating thread, so it can exceed wall time.
        goal: "none of its own: the 60 s goal is the wall-clock curve's (CPU here includes V8's parallel GC threads)",
        method: `${method}; a sample is the fill's CPU time (probes excluded)`,
      },
      collect((x) => x.fillSeconds),
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "ipam",
        name: "fill-wall-vs-in-use",
        title: "wall-clock time to fill the pool up to the checkpoint",
        x: "addresses in use",
        y: "seconds",
        expectedSlope: 1,
        goal: "1M addresses in under 60 s",
        method: `${method}; a sample is the fill's wall-clock time (probes excluded), as moved by other load on the machine`,
      },
      collect((x) => x.fillWallSeconds),
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "ipam",
        name: "cold-reads-vs-in-use",
        title: "objects a fresh client reads for its first allocation on a host holding 2 blocks",
        x: "addresses in use",
        y: "objects read",
        expectedSlope: 0,
        goal: "only this host's affinities and blocks (and the pools and IPAM config)",
        method: `${method}; a sample counts the objects returned by get and list during the fresh client's first autoAssign`,
      },
      collect((x) => x.coldReads),
    ),
  );
}

async function main() {
  for (let r = 0; r < RUNS; r++) await run(r);
  emitAll();
}

process.once("SIGTERM", () => {
  process.stderr.write("  stopped (SIGTERM): printing the points measured so far\n");
  emitAll();
  process.exit(143);
});
await main();
