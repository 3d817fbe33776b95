/**
 * Datastore benchmark: create and CAS-update throughput of the memory and etcd backends, next to the raw
 * `etcd3` client doing the equivalent request (put; txn with the same compare) on the same private etcd,
 * in the same run, rounds interleaved. Every figure is min/median/max of the rounds. Prints a table and
 * writes `datastore.json` where scripts/bench-kit.ts says.
 *
 *   npm run bench -w packages/datastore          (env BENCH_SCALE=0.2 or BENCH_QUICK=1 for a quick run)
 */

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import {
  createEtcdDatastore,
  createMemoryDatastore,
  type Datastore,
  type StoredObject,
} from "../src/index.js";
import { startEtcd } from "../src/testing/index.js";
import { fmt, quick, type Summary, summarize, writeResult } from "../../../scripts/bench-kit.js";

const SCALE = Number(process.env.BENCH_SCALE ?? (quick ? "0.05" : "1"));
const ROUNDS = 3;
const CONCURRENCY = 16;
let etcdStorage = "disk";
const n = (base: number) => Math.max(CONCURRENCY, Math.round(base * SCALE));

interface Row {
  backend: string;
  op: "create" | "cas-update";
  mode: "sequential" | `concurrent-${number}`;
  ops: number;
  seconds: number;
  /** The median round's rate. */
  opsPerSec: number;
  /** Every round's rate (ops/s), min/median/max. */
  opsPerSecSummary: Summary;
  baseline?: string;
  /** Our median rate over the raw txn's median rate (both measured in this run). */
  ratio?: number;
}

const spec = {
  cidr: "10.244.0.0/16",
  blockSize: 26,
  ipipMode: "Never",
  vxlanMode: "CrossSubnet",
  natOutgoing: true,
  nodeSelector: "all()",
  allowedUses: ["Workload", "Tunnel"],
};
const object = (name: string): StoredObject & { spec: typeof spec & { gen?: number } } => ({
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name, labels: { "margay.io/bench": "true" } },
  spec: { ...spec },
});

/** Runs `count` calls of `op(i)` with `concurrency` workers; returns elapsed seconds. */
async function timed(
  count: number,
  concurrency: number,
  op: (i: number, worker: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        await op(i, worker);
      }
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const modes = [
  { mode: "sequential" as const, c: 1 },
  { mode: `concurrent-${CONCURRENCY}` as const, c: CONCURRENCY },
];

/** One measured case: sets up outside the clock, then times `count` ops with `c` workers. */
interface Case {
  backend: string;
  op: Row["op"];
  baseline?: string;
  run: (count: number, c: number, tag: string) => Promise<number>;
}

/** Datastore create + CAS update (each worker updates its own object: measures CAS cost, not contention). */
function datastoreCases(backend: string, ds: Datastore): Case[] {
  return [
    {
      backend,
      op: "create",
      run: (count, c, tag) => timed(count, c, (i) => ds.create(object(`${tag}-${i}`))),
    },
    {
      backend,
      op: "cas-update",
      run: async (count, c, tag) => {
        const current = await Promise.all(
          Array.from({ length: c }, (_, w) => ds.create(object(`${tag}-cas-${w}`))),
        );
        return timed(count, c, async (i, w) => {
          const cur = current[w]! as ReturnType<typeof object>;
          current[w] = await ds.update({ ...cur, spec: { ...cur.spec, gen: i } });
        });
      },
    },
  ];
}

/** The raw client sending what our create / CAS update send: a plain put, and the same txn. */
function rawCases(client: Etcd3, prefix: string): Case[] {
  const value = (name: string) =>
    Buffer.from(JSON.stringify({ ...object(name), metadata: { ...object(name).metadata, uid: "u" } }));
  return [
    {
      backend: "etcd3 raw",
      op: "create",
      baseline: "put",
      run: (count, c, tag) =>
        timed(count, c, (i) =>
          client.kv.put({ key: Buffer.from(`${prefix}/${tag}/${i}`), value: value(`p${i}`) }),
        ),
    },
    {
      backend: "etcd3 raw",
      op: "create",
      baseline: "txn",
      run: (count, c, tag) =>
        timed(count, c, (i) => {
          const key = Buffer.from(`${prefix}/${tag}/${i}`);
          return client.kv.txn({
            compare: [{ key, target: "Create", result: "Equal", create_revision: 0 }],
            success: [{ request_put: { key, value: value(`t${i}`) } }],
          });
        }),
    },
    {
      backend: "etcd3 raw",
      op: "cas-update",
      baseline: "txn",
      run: async (count, c, tag) => {
        const keys = Array.from({ length: c }, (_, w) => Buffer.from(`${prefix}/${tag}/cas/${w}`));
        const revs = await Promise.all(
          keys.map(async (key) => Number((await client.kv.put({ key, value: value("c") })).header.revision)),
        );
        return timed(count, c, async (i, w) => {
          const key = keys[w]!;
          const res = await client.kv.txn({
            compare: [{ key, target: "Mod", result: "Equal", mod_revision: revs[w]! }],
            success: [{ request_put: { key, value: value(`c${i}`) } }],
            failure: [{ request_range: { key } }],
          });
          if (!res.succeeded) throw new Error("raw CAS lost its own race: benchmark bug");
          revs[w] = Number(res.header.revision);
        });
      },
    },
  ];
}

/**
 * Runs every case in every mode for `rounds` rounds, interleaved (so slow drift of a shared machine hits
 * all cases alike), and reports the median throughput of each.
 */
async function measure(cases: Case[], count: number, rounds: number, rows: Row[]) {
  const samples = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const { mode, c } of modes) {
      for (const [k, cs] of cases.entries()) {
        const secs = await cs.run(count, c, `r${r}-${mode}-${k}`);
        const id = `${k}/${mode}`;
        samples.set(id, [...(samples.get(id) ?? []), count / secs]);
      }
    }
  }
  for (const [k, cs] of cases.entries()) {
    for (const { mode } of modes) {
      const sum = summarize(samples.get(`${k}/${mode}`)!);
      const opsPerSec = sum.median;
      const row: Row = {
        opsPerSecSummary: sum,
        backend: cs.backend,
        op: cs.op,
        mode,
        ops: count,
        seconds: count / opsPerSec,
        opsPerSec,
      };
      if (cs.baseline !== undefined) row.baseline = cs.baseline;
      rows.push(row);
    }
  }
}

function ratios(rows: Row[]) {
  for (const r of rows) {
    if (r.backend !== "etcd (ours)") continue;
    const base = rows.find(
      (b) => b.backend === "etcd3 raw" && b.op === r.op && b.mode === r.mode && b.baseline === "txn",
    );
    if (base !== undefined) {
      r.baseline = "etcd3 raw txn";
      r.ratio = r.opsPerSec / base.opsPerSec;
    }
  }
}

function print(rows: Row[]) {
  const head = ["backend", "op", "mode", "ops", "ops/s median (min–max)", "vs raw txn", "raw put ops/s"];
  const lines = rows.map((r) => {
    const put = rows.find((b) => b.baseline === "put" && b.op === r.op && b.mode === r.mode);
    return [
      r.backend + (r.baseline === "put" ? " put" : r.backend === "etcd3 raw" ? " txn" : ""),
      r.op,
      r.mode,
      String(r.ops),
      fmt(r.opsPerSecSummary, 0),
      r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
      r.backend === "etcd (ours)" && put !== undefined ? put.opsPerSec.toFixed(0) : "",
    ];
  });
  console.log(
    `median (min–max) of ${ROUNDS} interleaved rounds; ${CONCURRENCY}-way = ${CONCURRENCY} workers in one process; etcd data on ${etcdStorage}\n`,
  );
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const tableRow = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(tableRow(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(tableRow(l));
}

async function main() {
  const rows: Row[] = [];
  const rounds = ROUNDS;
  const mem = createMemoryDatastore();
  await measure(datastoreCases("memory", mem), n(10_000), rounds, rows);
  await mem.close();

  const dir = await mkdtemp(join(tmpdir(), "margay-ds-bench-"));
  try {
    const snap = createMemoryDatastore({ snapshotPath: join(dir, "state.json") });
    await measure(datastoreCases("memory+snapshot(sync)", snap), n(400), rounds, rows);
    await snap.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // etcd's data on tmpfs when there is one: fsync latency of a shared disk would otherwise drown the
  // client-side cost this benchmark compares (both sides pay the same fsync either way).
  const shm = existsSync("/dev/shm") ? "/dev/shm" : undefined;
  const etcd = await startEtcd({ baseDir: shm });
  etcdStorage = shm === undefined ? "disk" : "tmpfs";
  try {
    const ds = createEtcdDatastore({ endpoints: etcd.endpoints, prefix: "/bench-ours" });
    // Warm up the connection so no case pays for the dial.
    await ds.list("IPPool");
    await measure(
      [...rawCases(ds.client, "/bench-raw"), ...datastoreCases("etcd (ours)", ds)],
      n(600),
      rounds,
      rows,
    );
    await ds.close();
  } finally {
    await etcd.stop();
  }

  ratios(rows);
  print(rows);
  const meta = {
    etcdStorage,
    rounds: ROUNDS,
    concurrency: CONCURRENCY,
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    etcd: "/usr/bin/etcd",
    scale: SCALE,
  };
  writeResult("datastore", { benchmark: "datastore", meta, rows });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
