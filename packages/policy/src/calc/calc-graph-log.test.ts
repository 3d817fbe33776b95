import { createRecordingLogger } from "@margay/api";
import { describe, expect, it } from "vitest";
import { gnp, nsProfile, wep } from "../__tests__/builders.js";
import { createCalcGraph } from "./calc-graph.js";

describe("the calc graph's log", () => {
  it("logs each resource treated as absent and each rule that failed closed", () => {
    const logger = createRecordingLogger();
    const g = createCalcGraph({ logger });
    g.upsert(gnp("unreadable", { selector: "app ==", ingress: [] }));
    g.upsert(wep("ns1/a", "10.0.0.300"));
    g.upsert(
      gnp("half-bad", {
        selector: "all()",
        ingress: [
          { action: "Allow", source: { nets: ["10.0.0.0/8"] } },
          { action: "Allow", source: { nets: ["10.0.0.0/33"] } },
        ],
        egress: [{ action: "Allow", destination: { nets: ["not-a-cidr"] } }],
      }),
    );
    g.upsert(nsProfile("ns1", {}));
    expect(logger.find({ message: "policy resource invalid; treated as absent" })).toMatchObject([
      {
        level: "warn",
        attributes: { component: "policy", key: "GlobalNetworkPolicy/unreadable", code: "invalid-input" },
      },
      {
        level: "warn",
        attributes: { component: "policy", key: "WorkloadEndpoint/ns1/a", code: "invalid-input" },
      },
    ]);
    const denied = logger.find({ message: "policy rule invalid; it denies" });
    expect(denied.map((r) => [r.attributes.key, r.attributes.direction, r.attributes.rule])).toEqual([
      ["GlobalNetworkPolicy/half-bad", "inbound", 1],
      ["GlobalNetworkPolicy/half-bad", "outbound", 0],
    ]);
    for (const r of denied) expect(r.attributes.reason).toEqual(expect.any(String));
  });
});
