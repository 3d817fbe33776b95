import { describe, expect, it } from "vitest";
import { createRng, runFuzz } from "../../fuzz/fuzz.js";

describe("wire fuzzer (CI-sized run)", () => {
  it("meets no untyped exception in 20,000 random and mutated inputs", () => {
    const r = runFuzz({ iterations: 20_000, seed: 7 });
    expect(r.failures).toEqual([]);
    expect(r.iterations).toBe(20_000);
    // The mutations must reach every layer, not only the header check.
    expect(r.outcomes["update:clean"] ?? 0).toBeGreaterThan(0);
    expect(r.outcomes["update:treat-as-withdraw"] ?? 0).toBeGreaterThan(0);
    expect(r.outcomes["msg:1:ok"] ?? 0).toBeGreaterThan(0);
    expect(r.outcomes["framer:1/1"] ?? 0).toBeGreaterThan(0);
  }, 120_000);

  it("reports an untyped exception from a target instead of throwing", () => {
    const r = runFuzz({
      iterations: 50,
      seed: 3,
      maxFailures: 1,
      targets: [
        {
          name: "broken",
          run() {
            throw new TypeError("boom");
          },
        },
      ],
    });
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ target: "broken" });
    expect(r.failures[0]!.error).toContain("boom");
  });

  it("replays the same inputs for the same seed", () => {
    const a = createRng(42);
    const b = createRng(42);
    expect(Array.from({ length: 5 }, () => a.int(1000))).toEqual(
      Array.from({ length: 5 }, () => b.int(1000)),
    );
  });
});
