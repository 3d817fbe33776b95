import { describe, expect, it } from "vitest";
import { isIpamError } from "./errors.js";
import { defaultNodeSelectorMatches, findOverlaps, normalizePool, validatePools } from "./pools.js";

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIpamError(e) ? e.code : "untyped";
  }
  return undefined;
}

describe("pools", () => {
  it("applies Calico's defaults", () => {
    expect(normalizePool("a", { cidr: "10.0.0.0/16" })).toMatchObject({
      blockSize: 26,
      nodeSelector: "all()",
      disabled: false,
      allowedUses: ["Workload", "Tunnel"],
      assignmentMode: "Automatic",
    });
    expect(normalizePool("b", { cidr: "fd00::/48" }).blockSize).toBe(122);
  });

  it("rejects bad block sizes and specs", () => {
    expect(code(() => normalizePool("a", { cidr: "10.0.0.0/16", blockSize: 19 }))).toBe("invalid");
    expect(code(() => normalizePool("a", { cidr: "10.0.0.0/16", blockSize: 33 }))).toBe("invalid");
    expect(code(() => normalizePool("a", { cidr: "fd00::/64", blockSize: 115 }))).toBe("invalid");
    expect(code(() => normalizePool("a", { cidr: "10.0.0.0/28", blockSize: 26 }))).toBe("invalid");
    expect(code(() => normalizePool("a", { cidr: "10.0.0.1/16" }))).toBe("invalid");
    expect(code(() => normalizePool("a", { cidr: "10.0.0.0/16", allowedUses: ["Nope" as "Workload"] }))).toBe(
      "invalid",
    );
    expect(normalizePool("a", { cidr: "10.0.0.0/30", blockSize: 32 }).blockSize).toBe(32);
    expect(normalizePool("a", { cidr: "fd00::/126", blockSize: 128 }).blockSize).toBe(128);
  });

  it("finds overlapping pools, only within one family", () => {
    const ps = [
      normalizePool("a", { cidr: "10.0.0.0/16" }),
      normalizePool("b", { cidr: "10.1.0.0/16" }),
      normalizePool("c", { cidr: "10.0.5.0/24" }),
      normalizePool("d", { cidr: "fd00::/64" }),
      normalizePool("e", { cidr: "fd00::/56" }),
    ];
    expect(findOverlaps(ps)).toEqual([
      ["a", "c"],
      ["d", "e"],
    ]);
    expect(
      code(() =>
        validatePools([
          { name: "x", spec: { cidr: "10.0.0.0/8" } },
          { name: "y", spec: { cidr: "10.2.0.0/16" } },
        ]),
      ),
    ).toBe("overlapping-pools");
    expect(
      validatePools([
        { name: "x", spec: { cidr: "10.0.0.0/16" } },
        { name: "y", spec: { cidr: "10.1.0.0/16" } },
      ]),
    ).toHaveLength(2);
  });

  it("evaluates node selectors with the Calico language", () => {
    expect(defaultNodeSelectorMatches("all()", {})).toBe(true);
    expect(defaultNodeSelectorMatches("zone in {'a', 'b'} && !has(edge)", { zone: "b" })).toBe(true);
    expect(defaultNodeSelectorMatches("zone in {'a', 'b'} && !has(edge)", { zone: "b", edge: "" })).toBe(
      false,
    );
  });
});
