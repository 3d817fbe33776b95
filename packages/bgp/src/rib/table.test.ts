import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Afi } from "../wire/types.js";
import { formatRibPrefix, PrefixTable, U32Map } from "./table.js";

describe("U32Map", () => {
  it("behaves like a Map under random sets and deletes (incl. colliding and extreme keys)", () => {
    const key = fc.oneof(
      fc.integer({ min: 0, max: 64 }),
      fc.constantFrom(0, 0xffffffff, 0x80000000),
      // One offset within every block of 8 keys: the blocks' home slots overflow into each other.
      fc.integer({ min: 0, max: 4096 }).map((x) => x * 8),
      fc.nat(),
    );
    const op = fc.tuple(
      fc.constantFrom("set", "delete", "get", "setIfAbsent"),
      key.map((k) => k >>> 0),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const m = new U32Map<number>();
        const ref = new Map<number, number>();
        ops.forEach(([kind, k], i) => {
          if (kind === "set") {
            m.set(k, i);
            ref.set(k, i);
          } else if (kind === "setIfAbsent") {
            expect(m.setIfAbsent(k, i)).toBe(ref.get(k));
            if (!ref.has(k)) ref.set(k, i);
          } else if (kind === "delete") {
            expect(m.delete(k)).toBe(ref.delete(k));
          } else {
            expect(m.get(k)).toBe(ref.get(k));
          }
          expect(m.size).toBe(ref.size);
        });
        for (const [k, v] of ref) expect(m.get(k)).toBe(v);
        const seen = new Map<number, number>();
        m.forEach((v, k) => {
          seen.set(k, v);
        });
        expect(seen).toEqual(ref);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a million entries and deletes them all", () => {
    const m = new U32Map<number>();
    // An odd multiplier is a bijection modulo 2^32: distinct keys spread over the whole range.
    const key = (i: number) => Math.imul(i, 7919) >>> 0;
    for (let i = 0; i < 1_000_000; i++) m.set(key(i), i);
    expect(m.size).toBe(1_000_000);
    expect(m.get(key(123_456))).toBe(123_456);
    for (let i = 0; i < 1_000_000; i += 2) expect(m.delete(key(i))).toBe(true);
    expect(m.size).toBe(500_000);
    for (let i = 0; i < 1_000_000; i++) expect(m.get(key(i))).toBe(i % 2 === 0 ? undefined : i);
  });

  it("copies one map into another in slot order (the Adj-RIB-Out export pattern)", () => {
    // With one hash function for every map, this walk clusters the copy into one probe run and turns
    // quadratic (a full-table export never finished); per-map seeds keep it linear.
    const a = new U32Map<number>();
    for (let i = 0; i < 300_000; i++) a.set((0x100000 + i) >>> 0, i);
    const b = new U32Map<number>();
    a.forEach((v, k) => {
      b.set(k, v);
    });
    expect(b.size).toBe(300_000);
    expect(b.get(0x100000 + 299_999)).toBe(299_999);
  });
});

describe("PrefixTable", () => {
  it("stores host routes at the top of the IPv4 space and default routes", () => {
    const t = new PrefixTable<string>();
    t.setV4(0xffffffff, 32, "bcast");
    t.setV4(0, 0, "default");
    t.setV4(0x0a000000, 8, "ten");
    expect(t.getV4(0xffffffff, 32)).toBe("bcast");
    expect(t.lookupV4(0x0a010203)).toEqual({ len: 8, value: "ten" });
    expect(t.lookupV4(0x0b000000)).toEqual({ len: 0, value: "default" });
    expect(t.size).toBe(3);
    expect(t.deleteV4(0xffffffff, 32)).toBe(true);
    expect(t.size).toBe(2);
  });
});

describe("formatRibPrefix", () => {
  it("writes IPv4 prefixes in dotted decimal for every octet value and length", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (v4, len) => {
        const text = formatRibPrefix({ afi: Afi.IPv4, len, v4, v6: null });
        expect(text).toBe(`${[v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join(".")}/${len}`);
      }),
      { numRuns: 2000 },
    );
    expect(formatRibPrefix({ afi: Afi.IPv4, len: 32, v4: 0xffffffff, v6: null })).toBe("255.255.255.255/32");
    expect(formatRibPrefix({ afi: Afi.IPv4, len: 0, v4: 0, v6: null })).toBe("0.0.0.0/0");
  });
});
