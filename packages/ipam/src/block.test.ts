import { freezeShared } from "@margay/datastore";
import { describe, expect, it } from "vitest";
import {
  allocateFromBlock,
  assignOrdinal,
  availableCount,
  handleAdd,
  handleCounts,
  hasAvailable,
  handleRemove,
  inUseCount,
  newBlock,
  releaseFromBlock,
  releaseHandleFromBlock,
  validateBlock,
} from "./block.js";
import { formatCidr, parseCidr } from "./cidr.js";
import { isIpamError } from "./errors.js";

const cidr = parseCidr("10.0.0.0/29");
const fresh = () => newBlock(cidr, "host:a", 0, formatCidr(cidr));
const req = (num: number, handleId = "h1") => ({ num, handleId, secondary: { pod: "p" }, now: 1000 });

describe("block core", () => {
  it("allocates in address order from a new block, including the block's first address as Calico does", () => {
    const r = allocateFromBlock(fresh(), cidr, req(3));
    expect(r.ordinals).toEqual([0, 1, 2]);
    expect(r.spec.unallocated).toEqual([3, 4, 5, 6, 7]);
    expect(r.spec.sequenceNumber).toBe(1);
    expect(r.spec.sequenceNumberForAllocation).toEqual({ 0: 0, 1: 0, 2: 0 });
    expect(r.spec.emptySince).toBeNull();
    expect(validateBlock(r.spec, cidr)).toEqual([]);
  });

  it("does not mutate its input", () => {
    const b = fresh();
    const copy = structuredClone(b);
    allocateFromBlock(b, cidr, req(2));
    expect(b).toEqual(copy);
  });

  it("reuses the longest-free address first (FIFO free list)", () => {
    let b = allocateFromBlock(fresh(), cidr, req(8)).spec;
    expect(availableCount(b, cidr, { now: 0 })).toBe(0);
    b = releaseFromBlock(b, [{ ordinal: 5 }], 2000).spec;
    b = releaseFromBlock(b, [{ ordinal: 2 }], 2001).spec;
    const r = allocateFromBlock(b, cidr, req(1, "h2"));
    expect(r.ordinals).toEqual([5]);
  });

  it("refuses a stale release by sequence number or handle", () => {
    let b = allocateFromBlock(fresh(), cidr, req(1, "old")).spec; // ordinal 0, seq 0
    b = releaseFromBlock(b, [{ ordinal: 0 }], 1).spec;
    // Fill the rest so the next allocation reuses ordinal 0 with a new sequence number.
    b = allocateFromBlock(b, cidr, req(7, "filler")).spec;
    const again = allocateFromBlock(b, cidr, req(1, "new"));
    expect(again.ordinals).toEqual([0]);
    b = again.spec;
    const stale = releaseFromBlock(b, [{ ordinal: 0, sequenceNumber: 0 }], 5);
    expect(stale.released).toEqual([]);
    expect(stale.skipped).toEqual([{ ordinal: 0, reason: "sequence-mismatch" }]);
    const wrongHandle = releaseFromBlock(b, [{ ordinal: 0, handleId: "old" }], 5);
    expect(wrongHandle.skipped).toEqual([{ ordinal: 0, reason: "handle-mismatch" }]);
    const exact = releaseFromBlock(
      b,
      [{ ordinal: 0, handleId: "new", sequenceNumber: again.sequenceNumber }],
      5,
    );
    expect(exact.released).toEqual([{ ordinal: 0, handleId: "new" }]);
  });

  it("skips reserved addresses and cooling-down ones", () => {
    const reserved = (v: bigint) => v === cidr.network + 1n;
    let r = allocateFromBlock(fresh(), cidr, { ...req(2), isReserved: reserved });
    expect(r.ordinals).toEqual([0, 2]);
    let b = releaseFromBlock(r.spec, [{ ordinal: 0 }], 1000, 500).spec;
    b = allocateFromBlock(b, cidr, { ...req(4), isReserved: reserved }).spec; // takes 3..6
    r = allocateFromBlock(b, cidr, { ...req(2), now: 1200, cooldownMs: 500, isReserved: reserved });
    expect(r.ordinals).toEqual([7]); // 0 is cooling down, 1 reserved
    r = allocateFromBlock(r.spec, cidr, { ...req(1), now: 1600, cooldownMs: 500, isReserved: reserved });
    expect(r.ordinals).toEqual([0]);
    expect(r.spec.releasedAt).toBeUndefined();
  });

  it("hasAvailable says whether availableCount is above zero, skipping reserved and cooling-down ordinals", () => {
    const reserved = (v: bigint) => v !== cidr.network + 7n; // only the last ordinal is usable
    let b = fresh();
    expect(hasAvailable(b, cidr, { now: 0, isReserved: reserved })).toBe(true);
    b = allocateFromBlock(b, cidr, { ...req(1), isReserved: reserved }).spec;
    expect(availableCount(b, cidr, { now: 0, isReserved: reserved })).toBe(0);
    expect(hasAvailable(b, cidr, { now: 0, isReserved: reserved })).toBe(false);
    b = releaseFromBlock(b, [{ ordinal: 7 }], 1000, 500).spec;
    expect(hasAvailable(b, cidr, { now: 1200, cooldownMs: 500, isReserved: reserved })).toBe(false);
    expect(hasAvailable(b, cidr, { now: 1600, cooldownMs: 500, isReserved: reserved })).toBe(true);
    expect(hasAvailable({ ...b, deleted: true }, cidr, { now: 1600 })).toBe(false);
  });

  it("allocates from a frozen stored block without changing it", () => {
    const b = fresh();
    const frozen = Object.freeze({
      ...b,
      allocations: Object.freeze([...b.allocations]),
      unallocated: Object.freeze([...b.unallocated]),
    }) as typeof b;
    const r = allocateFromBlock(frozen, cidr, { ...req(2), isReserved: (v) => v === cidr.network });
    expect(r.ordinals).toEqual([1, 2]);
    expect(r.spec.unallocated).toEqual([0, 3, 4, 5, 6, 7]);
    expect(frozen.unallocated).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(validateBlock(r.spec, cidr)).toEqual([]);
  });

  it("assigns a specific ordinal and rejects a taken one", () => {
    const r = assignOrdinal(fresh(), 4, { handleId: "h", secondary: null, now: 1 });
    expect(r.spec.unallocated).not.toContain(4);
    let caught: unknown;
    try {
      assignOrdinal(r.spec, 4, { handleId: "x", secondary: null, now: 1 });
    } catch (e) {
      caught = e;
    }
    expect(isIpamError(caught, "already-allocated")).toBe(true);
  });

  it("releases by handle, compacts attributes and marks the block empty", () => {
    let b = allocateFromBlock(fresh(), cidr, req(2, "a")).spec;
    b = allocateFromBlock(b, cidr, req(3, "b")).spec;
    expect(handleCounts(b)).toEqual(
      new Map([
        ["a", 2],
        ["b", 3],
      ]),
    );
    const r = releaseHandleFromBlock(b, "a", 50);
    expect(r.released.map((x) => x.ordinal)).toEqual([0, 1]);
    expect(r.spec.attributes).toHaveLength(1);
    expect(validateBlock(r.spec, cidr)).toEqual([]);
    const empty = releaseHandleFromBlock(r.spec, "b", 60).spec;
    expect(inUseCount(empty)).toBe(0);
    expect(empty.emptySince).toBe(60);
    expect(empty.attributes).toEqual([]);
  });

  it("supports /32 and /128 blocks", () => {
    for (const c of [parseCidr("10.9.9.9/32"), parseCidr("fd00::9/128")]) {
      const b = newBlock(c, null, 0, formatCidr(c));
      const r = allocateFromBlock(b, c, req(2));
      expect(r.ordinals).toEqual([0]);
      expect(allocateFromBlock(r.spec, c, req(1)).ordinals).toEqual([]);
    }
  });

  it("detects malformed blocks", () => {
    const b = allocateFromBlock(fresh(), cidr, req(1)).spec;
    expect(validateBlock({ ...b, unallocated: [0, ...b.unallocated] }, cidr)).toContain(
      "ordinal 0 both allocated and free",
    );
    expect(validateBlock({ ...b, unallocated: b.unallocated.slice(1) }, cidr)).toContain(
      "ordinal 1 neither allocated nor free",
    );
  });

  it("keeps handle counts per block", () => {
    let h = handleAdd(undefined, "h", "10.0.0.0/29", 2);
    h = handleAdd(h, "h", "fd00::/122", 1);
    expect(h.block).toEqual({ "10.0.0.0/29": 2, "fd00::/122": 1 });
    const h2 = handleRemove(h, "10.0.0.0/29", 2)!;
    expect(h2.block).toEqual({ "fd00::/122": 1 });
    expect(handleRemove(h2, "fd00::/122", 1)).toBeNull();
  });

  it("starts a handle's per-block record as plain JSON data, whatever the block", () => {
    // Thousands of block keys: more than one hidden-class tree holds (see countRecord).
    for (let i = 0; i < 3000; i++) {
      const block = `10.${i >> 8}.${i & 255}.0/26`;
      const h = handleAdd(undefined, `h${i}`, block, 1 + (i % 3));
      expect(Object.getPrototypeOf(h.block)).toBe(Object.prototype);
      expect(Object.keys(h.block)).toEqual([block]);
      expect(JSON.parse(JSON.stringify(h))).toEqual({
        handleId: `h${i}`,
        block: { [block]: 1 + (i % 3) },
        deleted: false,
      });
      // The datastore takes it as plain data (freezes it in place instead of copying it).
      expect(freezeShared(h)).toBe(h);
      expect(Object.isFrozen(h.block)).toBe(true);
      expect(handleAdd(h, `h${i}`, block, 1).block).toEqual({ [block]: 2 + (i % 3) });
    }
  });
});
