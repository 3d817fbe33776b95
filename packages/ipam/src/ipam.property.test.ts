/**
 * Model-based property test: random batches of concurrent operations from several hosts over both
 * families (allocate, release by IP and by handle, specific assignment, claim, release of a host's
 * affinities), on the memory datastore. After every batch the invariants must hold.
 */
import { createMemoryDatastore } from "@margay/datastore";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrContains, formatIp, parseCidr, parseIp } from "./cidr.js";
import { isIpamError } from "./errors.js";
import type { Ipam } from "./client-types.js";
import { createIpam } from "./ipam.js";
import { putIpamConfig, putPool, putReservation } from "./test-support.js";

// Small pools (four blocks per family) so exhaustion, borrowing and reclaiming happen often.
const POOL4 = parseCidr("10.0.0.0/28");
const POOL6 = parseCidr("fd00::/123");
const RESERVED = [parseCidr("10.0.0.3/32"), parseCidr("fd00::10/126")];
const HOSTS = ["h0", "h1", "h2"] as const;

type Cmd =
  | { t: "auto"; client: number; num4: number; num6: number }
  | { t: "releaseHandle"; client: number; pick: number }
  | { t: "releaseIp"; client: number; pick: number; guarded: boolean }
  | { t: "assign"; client: number; v6: boolean; offset: number }
  | { t: "claim"; client: number; v6: boolean; block: number }
  | { t: "releaseHost"; client: number }
  | { t: "toggleV6"; client: number }
  | { t: "resizeV4"; client: number }
  | { t: "gc"; client: number };

const client = fc.integer({ min: 0, max: 3 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("auto" as const),
      client,
      num4: fc.integer({ min: 0, max: 3 }),
      num6: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("releaseHandle" as const), client, pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("releaseIp" as const),
      client,
      pick: fc.nat(),
      guarded: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("assign" as const),
      client,
      v6: fc.boolean(),
      offset: fc.integer({ min: 0, max: 31 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("claim" as const),
      client,
      v6: fc.boolean(),
      block: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("releaseHost" as const), client }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("toggleV6" as const), client }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("resizeV4" as const), client }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("gc" as const), client }) },
);

/** A batch runs concurrently after the clock moved on by `advance` ms. */
const batch = fc.record({
  advance: fc.constantFrom(0, 400, 1000),
  cmds: fc.array(cmd, { minLength: 1, maxLength: 4 }),
});
const COOLDOWN = 1000;

const EXPECTED_FAILURES = new Set([
  "pool-exhausted",
  "host-block-limit",
  "already-allocated",
  "no-pools",
  "pool-disabled",
  "block-in-use",
]);

interface Held {
  ip: string;
  seq: number;
  auto: boolean;
}

describe("IPAM invariants under random concurrent operations", () => {
  it("never allocates an address twice; handles, blocks, pools and reservations agree", async () => {
    let serial = 0;

    await fc.assert(
      fc.asyncProperty(
        fc.array(batch, { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        fc.boolean(),
        async (batches, strictAffinity, cooldown) => {
          const ds = createMemoryDatastore();
          await putPool(ds, "v4", { cidr: "10.0.0.0/28", blockSize: 30 });
          await putPool(ds, "v6", { cidr: "fd00::/123", blockSize: 125 });
          await putReservation(ds, "r", ["10.0.0.3", "fd00::10/126"]);
          await putIpamConfig(ds, { strictAffinity, maxBlocksPerHost: 2 });
          // Four clients on three hosts (clients 0 and 3 share host h0); empty blocks are reclaimable at
          // once, so affinities also move between hosts under concurrency.
          let clock = 1_000_000;
          const clients: Ipam[] = [0, 1, 2, 3].map(() =>
            createIpam({
              datastore: ds,
              configTtlMs: 0,
              backoffMs: 0,
              reclaimEmptyBlockAfterMs: 0,
              reuseCooldownMs: cooldown ? COOLDOWN : 0,
              now: () => clock,
            }),
          );
          let v6Disabled = false;
          let v4BlockSize = 30;
          /** Address → when it was last seen released (batch time). */
          const releasedAt = new Map<string, number>();
          const hostOf = (c: number) => HOSTS[c % 3]!;
          const model = new Map<string, Held[]>();
          try {
            for (const { advance, cmds } of batches) {
              clock += advance;
              const v6DisabledBefore = v6Disabled;
              const toggles = cmds.some((c) => c.t === "toggleV6");
              let toggled = false;
              let resized = false;
              const autoIps: string[] = [];
              const freed: string[] = [];
              const handles = [...model.keys()];
              const allIps = [...model].flatMap(([h, list]) => list.map((x) => [h, x] as const));
              const outcomes = await Promise.allSettled(
                cmds.map(async (c): Promise<() => void> => {
                  const ipam = clients[c.client]!;
                  switch (c.t) {
                    case "auto": {
                      if (c.num4 + c.num6 === 0) return () => {};
                      const handleId = `a${serial++}`;
                      const r = await ipam.autoAssign({
                        handleId,
                        node: hostOf(c.client),
                        num4: c.num4,
                        num6: c.num6,
                      });
                      expect(r.ipv4).toHaveLength(c.num4);
                      expect(r.ipv6).toHaveLength(c.num6);
                      // A pool disabled for the whole batch hands out nothing.
                      if (v6DisabledBefore && !toggles) expect(r.ipv6).toEqual([]);
                      for (const a of [...r.ipv4, ...r.ipv6]) autoIps.push(a.ip);
                      return () =>
                        model.set(
                          handleId,
                          [...r.ipv4, ...r.ipv6].map((a) => ({
                            ip: a.ip,
                            seq: a.sequenceNumber,
                            auto: true,
                          })),
                        );
                    }
                    case "releaseHandle": {
                      if (handles.length === 0) return () => {};
                      const h = handles[c.pick % handles.length]!;
                      freed.push(...(await ipam.releaseByHandle(h)));
                      return () => model.delete(h);
                    }
                    case "releaseIp": {
                      if (allIps.length === 0) return () => {};
                      const [h, held] = allIps[c.pick % allIps.length]!;
                      // Guarded by the handle (and optionally the sequence number) the address had
                      // before this batch: if a concurrent operation of the batch freed and
                      // re-allocated it, the release must leave the new owner alone.
                      const r = await ipam.releaseIPs([
                        { ip: held.ip, handleId: h, sequenceNumber: c.guarded ? held.seq : undefined },
                      ]);
                      for (const sk of r.skipped)
                        expect(["handle-mismatch", "sequence-mismatch"]).toContain(sk.reason);
                      for (const rel of r.released) expect(rel.handleId).toBe(h);
                      for (const rel of r.released) freed.push(rel.ip);
                      return () => {
                        for (const rel of r.released) {
                          const rest = (model.get(h) ?? []).filter((x) => x.ip !== rel.ip);
                          if (rest.length === 0) model.delete(h);
                          else model.set(h, rest);
                        }
                      };
                    }
                    case "assign": {
                      const pool = c.v6 ? POOL6 : POOL4;
                      const ip = formatIp(pool.version, pool.network + BigInt(c.offset % (c.v6 ? 32 : 16)));
                      const handleId = `s${serial++}`;
                      const r = await ipam.assignIP(ip, { handleId, node: hostOf(c.client) });
                      return () => model.set(handleId, [{ ip: r.ip, seq: r.sequenceNumber, auto: false }]);
                    }
                    case "claim": {
                      const pool = c.v6 ? POOL6 : POOL4;
                      const base = formatIp(pool.version, pool.network + BigInt(c.block * (c.v6 ? 8 : 4)));
                      await ipam.claimAffinity(`${base}/${c.v6 ? 125 : 30}`, hostOf(c.client));
                      return () => {};
                    }
                    case "releaseHost":
                      await ipam.releaseHostAffinities(hostOf(c.client));
                      return () => {};
                    case "toggleV6":
                      // One operator write per batch (concurrent ones would conflict with each other).
                      if (toggled) return () => {};
                      toggled = true;
                      v6Disabled = !v6Disabled;
                      await putPool(ds, "v6", { cidr: "fd00::/123", blockSize: 125, disabled: v6Disabled });
                      return () => {};
                    case "resizeV4":
                      // An operator changes the block size while blocks of the old size hold addresses.
                      if (resized) return () => {};
                      resized = true;
                      v4BlockSize = v4BlockSize === 30 ? 29 : 30;
                      await putPool(ds, "v4", { cidr: "10.0.0.0/28", blockSize: v4BlockSize });
                      return () => {};
                    case "gc": {
                      // Every handle is live or was allocated in this very batch (younger than the
                      // grace period): racing with those allocations, gc must release nothing.
                      const r = await ipam.gc(handles, 1);
                      expect(r.released).toEqual([]);
                      return () => {};
                    }
                  }
                }),
              );
              for (const o of outcomes) {
                if (o.status === "fulfilled") o.value();
                else if (!isIpamError(o.reason) || !EXPECTED_FAILURES.has(o.reason.code)) throw o.reason;
              }
              // Invariant 0: with a cool-down, no address freed less than COOLDOWN ago is handed out
              // automatically (an address freed and re-allocated within one batch is a violation).
              for (const ip of freed) releasedAt.set(ip, clock);
              if (cooldown) {
                for (const ip of autoIps) {
                  const at = releasedAt.get(ip);
                  if (at !== undefined)
                    expect(clock - at, `${ip} reused too soon`).toBeGreaterThanOrEqual(COOLDOWN);
                }
              }
              // Invariant 1: no address held by two handles.
              const owner = new Map<string, string>();
              for (const [h, list] of model) {
                for (const x of list) {
                  expect(owner.get(x.ip), `${x.ip} held by ${owner.get(x.ip)} and ${h}`).toBeUndefined();
                  owner.set(x.ip, h);
                }
              }
              // Invariant 2: every address in a pool; automatic ones outside reservations.
              for (const list of model.values()) {
                for (const x of list) {
                  const a = parseIp(x.ip);
                  expect(cidrContains(POOL4, a) || cidrContains(POOL6, a)).toBe(true);
                  if (x.auto)
                    expect(
                      RESERVED.some((r) => cidrContains(r, a)),
                      x.ip,
                    ).toBe(false);
                }
              }
              // Invariant 3: the store agrees with the model: no leak, no orphan, counts match.
              const report = await clients[0]!.check(model.keys());
              expect(report.ok, JSON.stringify(report)).toBe(true);
              expect(report.allocated).toBe(owner.size);
              for (const [h, list] of model) {
                expect((await clients[1]!.ipsByHandle(h)).sort()).toEqual(list.map((x) => x.ip).sort());
              }
            }
          } finally {
            await ds.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
