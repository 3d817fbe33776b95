import { describe, expect, it } from "vitest";
import type { LabelIndex } from "../labels/label-index.js";
import { PolicyResolver } from "./policy-resolver.js";

/** A set that counts the members its iterator hands out (membership tests are free). */
class CountingSet extends Set<string> {
  walked = 0;
  override *[Symbol.iterator](): SetIterator<string> {
    for (const x of super.values()) {
      this.walked++;
      yield x;
    }
  }
}

describe("PolicyResolver.markSelected", () => {
  it("costs the local endpoints, not every endpoint the selector matches cluster-wide", () => {
    // 10,000 endpoints known cluster-wide match the selector; 3 are local, 2 of them matched.
    const matching = new CountingSet();
    for (let i = 0; i < 10_000; i++) matching.add(`remote-${i}`);
    matching.add("local-a");
    matching.add("local-b");
    const localEndpoints = new Set(["local-a", "local-b", "local-c"]);
    const index = { itemsMatching: () => matching } as unknown as LabelIndex;
    const resolver = new PolicyResolver({
      index,
      items: new Map(),
      localEndpoints,
      policiesMatching: () => [],
      failsafe: { inbound: [], outbound: [] },
    });
    resolver.markSelected("sel");
    expect(matching.walked).toBeLessThanOrEqual(localEndpoints.size);
  });

  it("still walks a selector's matches when they are fewer than the local endpoints", () => {
    const matching = new CountingSet(["local-a"]);
    const localEndpoints = new Set(Array.from({ length: 100 }, (_, i) => `local-${i}`));
    const index = { itemsMatching: () => matching } as unknown as LabelIndex;
    const resolver = new PolicyResolver({
      index,
      items: new Map(),
      localEndpoints,
      policiesMatching: () => [],
      failsafe: { inbound: [], outbound: [] },
    });
    resolver.markSelected("sel");
    expect(matching.walked).toBe(1);
  });
});
