import { describe, expect, it, vi } from "vitest";
import type { PathAttributes } from "../wire/types.js";
import {
  formatRibPrefix,
  isBgpConfigError,
  parseRibPrefix,
  Rib,
  type RibPeer,
  type RibPeerOptions,
  type RouteChange,
} from "./index.js";

const LOCAL_AS = 65000;

function setup(
  o: { maxPaths?: number; alwaysCompareMed?: boolean; igpCost?: (nh: string) => number | null } = {},
) {
  return new Rib({ localAsn: LOCAL_AS, routerId: "10.0.0.1", ...o });
}

function peer(rib: Rib, o: Partial<RibPeerOptions> & { address: string }, routerId = o.address): RibPeer {
  const p = rib.addPeer({ asn: LOCAL_AS, ...o });
  p.routerId = routerId;
  p.routerIdNum = routerId.split(".").reduce((a, b) => a * 256 + Number(b), 0);
  p.localAddress4 = "10.0.0.1";
  return p;
}

const P = parseRibPrefix("192.0.2.0/24");

function announce(rib: Rib, p: RibPeer, attrs: PathAttributes, prefix = P, pathId = 0): RouteChange | null {
  const nh = attrs.nextHop ?? p.address;
  const set = rib.internFromPeer(p, { origin: 0, asPath: [], nextHop: nh, ...attrs }, [nh]);
  return rib.announce(p, prefix.afi, prefix.len, prefix.v4, prefix.v6, pathId, set);
}

function bestFrom(rib: Rib, prefix = P): string | undefined {
  return (rib.best(prefix.afi, prefix.len, prefix.v4, prefix.v6)?.peer as RibPeer | undefined)?.address;
}

const seq = (...asns: number[]) => [{ type: 2 as const, asns }];

describe("decision process", () => {
  it("prefers higher LOCAL_PREF (iBGP)", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    announce(rib, a, { localPref: 100 });
    const c = announce(rib, b, { localPref: 200 });
    expect(c?.best?.peer).toBe(b);
    expect(bestFrom(rib)).toBe("10.0.0.3");
  });

  it("ignores LOCAL_PREF from eBGP peers", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2", asn: 65001 });
    announce(rib, a, { localPref: 500, asPath: seq(65001) });
    expect(rib.best(P.afi, P.len, P.v4, null)?.attrs.localPref).toBe(100);
  });

  it("prefers the shorter AS path, an AS_SET counting one", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    announce(rib, a, { asPath: seq(1, 2, 3) });
    announce(rib, b, {
      asPath: [
        { type: 2, asns: [1] },
        { type: 1, asns: [7, 8, 9, 10] },
      ],
    });
    expect(bestFrom(rib)).toBe("10.0.0.3");
  });

  it("prefers the lower ORIGIN", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    announce(rib, a, { origin: 2 });
    announce(rib, b, { origin: 1 });
    expect(bestFrom(rib)).toBe("10.0.0.3");
  });

  it("compares MED only between paths from the same neighbouring AS", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    const c = peer(rib, { address: "10.0.0.4" });
    // a and b from AS 1 (b's lower MED removes a); c from AS 2 with a higher MED stays and wins on id.
    announce(rib, a, { asPath: seq(1), med: 50 });
    announce(rib, b, { asPath: seq(1), med: 10 });
    announce(rib, c, { asPath: seq(2), med: 100 });
    expect(bestFrom(rib)).toBe("10.0.0.3");
    const rib2 = setup();
    const a2 = peer(rib2, { address: "10.0.0.2" });
    const c2 = peer(rib2, { address: "10.0.0.4" });
    announce(rib2, a2, { asPath: seq(1), med: 50 });
    announce(rib2, c2, { asPath: seq(2), med: 10 });
    // Different neighbour AS: MED not compared, lowest router id wins.
    expect(bestFrom(rib2)).toBe("10.0.0.2");
  });

  it("always-compare-med compares across ASes", () => {
    const rib = setup({ alwaysCompareMed: true });
    const a = peer(rib, { address: "10.0.0.2" });
    const c = peer(rib, { address: "10.0.0.4" });
    announce(rib, a, { asPath: seq(1), med: 50 });
    announce(rib, c, { asPath: seq(2), med: 10 });
    expect(bestFrom(rib)).toBe("10.0.0.4");
  });

  it("prefers eBGP over iBGP", () => {
    const rib = setup();
    const i = peer(rib, { address: "10.0.0.2" });
    const e = peer(rib, { address: "10.0.0.9", asn: 65009 });
    announce(rib, i, { asPath: seq(65009) });
    announce(rib, e, { asPath: seq(65009) });
    expect(bestFrom(rib)).toBe("10.0.0.9");
  });

  it("prefers the lower IGP cost and drops unreachable next hops", () => {
    const costs: Record<string, number | null> = { "10.0.0.2": 20, "10.0.0.3": 10, "10.0.0.4": null };
    const rib = setup({ igpCost: (nh) => (nh in costs ? costs[nh]! : 0) });
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    const c = peer(rib, { address: "10.0.0.4" });
    expect(announce(rib, c, {})).toBeNull();
    announce(rib, a, {});
    announce(rib, b, {});
    expect(bestFrom(rib)).toBe("10.0.0.3");
  });

  it("RFC 4456: shorter CLUSTER_LIST, then ORIGINATOR_ID stands in for the router id", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    announce(rib, a, { originatorId: "1.1.1.1", clusterList: ["9.9.9.9", "8.8.8.8"] });
    announce(rib, b, { originatorId: "2.2.2.2", clusterList: ["9.9.9.9"] });
    expect(bestFrom(rib)).toBe("10.0.0.3");
    const rib2 = setup();
    const a2 = peer(rib2, { address: "10.0.0.2" });
    const b2 = peer(rib2, { address: "10.0.0.3" });
    announce(rib2, a2, { originatorId: "5.5.5.5" });
    announce(rib2, b2, { originatorId: "4.4.4.4" });
    expect(bestFrom(rib2)).toBe("10.0.0.3");
  });

  it("lowest router id, then lowest peer address", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.3" }, "1.1.1.1");
    const b = peer(rib, { address: "10.0.0.2" }, "1.1.1.1");
    const c = peer(rib, { address: "10.0.0.1" }, "2.2.2.2");
    announce(rib, a, {});
    announce(rib, b, {});
    announce(rib, c, {});
    expect(bestFrom(rib)).toBe("10.0.0.2");
  });

  it("prefers our own routes", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    announce(rib, a, { localPref: 1000 });
    const c = rib.originate(P.afi, P.len, P.v4, null, {}, ["10.0.0.1"]);
    expect(c?.best?.peer.index).toBe(0);
  });

  it("builds a multipath set of equal paths with distinct next hops", () => {
    const rib = setup({ maxPaths: 4 });
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    const c = peer(rib, { address: "10.0.0.4" });
    announce(rib, a, {});
    const ch = announce(rib, b, {});
    expect(ch?.multipath.map((p) => p.attrs.nextHops[0])).toEqual(["10.0.0.2", "10.0.0.3"]);
    // A worse path (longer AS path) joins the candidates, not the set: no change reported.
    expect(announce(rib, c, { asPath: seq(1) })).toBeNull();
    expect(rib.multipath(P.afi, P.len, P.v4, null)).toHaveLength(2);
    expect(rib.candidates(P.afi, P.len, P.v4, null)).toHaveLength(3);
  });
});

describe("diffs", () => {
  it("reports new, changed and withdrawn best paths, and nothing for non-best changes", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    const c1 = announce(rib, a, {});
    expect(c1?.previous).toBeNull();
    expect(formatRibPrefix(c1!)).toBe("192.0.2.0/24");
    expect(announce(rib, b, {})).toBeNull(); // b loses on router id
    expect(announce(rib, a, {})).toBeNull(); // identical re-announcement
    const c2 = rib.withdraw(a, P.afi, P.len, P.v4, null, 0);
    expect(c2?.best?.peer).toBe(b);
    expect(c2?.previous?.peer).toBe(a);
    const c3 = rib.withdraw(b, P.afi, P.len, P.v4, null, 0);
    expect(c3?.best).toBeNull();
    expect(rib.size).toBe(0);
    expect(rib.withdraw(b, P.afi, P.len, P.v4, null, 0)).toBeNull();
  });

  it("an implicit withdraw replaces the peer's earlier path", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    announce(rib, a, { med: 1 });
    const c = announce(rib, a, { med: 2 });
    expect(c?.best?.attrs.med).toBe(2);
    expect(a.accepted).toBe(1);
  });

  it("shares interned attribute sets and frees them", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    for (let i = 0; i < 100; i++) announce(rib, a, { communities: [1] }, parseRibPrefix(`10.0.${i}.0/24`));
    expect(rib.size).toBe(100);
    expect(rib.attrs.size).toBe(1);
    const changes: RouteChange[] = [];
    rib.dropPeer(a, (c) => changes.push(c));
    expect(changes).toHaveLength(100);
    expect(changes.every((c) => c.best === null)).toBe(true);
    expect(rib.size).toBe(0);
    expect(rib.attrs.size).toBe(0);
    expect(a.accepted).toBe(0);
  });

  it("handles IPv6 and host routes", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2", families: ["1/1", "2/1"] });
    const v6 = parseRibPrefix("2001:db8:1::/48");
    const h = parseRibPrefix("203.0.113.255/32");
    announce(rib, a, {}, v6);
    announce(rib, a, {}, h);
    expect(formatRibPrefix({ ...v6 })).toBe("2001:db8:1::/48");
    expect(rib.best(v6.afi, v6.len, 0, v6.v6)).toBeDefined();
    expect(rib.best(h.afi, h.len, h.v4, null)).toBeDefined();
    const seen: string[] = [];
    rib.forEachBest((afi, len, v4, v6b) => seen.push(formatRibPrefix({ afi, len, v4, v6: v6b })));
    expect(seen.sort()).toEqual(["2001:db8:1::/48", "203.0.113.255/32"]);
  });
});

describe("import", () => {
  it("rejects paths with our AS (eBGP), our router id as originator, or our cluster id", () => {
    const rib = setup();
    const e = peer(rib, { address: "10.0.0.9", asn: 65009 });
    const i = peer(rib, { address: "10.0.0.2" });
    expect(announce(rib, e, { asPath: seq(65009, LOCAL_AS) })).toBeNull();
    expect(announce(rib, i, { originatorId: "10.0.0.1" })).toBeNull();
    expect(announce(rib, i, { clusterList: ["10.0.0.1"] })).toBeNull();
    expect(rib.size).toBe(0);
    expect(e.rejected + i.rejected).toBe(3);
  });

  it("applies prefix lists with ge/le, communities, large communities and AS path matches", () => {
    const rib = setup();
    const a = peer(rib, {
      address: "10.0.0.9",
      asn: 65009,
      importPolicy: {
        statements: [
          { match: { prefixes: [{ prefix: "10.0.0.0/8", ge: 16, le: 24 }] }, actions: { localPref: 300 } },
          { match: { communities: ["65009:666"] }, actions: { reject: true } },
          { match: { largeCommunities: ["65009:1:1"] }, actions: { addCommunities: ["65000:1"] } },
          { match: { asPath: " 64999$" }, actions: { reject: true } },
        ],
      },
    });
    const at = (text: string, attrs: PathAttributes = {}) => {
      const p = parseRibPrefix(text);
      announce(rib, a, { asPath: seq(65009), ...attrs }, p);
      return rib.best(p.afi, p.len, p.v4, p.v6);
    };
    expect(at("10.1.0.0/16")?.attrs.localPref).toBe(300);
    expect(at("10.1.2.0/24")?.attrs.localPref).toBe(300);
    expect(at("10.0.0.0/8")?.attrs.localPref).toBe(100); // shorter than ge
    expect(at("10.1.2.128/25")?.attrs.localPref).toBe(100); // longer than le
    expect(at("11.0.0.0/8", { communities: [((65009 << 16) | 666) >>> 0] })).toBeUndefined();
    const twelve = at("12.0.0.0/8", { largeCommunities: [[65009, 1, 1]] });
    expect(twelve?.attrs.attrs.communities).toEqual([((65000 << 16) | 1) >>> 0]);
    expect(at("13.0.0.0/8", { asPath: seq(65009, 64999) })).toBeUndefined();
  });

  it("validates policies with a typed error", () => {
    const rib = setup();
    const bad = [
      { prefixes: [{ prefix: "10.0.0.0/33" }] },
      { prefixes: [{ prefix: "10.0.0.0/8", ge: 4 }] },
      { communities: ["70000:1"] },
      { asPath: "(" },
    ];
    for (const match of bad) {
      let err: unknown;
      try {
        rib.addPeer({ address: "10.0.0.5", asn: 1, importPolicy: { statements: [{ match, actions: {} }] } });
      } catch (e) {
        err = e;
      }
      expect(isBgpConfigError(err, "config-invalid")).toBe(true);
    }
    expect(() => new Rib({ localAsn: 0, routerId: "1.1.1.1" })).toThrow(/asn/);
    expect(() => new Rib({ localAsn: 1, routerId: "0.0.0.0" })).toThrow(/routerId/);
  });
});

describe("export", () => {
  function exported(rib: Rib, to: RibPeer, prefix = P) {
    const best = rib.best(prefix.afi, prefix.len, prefix.v4, prefix.v6) ?? null;
    return rib.exportAttrs(to, prefix.afi, prefix.len, prefix.v4, prefix.v6, best);
  }

  it("iBGP split horizon without route reflection", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const b = peer(rib, { address: "10.0.0.3" });
    announce(rib, a, {});
    expect(exported(rib, b)).toBeNull();
    expect(exported(rib, a)).toBeNull(); // never back to the source
  });

  it("route reflection: client routes to all, non-client routes to clients only, with ORIGINATOR_ID/CLUSTER_LIST", () => {
    const rib = setup();
    const c1 = peer(rib, { address: "10.0.0.2", routeReflectorClient: true });
    const c2 = peer(rib, { address: "10.0.0.3", routeReflectorClient: true });
    const n1 = peer(rib, { address: "10.0.0.4" });
    const n2 = peer(rib, { address: "10.0.0.5" });
    announce(rib, c1, {});
    const toC2 = exported(rib, c2);
    expect(toC2?.attrs.originatorId).toBe("10.0.0.2");
    expect(toC2?.attrs.clusterList).toEqual(["10.0.0.1"]);
    expect(toC2?.attrs.nextHop).toBe("10.0.0.2");
    expect(exported(rib, n1)?.attrs.clusterList).toEqual(["10.0.0.1"]);
    const Q = parseRibPrefix("198.51.100.0/24");
    announce(rib, n1, { originatorId: "7.7.7.7", clusterList: ["9.9.9.9"] }, Q);
    expect(exported(rib, n2, Q)).toBeNull();
    const toClient = exported(rib, c1, Q);
    expect(toClient?.attrs.originatorId).toBe("7.7.7.7");
    expect(toClient?.attrs.clusterList).toEqual(["10.0.0.1", "9.9.9.9"]);
  });

  it("a change exported in one batch is computed once per group of alike peers, and each peer gets its own answer", () => {
    const rib = setup();
    const src = peer(rib, { address: "10.0.0.2", routeReflectorClient: true });
    const clients = ["10.0.0.3", "10.0.0.4", "10.0.0.5"].map((address) =>
      peer(rib, { address, routeReflectorClient: true }),
    );
    const nhs = peer(rib, { address: "10.0.0.6", routeReflectorClient: true, nextHopSelf: true });
    const other = peer(rib, { address: "10.0.0.7", routeReflectorClient: true });
    other.localAddress4 = "10.0.0.99";
    for (const p of [src, ...clients, nhs, other]) rib.openOut(p);
    const c = announce(rib, src, {})!;
    const interned = vi.spyOn(rib.attrs, "intern");
    const batch = rib.beginExportBatch();
    const got = [src, ...clients, nhs, other].map((p) =>
      rib.exportChange(p, c.afi, c.len, c.v4, c.v6, c.best, batch),
    );
    // The three alike clients: one export; next-hop-self and another local address: one each.
    expect(interned).toHaveBeenCalledTimes(3);
    interned.mockRestore();
    expect(got[0]).toBeUndefined(); // never back to the source
    expect(got[1]).toBe(got[2]);
    expect(got[2]).toBe(got[3]);
    expect(got[1]?.attrs.nextHop).toBe("10.0.0.2");
    expect(got[4]?.attrs.nextHop).toBe("10.0.0.1");
    // Interned: another group's equal answer is the same set.
    expect(got[5]).toBe(got[1]);
    // The same answers as exporting peer by peer.
    for (const [i, p] of [src, ...clients, nhs, other].entries())
      expect(rib.exportAttrs(p, c.afi, c.len, c.v4, c.v6, c.best) ?? undefined).toBe(got[i] ?? undefined);
    // A peer that changed (its session's address) is in another group at the next batch.
    clients[0]!.localAddress4 = "10.0.0.98";
    const c2 = announce(rib, src, { med: 7 })!;
    const b2 = rib.beginExportBatch();
    const [x, y] = [clients[0]!, clients[1]!].map((p) =>
      rib.exportChange(p, c2.afi, c2.len, c2.v4, c2.v6, c2.best, b2),
    );
    expect(x?.attrs.nextHop).toBe("10.0.0.2");
    expect(x).toBe(y); // next hop not self: the local address does not matter, but the group is recomputed
    clients[0]!.nextHopSelf = true;
    const c3 = announce(rib, src, { med: 8 })!;
    const b3 = rib.beginExportBatch();
    const [x3, y3] = [clients[0]!, clients[1]!].map((p) =>
      rib.exportChange(p, c3.afi, c3.len, c3.v4, c3.v6, c3.best, b3),
    );
    expect(x3?.attrs.nextHop).toBe("10.0.0.98");
    expect(y3?.attrs.nextHop).toBe("10.0.0.2");
  });

  it("eBGP: prepends our AS, sets next hop self, strips LOCAL_PREF and foreign MED; honours NO_EXPORT", () => {
    const rib = setup();
    const i = peer(rib, { address: "10.0.0.2" });
    const e = peer(rib, { address: "192.0.2.9", asn: 65009 });
    announce(rib, i, { asPath: seq(1), med: 5, localPref: 300 });
    const out = exported(rib, e);
    expect(out?.attrs.asPath).toEqual(seq(LOCAL_AS, 1));
    expect(out?.attrs.nextHop).toBe("10.0.0.1");
    expect(out?.attrs.localPref).toBeUndefined();
    expect(out?.attrs.med).toBe(5); // learned inside our AS
    announce(rib, i, { communities: [0xffffff01] });
    expect(exported(rib, e)).toBeNull();
  });

  it("eBGP learned routes reach iBGP peers with their next hop unless next-hop-self", () => {
    const rib = setup();
    const e = peer(rib, { address: "192.0.2.9", asn: 65009 });
    const i = peer(rib, { address: "10.0.0.2" });
    const j = peer(rib, { address: "10.0.0.3", nextHopSelf: true });
    announce(rib, e, { asPath: seq(65009), med: 7 });
    expect(exported(rib, i)?.attrs.nextHop).toBe("192.0.2.9");
    expect(exported(rib, i)?.attrs.localPref).toBe(100);
    expect(exported(rib, j)?.attrs.nextHop).toBe("10.0.0.1");
  });

  it("export policy: reject, communities and prepend", () => {
    const rib = setup();
    const i = peer(rib, { address: "10.0.0.2" });
    const e = peer(rib, {
      address: "192.0.2.9",
      asn: 65009,
      exportPolicy: {
        statements: [
          { match: { prefixes: [{ prefix: "192.0.2.0/24" }] }, actions: { reject: true } },
          { actions: { addLargeCommunities: ["65000:7:7"], prependAs: 2 } },
        ],
      },
    });
    announce(rib, i, {});
    const Q = parseRibPrefix("198.51.100.0/24");
    announce(rib, i, {}, Q);
    expect(exported(rib, e)).toBeNull();
    const out = exported(rib, e, Q);
    expect(out?.attrs.largeCommunities).toEqual([[65000, 7, 7]]);
    expect(out?.attrs.asPath).toEqual(seq(LOCAL_AS, LOCAL_AS, LOCAL_AS));
  });

  it("Adj-RIB-Out reports only changes", () => {
    const rib = setup();
    const e = peer(rib, { address: "10.0.0.2", asn: 65009 });
    const i = peer(rib, { address: "10.0.0.3" });
    rib.openOut(i);
    const c = announce(rib, e, { asPath: seq(65009) })!;
    const first = rib.exportChange(i, c.afi, c.len, c.v4, c.v6, c.best);
    expect(first?.attrs.nextHop).toBe("10.0.0.2");
    expect(rib.exportChange(i, c.afi, c.len, c.v4, c.v6, c.best)).toBeUndefined();
    expect(rib.exportChange(i, c.afi, c.len, c.v4, c.v6, null)).toBeNull();
    expect(rib.exportChange(i, c.afi, c.len, c.v4, c.v6, null)).toBeUndefined();
  });

  it("exports one attribute set as IPv4 and as IPv6 with each family's own next hop", () => {
    const rib = setup();
    const e = peer(rib, { address: "192.0.2.9", asn: 65009, families: ["1/1", "2/1"] });
    e.localAddress6 = "2001:db8::1";
    rib.openOut(e);
    // Our own routes without a next hop share one attribute set across families.
    const attrs: PathAttributes = { origin: 0, asPath: [] };
    const v4 = parseRibPrefix("10.1.0.0/16");
    const v6 = parseRibPrefix("2001:db8:ff::/48");
    const c4 = rib.originate(v4.afi, v4.len, v4.v4, v4.v6, attrs, [])!;
    const c6 = rib.originate(v6.afi, v6.len, v6.v4, v6.v6, attrs, [])!;
    expect(c4.best?.attrs).toBe(c6.best?.attrs);
    const o4 = rib.exportChange(e, c4.afi, c4.len, c4.v4, c4.v6, c4.best);
    const o6 = rib.exportChange(e, c6.afi, c6.len, c6.v4, c6.v6, c6.best);
    expect(o4?.nextHops).toEqual(["10.0.0.1"]);
    expect(o6?.nextHops).toEqual(["2001:db8::1"]);
    expect(o6?.attrs.nextHop).toBeUndefined();
  });

  it("drops one family of a peer and leaves the other (RFC 7606 AFI/SAFI disable)", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2", families: ["1/1", "2/1"] });
    announce(rib, a, {}, parseRibPrefix("10.0.1.0/24"));
    const set6 = rib.internFromPeer(a, { origin: 0, asPath: [] }, ["2001:db8::2"]);
    const p6 = parseRibPrefix("2001:db8:1::/48");
    rib.announce(a, p6.afi, p6.len, p6.v4, p6.v6, 0, set6);
    expect(rib.size).toBe(2);
    const changes: RouteChange[] = [];
    rib.dropPeer(a, (c) => changes.push(c), p6.afi);
    expect(changes.map((c) => [formatRibPrefix(c), c.best])).toEqual([["2001:db8:1::/48", null]]);
    expect(rib.size).toBe(1);
    expect(bestFrom(rib, parseRibPrefix("10.0.1.0/24"))).toBe("10.0.0.2");
  });
});

describe("graceful restart", () => {
  it("keeps stale paths, refreshes re-announced ones and sweeps the rest", () => {
    const rib = setup();
    const a = peer(rib, { address: "10.0.0.2" });
    const ps = ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"].map((t) => parseRibPrefix(t));
    for (const p of ps) announce(rib, a, {}, p);
    rib.markStale(a);
    expect(rib.countStale(a)).toBe(3);
    expect(rib.size).toBe(3);
    announce(rib, a, {}, ps[0]);
    expect(rib.countStale(a)).toBe(2);
    const changes: RouteChange[] = [];
    rib.sweepStale(a, (c) => changes.push(c));
    expect(changes.map((c) => formatRibPrefix(c)).sort()).toEqual(["10.0.2.0/24", "10.0.3.0/24"]);
    expect(rib.size).toBe(1);
    expect(a.accepted).toBe(1);
  });
});

describe("import and export caches across recycled attribute sets", () => {
  /** What the speaker does per UPDATE: intern once, announce each prefix, drop the set if nothing kept it. */
  function receive(rib: Rib, p: RibPeer, attrs: PathAttributes, nextHops: string[], prefixes: string[]) {
    const set = rib.internFromPeer(p, { origin: 0, ...attrs }, nextHops);
    const changes = prefixes.map((t) => {
      const x = parseRibPrefix(t);
      return rib.announce(p, x.afi, x.len, x.v4, x.v6, 0, set);
    });
    rib.attrs.dropIfUnused(set);
    return changes;
  }

  it.each([
    ["IPv4", (i: number) => `10.${i}.0.0/24`, ["192.0.2.9"]],
    ["IPv6", (i: number) => `2001:db8:${i}::/48`, ["2001:db8::9", "fe80::9"]],
  ] as const)("a looped first UPDATE does not make later clean %s routes rejected", (_f, pfx, nh) => {
    const rib = setup();
    const e = peer(rib, { address: "192.0.2.9", asn: 65009, families: ["1/1", "2/1"] });
    const base = nh[0]!.includes(":") ? {} : { nextHop: nh[0]! };
    // FRR echoing our own route back: our AS in the path.
    expect(receive(rib, e, { ...base, asPath: seq(65009, LOCAL_AS) }, [...nh], [pfx(0)])).toEqual([null]);
    expect(e.rejected).toBe(1);
    for (let i = 1; i <= 20; i++) {
      const [c] = receive(rib, e, { ...base, asPath: seq(65009), med: i }, [...nh], [pfx(i)]);
      expect(c?.best?.attrs.med).toBe(i);
    }
    expect(e.accepted).toBe(20);
    expect(e.rejected).toBe(1);
    expect(rib.size).toBe(20);
  });

  it("an import-policy reject of the first set does not stick to the set that reuses its id", () => {
    const rib = setup();
    const e = peer(rib, {
      address: "192.0.2.9",
      asn: 65009,
      importPolicy: { statements: [{ match: { communities: ["65009:666"] }, actions: { reject: true } }] },
    });
    const bad = receive(
      rib,
      e,
      { nextHop: "192.0.2.9", asPath: seq(65009), communities: [65009 * 65536 + 666] },
      ["192.0.2.9"],
      ["10.0.0.0/24"],
    );
    expect(bad).toEqual([null]);
    const good = receive(
      rib,
      e,
      { nextHop: "192.0.2.9", asPath: seq(65009) },
      ["192.0.2.9"],
      ["10.1.0.0/24"],
    );
    expect(good[0]?.best?.peer).toBe(e);
    expect(e.accepted).toBe(1);
  });

  it("a policy-rewritten path is not reused for another set that takes the dropped input set's id", () => {
    const rib = setup();
    const e = peer(rib, {
      address: "192.0.2.9",
      asn: 65009,
      importPolicy: { statements: [{ actions: { localPref: 300 } }] },
    });
    const [c1] = receive(
      rib,
      e,
      { nextHop: "192.0.2.9", asPath: seq(65009), med: 1 },
      ["192.0.2.9"],
      ["10.1.0.0/24"],
    );
    expect(c1?.best?.attrs.med).toBe(1);
    const [c2] = receive(
      rib,
      e,
      { nextHop: "192.0.2.9", asPath: seq(65009), med: 2 },
      ["192.0.2.9"],
      ["10.2.0.0/24"],
    );
    expect(c2?.best?.attrs.med).toBe(2);
    expect(c2?.best?.attrs.localPref).toBe(300);
  });

  it("the export cache does not hand a dropped set's export to the set that reuses its id", () => {
    const rib = setup();
    const b = peer(rib, { address: "198.51.100.9", asn: 65010 });
    rib.openOut(b);
    const exportTo = (c: RouteChange | null) => rib.exportChange(b, c!.afi, c!.len, c!.v4, c!.v6, c!.best);
    // Our own routes skip the import cache, so a withdrawn one's set is dropped and its id freed.
    const x = parseRibPrefix("10.1.0.0/24");
    const y = parseRibPrefix("10.2.0.0/24");
    const c1 = rib.originate(x.afi, x.len, x.v4, x.v6, { asPath: [], communities: [1] }, []);
    expect(exportTo(c1)?.attrs.communities).toEqual([1]);
    expect(exportTo(rib.withdrawLocal(x.afi, x.len, x.v4, x.v6))).toBeNull();
    const c2 = rib.originate(y.afi, y.len, y.v4, y.v6, { asPath: [], communities: [2] }, []);
    expect(exportTo(c2)?.attrs.communities).toEqual([2]);
  });

  it("caches release every attribute set when the peer goes away", () => {
    const rib = setup();
    const e = peer(rib, { address: "192.0.2.9", asn: 65009 });
    const b = peer(rib, { address: "198.51.100.9", asn: 65010 });
    rib.openOut(b);
    receive(rib, e, { nextHop: "192.0.2.9", asPath: seq(65009, LOCAL_AS) }, ["192.0.2.9"], ["10.0.0.0/24"]);
    const [c] = receive(rib, e, { nextHop: "192.0.2.9", asPath: seq(65009) }, ["192.0.2.9"], ["10.1.0.0/24"]);
    rib.exportChange(b, c!.afi, c!.len, c!.v4, c!.v6, c!.best);
    rib.dropPeer(e, (ch) => rib.exportChange(b, ch.afi, ch.len, ch.v4, ch.v6, ch.best));
    rib.removePeer(e);
    rib.clearOut(b);
    expect(rib.attrs.size).toBe(0);
  });
});
