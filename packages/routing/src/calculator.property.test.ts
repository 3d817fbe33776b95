import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createRouteCalculator, type RoutingChange, type RoutingUpdate } from "./index.js";

// A small universe so that changes collide: 4 nodes (two subnets), 3 pools, 6 blocks, a few endpoints
// and learned prefixes, every input replaced or deleted at random.
const NODE_NAMES = ["a", "b", "c", "d"] as const;
const MODES = [undefined, "Never", "Always", "CrossSubnet"] as const;
const BLOCKS = [
  "10.65.1.0/29",
  "10.65.2.0/29",
  "10.65.3.0/29",
  "10.70.0.0/29",
  "fd00:65::/125",
  "fd00:65::8/125",
];
const PREFIXES = ["10.65.2.0/29", "192.168.50.0/24", "10.70.8.0/29", "fd00:99::/64"];
const HOPS = ["10.0.0.2", "10.0.1.3", "10.0.0.254", "10.0.2.9", "10.0.0.1", "fd00::2", "fd00:1::9"];

const nodeArb = fc
  .record({
    kind: fc.constant("node" as const),
    name: fc.constantFrom(...NODE_NAMES),
    node: fc.option(
      fc.record({
        subnet: fc.constantFrom("10.0.0", "10.0.1"),
        host: fc.integer({ min: 1, max: 9 }),
        v6: fc.boolean(),
        vtep: fc.boolean(),
      }),
      { nil: null },
    ),
  })
  .map(
    ({ kind, name, node }): RoutingChange => ({
      kind,
      name,
      node:
        node === null
          ? null
          : {
              bgp: {
                ipv4Address: `${node.subnet}.${node.host}/24`,
                ...(node.v6 ? { ipv6Address: `fd00::${node.host}/64` } : {}),
              },
              ...(node.vtep
                ? {
                    ipv4VXLANTunnelAddr: `10.66.0.${node.host}`,
                    vxlanTunnelMACAddr: `66:00:00:00:00:0${node.host}`,
                  }
                : {}),
            },
    }),
  );

const poolArb = fc
  .record({
    name: fc.constantFrom("p4", "p4b", "p6"),
    cidr: fc.constantFrom("10.65.0.0/16", "10.64.0.0/10", "fd00:65::/48"),
    vxlanMode: fc.constantFrom(...MODES),
    ipipMode: fc.constantFrom(...MODES),
    natOutgoing: fc.boolean(),
    deleted: fc.boolean(),
  })
  .map(
    ({ name, deleted, cidr, vxlanMode, ipipMode, natOutgoing }): RoutingChange => ({
      kind: "pool",
      name,
      pool: deleted
        ? null
        : {
            cidr,
            natOutgoing,
            ...(vxlanMode === undefined ? {} : { vxlanMode }),
            ...(ipipMode === undefined ? {} : { ipipMode }),
          },
    }),
  );

const blockArb = fc
  .record({
    cidr: fc.constantFrom(...BLOCKS),
    host: fc.option(fc.constantFrom(...NODE_NAMES), { nil: null }),
    holders: fc.array(fc.option(fc.constantFrom(...NODE_NAMES, ""), { nil: null }), {
      minLength: 8,
      maxLength: 8,
    }),
    deleted: fc.boolean(),
  })
  .map(({ cidr, host, holders, deleted }): RoutingChange => {
    const attributes = holders.map((h) => ({ secondary: h === null ? null : { node: h } }));
    return {
      kind: "block",
      cidr,
      block: deleted
        ? null
        : {
            affinity: host === null ? null : `host:${host}`,
            allocations: holders.map((h, i) => (h === null ? null : i)),
            attributes,
          },
    };
  });

const affinityArb = fc
  .record({
    node: fc.constantFrom(...NODE_NAMES),
    cidr: fc.constantFrom(...BLOCKS),
    state: fc.constantFrom("pending", "confirmed", "pendingDeletion"),
    deleted: fc.boolean(),
    gone: fc.boolean(),
  })
  .map(
    ({ node, cidr, state, deleted, gone }): RoutingChange => ({
      kind: "affinity",
      name: `${node}-${cidr}`,
      affinity: gone ? null : { node, cidr, state, deleted },
    }),
  );

const endpointArb = fc
  .record({
    key: fc.constantFrom("e1", "e2", "e3"),
    node: fc.constantFrom("a", "b"),
    ips: fc.subarray(["10.65.1.1", "10.65.2.3", "fd00:65::9", "10.65.3.4"]),
    gone: fc.boolean(),
  })
  .map(
    ({ key, node, ips, gone }): RoutingChange => ({
      kind: "endpoint",
      key,
      endpoint: gone ? null : { node, interfaceName: `mgy${key}`, ipNetworks: ips },
    }),
  );

const learnedArb = fc
  .record({
    source: fc.constantFrom("rr1", "rr2"),
    prefix: fc.constantFrom(...PREFIXES),
    hops: fc.option(fc.subarray(HOPS, { minLength: 1 }), { nil: null }),
  })
  .map(({ source, prefix, hops }): RoutingChange => ({ kind: "learned", source, prefix, nextHops: hops }));

const changeArb = fc.oneof(nodeArb, poolArb, blockArb, affinityArb, endpointArb, learnedArb);

function keyOf(u: RoutingUpdate): string {
  switch (u.kind) {
    case "route-update":
    case "route-remove":
      return `route ${u.dst}`;
    case "pool-update":
    case "pool-remove":
      return `pool ${u.cidr}`;
    default:
      return `${u.kind.split("-")[0]} ${u.node}`;
  }
}

/** The last value of each input, as the changes that recreate it. */
function finalInputs(changes: RoutingChange[]): RoutingChange[] {
  const last = new Map<string, RoutingChange>();
  for (const c of changes) {
    const k =
      c.kind === "pool" || c.kind === "node" || c.kind === "affinity"
        ? `${c.kind} ${c.name}`
        : c.kind === "block"
          ? `block ${c.cidr}`
          : c.kind === "endpoint"
            ? `endpoint ${c.key}`
            : `learned ${c.source} ${c.prefix}`;
    last.delete(k);
    last.set(k, c);
  }
  return [...last.values()];
}

describe("route calculator properties", () => {
  it("folding every diff equals the snapshot, and equals a calculator fed only the final state", () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 60 }), fc.boolean(), (changes, batched) => {
        const calc = createRouteCalculator({ nodeName: "a" });
        const folded = new Map<string, RoutingUpdate>();
        const fold = (diff: RoutingUpdate[]) => {
          const seen = new Set<string>();
          for (const u of diff) {
            const k = keyOf(u);
            expect(seen.has(k)).toBe(false); // each key at most once per diff
            seen.add(k);
            if (u.kind.endsWith("-remove")) {
              expect(folded.has(k)).toBe(true); // never removes what it did not add
              folded.delete(k);
            } else folded.set(k, u);
          }
        };
        if (batched) {
          for (let i = 0; i < changes.length; i += 7) fold(calc.applyAll(changes.slice(i, i + 7)));
        } else for (const c of changes) fold(calc.apply(c));
        const snap = calc.snapshot();
        expect(new Map(snap.map((u) => [keyOf(u), u]))).toEqual(folded);

        const fresh = createRouteCalculator({ nodeName: "a" });
        fresh.applyAll(finalInputs(changes).filter((c) => !isDeletion(c)));
        expect(fresh.snapshot()).toEqual(snap);
        expect(fresh.unresolved()).toEqual(calc.unresolved());
        expect(fresh.natOutgoing()).toEqual(calc.natOutgoing());
      }),
      { numRuns: 300 },
    );
  });
});

function isDeletion(c: RoutingChange): boolean {
  switch (c.kind) {
    case "pool":
      return c.pool === null;
    case "node":
      return c.node === null;
    case "block":
      return c.block === null;
    case "affinity":
      return c.affinity === null;
    case "endpoint":
      return c.endpoint === null;
    case "learned":
      return c.nextHops === null;
  }
}
