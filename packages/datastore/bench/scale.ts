/**
 * Memory-datastore growth curves (`npm run bench:scale`, or
 * `node --expose-gc --import tsx packages/datastore/bench/scale.ts`):
 *
 * - `watch-fanout-heap`: W watchers of one kind, then a burst of 10,000 creates (each write lands at
 *   once, before any watcher reads): heap held once every watcher has every event queued, over the heap
 *   before the burst (after a forced GC). Goal: < 200 MB at 1,000 watchers.
 * - `watch-fanout-cost`: the same run, CPU µs per delivered event (all watchers together), from the
 *   start of the burst until every watcher has read every event (flat or falling: the write is shared,
 *   each delivery should cost the same).
 *
 * Each fan-out run is its own process (this file with `--fanout <watchers>`), so the heap it reads is
 * its own and a run that exhausts the heap is recorded as a failure of that point, not of the curve.
 * - `prefix-list-vs-kind-size`: CPU µs for one `list` with a `namePrefix` matching 10 objects, in a kind of
 *   N objects (flat: an index, not a scan of the kind).
 * - `prefix-list-floor`: its floor, measured in the same runs on the same store with the same prefixes:
 *   the part of a list no implementation avoids: a binary search of the prefix in a plain sorted array
 *   of the N names, then a deep copy of the 10 stored objects it finds, made by the list's own copy
 *   function (`plainCopy`), of the store's own frozen objects (so the same memory), one async call per
 *   list. It grows with N too: the search's log N compares and the cache misses of reaching 10 objects
 *   among N.
 *
 * Every point is the median of `--runs` runs (default 3), each on a fresh store. Prints one JSON line
 * per curve (scripts/scale-kit.ts). BENCH_QUICK=1 runs tiny sizes.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createMemoryDatastore, type StoredObject } from "@margay/datastore";
import { quick } from "../../../scripts/bench-kit.js";
import { argValue, collectGarbage, cpuMicros, emitCurve, makeCurve } from "../../../scripts/scale-kit.js";
// The floor's copy is the one the store's list makes (not exported from the package).
import { plainCopy } from "../src/json-copy.js";
// The floor's search is the index's own binary search, over a plain array.
import { lowerBound } from "../src/memory/sorted-keys.js";

const RUNS = Number(argValue("runs", "3"));
const EVENTS = quick ? 1_000 : 10_000;
const WATCHERS = quick ? [1, 10, 100] : [1, 10, 100, 1_000];
const KIND_SIZES = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
const LISTS = quick ? 100 : 10_000;

/** An object about the size of a workload endpoint (~400 bytes of JSON). */
function object(i: number): StoredObject & { spec: unknown } {
  return {
    apiVersion: "bench.margay.io/v1",
    kind: "BenchObject",
    metadata: { name: `obj-${String(i).padStart(6, "0")}`, labels: { app: `app-${i % 100}`, tier: "web" } },
    spec: {
      node: `host-${i % 1000}`,
      interfaceName: `mgy${i.toString(16).padStart(11, "0")}`,
      ipNetworks: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`],
      profiles: ["kns.default", "ksa.default.default"],
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  };
}

async function fanout(watchers: number): Promise<{ heapMb: number; usPerEvent: number }> {
  const ds = createMemoryDatastore({ historyLimit: EVENTS, watchQueueLimit: EVENTS });
  const ws = Array.from({ length: watchers }, () => ds.watch("BenchObject"));
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const c0 = cpuMicros();
  // Not awaited one by one: every write commits (and is queued to every watcher) before any reads.
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < EVENTS; i++) writes.push(ds.create(object(i)));
  const held = process.memoryUsage().heapUsed - before;
  await Promise.all(writes);
  let delivered = 0;
  await Promise.all(
    ws.map(async (w) => {
      let n = 0;
      for await (const _ of w) {
        delivered++;
        if (++n === EVENTS) break;
      }
    }),
  );
  const cpu = cpuMicros() - c0;
  await ds.close();
  if (delivered !== EVENTS * watchers) throw new Error(`delivered ${delivered} of ${EVENTS * watchers}`);
  return { heapMb: held / 2 ** 20, usPerEvent: cpu / delivered };
}

/** One fan-out run in a fresh process (see the module comment); a string says why it gave nothing. */
function fanoutChild(watchers: number): { heapMb: number; usPerEvent: number } | string {
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), "--fanout", String(watchers)],
    { encoding: "utf8", maxBuffer: 1 << 20, env: process.env },
  );
  const line = r.stdout?.split("\n").find((l) => l.startsWith("{"));
  if (r.status === 0 && line) return JSON.parse(line) as { heapMb: number; usPerEvent: number };
  const oom = /heap out of memory/i.test(r.stderr ?? "");
  return `${watchers} watchers: exit ${r.status ?? r.signal}${oom ? " (JavaScript heap out of memory)" : ""}`;
}

/** CPU µs per prefix list, and per prefix lookup of the floor (see the module comment), in one store. */
async function prefixList(size: number): Promise<{ list: number; floor: number }> {
  const ds = createMemoryDatastore({ historyLimit: 1000 });
  // Written through transactions, whose results are the stored (frozen) objects themselves: the floor
  // copies the very objects the store holds.
  const stored: StoredObject[] = [];
  for (let i = 0; i < size; i++) {
    const r = await ds.transaction([{ op: "create", object: object(i) }]);
    stored.push(r.results[0]!);
  }
  const names = stored.map((o) => o.metadata.name);
  const floorList = async (prefix: string): Promise<unknown[]> => {
    const items: unknown[] = [];
    for (let i = lowerBound(names, prefix); i < names.length && names[i]!.startsWith(prefix); i++) {
      items.push(plainCopy(stored[i]));
    }
    return items;
  };
  // "obj-00012" matches obj-000120 … obj-000129: 10 objects whatever the kind's size.
  const prefixes = Array.from(
    { length: LISTS },
    (_, i) => `obj-${String((i * 7919) % (size / 10)).padStart(5, "0")}`,
  );
  // Warm-up (JIT), outside the clock.
  for (const p of prefixes) {
    await ds.list("BenchObject", { namePrefix: p });
    await floorList(p);
  }
  // The two alternate in halves, so a drift of the machine's load falls on both.
  let list = 0;
  let floor = 0;
  for (const half of [prefixes.slice(0, LISTS / 2), prefixes.slice(LISTS / 2)]) {
    let c0 = cpuMicros();
    for (const p of half) {
      const r = await ds.list("BenchObject", { namePrefix: p });
      if (r.items.length !== 10) throw new Error(`prefix ${p} listed ${r.items.length} objects, not 10`);
    }
    list += cpuMicros() - c0;
    c0 = cpuMicros();
    for (const p of half) {
      const items = await floorList(p);
      if (items.length !== 10) throw new Error(`prefix ${p} found ${items.length} names, not 10`);
    }
    floor += cpuMicros() - c0;
  }
  await ds.close();
  return { list: list / LISTS, floor: floor / LISTS };
}

async function main() {
  const heap = new Map<number, number[]>();
  const rate = new Map<number, number[]>();
  const list = new Map<number, number[]>();
  const listFloor = new Map<number, number[]>();
  const failures: string[] = [];
  for (let r = 0; r < RUNS; r++) {
    for (const w of WATCHERS) {
      const f = fanoutChild(w);
      if (typeof f === "string") {
        failures.push(`run ${r + 1}, ${f}`);
        process.stderr.write(`  run ${r + 1}: ${f}\n`);
        continue;
      }
      (heap.get(w) ?? heap.set(w, []).get(w)!).push(f.heapMb);
      (rate.get(w) ?? rate.set(w, []).get(w)!).push(f.usPerEvent);
      process.stderr.write(
        `  run ${r + 1}: ${w} watchers: ${f.heapMb.toFixed(1)} MB held, ${f.usPerEvent.toFixed(2)} µs per delivered event\n`,
      );
    }
    for (const s of KIND_SIZES) {
      const us = await prefixList(s);
      (list.get(s) ?? list.set(s, []).get(s)!).push(us.list);
      (listFloor.get(s) ?? listFloor.set(s, []).get(s)!).push(us.floor);
      process.stderr.write(
        `  run ${r + 1}: prefix list in a kind of ${s}: ${us.list.toFixed(1)} µs (floor ${us.floor.toFixed(1)} µs)\n`,
      );
    }
  }
  const fan = `memory backend, a burst of ${EVENTS.toLocaleString("en-US")} creates (~400 B objects) to W watchers of the kind, ${RUNS} runs, each on a fresh store`;
  emitCurve(
    makeCurve(
      {
        package: "datastore",
        name: "watch-fanout-heap",
        title: `heap held by ${EVENTS.toLocaleString("en-US")} events queued to every watcher`,
        x: "watchers",
        y: "MB of heap",
        expectedSlope: 0,
        goal: "< 200 MB at 1,000 watchers",
        method: `${fan}; heapUsed right after the burst minus heapUsed before it (after a forced GC when --expose-gc)`,
        failures,
      },
      heap,
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "datastore",
        name: "watch-fanout-cost",
        title: "CPU time per delivered event, all watchers together",
        x: "watchers",
        y: "CPU µs per delivered event",
        expectedSlope: 0,
        method: `${fan}; CPU time from the start of the burst until every watcher has read every event`,
        failures,
      },
      rate,
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "datastore",
        name: "prefix-list-vs-kind-size",
        title: "one list with a name prefix matching 10 objects, vs objects in the kind",
        x: "objects in the kind",
        y: "CPU µs per list",
        expectedSlope: 0,
        goal: "flat: served from an index",
        method: `memory backend, ${LISTS} lists of different prefixes per sample (alternating in halves with its floor's lookups), ${RUNS} runs, each on a fresh store`,
        floor: "prefix-list-floor",
      },
      list,
    ),
  );
  emitCurve(
    makeCurve(
      {
        package: "datastore",
        name: "prefix-list-floor",
        title:
          "floor: a binary search of the prefix in a plain sorted array of the same N names, then a deep copy of the 10 stored objects it finds by the list's own plainCopy (what no index avoids)",
        x: "objects in the kind",
        y: "CPU µs per lookup",
        expectedSlope: 0,
        method: `in the prefix-list runs, on the same store with the same ${LISTS} prefixes, one async call per lookup; the objects copied are the store's own (from its transaction results)`,
      },
      listFloor,
    ),
  );
}

const child = argValue("fanout", "");
if (child !== "") process.stdout.write(`${JSON.stringify(await fanout(Number(child)))}\n`);
else await main();
