import { createMemoryDatastore, type Datastore, type ListOptions, type ObjectKey } from "@margay/datastore";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newBlock } from "./block.js";
import { BlockCache, withExtraRanges } from "./block-cache.js";
import type { CachedBlock } from "./block-rw.js";
import { occupiedRanges } from "./block-walk.js";
import { type Cidr, cidrFromValue, cidrName, parseCidr } from "./cidr.js";
import { createIpam } from "./ipam.js";
import { putIpamConfig, putPool } from "./test-support.js";
import { IpamKind, type IpamBlockObject } from "./types.js";

const POOL = parseCidr("10.0.0.0/24");

/** The i-th /28 of the /24 (prefix 27 every other one, so blocks of two sizes overlap now and then). */
function blockCidr(i: number, wide: boolean): Cidr {
  const prefix = wide ? 27 : 28;
  const step = 2n ** BigInt(32 - prefix);
  return cidrFromValue(4, POOL.network + BigInt(i % (wide ? 8 : 16)) * step, prefix);
}

function entry(cidr: Cidr, affinity: string | null, full: boolean): CachedBlock {
  const spec = newBlock(cidr, affinity, 0, cidr.text);
  if (full) spec.unallocated = [];
  const obj: IpamBlockObject = {
    apiVersion: IpamKind.apiVersion,
    kind: IpamKind.Block,
    metadata: { name: cidrName(cidr) },
    spec,
  };
  return { obj, cidr };
}

describe("BlockCache", () => {
  it("keeps its indexes equal to a scan of its blocks through any sequence of sets and deletes", () => {
    const op = fc.record({
      del: fc.boolean(),
      i: fc.nat(15),
      wide: fc.boolean(),
      host: fc.constantFrom("host:a", "host:b", null),
      full: fc.boolean(),
    });
    const reservations = [parseCidr("10.0.0.200/29")];
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.nat(60), (ops, askAt) => {
        const cache = new BlockCache();
        ops.forEach((o, n) => {
          // Ask for the ranges part-way, so later sets must update them in place.
          if (n === askAt) cache.occupied(POOL, 28, reservations);
          const cidr = blockCidr(o.i, o.wide);
          if (o.del) cache.delete(cidrName(cidr));
          else cache.set(cidrName(cidr), entry(cidr, o.host, o.full));
        });
        for (const host of ["host:a", "host:b"]) {
          const scan = [...cache].filter(
            ([, e]) => e.obj.spec.affinity === host && e.obj.spec.unallocated.length > 0,
          );
          expect(new Set(cache.withRoom(host, 4).map(([n]) => n))).toEqual(new Set(scan.map(([n]) => n)));
          expect(cache.ownedCount(host, 4)).toBe(
            [...cache.values()].filter((e) => e.obj.spec.affinity === host).length,
          );
          expect(cache.withRoom(host, 6)).toEqual([]);
        }
        const all = [...cache.values()].map((e) => e.cidr);
        for (const size of [28, 27])
          expect(cache.occupied(POOL, size, reservations)).toEqual(
            occupiedRanges(POOL, size, all, reservations),
          );
      }),
      { numRuns: 300 },
    );
  });

  it("merges the ranges of blocks not cached yet into a copy, leaving the cached ranges alone", () => {
    const cache = new BlockCache();
    const a = blockCidr(0, false);
    cache.set(cidrName(a), entry(a, "host:a", false));
    const base = cache.occupied(POOL, 28, []);
    const extra = [blockCidr(1, false), blockCidr(5, false)];
    expect(withExtraRanges(base, POOL, 28, extra)).toEqual(occupiedRanges(POOL, 28, [a, ...extra], []));
    expect(cache.occupied(POOL, 28, [])).toEqual([{ start: 0n, end: 1n }]);
    expect(withExtraRanges(base, POOL, 28, [])).toBe(base);
  });
});

/** Counts the objects each kind's reads return. */
function counting(ds: Datastore): { ds: Datastore; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const add = (kind: string, n: number) => reads.set(kind, (reads.get(kind) ?? 0) + n);
  const wrapped: Datastore = Object.assign(Object.create(ds) as Datastore, {
    get: async (key: ObjectKey, o?: { signal?: AbortSignal }) => {
      const r = await ds.get(key, o);
      add(key.kind, 1);
      return r;
    },
    list: async (kind: string, o?: ListOptions) => {
      const r = await ds.list(kind, o);
      add(kind, r.items.length);
      return r;
    },
    transaction: ds.transaction.bind(ds),
  });
  return { ds: wrapped, reads };
}

describe("a fresh client", () => {
  it("reads only its host's affinities and blocks for a first allocation that its blocks have room for", async () => {
    const ds = createMemoryDatastore();
    await putIpamConfig(ds, { maxBlocksPerHost: 0 });
    await putPool(ds, "p", { cidr: "10.0.0.0/16", blockSize: 28 });
    const seed = createIpam({ datastore: ds });
    // 40 hosts with 2 blocks each (16 addresses a block, 20 in use per host).
    for (let i = 0; i < 20; i++)
      for (let h = 0; h < 40; h++)
        await seed.autoAssign({ handleId: `s${h}-${i}`, node: `host-${h}`, num4: 1 });
    await seed.close();
    const { ds: cds, reads } = counting(ds);
    const fresh = createIpam({ datastore: cds });
    const r = await fresh.autoAssign({ handleId: "new", node: "host-7", num4: 1 });
    expect(r.ipv4).toHaveLength(1);
    expect(reads.get(IpamKind.Affinity)).toBe(2);
    expect(reads.get(IpamKind.Block)).toBe(2);
    const held = (await ds.list<IpamBlockObject>(IpamKind.Block)).items
      .filter((b) => b.spec.affinity === "host:host-7")
      .map((b) => b.spec.cidr);
    expect(held).toContain(r.ipv4[0]!.block);
    await fresh.close();
    await ds.close();
  });
});
