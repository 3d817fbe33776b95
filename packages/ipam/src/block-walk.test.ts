import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blockAt, blockCount, fnv1a64, freeBlockWalk, occupiedRanges } from "./block-walk.js";
import { type Cidr, cidrsOverlap, formatCidr, parseCidr } from "./cidr.js";

function take<T>(it: Iterator<T>, n: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("free block walk", () => {
  it("walks a /64 of /122 blocks without enumerating 2^58 blocks", () => {
    const pool = parseCidr("fd00:10::/64");
    expect(blockCount(pool, 122)).toBe(2n ** 58n);
    const seed = fnv1a64("node-a|fd00:10::/64");
    const first = take(freeBlockWalk(pool, 122, seed, []), 3);
    expect(first.map((c) => c.prefixLength)).toEqual([122, 122, 122]);
    expect(first[1]!.network - first[0]!.network).toBe(64n);
    // The start depends on the host: two hosts start in different places.
    const other = take(freeBlockWalk(pool, 122, fnv1a64("node-b|fd00:10::/64"), []), 1);
    expect(other[0]!.network).not.toBe(first[0]!.network);
  });

  it("skips existing blocks and fully reserved ones, and ends after one lap", () => {
    const pool = parseCidr("10.0.0.0/24");
    const existing = [parseCidr("10.0.0.0/26"), parseCidr("10.0.0.128/26")];
    const reserved = [parseCidr("10.0.0.64/26"), parseCidr("10.0.0.200/32")];
    const all = [...freeBlockWalk(pool, 26, 0n, occupiedRanges(pool, 26, existing, reserved))];
    expect(all.map(formatCidr)).toEqual(["10.0.0.192/26"]);
  });

  it("yields every free block exactly once, never an occupied one (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
        fc.bigInt({ min: 0n, max: 1n << 40n }),
        (extra, used, seed) => {
          const pool = parseCidr("10.0.0.0/20");
          const prefix = 24 + (extra % 5);
          const n = Number(blockCount(pool, prefix));
          const existing: Cidr[] = used.map((u) => blockAt(pool, prefix, BigInt(u % n)));
          const walked = [...freeBlockWalk(pool, prefix, seed, occupiedRanges(pool, prefix, existing, []))];
          const names = new Set(walked.map(formatCidr));
          expect(names.size).toBe(walked.length);
          for (const c of walked) expect(existing.some((e) => cidrsOverlap(e, c))).toBe(false);
          expect(walked.length).toBe(n - new Set(existing.map(formatCidr)).size);
        },
      ),
      { numRuns: 150 },
    );
  });
});
