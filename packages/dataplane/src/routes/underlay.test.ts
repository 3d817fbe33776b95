import { describe, expect, it } from "vitest";
import { DataplaneError, DataplaneErrorCode, isDataplaneError } from "../errors.js";
import { explainRejectedRoutes } from "../linux/route-sync.js";
import type { RouteSideUpdate } from "../updates.js";
import {
  type UnderlayPath,
  applyRouteSideUpdate,
  createRouteState,
  flatNextHopAddresses,
  normalizeRouteSideUpdate,
  planRoutes,
} from "./plan.js";
import { parseRouteGet } from "./underlay.js";

const OPTIONS = {
  nodeName: "a",
  vxlanDevice: "vxlan.margay",
  vxlanVni: 4096,
  vxlanPort: 4789,
  vxlanMtu: 1450,
  ipipDevice: "tunl0",
  ipipSupported: true,
};

function state(updates: RouteSideUpdate[]) {
  const s = createRouteState();
  for (const u of updates) applyRouteSideUpdate(s, normalizeRouteSideUpdate(u));
  return s;
}

// a and b share 192.168.1.0/24; c and d sit on other subnets behind routers; e is unreachable.
const flat = state([
  { kind: "host-update", node: "a", addresses: ["192.168.1.1/24"] },
  { kind: "host-update", node: "b", addresses: ["192.168.1.2/24"] },
  { kind: "host-update", node: "c", addresses: ["192.168.2.3/24"] },
  { kind: "host-update", node: "d", addresses: ["192.168.3.4/24"] },
  { kind: "host-update", node: "e", addresses: ["172.16.0.5/24"] },
  { kind: "pool-update", cidr: "10.1.0.0/16", encapsulation: "none", crossSubnet: false, natOutgoing: false },
  { kind: "route-update", dst: "10.1.1.0/26", type: "remote-block", nodes: ["b"] },
  { kind: "route-update", dst: "10.1.2.0/26", type: "remote-block", nodes: ["c"] },
  { kind: "route-update", dst: "10.1.3.0/26", type: "remote-block", nodes: ["c", "d"] },
  { kind: "route-update", dst: "10.1.5.0/26", type: "remote-block", nodes: ["e"] },
  {
    kind: "route-update",
    dst: "10.1.9.0/26",
    type: "remote-block",
    nextHops: [{ via: "192.168.3.4", encapsulation: "none" }],
  },
]);
const underlay = new Map<string, UnderlayPath>([
  ["192.168.1.2", { kind: "connected" }],
  ["192.168.2.3", { kind: "gateway", via: "192.168.1.254" }],
  ["192.168.3.4", { kind: "gateway", via: "192.168.1.254" }],
  ["172.16.0.5", { kind: "unresolved", reason: "Network is unreachable" }],
]);

describe("flat next hops resolved through the underlay (BIRD's gateway recursive)", () => {
  it("lists the flat next hops to ask the kernel about", () => {
    expect([...flatNextHopAddresses(flat, OPTIONS)].sort()).toEqual([
      "172.16.0.5",
      "192.168.1.2",
      "192.168.2.3",
      "192.168.3.4",
    ]);
    expect([...flatNextHopAddresses(flat, OPTIONS, ["10.1.2.0/26", "10.9.9.0/24"])]).toEqual(["192.168.2.3"]);
  });

  it("a node on a connected subnet is the gateway; one behind a router is reached via the router", () => {
    const plan = planRoutes(flat, { ...OPTIONS, underlay });
    expect(plan.routes.get("10.1.1.0/26")?.nextHops).toEqual([{ via: "192.168.1.2", onlink: false }]);
    expect(plan.routes.get("10.1.2.0/26")?.nextHops).toEqual([{ via: "192.168.1.254", onlink: false }]);
    // Two nodes behind one router: one next hop, not a duplicate ECMP pair.
    expect(plan.routes.get("10.1.3.0/26")?.nextHops).toEqual([{ via: "192.168.1.254", onlink: false }]);
    // Next hops resolved upstream (@margay/routing) are resolved through the underlay too.
    expect(plan.routes.get("10.1.9.0/26")?.nextHops).toEqual([{ via: "192.168.1.254", onlink: false }]);
  });

  it("an unreachable next hop is not programmed and is reported with the kernel's reason", () => {
    const plan = planRoutes(flat, { ...OPTIONS, underlay });
    expect(plan.routes.has("10.1.5.0/26")).toBe(false);
    expect(plan.unresolved?.get("10.1.5.0/26")).toBe(
      "next hop 172.16.0.5 (node e) is unreachable: Network is unreachable",
    );
    expect(plan.warnings).toContain(
      "route 10.1.5.0/26: next hop 172.16.0.5 (node e) is unreachable: Network is unreachable",
    );
    // An incremental plan keeps what it did not re-plan and drops what it did.
    const again = planRoutes(flat, { ...OPTIONS, underlay }, { prev: plan, dsts: ["10.1.1.0/26"] });
    expect(again.unresolved?.get("10.1.5.0/26")).toBeDefined();
    const fixed = new Map(underlay).set("172.16.0.5", { kind: "gateway", via: "192.168.1.254" });
    const after = planRoutes(flat, { ...OPTIONS, underlay: fixed }, { prev: again, dsts: ["10.1.5.0/26"] });
    expect(after.unresolved?.has("10.1.5.0/26")).toBe(false);
    expect(after.routes.get("10.1.5.0/26")?.nextHops).toEqual([{ via: "192.168.1.254", onlink: false }]);
  });

  it("tunnel next hops are left alone (onlink over the tunnel device)", () => {
    const s = state([
      { kind: "host-update", node: "a", addresses: ["192.168.1.1/24"] },
      { kind: "host-update", node: "c", addresses: ["192.168.2.3/24"] },
      {
        kind: "pool-update",
        cidr: "10.1.0.0/16",
        encapsulation: "ipip",
        crossSubnet: false,
        natOutgoing: false,
      },
      { kind: "route-update", dst: "10.1.2.0/26", type: "remote-block", nodes: ["c"] },
    ]);
    expect(flatNextHopAddresses(s, OPTIONS).size).toBe(0);
    const plan = planRoutes(s, { ...OPTIONS, underlay });
    expect(plan.routes.get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "192.168.2.3", dev: "tunl0", onlink: true },
    ]);
  });
});

describe("parseRouteGet", () => {
  it("reads ip -json -force -batch output of route get lines", () => {
    // Captured from iproute2 6.x: one host on 10.9.0.0/24 with a route to 10.50.0.0/24 via 10.9.0.254.
    const stdout = [
      '[{"dst":"10.9.0.7","dev":"d0","prefsrc":"10.9.0.1","flags":[],"uid":0,"cache":[]}]',
      '[{"dst":"10.50.0.9","gateway":"10.9.0.254","dev":"d0","prefsrc":"10.9.0.1","flags":[],"uid":0,"cache":[]}]',
    ].join("\n");
    const stderr = "RTNETLINK answers: Network is unreachable\nCommand failed -:2\n";
    expect(parseRouteGet(["10.9.0.7", "10.60.0.1", "10.50.0.9"], stdout, stderr)).toEqual(
      new Map<string, UnderlayPath>([
        ["10.9.0.7", { kind: "connected" }],
        ["10.60.0.1", { kind: "unresolved", reason: "Network is unreachable" }],
        ["10.50.0.9", { kind: "gateway", via: "10.9.0.254" }],
      ]),
    );
  });
});

describe("parseRouteGet without an answer", () => {
  it("leaves an address with no answer out (programmed as given), not unresolved", () => {
    expect(parseRouteGet(["10.9.0.7", "10.9.0.8"], "[]\n", "")).toEqual(new Map());
  });
});

describe("explainRejectedRoutes", () => {
  it("names the refused route and the kernel's words (one-shot ip batch)", () => {
    const lines = [
      "route replace 10.1.1.0/26 via 192.168.1.2 proto 80 table 254",
      "route replace 10.1.2.0/26 via 192.168.2.3 proto 80 table 254",
    ];
    const e = new DataplaneError(DataplaneErrorCode.CommandFailed, "command failed", {
      details: { stderr: "Error: Nexthop has invalid gateway.\nCommand failed -:2\n" },
    });
    const out = explainRejectedRoutes(e, lines);
    expect(isDataplaneError(out, DataplaneErrorCode.CommandFailed)).toBe(true);
    expect((out as Error).message).toBe(
      'kernel rejected "route replace 10.1.2.0/26 via 192.168.2.3 proto 80 table 254": Nexthop has invalid gateway.',
    );
  });

  it("names the refused route of a persistent ip session's error", () => {
    const e = new DataplaneError(DataplaneErrorCode.CommandFailed, "ip batch: 1 of 2 lines failed", {
      details: {
        failed: [
          { line: "route replace 10.1.2.0/26 via 192.168.2.3", error: "Error: Nexthop has invalid gateway." },
        ],
      },
    });
    expect((explainRejectedRoutes(e, []) as Error).message).toBe(
      'kernel rejected "route replace 10.1.2.0/26 via 192.168.2.3": Nexthop has invalid gateway.',
    );
  });
});
