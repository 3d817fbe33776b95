import { describe, expect, it } from "vitest";
import { RecentMap } from "./recent-map.js";

describe("RecentMap", () => {
  it("keeps between max/2 and max of the most recent writes, and forgets older ones", () => {
    const m = new RecentMap<string, number | null>(10);
    for (let i = 0; i < 1000; i++) {
      m.set(`k${i}`, i % 7 === 0 ? null : i);
      expect(m.size).toBeLessThanOrEqual(10);
    }
    expect(m.size).toBeGreaterThanOrEqual(5);
    for (let i = 995; i < 1000; i++) expect(m.get(`k${i}`)).toBe(i % 7 === 0 ? null : i);
    expect(m.has("k0")).toBe(false);
    expect(m.get("k0")).toBeUndefined();
  });

  it("a rewrite moves a key to the young generation; a null value is held, not missing", () => {
    const m = new RecentMap<string, number | null>(4);
    m.set("a", 1);
    m.set("b", null); // young is full: a, b become the old generation
    m.set("a", 2); // a rewritten: young again
    expect(m.get("a")).toBe(2);
    expect(m.has("b")).toBe(true);
    expect(m.get("b")).toBeNull();
    m.set("c", 3); // a, c become old; b (the previous old generation) is dropped
    expect(m.has("b")).toBe(false);
    expect(m.get("a")).toBe(2);
    expect(m.delete("a")).toBe(true);
    expect(m.delete("a")).toBe(false);
    m.clear();
    expect(m.size).toBe(0);
  });
});
