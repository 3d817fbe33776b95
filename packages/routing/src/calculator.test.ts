import type { RouteUpdate } from "@margay/dataplane-contract";
import { describe, expect, it } from "vitest";
import {
  type BlockInput,
  createRouteCalculator,
  isRoutingError,
  type NodeInput,
  type PoolInput,
  type RouteCalculator,
  type RoutingChange,
} from "./index.js";

// Hosts: A (this node) and B share 10.0.0.0/24; C is behind a router in 10.0.1.0/24.
const nodeSpec = (v4: string, vtep: string, mac: string, v6?: string): NodeInput => ({
  bgp: { ipv4Address: v4, ...(v6 === undefined ? {} : { ipv6Address: v6 }) },
  ipv4VXLANTunnelAddr: vtep,
  vxlanTunnelMACAddr: mac,
});
const NODES: Record<string, NodeInput> = {
  a: nodeSpec("10.0.0.1/24", "10.65.1.0", "66:00:00:00:00:0a", "fd00::1/64"),
  b: nodeSpec("10.0.0.2/24", "10.65.2.0", "66:00:00:00:00:0b", "fd00::2/64"),
  c: nodeSpec("10.0.1.3/24", "10.65.3.0", "66:00:00:00:00:0c", "fd00:1::3/64"),
};
const node = (name: string, spec: NodeInput | null = NODES[name] ?? null): RoutingChange => ({
  kind: "node",
  name,
  node: spec,
});
const pool = (name: string, spec: Partial<PoolInput> & { cidr: string }): RoutingChange => ({
  kind: "pool",
  name,
  pool: spec,
});
/** A block affine to `host` (or none), with `extra` ordinals allocated to other nodes. */
const block = (cidr: string, host: string | null, extra: Record<number, string> = {}): RoutingChange => {
  const size = 64;
  const allocations: (number | null)[] = Array.from({ length: size }, () => null);
  const attributes: BlockInput["attributes"][number][] = [];
  if (host !== null) {
    attributes.push({ secondary: { node: host } });
    allocations[1] = 0;
  }
  for (const [ordinal, holder] of Object.entries(extra)) {
    attributes.push({ secondary: { node: holder } });
    allocations[Number(ordinal)] = attributes.length - 1;
  }
  return {
    kind: "block",
    cidr,
    block: { affinity: host === null ? null : `host:${host}`, allocations, attributes },
  };
};
const endpoint = (key: string, ifname: string, ips: string[], nodeName = "a"): RoutingChange => ({
  kind: "endpoint",
  key,
  endpoint: { node: nodeName, interfaceName: ifname, ipNetworks: ips },
});
const learned = (source: string, prefix: string, nextHops: string[] | null): RoutingChange => ({
  kind: "learned",
  source,
  prefix,
  nextHops,
});

const BASE: RoutingChange[] = [
  node("a"),
  node("b"),
  node("c"),
  block("10.65.1.0/26", "a"),
  block("10.65.2.0/26", "b"),
  block("10.65.3.0/26", "c"),
];

function calc(changes: RoutingChange[]): RouteCalculator {
  const c = createRouteCalculator({ nodeName: "a" });
  c.applyAll(changes);
  return c;
}
function routes(c: RouteCalculator): Map<string, RouteUpdate> {
  return new Map(
    c
      .snapshot()
      .filter((u): u is RouteUpdate => u.kind === "route-update")
      .map((u) => [u.dst, u]),
  );
}
/** `via/encapsulation` of each next hop, or the route type for local routes, or `-` when absent. */
function shape(r: RouteUpdate | undefined): string {
  if (r === undefined) return "-";
  if (r.type === "local-workload") return `dev ${r.ifname}`;
  if (r.type === "local-block") return "blackhole";
  return (r.nextHops ?? []).map((h) => `${h.via}/${h.encapsulation}`).join(",");
}

describe("remote blocks per pool mode (Felix's route resolution)", () => {
  const cases: { name: string; mode: Partial<PoolInput>; b: string; c: string }[] = [
    { name: "flat", mode: {}, b: "10.0.0.2/none", c: "10.0.1.3/none" },
    {
      name: "flat (Never spelled out)",
      mode: { vxlanMode: "Never", ipipMode: "Never" },
      b: "10.0.0.2/none",
      c: "10.0.1.3/none",
    },
    { name: "VXLAN Always", mode: { vxlanMode: "Always" }, b: "10.65.2.0/vxlan", c: "10.65.3.0/vxlan" },
    {
      name: "VXLAN CrossSubnet",
      mode: { vxlanMode: "CrossSubnet" },
      b: "10.0.0.2/none",
      c: "10.65.3.0/vxlan",
    },
    { name: "IPIP Always", mode: { ipipMode: "Always" }, b: "10.0.0.2/ipip", c: "10.0.1.3/ipip" },
    { name: "IPIP CrossSubnet", mode: { ipipMode: "CrossSubnet" }, b: "10.0.0.2/none", c: "10.0.1.3/ipip" },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const c = calc([pool("p4", { cidr: "10.65.0.0/16", ...t.mode }), ...BASE]);
      const r = routes(c);
      expect(shape(r.get("10.65.1.0/26"))).toBe("blackhole");
      expect(shape(r.get("10.65.2.0/26"))).toBe(t.b);
      expect(shape(r.get("10.65.3.0/26"))).toBe(t.c);
      expect(r.get("10.65.2.0/26")?.nodes).toEqual(["b"]);
      expect(c.unresolved()).toEqual([]);
    });
  }

  it("a block outside every pool is routed flat", () => {
    const r = routes(calc([...BASE, block("172.16.0.0/26", "c")]));
    expect(shape(r.get("172.16.0.0/26"))).toBe("10.0.1.3/none");
  });

  it("the most specific pool decides", () => {
    const r = routes(
      calc([
        pool("wide", { cidr: "10.64.0.0/10", vxlanMode: "Always" }),
        pool("narrow", { cidr: "10.65.2.0/24", ipipMode: "Always" }),
        ...BASE,
      ]),
    );
    expect(shape(r.get("10.65.2.0/26"))).toBe("10.0.0.2/ipip");
    expect(shape(r.get("10.65.3.0/26"))).toBe("10.65.3.0/vxlan");
  });

  it("emits pool, host and VTEP updates before routes, with natOutgoing as data", () => {
    const c = createRouteCalculator({ nodeName: "a" });
    const diff = c.applyAll([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "CrossSubnet", natOutgoing: true }),
      pool("other", { cidr: "10.70.0.0/16" }),
      node("a"),
      node("b"),
      block("10.65.2.0/26", "b"),
    ]);
    expect(diff).toEqual([
      {
        kind: "pool-update",
        cidr: "10.65.0.0/16",
        encapsulation: "vxlan",
        crossSubnet: true,
        natOutgoing: true,
      },
      {
        kind: "pool-update",
        cidr: "10.70.0.0/16",
        encapsulation: "none",
        crossSubnet: false,
        natOutgoing: false,
      },
      { kind: "host-update", node: "a", addresses: ["10.0.0.1/24", "fd00::1/64"] },
      { kind: "host-update", node: "b", addresses: ["10.0.0.2/24", "fd00::2/64"] },
      {
        kind: "vtep-update",
        node: "a",
        tunnelAddress: "10.65.1.0",
        mac: "66:00:00:00:00:0a",
        underlayAddress: "10.0.0.1",
      },
      {
        kind: "vtep-update",
        node: "b",
        tunnelAddress: "10.65.2.0",
        mac: "66:00:00:00:00:0b",
        underlayAddress: "10.0.0.2",
      },
      {
        kind: "route-update",
        dst: "10.65.2.0/26",
        type: "remote-block",
        nodes: ["b"],
        nextHops: [{ via: "10.0.0.2", encapsulation: "none", node: "b" }],
      },
    ]);
    expect(c.natOutgoing()).toEqual({
      masqueradePools: ["10.65.0.0/16"],
      allPools: ["10.65.0.0/16", "10.70.0.0/16"],
    });
  });

  it("VXLAN to a node without a VTEP is unresolved, not routed another way", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      node("a"),
      node("b", { bgp: { ipv4Address: "10.0.0.2/24" } }),
      block("10.65.2.0/26", "b"),
    ]);
    expect(routes(c).has("10.65.2.0/26")).toBe(false);
    expect(c.unresolved()).toEqual([{ dst: "10.65.2.0/26", node: "b", reason: "no-vtep" }]);
  });

  it("VXLAN waits for our own VTEP; it arrives and the routes follow", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      node("a", { bgp: { ipv4Address: "10.0.0.1/24" } }),
      node("b"),
      block("10.65.2.0/26", "b"),
    ]);
    expect(routes(c).has("10.65.2.0/26")).toBe(false);
    expect(c.unresolved()).toEqual([{ dst: "10.65.2.0/26", node: "b", reason: "no-local-vtep" }]);
    const diff = c.apply(node("a"));
    expect(diff.map((u) => (u.kind === "route-update" ? `${u.dst} ${shape(u)}` : u.kind))).toEqual([
      "host-update",
      "vtep-update",
      "10.65.2.0/26 10.65.2.0/vxlan",
    ]);
    expect(c.unresolved()).toEqual([]);
  });
});

describe("local routes and borrowed addresses", () => {
  it("own block is a blackhole, local endpoints are device routes, remote endpoints are ignored", () => {
    const r = routes(
      calc([
        ...BASE,
        endpoint("ns/pod1", "mgy0000000001", ["10.65.1.5/32", "fd00:65::5/128"]),
        endpoint("ns/pod2", "mgy0000000002", ["10.65.2.9/32"], "b"),
      ]),
    );
    expect(shape(r.get("10.65.1.0/26"))).toBe("blackhole");
    expect(shape(r.get("10.65.1.5/32"))).toBe("dev mgy0000000001");
    expect(shape(r.get("fd00:65::5/128"))).toBe("dev mgy0000000001");
    expect(r.has("10.65.2.9/32")).toBe(false);
  });

  it("borrowed addresses become host routes to the node holding them (Calico's NonAffineAllocations)", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", ipipMode: "CrossSubnet" }),
      ...BASE,
      // B's block lends .5 to C and .6 to us; our block lends .7 to B.
      block("10.65.2.0/26", "b", { 5: "c", 6: "a" }),
      block("10.65.1.0/26", "a", { 7: "b" }),
      endpoint("ns/borrower", "mgy0000000003", ["10.65.2.6/32"]),
      // A block without affinity: every holder gets a host route.
      block("10.65.4.0/26", null, { 2: "b", 3: "a" }),
    ]);
    const r = routes(c);
    expect(shape(r.get("10.65.2.5/32"))).toBe("10.0.1.3/ipip");
    expect(shape(r.get("10.65.2.6/32"))).toBe("dev mgy0000000003");
    expect(shape(r.get("10.65.1.7/32"))).toBe("10.0.0.2/none");
    expect(shape(r.get("10.65.1.0/26"))).toBe("blackhole");
    expect(shape(r.get("10.65.4.2/32"))).toBe("10.0.0.2/none");
    expect(r.has("10.65.4.3/32")).toBe(false);
    expect(r.has("10.65.4.0/26")).toBe(false);
  });

  it("a local endpoint wins over a stale borrowed route to another node", () => {
    const r = routes(
      calc([...BASE, block("10.65.2.0/26", "b", { 5: "c" }), endpoint("x", "mgy0000000004", ["10.65.2.5"])]),
    );
    expect(shape(r.get("10.65.2.5/32"))).toBe("dev mgy0000000004");
  });

  it("block affinities route a block while no block object exists; the block object then decides", () => {
    const c = calc([node("a"), node("b")]);
    const aff = (n: string, nodeName: string, cidr: string, state: string): RoutingChange => ({
      kind: "affinity",
      name: n,
      affinity: { node: nodeName, cidr, state, deleted: false },
    });
    c.applyAll([
      aff("b-10-65-2-0-26", "b", "10.65.2.0/26", "confirmed"),
      aff("a-10-65-1-0-26", "a", "10.65.1.0/26", "confirmed"),
      aff("a-10-65-9-0-26", "a", "10.65.9.0/26", "pending"),
    ]);
    let r = routes(c);
    expect(shape(r.get("10.65.2.0/26"))).toBe("10.0.0.2/none");
    expect(shape(r.get("10.65.1.0/26"))).toBe("blackhole");
    expect(r.has("10.65.9.0/26")).toBe(false);
    // The block was released: it has no affinity, so the lingering affinity no longer routes it.
    expect(c.apply(block("10.65.2.0/26", null))).toEqual([{ kind: "route-remove", dst: "10.65.2.0/26" }]);
    r = routes(c);
    expect(r.has("10.65.2.0/26")).toBe(false);
  });
});

describe("IPv6", () => {
  it("routes IPv6 blocks flat over the nodes' IPv6 addresses, with CrossSubnet on the IPv6 subnet", () => {
    const r = routes(
      calc([
        pool("p6", { cidr: "fd00:65::/48", ipipMode: "Always" }),
        ...BASE,
        block("fd00:65:0:2::/122", "b"),
        block("fd00:65:0:3::/122", "c"),
        block("fd00:65:0:1::/122", "a"),
      ]),
    );
    // IPIP is IPv4 only: an IPv6 pool asking for it is routed flat.
    expect(shape(r.get("fd00:65:0:2::/122"))).toBe("fd00::2/none");
    expect(shape(r.get("fd00:65:0:3::/122"))).toBe("fd00:1::3/none");
    expect(shape(r.get("fd00:65:0:1::/122"))).toBe("blackhole");
  });

  it("IPv6 VXLAN is reported unresolved (the contract's VTEPs are IPv4)", () => {
    const c = calc([
      pool("p6", { cidr: "fd00:65::/48", vxlanMode: "Always" }),
      ...BASE,
      block("fd00:65:0:2::/122", "b"),
    ]);
    expect(routes(c).has("fd00:65:0:2::/122")).toBe(false);
    expect(c.unresolved()).toEqual([
      { dst: "fd00:65:0:2::/122", node: "b", reason: "ipv6-vxlan-unsupported" },
    ]);
  });

  it("a node without an IPv6 address cannot be reached over IPv6", () => {
    const c = calc([
      node("a"),
      node("b", { bgp: { ipv4Address: "10.0.0.2/24" } }),
      block("fd00:65:0:2::/122", "b"),
    ]);
    expect(c.unresolved()).toEqual([{ dst: "fd00:65:0:2::/122", node: "b", reason: "no-node-address" }]);
  });
});

describe("routes learned over BGP (IP next hops)", () => {
  it("a top-of-rack route is installed via its IP next hop, with no node", () => {
    const c = calc([...BASE, learned("10.0.0.254", "192.168.50.0/24", ["10.0.0.254"])]);
    expect(routes(c).get("192.168.50.0/24")).toEqual({
      kind: "route-update",
      dst: "192.168.50.0/24",
      type: "remote-block",
      nextHops: [{ via: "10.0.0.254", encapsulation: "none" }],
    });
  });

  it("several sources of one prefix form ECMP; a withdrawal removes one next hop", () => {
    const c = calc([
      ...BASE,
      learned("rr1", "192.168.50.0/24", ["10.0.0.254"]),
      learned("rr2", "192.168.50.0/24", ["10.0.0.253", "10.0.0.254"]),
    ]);
    expect(shape(routes(c).get("192.168.50.0/24"))).toBe("10.0.0.253/none,10.0.0.254/none");
    const diff = c.apply(learned("rr2", "192.168.50.0/24", null));
    expect(diff.map((u) => shape(u as RouteUpdate))).toEqual(["10.0.0.254/none"]);
    expect(c.apply(learned("rr1", "192.168.50.0/24", null))).toEqual([
      { kind: "route-remove", dst: "192.168.50.0/24" },
    ]);
  });

  it("a next hop that is a node's address is that node: the pool's encapsulation applies", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      ...BASE,
      learned("rr", "10.65.8.0/26", ["10.0.1.3"]),
    ]);
    const r = routes(c).get("10.65.8.0/26");
    expect(shape(r)).toBe("10.65.3.0/vxlan");
    expect(r?.nodes).toEqual(["c"]);
  });

  it("a learned route follows the node that holds its next hop: moving away, and another node taking it", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      ...BASE,
      learned("rr", "10.65.8.0/26", ["10.0.1.3"]),
    ]);
    // c leaves 10.0.1.3: no node holds the next hop now, and VXLAN needs one.
    expect(c.apply(node("c", nodeSpec("10.0.1.4/24", "10.65.3.0", "66:00:00:00:00:0c")))).toContainEqual({
      kind: "route-remove",
      dst: "10.65.8.0/26",
    });
    expect(c.unresolved()).toContainEqual({
      dst: "10.65.8.0/26",
      nextHop: "10.0.1.3",
      reason: "learned-vxlan-without-node",
    });
    // d takes 10.0.1.3: the route goes through d's VTEP.
    c.apply(node("d", nodeSpec("10.0.1.3/24", "10.65.4.0", "66:00:00:00:00:0d")));
    const r = routes(c).get("10.65.8.0/26");
    expect(shape(r)).toBe("10.65.4.0/vxlan");
    expect(r?.nodes).toEqual(["d"]);
  });

  it("an unknown next hop in an IPIP pool is tunnelled (BIRD's krt_tunnel), CrossSubnet by the next hop", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", ipipMode: "CrossSubnet" }),
      ...BASE,
      learned("tor", "10.65.20.0/26", ["10.0.2.9"]),
      learned("tor", "10.65.21.0/26", ["10.0.0.9"]),
    ]);
    expect(shape(routes(c).get("10.65.20.0/26"))).toBe("10.0.2.9/ipip");
    expect(shape(routes(c).get("10.65.21.0/26"))).toBe("10.0.0.9/none");
  });

  it("the datastore wins over a learned route for the same destination; our own next hop is ignored", () => {
    const c = calc([
      ...BASE,
      learned("rr", "10.65.2.0/26", ["10.0.0.77"]),
      learned("rr", "10.65.1.0/26", ["10.0.0.77"]),
      learned("rr", "10.65.30.0/26", ["10.0.0.1"]),
    ]);
    const r = routes(c);
    expect(shape(r.get("10.65.2.0/26"))).toBe("10.0.0.2/none");
    expect(shape(r.get("10.65.1.0/26"))).toBe("blackhole");
    expect(r.has("10.65.30.0/26")).toBe(false);
    // When the block goes, the learned route takes over.
    expect(
      c.apply({ kind: "block", cidr: "10.65.2.0/26", block: null }).map((u) => shape(u as RouteUpdate)),
    ).toEqual(["10.0.0.77/none"]);
  });

  it("a learned next hop of the other family is reported, and VXLAN without a node is not guessed", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      ...BASE,
      learned("tor", "fd00:99::/64", ["10.0.0.254"]),
      learned("tor", "10.65.40.0/26", ["10.0.2.9"]),
    ]);
    expect(c.unresolved()).toEqual([
      { dst: "10.65.40.0/26", nextHop: "10.0.2.9", reason: "learned-vxlan-without-node" },
      { dst: "fd00:99::/64", nextHop: "10.0.0.254", reason: "learned-next-hop-family" },
    ]);
  });
});

describe("changes as diffs", () => {
  it("node removal withdraws its routes, host and VTEP", () => {
    const c = calc([
      pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "Always" }),
      ...BASE,
      block("10.65.2.0/26", "b", { 9: "c" }),
    ]);
    const diff = c.apply(node("c", null));
    expect(diff).toEqual([
      { kind: "route-remove", dst: "10.65.2.9/32" },
      { kind: "route-remove", dst: "10.65.3.0/26" },
      { kind: "vtep-remove", node: "c" },
      { kind: "host-remove", node: "c" },
    ]);
    expect(c.unresolved()).toEqual([
      { dst: "10.65.2.9/32", node: "c", reason: "unknown-node" },
      { dst: "10.65.3.0/26", node: "c", reason: "unknown-node" },
    ]);
    // It comes back: everything is re-emitted.
    expect(c.apply(node("c")).map((u) => u.kind)).toEqual([
      "host-update",
      "vtep-update",
      "route-update",
      "route-update",
    ]);
  });

  it("a pool mode switch re-emits the routes it changes, and only those", () => {
    const c = calc([pool("p4", { cidr: "10.65.0.0/16" }), ...BASE, block("172.16.0.0/26", "c")]);
    const diff = c.apply(pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "CrossSubnet" }));
    expect(diff.map((u) => (u.kind === "route-update" ? `${u.dst} ${shape(u)}` : u.kind))).toEqual([
      "pool-update",
      "10.65.3.0/26 10.65.3.0/vxlan",
    ]);
    const back = c.apply(pool("p4", { cidr: "10.65.0.0/16", ipipMode: "Always" }));
    expect(back.map((u) => (u.kind === "route-update" ? `${u.dst} ${shape(u)}` : u.kind))).toEqual([
      "pool-update",
      "10.65.2.0/26 10.0.0.2/ipip",
      "10.65.3.0/26 10.0.1.3/ipip",
    ]);
  });

  it("our own address moving to another subnet flips CrossSubnet decisions", () => {
    const c = calc([pool("p4", { cidr: "10.65.0.0/16", vxlanMode: "CrossSubnet" }), ...BASE]);
    const diff = c.apply(node("a", nodeSpec("10.0.1.1/24", "10.65.1.0", "66:00:00:00:00:0a")));
    expect(diff.filter((u) => u.kind === "route-update").map((u) => shape(u as RouteUpdate))).toEqual([
      "10.65.2.0/vxlan",
      "10.0.1.3/none",
    ]);
  });

  it("an unchanged input gives an empty diff", () => {
    const c = calc([pool("p4", { cidr: "10.65.0.0/16" }), ...BASE]);
    expect(c.apply(block("10.65.2.0/26", "b"))).toEqual([]);
    expect(c.apply(node("b"))).toEqual([]);
  });

  it("snapshot is deterministic whatever the order of the changes", () => {
    const changes = [
      pool("p4", { cidr: "10.65.0.0/16", ipipMode: "CrossSubnet" }),
      ...BASE,
      endpoint("e", "mgy0000000001", ["10.65.1.2"]),
    ];
    const one = calc(changes).snapshot();
    const two = calc([...changes].reverse()).snapshot();
    expect(two).toEqual(one);
  });
});

describe("bad input", () => {
  const bad: [string, RoutingChange][] = [
    ["pool CIDR", pool("p", { cidr: "10.65.0.0/99" })],
    ["pool mode", pool("p", { cidr: "10.65.0.0/16", vxlanMode: "Sometimes" as never })],
    ["node address", node("x", { bgp: { ipv4Address: "not-an-ip" } })],
    [
      "node MAC",
      node("x", {
        bgp: { ipv4Address: "10.0.0.9/24" },
        ipv4VXLANTunnelAddr: "10.65.9.0",
        vxlanTunnelMACAddr: "zz",
      }),
    ],
    [
      "block ordinal",
      { kind: "block", cidr: "10.65.9.0/30", block: { affinity: null, allocations: [0], attributes: [] } },
    ],
    [
      "block size",
      {
        kind: "block",
        cidr: "10.65.9.0/31",
        block: { affinity: null, allocations: [null, null, null], attributes: [] },
      },
    ],
    ["endpoint prefix", endpoint("e", "mgy0000000001", ["10.65.1.0/24"])],
    ["endpoint ifname", endpoint("e", "this-name-is-far-too-long", ["10.65.1.1"])],
    ["learned next hop", learned("rr", "10.9.0.0/16", ["nope"])],
    ["learned empty", learned("rr", "10.9.0.0/16", [])],
    ["unknown kind", { kind: "bogus" } as unknown as RoutingChange],
  ];
  for (const [what, change] of bad) {
    it(`rejects ${what} with invalid-change and changes nothing`, () => {
      const c = calc([pool("p4", { cidr: "10.65.0.0/16" }), ...BASE]);
      const before = c.snapshot();
      let caught: unknown;
      try {
        c.applyAll([endpoint("ok", "mgy0000000009", ["10.65.1.9"]), change]);
      } catch (e) {
        caught = e;
      }
      expect(isRoutingError(caught, "invalid-change")).toBe(true);
      expect((caught as { retryable: boolean }).retryable).toBe(false);
      expect(c.snapshot()).toEqual(before);
    });
  }

  it("rejects an empty node name in the options", () => {
    expect(() => createRouteCalculator({ nodeName: "" })).toThrow(
      expect.objectContaining({ code: "invalid-options" }),
    );
  });
});
