import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import type { RouteNextHop, RouteSideUpdate } from "../updates.js";
import { diffRoutes, renderRouteReplace, routeFromJson } from "./kernel-routes.js";
import { applyRouteSideUpdate, createRouteState, normalizeRouteSideUpdate, planRoutes } from "./plan.js";

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

const hosts: RouteSideUpdate[] = [
  { kind: "host-update", node: "a", addresses: ["192.168.1.1/24", "fd00:1::1/64"] },
  { kind: "host-update", node: "b", addresses: ["192.168.1.2/24", "fd00:1::2/64"] },
  { kind: "host-update", node: "c", addresses: ["192.168.2.3/24"] },
];
const vteps: RouteSideUpdate[] = [
  {
    kind: "vtep-update",
    node: "a",
    tunnelAddress: "10.1.0.1",
    mac: "02:00:00:00:00:0A",
    underlayAddress: "192.168.1.1",
  },
  {
    kind: "vtep-update",
    node: "b",
    tunnelAddress: "10.1.1.1",
    mac: "02:00:00:00:00:0b",
    underlayAddress: "192.168.1.2",
  },
  {
    kind: "vtep-update",
    node: "c",
    tunnelAddress: "10.1.2.1",
    mac: "02:00:00:00:00:0c",
    underlayAddress: "192.168.2.3",
  },
];
const pool = (encapsulation: "none" | "vxlan" | "ipip", crossSubnet = false): RouteSideUpdate => ({
  kind: "pool-update",
  cidr: "10.1.0.0/16",
  encapsulation,
  crossSubnet,
  natOutgoing: false,
});
const remote = (dst: string, ...nodes: string[]): RouteSideUpdate => ({
  kind: "route-update",
  dst,
  type: "remote-block",
  nodes,
});

describe("route planning", () => {
  it("chooses next hops by the pool's mode", () => {
    const hop = (enc: "none" | "vxlan" | "ipip", cross = false) =>
      planRoutes(
        state([...hosts, ...vteps, pool(enc, cross), remote("10.1.2.0/26", "c"), remote("10.1.1.0/26", "b")]),
        OPTIONS,
      ).routes;
    expect(hop("none").get("10.1.2.0/26")?.nextHops).toEqual([{ via: "192.168.2.3", onlink: false }]);
    expect(hop("vxlan").get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "10.1.2.1", dev: "vxlan.margay", onlink: true },
    ]);
    expect(hop("ipip").get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "192.168.2.3", dev: "tunl0", onlink: true },
    ]);
    // CrossSubnet: b shares 192.168.1.0/24 with a (flat), c does not (encapsulated).
    expect(hop("vxlan", true).get("10.1.1.0/26")?.nextHops).toEqual([{ via: "192.168.1.2", onlink: false }]);
    expect(hop("vxlan", true).get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "10.1.2.1", dev: "vxlan.margay", onlink: true },
    ]);
    expect(hop("ipip", true).get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "192.168.2.3", dev: "tunl0", onlink: true },
    ]);
  });

  it("builds ECMP, blackhole, workload and IPv6 routes; VTEP entries for remote nodes only", () => {
    const plan = planRoutes(
      state([
        ...hosts,
        ...vteps,
        pool("vxlan"),
        remote("10.1.9.0/26", "c", "b"),
        { kind: "route-update", dst: "10.1.0.0/26", type: "local-block" },
        { kind: "route-update", dst: "10.1.0.5", type: "local-workload", ifname: "mgy0123456789ab" },
        remote("fd00:99::/122", "b"),
      ]),
      OPTIONS,
    );
    expect(plan.routes.get("10.1.9.0/26")?.nextHops).toEqual([
      { via: "10.1.1.1", dev: "vxlan.margay", onlink: true },
      { via: "10.1.2.1", dev: "vxlan.margay", onlink: true },
    ]);
    expect(plan.routes.get("10.1.0.0/26")).toEqual({ dst: "10.1.0.0/26", type: "blackhole", nextHops: [] });
    expect(plan.routes.get("10.1.0.5/32")?.nextHops).toEqual([{ dev: "mgy0123456789ab", onlink: false }]);
    expect(plan.routes.get("fd00:99::/122")?.nextHops).toEqual([{ via: "fd00:1::2", onlink: false }]);
    expect(plan.vxlan).toMatchObject({ address: "10.1.0.1", mac: "02:00:00:00:00:0a", local: "192.168.1.1" });
    expect(plan.neighbors.map((n) => n.address)).toEqual(["10.1.1.1", "10.1.2.1"]);
    expect(plan.fdb).toEqual([
      { mac: "02:00:00:00:00:0b", dst: "192.168.1.2" },
      { mac: "02:00:00:00:00:0c", dst: "192.168.2.3" },
    ]);
  });

  it("drops next hops it cannot resolve, with a reason", () => {
    const noIpip = planRoutes(state([...hosts, pool("ipip"), remote("10.1.2.0/26", "c")]), {
      ...OPTIONS,
      ipipSupported: false,
    });
    expect(noIpip.routes.size).toBe(0);
    expect(noIpip.warnings[0]).toContain("IPIP is not supported");
    const noVtep = planRoutes(state([...hosts, pool("vxlan"), remote("10.1.2.0/26", "c", "b")]), OPTIONS);
    expect(noVtep.routes.size).toBe(0);
    expect(noVtep.warnings).toHaveLength(2);
  });

  it("programs resolved next hops as given (as @margay/routing sends them), also without nodes", () => {
    const resolved = (dst: string, nextHops: RouteNextHop[], nodes?: string[]): RouteSideUpdate => ({
      kind: "route-update",
      dst,
      type: "remote-block",
      ...(nodes === undefined ? {} : { nodes }),
      nextHops,
    });
    const plan = planRoutes(
      state([
        ...hosts,
        ...vteps,
        // The pool says VXLAN; the resolved hops win (the calculator already applied CrossSubnet).
        pool("vxlan"),
        resolved("10.1.1.0/26", [{ via: "192.168.1.2", encapsulation: "none", node: "b" }], ["b"]),
        resolved("10.1.2.0/26", [{ via: "10.1.2.1", encapsulation: "vxlan", node: "c" }], ["c"]),
        resolved("10.1.3.0/26", [{ via: "192.168.2.3", encapsulation: "ipip" }]),
        // Learned from a top-of-rack peer: IP next hops (ECMP), no node.
        resolved("192.0.2.0/24", [
          { via: "192.168.1.254", encapsulation: "none" },
          { via: "192.168.1.253", encapsulation: "none" },
        ]),
        resolved("fd00:99::/64", [{ via: "fd00:1::fe", encapsulation: "none" }]),
      ]),
      OPTIONS,
    );
    expect(plan.routes.get("10.1.1.0/26")?.nextHops).toEqual([{ via: "192.168.1.2", onlink: false }]);
    expect(plan.routes.get("10.1.2.0/26")?.nextHops).toEqual([
      { via: "10.1.2.1", dev: "vxlan.margay", onlink: true },
    ]);
    expect(plan.routes.get("10.1.3.0/26")?.nextHops).toEqual([
      { via: "192.168.2.3", dev: "tunl0", onlink: true },
    ]);
    expect(plan.routes.get("192.0.2.0/24")?.nextHops).toEqual([
      { via: "192.168.1.253", onlink: false },
      { via: "192.168.1.254", onlink: false },
    ]);
    expect(plan.routes.get("fd00:99::/64")?.nextHops).toEqual([{ via: "fd00:1::fe", onlink: false }]);
    expect(plan.warnings).toEqual([]);
    // Hops the kernel cannot take are dropped with a reason, as for node-resolved routes.
    const dropped = planRoutes(
      state([
        resolved("10.1.3.0/26", [{ via: "192.168.2.3", encapsulation: "ipip" }]),
        resolved("fd00:98::/64", [{ via: "192.168.2.3", encapsulation: "none" }]),
      ]),
      { ...OPTIONS, ipipSupported: false },
    );
    expect(dropped.routes.size).toBe(0);
    expect(dropped.warnings).toHaveLength(2);
  });

  it("rejects malformed updates with the field in details", () => {
    const bad: unknown[] = [
      { kind: "route-update", dst: "10.0.0.1/24", type: "local-block" },
      { kind: "route-update", dst: "10.0.0.0/24", type: "remote-block", nodes: [] },
      { kind: "route-update", dst: "10.0.0.0/24", type: "remote-block", nodes: [], nextHops: [] },
      {
        kind: "route-update",
        dst: "10.0.0.0/24",
        type: "remote-block",
        nextHops: [{ via: "x", encapsulation: "none" }],
      },
      {
        kind: "route-update",
        dst: "10.0.0.0/24",
        type: "remote-block",
        nextHops: [{ via: "10.0.0.1", encapsulation: "gre" }],
      },
      {
        kind: "route-update",
        dst: "10.0.0.0/24",
        type: "remote-block",
        nextHops: [{ via: "10.0.0.1", encapsulation: "none", node: "" }],
      },
      { kind: "route-update", dst: "10.0.0.1/32", type: "local-workload", ifname: "way-too-long-name0" },
      { kind: "vtep-update", node: "x", tunnelAddress: "10.0.0.1", mac: "zz", underlayAddress: "1.1.1.1" },
      {
        kind: "pool-update",
        cidr: "10.0.0.0/8",
        encapsulation: "gre",
        crossSubnet: false,
        natOutgoing: false,
      },
    ];
    for (const u of bad) {
      try {
        normalizeRouteSideUpdate(u as RouteSideUpdate);
        expect.unreachable();
      } catch (e) {
        expect(isDataplaneError(e, "invalid-update")).toBe(true);
      }
    }
  });
});

describe("kernel route rendering and diffing", () => {
  const spec = { table: 254, protocol: 80 };

  it("renders ip -batch lines with our protocol", () => {
    expect(renderRouteReplace({ dst: "10.0.0.0/26", type: "blackhole", nextHops: [] }, spec)).toBe(
      "route replace blackhole 10.0.0.0/26 proto 80 table 254",
    );
    expect(
      renderRouteReplace(
        {
          dst: "10.0.1.0/26",
          type: "unicast",
          nextHops: [{ via: "10.1.1.1", dev: "vxlan.margay", onlink: true }],
        },
        spec,
      ),
    ).toBe("route replace 10.0.1.0/26 via 10.1.1.1 dev vxlan.margay onlink proto 80 table 254");
    expect(
      renderRouteReplace(
        { dst: "10.0.0.5/32", type: "unicast", nextHops: [{ dev: "mgyx", onlink: false }] },
        spec,
      ),
    ).toBe("route replace 10.0.0.5/32 dev mgyx scope link proto 80 table 254");
    expect(
      renderRouteReplace(
        {
          dst: "10.0.2.0/26",
          type: "unicast",
          nextHops: [
            { via: "192.168.1.2", onlink: false },
            { via: "192.168.1.3", onlink: false },
          ],
        },
        spec,
      ),
    ).toBe("route replace 10.0.2.0/26 proto 80 table 254 nexthop via 192.168.1.2 nexthop via 192.168.1.3");
  });

  it("reads ip -json output back into the same normal form", () => {
    expect(routeFromJson({ dst: "10.0.0.5", dev: "mgyx", flags: [] }, 4)).toEqual({
      dst: "10.0.0.5/32",
      type: "unicast",
      nextHops: [{ dev: "mgyx", onlink: false }],
    });
    expect(
      routeFromJson({ dst: "10.0.1.0/26", gateway: "192.168.1.2", dev: "eth0", flags: [] }, 4).nextHops,
    ).toEqual([{ via: "192.168.1.2", onlink: false }]);
    expect(
      routeFromJson(
        {
          dst: "10.0.2.0/26",
          nexthops: [
            { gateway: "10.1.2.1", dev: "vxlan.margay", flags: ["onlink"] },
            { gateway: "10.1.1.1", dev: "vxlan.margay", flags: ["onlink"] },
          ],
        },
        4,
      ).nextHops.map((h) => h.via),
    ).toEqual(["10.1.1.1", "10.1.2.1"]);
  });

  it("diffs: deletes extras, replaces changed, leaves equal routes alone", () => {
    const r = (dst: string, via: string) => ({
      dst,
      type: "unicast" as const,
      nextHops: [{ via, onlink: false }],
    });
    const current = new Map([
      ["10.0.0.0/26", r("10.0.0.0/26", "192.168.1.2")],
      ["10.0.1.0/26", r("10.0.1.0/26", "192.168.1.2")],
      ["10.0.2.0/26", r("10.0.2.0/26", "192.168.1.2")],
    ]);
    const desired = new Map([
      ["10.0.0.0/26", r("10.0.0.0/26", "192.168.1.2")],
      ["10.0.1.0/26", r("10.0.1.0/26", "192.168.1.3")],
      ["10.0.3.0/26", r("10.0.3.0/26", "192.168.1.3")],
    ]);
    const d = diffRoutes(current, desired, spec);
    expect(d).toEqual({
      lines: [
        "route del 10.0.2.0/26 proto 80 table 254",
        "route replace 10.0.1.0/26 via 192.168.1.3 proto 80 table 254",
        "route replace 10.0.3.0/26 via 192.168.1.3 proto 80 table 254",
      ],
      added: 2,
      removed: 1,
    });
    expect(diffRoutes(desired, desired, spec).lines).toEqual([]);
  });
});
