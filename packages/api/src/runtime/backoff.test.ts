import { describe, expect, it } from "vitest";
import { backoffDelay, createBackoff, sleep } from "./backoff.js";

describe("backoffDelay", () => {
  it("grows by the factor up to the cap", () => {
    const o = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(-3, o)).toBe(100);
  });

  it("spreads by at most ±jitter, or over [0, delay) with full jitter", () => {
    expect(backoffDelay(0, { initialMs: 100, jitter: 0.5, random: () => 0 })).toBe(50);
    expect(backoffDelay(0, { initialMs: 100, jitter: 0.5, random: () => 0.999999 })).toBe(150);
    expect(backoffDelay(2, { initialMs: 10, jitter: "full", random: () => 0 })).toBe(0);
    expect(backoffDelay(2, { initialMs: 10, jitter: "full", random: () => 0.999999 })).toBe(39);
    const samples = Array.from({ length: 200 }, () => backoffDelay(0, { initialMs: 1000, jitter: 0.2 }));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...samples)).toBeLessThanOrEqual(1200);
  });

  it("rejects nonsensical settings", () => {
    expect(() => backoffDelay(0, { initialMs: 0 })).toThrow(RangeError);
    expect(() => backoffDelay(0, { initialMs: 100, maxMs: 10 })).toThrow(RangeError);
    expect(() => createBackoff({ factor: 0.5 })).toThrow(RangeError);
  });
});

describe("createBackoff", () => {
  it("advances, counts and resets", () => {
    const b = createBackoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    expect(Array.from({ length: 6 }, () => b.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });
});

describe("sleep", () => {
  it("resolves after the delay", async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
  });

  it("rejects with the signal's reason when aborted, before or during the wait", async () => {
    const reason = new Error("stop");
    await expect(sleep(10, AbortSignal.abort(reason))).rejects.toBe(reason);
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
  });
});
