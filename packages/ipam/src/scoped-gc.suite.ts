/**
 * The node-scoped `check`/`gc` scenarios (issue 11 §1), run by the unit tier on the memory datastore
 * and by the interop tier on a real etcd: two nodes share one datastore, one node borrows from the
 * other's block, and each node's GC must free only its own leaks; an allocation racing a GC survives.
 */
import type { Datastore } from "@margay/datastore";
import { expect, it } from "vitest";
import type { Ipam } from "./client-types.js";
import { createIpam } from "./ipam.js";
import { putIpamConfig, putPool, racingDatastore, type TestClock } from "./test-support.js";
import { IpamKind } from "./types.js";

/** What a scenario needs: a fresh, empty datastore per test, closed by the suite. */
export type ScopedGcDatastoreFactory = () => Promise<Datastore>;

const GRACE = 30_000;

/** Registers the scoped-GC scenarios (call inside a `describe`). */
export function scopedGcSuite(fresh: ScopedGcDatastoreFactory): void {
  const setup = async () => {
    const ds = await fresh();
    const clock: TestClock = { t: 1_000_000 };
    const make = (store: Datastore = ds): Ipam =>
      createIpam({ datastore: store, configTtlMs: 0, now: () => clock.t });
    // Blocks of 8 addresses and one block per host: node-b's ninth address is borrowed from node-a.
    await putPool(ds, "v4", { cidr: "10.10.0.0/24", blockSize: 29 });
    await putIpamConfig(ds, { maxBlocksPerHost: 1 });
    return { ds, clock, make };
  };
  const leakIds = (r: { leaks: { handleId: string | null }[] }) => r.leaks.map((l) => l.handleId).sort();

  it("gc scoped to one node frees only that node's leaks, borrowed addresses included", async () => {
    const { ds, clock, make } = await setup();
    try {
      const a = make();
      const b = make();
      const aLive = await a.autoAssign({ handleId: "net.a-live", node: "node-a", num4: 1 });
      await a.autoAssign({ handleId: "net.a-leak", node: "node-a", num4: 1 });
      await a.autoAssign({ handleId: "other.a-leak", node: "node-a", num4: 1 });
      const bLiveIds = ["net.b-live", ...Array.from({ length: 6 }, (_, i) => `net.b-fill${i}`)];
      for (const h of bLiveIds) await b.autoAssign({ handleId: h, node: "node-b", num4: 1 });
      await b.autoAssign({ handleId: "net.b-leak", node: "node-b", num4: 1 });
      const borrowed = await b.autoAssign({ handleId: "net.b-borrow", node: "node-b", num4: 1 });
      expect(borrowed.ipv4[0]!.block, "node-b borrowed from node-a's block").toBe(aLive.ipv4[0]!.block);
      clock.t += 2 * GRACE;

      const scopeA = { node: "node-a", handlePrefix: "net." };
      expect(leakIds(await a.check(["net.a-live"], { scope: { node: "node-a" } }))).toEqual([
        "net.a-leak",
        "other.a-leak",
      ]);
      expect(leakIds(await a.check(["net.a-live"], { scope: scopeA }))).toEqual(["net.a-leak"]);
      expect(leakIds(await b.check(bLiveIds, { scope: { node: "node-b" } }))).toEqual([
        "net.b-borrow",
        "net.b-leak",
      ]);

      const gcA = await a.gc(["net.a-live"], GRACE, { scope: scopeA });
      expect(gcA.released.map((r) => r.handleId)).toEqual(["net.a-leak"]);
      expect(gcA.deferred).toEqual([]);
      // node-b's addresses, the one in node-a's block included, and the other network's are untouched.
      expect(await a.ipsByHandle("net.b-borrow")).toEqual([borrowed.ipv4[0]!.ip]);
      expect(await a.ipsByHandle("net.b-leak")).toHaveLength(1);
      expect(await a.ipsByHandle("other.a-leak")).toHaveLength(1);

      const gcB = await b.gc(bLiveIds, GRACE, { scope: { node: "node-b", handlePrefix: "net." } });
      expect(gcB.released.map((r) => r.handleId).sort()).toEqual(["net.b-borrow", "net.b-leak"]);
      expect(gcB.released.find((r) => r.handleId === "net.b-borrow")!.ips).toEqual([borrowed.ipv4[0]!.ip]);

      const all = [...bLiveIds, "net.a-live", "other.a-leak"];
      const after = await a.check(all);
      expect(after.ok, JSON.stringify(after)).toBe(true);
      expect(after.allocated).toBe(all.length);
      for (const h of all) expect(await a.ipsByHandle(h)).toHaveLength(1);
    } finally {
      await ds.close();
    }
  });

  it("an allocation of the leaked handle made after gc's report survives (re-check defers it)", async () => {
    const { ds, clock, make } = await setup();
    try {
      const other = make();
      await other.autoAssign({ handleId: "net.r", node: "node-a", num4: 1 });
      clock.t += 2 * GRACE;
      // gc reads its report, then the same container's ADD retries on this node before gc releases.
      const store = racingDatastore(ds, IpamKind.Block, {
        afterList: async () => {
          await other.autoAssign({ handleId: "net.r", node: "node-a", num4: 1 });
        },
      });
      const gc = await make(store).gc([], GRACE, { scope: { node: "node-a", handlePrefix: "net." } });
      expect(gc.report.leaks.map((l) => l.handleId)).toEqual(["net.r"]);
      expect(gc.released).toEqual([]);
      expect(gc.deferred).toEqual(["net.r"]);
      expect(await other.ipsByHandle("net.r")).toHaveLength(2);
    } finally {
      await ds.close();
    }
  });

  it("an ADD on another node into the same block between gc's read and its commit survives", async () => {
    const { ds, clock, make } = await setup();
    try {
      const a = make();
      const b = make();
      // node-b's own block is full, so its racing ADD borrows from node-a's block, the one gc releases in.
      for (let i = 0; i < 8; i++) await b.autoAssign({ handleId: `net.b${i}`, node: "node-b", num4: 1 });
      const leak = await a.autoAssign({ handleId: "net.leak", node: "node-a", num4: 1 });
      clock.t += 2 * GRACE;
      let raced: string | undefined;
      const store = racingDatastore(ds, IpamKind.Block, {
        afterGet: async () => {
          const r = await b.autoAssign({ handleId: "net.b-racer", node: "node-b", num4: 1 });
          raced = r.ipv4[0]!.ip;
          expect(r.ipv4[0]!.block).toBe(leak.ipv4[0]!.block);
        },
      });
      const gc = await make(store).gc([], GRACE, { scope: { node: "node-a", handlePrefix: "net." } });
      expect(raced).toBeDefined();
      expect(gc.released).toEqual([{ handleId: "net.leak", ips: [leak.ipv4[0]!.ip] }]);
      expect(await b.ipsByHandle("net.b-racer")).toEqual([raced]);
      const live = [...Array.from({ length: 8 }, (_, i) => `net.b${i}`), "net.b-racer"];
      expect((await b.check(live)).ok).toBe(true);
    } finally {
      await ds.close();
    }
  });
}
