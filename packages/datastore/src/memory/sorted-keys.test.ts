import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SortedKeys } from "./sorted-keys.js";

describe("SortedKeys", () => {
  it("keeps keys in string order through adds and deletes, and a prefix range is exactly the keys with it", () => {
    const key = fc.stringMatching(/^[ab\u0000]{0,5}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), key), { maxLength: 3000 }), key, (ops, prefix) => {
        const s = new SortedKeys();
        const ref = new Set<string>();
        for (const [add, k] of ops) {
          expect(add ? s.add(k) : s.delete(k)).toBe(add ? !ref.has(k) : ref.has(k));
          if (add) ref.add(k);
          else ref.delete(k);
        }
        const sorted = [...ref].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(s.size).toBe(ref.size);
        expect([...s.withPrefix("")]).toEqual(sorted);
        expect([...s.withPrefix(prefix)]).toEqual(sorted.filter((k) => k.startsWith(prefix)));
        // Values travel with their keys through splits and deletes.
        const valued = new SortedKeys<{ key: string }>();
        for (const k of sorted) valued.add(k, { key: k });
        const walked: string[] = [];
        valued.forEachWithPrefix(prefix, (v) => walked.push(v.key));
        expect(walked).toEqual(sorted.filter((k) => k.startsWith(prefix)));
      }),
      { numRuns: 200 },
    );
  });

  it("splits chunks: 100,000 keys in random order come out sorted, and a prefix walks only its keys", () => {
    const s = new SortedKeys();
    const n = 100_000;
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const i of order) s.add(`k${String(i).padStart(6, "0")}`);
    const all = [...s.withPrefix("k")];
    expect(all.length).toBe(n);
    expect(all.every((k, i) => i === 0 || all[i - 1]! < k)).toBe(true);
    expect([...s.withPrefix("k04242")]).toEqual(Array.from({ length: 10 }, (_, i) => `k04242${i}`));
    for (let i = 0; i < n; i += 2) s.delete(`k${String(i).padStart(6, "0")}`);
    expect([...s.withPrefix("k00001")]).toEqual(["k000011", "k000013", "k000015", "k000017", "k000019"]);
  });

  it("keeps each key's value beside it through chunk splits and deletes", () => {
    const s = new SortedKeys<number>();
    const n = 20_000;
    for (let i = n - 1; i >= 0; i--) expect(s.add(`k${String(i).padStart(5, "0")}`, i)).toBe(true);
    // A key added again keeps its first value.
    expect(s.add("k00042", -1)).toBe(false);
    for (let i = 0; i < n; i += 3) s.delete(`k${String(i).padStart(5, "0")}`);
    const got: number[] = [];
    s.forEachWithPrefix("k04", (v) => got.push(v));
    const want = Array.from({ length: 1000 }, (_, i) => 4000 + i).filter((i) => i % 3 !== 0);
    expect(got).toEqual(want);
    const all: number[] = [];
    s.forEachWithPrefix("", (v) => all.push(v));
    expect(all).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0));
  });
});
