import { describe, expect, it } from "vitest";
import { createBackoff } from "./backoff.js";

describe("createBackoff", () => {
  it("grows by the factor up to the cap, and reset starts over", () => {
    const b = createBackoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
    expect(Array.from({ length: 6 }, () => b.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it("spreads each delay by at most ±jitter of itself", () => {
    const lo = createBackoff({ initialMs: 100, jitter: 0.5, random: () => 0 });
    const hi = createBackoff({ initialMs: 100, jitter: 0.5, random: () => 0.999999 });
    expect(lo.next()).toBe(50);
    expect(hi.next()).toBe(150);
    const r = createBackoff({ initialMs: 1000, maxMs: 1000, jitter: 0.2 });
    const samples = Array.from({ length: 200 }, () => r.next());
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...samples)).toBeLessThanOrEqual(1200);
    expect(new Set(samples).size).toBeGreaterThan(10);
  });

  it("rejects nonsensical settings", () => {
    expect(() => createBackoff({ initialMs: 0 })).toThrow(RangeError);
    expect(() => createBackoff({ initialMs: 100, maxMs: 10 })).toThrow(RangeError);
    expect(() => createBackoff({ factor: 0.5 })).toThrow(RangeError);
  });
});
