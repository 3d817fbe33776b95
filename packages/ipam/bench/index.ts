/**
 * IPAM benchmark: allocations/s and releases/s on the memory and etcd backends, with 1 allocator and
 * with N allocators on different hosts (so on different blocks), next to a raw etcd baseline measured
 * on the same private etcd in the same run: one `etcd3` transaction of two puts guarded by a compare
 * (what one allocation has to write at least: the block under CAS, and its handle). Rounds interleave
 * IPAM and the baseline; every rate is min/median/max of the rounds. Prints a table and writes
 * `ipam.json` where scripts/bench-kit.ts says.
 *
 *   npm run bench -w packages/ipam          (env BENCH_SCALE=0.2 or BENCH_QUICK=1 for a quick run)
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { createEtcdDatastore, createMemoryDatastore, type Datastore } from "@margay/datastore";
import { startEtcd } from "@margay/datastore/testing";
import { Etcd3 } from "etcd3";
import { createIpam, type Ipam } from "../src/index.js";
import { putIpamConfig, putPool } from "../src/test-support.js";
import { fmt, quick, type Summary, summarize, writeResult } from "../../../scripts/bench-kit.js";

const SCALE = Number(process.env.BENCH_SCALE ?? (quick ? "0.02" : "1"));
let etcdStorage = "disk";
const N = 4;
const count = (base: number) => Math.max(N * 10, Math.round(base * SCALE));

interface Row {
  backend: string;
  op: "allocate" | "release" | "raw-txn";
  allocators: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  /** Every round's rate (ops/s): min/median/max (the row itself is the median round). */
  opsPerSecSummary?: Summary;
  /** Ratio (medians) to the raw etcd transaction rate with the same number of clients. */
  ratioToRawTxn?: number;
}

const rows: Row[] = [];
/** Handles kept allocated on purpose (warm-up), across runs on one store. */
const kept: string[] = [];

async function timed(
  total: number,
  workers: number,
  op: (i: number, w: number) => Promise<unknown>,
): Promise<number> {
  const per = Math.floor(total / workers);
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < per; i++) await op(i, w);
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function record(backend: string, op: Row["op"], allocators: number, ops: number, seconds: number): Row {
  return { backend, op, allocators, ops, seconds, opsPerSec: ops / seconds };
}

/** The round with the median rate (rounds interleave IPAM and the baseline, so load hits both alike). */
function median(rounds: Row[]): Row {
  const sorted = [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return {
    ...sorted[Math.floor(sorted.length / 2)]!,
    opsPerSecSummary: summarize(rounds.map((r) => r.opsPerSec)),
  };
}

const ROUNDS = quick ? 3 : 5;

async function seedPools(ds: Datastore): Promise<void> {
  // Unlimited blocks per host: the run allocates far more than Calico's default 20 blocks of 64.
  await putIpamConfig(ds, { maxBlocksPerHost: 0 });
  await putPool(ds, "bench-v4", { cidr: "10.64.0.0/12", blockSize: 26 });
  await putPool(ds, "bench-v6", { cidr: "fd00:64::/64", blockSize: 122 });
}

/**
 * `allocators` clients on as many hosts each allocate `total/allocators` single IPv4 addresses, then
 * release them by handle. Each client has its own datastore connection (`makeDs`).
 */
async function ipamRun(
  backend: string,
  makeDs: () => Datastore,
  ownsStores: boolean,
  allocators: number,
  total: number,
  tag: string,
) {
  const stores = Array.from({ length: allocators }, makeDs);
  const clients: Ipam[] = stores.map((datastore) => createIpam({ datastore }));
  // Warm-up outside the clock: each host claims its first block and caches config.
  await Promise.all(
    clients.map((c, w) => c.autoAssign({ handleId: `${tag}-warm-${w}`, node: `${tag}-host-${w}`, num4: 1 })),
  );
  kept.push(...clients.map((_, w) => `${tag}-warm-${w}`));
  const per = Math.floor(total / allocators);
  const ops = per * allocators;
  const alloc = await timed(ops, allocators, (i, w) =>
    clients[w]!.autoAssign({ handleId: `${tag}-${w}-${i}`, node: `${tag}-host-${w}`, num4: 1 }),
  );
  const a = record(backend, "allocate", allocators, ops, alloc);
  const rel = await timed(ops, allocators, (i, w) => clients[w]!.releaseByHandle(`${tag}-${w}-${i}`));
  const r = record(backend, "release", allocators, ops, rel);
  const report = await clients[0]!.check(kept);
  if (!report.ok)
    throw new Error(`inconsistent state after ${backend} run: ${JSON.stringify(report).slice(0, 500)}`);
  await Promise.all(clients.map((c) => c.close()));
  if (ownsStores) await Promise.all(stores.map((s) => s.close()));
  return { a, r };
}

/** The raw baseline: a txn comparing one key's mod revision, then putting it and a second key. */
async function rawRun(endpoints: string[], clients: number, total: number, tag: string) {
  const etcds = Array.from({ length: clients }, () => new Etcd3({ hosts: endpoints }));
  // Payloads as IPAM writes them: a half-full /26 block (the mean occupancy while a run fills blocks
  // one after another) and a handle.
  const block = Buffer.from(
    JSON.stringify({
      apiVersion: "ipam.margay.io/v1",
      kind: "IPAMBlock",
      metadata: { name: "10-64-0-0-26", uid: "00000000-0000-0000-0000-000000000000", resourceVersion: "1" },
      spec: {
        cidr: "10.64.0.0/26",
        affinity: "host:bench-host-0",
        allocations: Array.from({ length: 64 }, (_, i) => (i < 32 ? i : null)),
        unallocated: Array.from({ length: 32 }, (_, i) => i + 32),
        attributes: Array.from({ length: 32 }, (_, i) => ({
          handleId: `h-${i}`,
          secondary: null,
          allocatedAt: Date.now(),
        })),
        sequenceNumber: 32,
        sequenceNumberForAllocation: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [i, i])),
        deleted: false,
        emptySince: null,
      },
    }),
  );
  const handle = Buffer.from(
    JSON.stringify({
      apiVersion: "ipam.margay.io/v1",
      kind: "IPAMHandle",
      metadata: { name: "bench-0-0" },
      spec: { handleId: "bench-0-0", block: { "10.64.0.0/26": 1 }, deleted: false },
    }),
  );
  const revs = await Promise.all(
    etcds.map(async (c, w) => {
      const res = await c.kv.put({ key: Buffer.from(`/raw/${tag}/block/${w}`), value: block });
      return Number(res.header!.revision);
    }),
  );
  const per = Math.floor(total / clients);
  const seconds = await timed(per * clients, clients, async (i, w) => {
    const key = Buffer.from(`/raw/${tag}/block/${w}`);
    const res = await etcds[w]!.kv.txn({
      compare: [{ key, target: "Mod", result: "Equal", mod_revision: revs[w]! }],
      success: [
        { request_put: { key, value: block } },
        { request_put: { key: Buffer.from(`/raw/${tag}/handle/${w}/${i}`), value: handle } },
      ],
    });
    if (!res.succeeded) throw new Error("raw baseline compare failed");
    revs[w] = Number(res.header!.revision);
  });
  for (const c of etcds) c.close();
  return record("etcd3 raw txn", "raw-txn", clients, per * clients, seconds);
}

async function main(): Promise<void> {
  // Memory backend: one datastore shared by all clients (it is in-process).
  for (const allocators of [1, N]) {
    const allocs: Row[] = [];
    const releases: Row[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const mem = createMemoryDatastore();
      await seedPools(mem);
      const { a, r } = await ipamRun("memory", () => mem, false, allocators, count(10_000), `m${allocators}`);
      allocs.push(a);
      releases.push(r);
      await mem.close();
    }
    rows.push(median(allocs), median(releases));
  }

  // etcd on tmpfs when there is one, as the datastore benchmark does: the figures then measure the
  // request path (client, gRPC, etcd's MVCC) rather than this machine's disk.
  const shm = existsSync("/dev/shm") ? "/dev/shm" : undefined;
  etcdStorage = shm === undefined ? "disk" : "tmpfs";
  const etcd = await startEtcd({ baseDir: shm });
  try {
    const admin = createEtcdDatastore({ endpoints: etcd.endpoints });
    await seedPools(admin);
    for (const allocators of [1, N]) {
      const total = count(allocators === 1 ? 1000 : 2000);
      const raws: Row[] = [];
      const allocs: Row[] = [];
      const releases: Row[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        raws.push(await rawRun(etcd.endpoints, allocators, total, `r${allocators}-${round}`));
        const { a, r } = await ipamRun(
          "etcd",
          () => createEtcdDatastore({ endpoints: etcd.endpoints }),
          true,
          allocators,
          total,
          `e${allocators}-${round}`,
        );
        allocs.push(a);
        releases.push(r);
      }
      const raw = median(raws);
      const a = median(allocs);
      const r = median(releases);
      a.ratioToRawTxn = a.opsPerSec / raw.opsPerSec;
      r.ratioToRawTxn = r.opsPerSec / raw.opsPerSec;
      rows.push(raw, a, r);
    }
    await admin.close();
  } finally {
    await etcd.stop();
  }

  const header = [
    "backend",
    "op",
    "allocators",
    "ops",
    "seconds",
    "ops/s median (min–max)",
    "vs raw etcd txn",
  ];
  const body = rows.map((r) => [
    r.backend,
    r.op,
    String(r.allocators),
    String(r.ops),
    r.seconds.toFixed(2),
    fmt(r.opsPerSecSummary!, 0),
    r.ratioToRawTxn === undefined ? "" : `${r.ratioToRawTxn.toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const tableRow = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(
    `median (min–max) of ${ROUNDS} interleaved rounds; allocators on different hosts, one datastore client each; etcd data on ${etcdStorage}\n`,
  );
  console.log(tableRow(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const b of body) console.log(tableRow(b));

  writeResult("ipam", {
    bench: "ipam",
    node: process.version,
    cpus: cpus().length,
    scale: SCALE,
    rounds: ROUNDS,
    etcdStorage,
    rows,
  });
}

await main();
