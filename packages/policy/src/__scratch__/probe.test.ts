import { describe, expect, it } from "vitest";
import { gnp, hep, np, nsProfile, profile, tier, wep } from "../__tests__/builders.js";
import { createCalcGraph } from "../calc/calc-graph.js";
import { createStreamMirror } from "../calc/stream-mirror.js";

function scratch(resources: Parameters<ReturnType<typeof createCalcGraph>["upsert"]>[0][]) {
  const g = createCalcGraph();
  for (const r of resources) g.upsert(r);
  g.markInSync();
  const m = createStreamMirror();
  m.apply(g.flush());
  return m.snapshot();
}

describe("probe", () => {
  it("duplicate profile names", () => {
    const g = createCalcGraph();
    const m = createStreamMirror();
    g.upsert(nsProfile("ns1"));
    g.upsert(wep("ns1/a", "10.0.0.1", {}, { profiles: ["kns.ns1", "kns.ns1"] }));
    m.apply(g.flush());
    g.upsert(wep("ns1/a", "10.0.0.1", {}, { profiles: ["kns.ns1"] }));
    m.apply(g.flush());
    g.remove({ kind: "WorkloadEndpoint", namespace: "ns1", name: "a" });
    g.markInSync();
    m.apply(g.flush());
    expect(m.snapshot()).toEqual(scratch([nsProfile("ns1")]));
  });
  it("endpoint with two addresses, named port", () => {
    const res = [
      nsProfile("ns1"),
      wep("ns1/a", "10.0.0.1", { app: "a" }, { ipNetworks: ["10.0.0.1/32", "fd00::1/128"], ports: [{ name: "http", protocol: "TCP", port: 80 }] }),
      np("ns1/p", { selector: "all()", ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: ["http"] } }] }),
    ];
    const s = scratch(res);
    console.log(JSON.stringify(s.ipSets));
  });
});
