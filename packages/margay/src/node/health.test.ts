import { describe, expect, it } from "vitest";
import { createHealth } from "./health.js";

describe("createHealth", () => {
  it("is the conjunction of its components and names the failing ones", () => {
    const h = createHealth();
    h.report("datastore", { live: true, ready: true });
    h.report("bgp", { live: true, ready: false, reason: "BGP peer 10.0.0.5: TCP 179 refused" });
    const s = h.snapshot();
    expect(s.live).toBe(true);
    expect(s.ready).toBe(false);
    expect(Object.keys(s.components)).toEqual(["bgp", "datastore"]);
    expect(h.problems()).toEqual(["bgp: BGP peer 10.0.0.5: TCP 179 refused"]);
    h.report("bgp", { live: true, ready: true });
    expect(h.snapshot().ready).toBe(true);
    expect(h.problems()).toEqual([]);
  });

  it("a component that is not live is not ready either, and makes the agent not live", () => {
    const h = createHealth();
    h.report("dataplane", { live: false, ready: true });
    expect(h.snapshot()).toEqual({
      live: false,
      ready: false,
      components: { dataplane: { live: false, ready: false } },
    });
    expect(h.problems()).toEqual(["dataplane: not live"]);
  });

  it("remove forgets a component", () => {
    const h = createHealth();
    h.report("bgp", { live: true, ready: false, reason: "no peer" });
    h.remove("bgp");
    expect(h.snapshot()).toEqual({ live: true, ready: true, components: {} });
  });

  it("notifies on changes only, and a throwing listener does not break report()", () => {
    const h = createHealth();
    const seen: boolean[] = [];
    h.onChange(() => {
      throw new Error("listener bug");
    });
    const off = h.onChange((s) => seen.push(s.ready));
    h.report("a", { live: true, ready: false, reason: "starting" });
    h.report("a", { live: true, ready: false, reason: "starting" });
    h.report("a", { live: true, ready: true });
    h.remove("missing");
    h.remove("a");
    off();
    h.report("a", { live: true, ready: false });
    expect(seen).toEqual([false, true, true]);
  });

  it("an empty reason is no reason", () => {
    const h = createHealth();
    h.report("a", { live: true, ready: false, reason: "" });
    expect(h.snapshot().components.a).toEqual({ live: true, ready: false });
  });
});
