import type { PolicyUpdate, RenderedRule } from "@margay/dataplane-contract";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "./errors.js";
import { createDataplaneModel } from "./model.js";
import { renderedRule } from "./testing/rendered-rule.js";

const rule = renderedRule;
const policy = (r: RenderedRule, id = "default/p"): PolicyUpdate => ({
  kind: "active-policy-update",
  id,
  tier: "default",
  name: "p",
  inbound: [r],
  outbound: [],
  flags: { untracked: false, preDnat: false, applyOnForward: false },
});

function rejects(updates: PolicyUpdate[]): boolean {
  const m = createDataplaneModel();
  try {
    m.applyBatch(updates);
    return false;
  } catch (e) {
    return isDataplaneError(e, "invalid-update");
  }
}

describe("policy update validation (everything that reaches nft text)", () => {
  it("accepts well-formed rules, sets and endpoints", () => {
    expect(
      rejects([
        {
          kind: "ip-set-update",
          id: "s",
          type: "ip-and-port",
          members: ["10.0.0.1,tcp:80", "fd00::1,udp:53"],
        },
        policy(
          rule({
            protocol: 6,
            srcNets: ["10.0.0.0/8"],
            dstPorts: [{ first: 80, last: 90 }],
            notSrcPorts: [{ first: 1, last: 1023 }],
          }),
        ),
        policy(rule({ protocol: 1, ipVersion: 4, notIcmp: { type: 8, code: 0 } }), "default/q"),
        policy(rule({ protocol: 58, icmp: { type: 128 } }), "default/r"),
      ]),
    ).toBe(false);
  });

  it.each([
    ["a CIDR carrying nft syntax", policy(rule({ srcNets: ["10.0.0.0/8 } accept"] }))],
    ["a port out of range", policy(rule({ protocol: 6, dstPorts: [{ first: 80, last: 70000 }] }))],
    ["a reversed port range", policy(rule({ protocol: 6, dstPorts: [{ first: 90, last: 80 }] }))],
    ["ports without a protocol", policy(rule({ dstPorts: [{ first: 80, last: 80 }] }))],
    ["notPorts without a protocol", policy(rule({ notDstPorts: [{ first: 80, last: 80 }] }))],
    [
      "notPorts with a protocol that has no ports",
      policy(rule({ protocol: 1, notSrcPorts: [{ first: 1, last: 9 }] })),
    ],
    ["named ports without a protocol", policy(rule({ dstNamedPortIpSetIds: ["s"] }))],
    ["notICMP without a protocol", policy(rule({ notIcmp: { type: 8 } }))],
    ["icmp with protocol TCP", policy(rule({ protocol: 6, icmp: { type: 8 } }))],
    ["ICMPv4 with ipVersion 6", policy(rule({ protocol: 1, ipVersion: 6, icmp: { type: 8 } }))],
    ["an ICMP type above 255", policy(rule({ protocol: 1, icmp: { type: 300 } }))],
    ["a protocol above 255", policy(rule({ protocol: 256 }))],
    ["an unknown action", policy(rule({ action: "jump" as never }))],
    [
      "a bad ip-and-port member",
      { kind: "ip-set-update", id: "s", type: "ip-and-port", members: ["10.0.0.1,tcp:80 }"] },
    ],
    ["a bad net member", { kind: "ip-set-update", id: "s", type: "net", members: ["10.0.0.0/8; drop"] }],
    ["a delta for a set never sent", { kind: "ip-set-delta-update", id: "nope", added: [], removed: [] }],
    [
      "an endpoint interface name that is not one",
      {
        kind: "workload-endpoint-update",
        id: "ns/w",
        ifname: 'x" accept',
        ipNetworks: [],
        tiers: { ingress: [], egress: [] },
        profileIds: [],
      },
    ],
  ] as [string, PolicyUpdate][])("rejects %s", (_, u) => {
    expect(rejects([u])).toBe(true);
  });

  it("says which rule and fields broke Calico's port/protocol rule", () => {
    const m = createDataplaneModel();
    let caught: unknown;
    try {
      m.applyBatch([policy(rule({ ruleId: "default/p/in/0", notDstPorts: [{ first: 22, last: 22 }] }))]);
    } catch (e) {
      caught = e;
    }
    expect(isDataplaneError(caught, "invalid-update")).toBe(true);
    expect((caught as { details: Record<string, unknown> }).details).toMatchObject({
      id: "default/p",
      ruleId: "default/p/in/0",
      fields: ["notDstPorts"],
      index: 0,
    });
    // Nothing of the refused batch reached the model.
    expect(m.policy.policies.size).toBe(0);
  });
});
