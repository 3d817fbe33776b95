import type { HostEndpointUpdate, RenderedRule, WorkloadEndpointUpdate } from "@margay/dataplane-contract";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { applyPolicyUpdate, createPolicyState } from "../policy-state.js";
import { renderedRule } from "../testing/rendered-rule.js";
import { nftNames } from "./names.js";
import {
  type NftRenderOptions,
  type NftRuleset,
  addrElements,
  diffRuleset,
  createNftRenderCache,
  portElements,
  renderFull,
  renderRule,
  renderRuleset,
  renderRulesetDelta,
} from "./render.js";

const OPTIONS: NftRenderOptions = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept",
  priority: 0,
};
const MARKS = OPTIONS.marks;

const rule = (over: Partial<RenderedRule>): RenderedRule => renderedRule({ ruleId: "r0", ...over });

describe("rule rendering", () => {
  it("renders one line per family, with verdicts as marks", () => {
    expect(renderRule(rule({}), MARKS)).toEqual([
      "meta nfproto ipv4 counter meta mark set meta mark | 0x00010000 return",
      "meta nfproto ipv6 counter meta mark set meta mark | 0x00010000 return",
    ]);
    expect(renderRule(rule({ action: "deny", ipVersion: 4 }), MARKS)).toEqual([
      "meta nfproto ipv4 counter drop",
    ]);
    expect(renderRule(rule({ action: "pass", ipVersion: 6 }), MARKS)).toEqual([
      "meta nfproto ipv6 counter meta mark set meta mark | 0x00020000 return",
    ]);
  });

  it("keeps only the family a CIDR list can match, and skips a family it cannot", () => {
    const lines = renderRule(
      rule({ srcNets: ["10.0.0.0/8"], notSrcNets: ["10.1.0.0/16", "fd00::/8"], action: "deny" }),
      MARKS,
    );
    expect(lines).toEqual([
      "meta nfproto ipv4 ip saddr { 10.0.0.0/8 } ip saddr != { 10.1.0.0/16 } counter drop",
    ]);
  });

  it("ORs plain and named ports into separate lines, ANDs IP sets", () => {
    const lines = renderRule(
      rule({
        ipVersion: 4,
        protocol: 6,
        srcIpSetIds: ["a", "b"],
        dstPorts: [
          { first: 80, last: 80 },
          { first: 8000, last: 8080 },
        ],
        dstNamedPortIpSetIds: ["np"],
      }),
      MARKS,
    );
    const sa = nftNames.addrSet("a", 4);
    const sb = nftNames.addrSet("b", 4);
    expect(lines).toEqual([
      `meta nfproto ipv4 meta l4proto 6 ip saddr @${sa} ip saddr @${sb} th dport { 80, 8000-8080 } counter meta mark set meta mark | 0x00010000 return`,
      `meta nfproto ipv4 meta l4proto 6 ip saddr @${sa} ip saddr @${sb} ip daddr . meta l4proto . th dport @${nftNames.portSet("np", 4)} counter meta mark set meta mark | 0x00010000 return`,
    ]);
  });

  it("guards port matches with a transport protocol and renders ICMP per family", () => {
    expect(renderRule(rule({ ipVersion: 4, dstPorts: [{ first: 53, last: 53 }] }), MARKS)[0]).toContain(
      "meta l4proto { 6, 17, 132, 136 } th dport { 53 }",
    );
    expect(renderRule(rule({ protocol: 1, icmp: { type: 8, code: 0 } }), MARKS)).toEqual([
      "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 counter meta mark set meta mark | 0x00010000 return",
    ]);
  });
});

describe("set elements", () => {
  it("drops prefixes covered by others so interval sets never overlap", () => {
    expect(
      addrElements(["10.1.2.3/32", "10.0.0.0/8", "10.1.0.0/16", "192.168.0.1", "fd00::1/128"], 4),
    ).toEqual(["10.0.0.0/8", "192.168.0.1"]);
    expect(addrElements(["fd00::1/128", "10.0.0.1/32"], 6)).toEqual(["fd00::1"]);
    expect(portElements(["10.0.0.1,tcp:80", "fd00::1,udp:53", "junk"], 4)).toEqual(["10.0.0.1 . tcp . 80"]);
  });
});

/** The endpoint chain an interface's traffic goes to (`in`: to the workload), from the verdict maps. */
function chainOf(rs: NftRuleset, ifname: string, dir: "in" | "out"): string {
  return rs.maps
    .get(dir === "in" ? "wl-to" : "wl-from")!
    .get(`"${ifname}"`)!
    .replace(/^goto /, "");
}

describe("ruleset", () => {
  const ep = (over: Partial<WorkloadEndpointUpdate> = {}): WorkloadEndpointUpdate => ({
    kind: "workload-endpoint-update",
    id: "ns/a",
    ifname: "mgyaaaa",
    ipNetworks: ["10.0.0.1/32"],
    tiers: {
      ingress: [
        { tier: "sec", defaultAction: "pass", policyIds: ["sec/p1"] },
        { tier: "default", defaultAction: "deny", policyIds: ["default/p2", "default/missing"] },
      ],
      egress: [],
    },
    profileIds: ["kns.ns"],
    ...over,
  });
  const state = () => {
    const s = createPolicyState();
    const pol = (id: string) =>
      applyPolicyUpdate(s, {
        kind: "active-policy-update",
        id,
        tier: id.split("/")[0]!,
        name: id,
        inbound: [rule({})],
        outbound: [],
        flags: { untracked: false, preDnat: false, applyOnForward: false },
      });
    pol("sec/p1");
    pol("default/p2");
    applyPolicyUpdate(s, {
      kind: "active-profile-update",
      id: "kns.ns",
      inbound: [rule({})],
      outbound: [rule({})],
    });
    applyPolicyUpdate(s, { kind: "ip-set-update", id: "s", type: "net", members: ["10.0.0.0/24"] });
    applyPolicyUpdate(s, ep());
    return s;
  };

  it("puts host endpoint stages in their own chains and maps, and renders none a host does not use", () => {
    const s = state();
    const tier = (id: string) => [{ tier: "default", defaultAction: "deny" as const, policyIds: [id] }];
    const none = { ingress: [], egress: [] };
    const hep = (over: Partial<HostEndpointUpdate>): HostEndpointUpdate => ({
      kind: "host-endpoint-update",
      id: "h",
      ifname: "eth0",
      expectedIps: [],
      tiers: { ingress: tier("default/p2"), egress: [] },
      untrackedTiers: none,
      preDnatTiers: none,
      forwardTiers: none,
      profileIds: [],
      failsafe: { inbound: [{ protocol: "tcp", port: 22 }], outbound: [{ protocol: "udp", port: 53 }] },
      ...over,
    });
    applyPolicyUpdate(s, hep({}));
    let rs = renderRuleset(s, [], OPTIONS);
    for (const m of ["hep-raw-in", "hep-raw-out", "hep-prednat", "hep-fwd-in", "hep-fwd-out"] as const)
      expect(rs.maps.get(m)?.size).toBe(0);
    expect(rs.maps.get("hep-in")?.get('"eth0"')).toBe(`goto ${nftNames.host("h", "in")}`);
    applyPolicyUpdate(
      s,
      hep({
        untrackedTiers: { ingress: tier("sec/p1"), egress: [] },
        preDnatTiers: { ingress: tier("sec/p1"), egress: [] },
        forwardTiers: { ingress: [], egress: tier("default/p2") },
      }),
    );
    rs = renderRuleset(s, [], OPTIONS);
    const ui = nftNames.hostStage("h", "untracked", "in");
    expect(rs.maps.get("hep-raw-in")?.get('"eth0"')).toBe(`goto ${ui}`);
    expect(rs.maps.get("hep-raw-out")?.size).toBe(0);
    expect(rs.maps.get("hep-fwd-out")?.get('"eth0"')).toBe(
      `goto ${nftNames.hostStage("h", "forward", "out")}`,
    );
    // Raw runs before conntrack: failsafe requests and replies to outbound failsafes are let through
    // (tracked), then untracked policy; no match ends without a verdict (the next stage decides).
    const lines = rs.chains.get(ui)!;
    expect(lines.slice(0, 2)).toEqual([
      "meta l4proto tcp th dport 22 accept",
      "meta l4proto udp th sport 53 accept",
    ]);
    expect(lines.at(-1)).not.toBe("drop");
    expect(lines.some((l) => l.includes(`jump ${nftNames.policy("sec/p1", "in")}`))).toBe(true);
    // The filter chain holds only the normal tiers now.
    expect(
      rs.chains.get(nftNames.host("h", "in"))!.some((l) => l.includes(nftNames.policy("sec/p1", "in"))),
    ).toBe(false);
    const full = renderFull(rs, OPTIONS);
    expect(full).toContain("type filter hook prerouting priority raw; policy accept;");
    expect(full).toContain("type filter hook prerouting priority dstnat - 10; policy accept;");
  });

  it("orders an endpoint chain by tier, guards later policies by pass, fails closed on a missing policy", () => {
    const rs = renderRuleset(state(), [], OPTIONS);
    expect(rs.chains.get(chainOf(rs, "mgyaaaa", "in"))).toEqual([
      "meta mark set meta mark & 0xfffcffff",
      `jump ${nftNames.policy("sec/p1", "in")}`,
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark set meta mark & 0xfffcffff",
      `jump ${nftNames.policy("default/p2", "in")}`,
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark & 0x00020000 == 0x00000000 drop",
      "meta mark & 0x00010000 == 0x00010000 return",
      "meta mark & 0x00020000 == 0x00000000 drop",
      "meta mark set meta mark & 0xfffcffff",
      `jump ${nftNames.profile("kns.ns", "in")}`,
      "meta mark & 0x00010000 == 0x00010000 return",
      "drop",
    ]);
    // No egress tiers: straight to the profile.
    expect(rs.chains.get(chainOf(rs, "mgyaaaa", "out"))?.[1]).toBe(
      `jump ${nftNames.profile("kns.ns", "out")}`,
    );
    // Named by its rules, so endpoints with the same chain share it.
    expect(chainOf(rs, "mgyaaaa", "out")).toBe(
      nftNames.workloadShared("out", rs.chains.get(chainOf(rs, "mgyaaaa", "out"))!),
    );
  });

  it("full render replaces the table atomically; diffs touch only what changed, in a safe order", () => {
    const s = state();
    const a = renderRuleset(s, [{ cidr: "10.0.0.0/16", natOutgoing: true }], OPTIONS);
    const full = renderFull(a, OPTIONS);
    expect(full.startsWith("add table inet margay\ndelete table inet margay\ntable inet margay {")).toBe(
      true,
    );
    expect(full).toContain("iifname vmap @wl-from");
    expect(full).toContain("ip saddr @nat4 ip daddr != @pools4 masquerade");
    expect(diffRuleset(a, a, OPTIONS)).toBe("");

    applyPolicyUpdate(s, {
      kind: "ip-set-delta-update",
      id: "s",
      // A prefix: the set stays an interval set, so the change is element by element.
      added: ["10.9.0.0/30"],
      removed: ["10.0.0.0/24"],
    });
    applyPolicyUpdate(s, { kind: "workload-endpoint-remove", id: "ns/a" });
    // Another profile: b's chains differ from a's (a same-chain endpoint would share a's).
    applyPolicyUpdate(s, ep({ id: "ns/b", ifname: "mgybbbb", profileIds: [] }));
    const b = renderRuleset(s, [{ cidr: "10.0.0.0/16", natOutgoing: true }], OPTIONS);
    const lines = diffRuleset(a, b, OPTIONS).trim().split("\n");
    const aIn = chainOf(a, "mgyaaaa", "in");
    const bIn = chainOf(b, "mgybbbb", "in");
    expect(bIn).not.toBe(aIn);
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    expect(lines).toContain(`delete element inet margay ${nftNames.addrSet("s", 4)} { 10.0.0.0/24 }`);
    expect(lines).toContain(`add element inet margay ${nftNames.addrSet("s", 4)} { 10.9.0.0/30 }`);
    expect(lines).toContain('delete element inet margay wl-from { "mgyaaaa" }');
    expect(at(`add chain inet margay ${bIn}`)).toBeLessThan(at(`add rule inet margay ${bIn}`));
    expect(at("add map inet margay wl-to")).toBeLessThan(at(`flush chain inet margay ${aIn}`));
    expect(at(`flush chain inet margay ${aIn}`)).toBeLessThan(at(`delete chain inet margay ${aIn}`));
    // Policies and profiles did not change: not one of their rules is re-sent.
    const p1 = nftNames.policy("sec/p1", "in");
    expect(lines.some((l) => l.startsWith(`add rule inet margay ${p1} `))).toBe(false);
    expect(lines.some((l) => l.startsWith(`flush chain inet margay ${p1}`))).toBe(false);
  });

  it("an IP set of single addresses is a plain set (no interval flag); one with a prefix is an interval set", () => {
    const s = state();
    applyPolicyUpdate(s, {
      kind: "ip-set-update",
      id: "pods",
      type: "net",
      members: ["10.0.0.1/32", "10.0.0.2", "fd00::1/128"],
    });
    applyPolicyUpdate(s, {
      kind: "active-policy-update",
      id: "default/p3",
      tier: "default",
      name: "p3",
      inbound: [rule({ srcIpSetIds: ["pods"], dstIpSetIds: ["s"] })],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    });
    const rs = renderRuleset(s, [], OPTIONS);
    expect(rs.sets.get(nftNames.addrSet("pods", 4, false))).toEqual({
      decl: "type ipv4_addr;",
      elements: ["10.0.0.1", "10.0.0.2"],
    });
    expect(rs.sets.get(nftNames.addrSet("pods", 6, false))).toEqual({
      decl: "type ipv6_addr;",
      elements: ["fd00::1"],
    });
    expect(rs.sets.has(nftNames.addrSet("pods", 4))).toBe(false);
    expect(rs.sets.get(nftNames.addrSet("s", 4))?.decl).toBe("type ipv4_addr; flags interval;");
    // The rules name the variant each set has.
    expect(rs.chains.get(nftNames.policy("default/p3", "in"))?.[0]).toContain(
      `ip saddr @${nftNames.addrSet("pods", 4, false)} ip daddr @${nftNames.addrSet("s", 4)} `,
    );
    expect(renderFull(rs, OPTIONS)).toContain(
      `set ${nftNames.addrSet("pods", 4, false)} {\n    type ipv4_addr;\n`,
    );
  });

  it("a delta adds one address to a plain set; a set turning interval (or back) renders in full", () => {
    const s = state();
    const cache = createNftRenderCache();
    applyPolicyUpdate(s, { kind: "ip-set-update", id: "pods", type: "net", members: ["10.0.0.1/32"] });
    const p3 = {
      kind: "active-policy-update",
      id: "default/p3",
      tier: "default",
      name: "p3",
      inbound: [rule({ ipVersion: 4, srcIpSetIds: ["pods"] })],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    } as const;
    applyPolicyUpdate(s, p3);
    const a = renderRuleset(s, [], OPTIONS, cache);
    const dirty = (ipSets: string[]) => ({
      ipSets: new Set(ipSets),
      policies: new Set<string>(),
      profiles: new Set<string>(),
      workloads: new Set<string>(),
    });
    const ifname = (id: string) => s.workloads.get(id)?.ifname;
    const plain = nftNames.addrSet("pods", 4, false);
    const interval = nftNames.addrSet("pods", 4);
    applyPolicyUpdate(s, { kind: "ip-set-delta-update", id: "pods", added: ["10.0.0.7/32"], removed: [] });
    const d = renderRulesetDelta(a, ifname, s, OPTIONS, cache, dirty(["pods"]));
    expect(d?.text).toBe(`add set inet margay ${plain} { type ipv4_addr; elements = { 10.0.0.7 } }\n`);
    // A prefix joins: the set is renamed, so the policy matching it changes: no delta, a full render.
    applyPolicyUpdate(s, { kind: "ip-set-delta-update", id: "pods", added: ["10.1.0.0/16"], removed: [] });
    expect(renderRulesetDelta(d!.next, ifname, s, OPTIONS, cache, dirty(["pods"]))).toBeUndefined();
    const b = renderRuleset(s, [], OPTIONS, cache);
    const lines = diffRuleset(d!.next, b, OPTIONS).trim().split("\n");
    const pin = nftNames.policy("default/p3", "in");
    const at = (line: string) => lines.indexOf(line);
    expect(lines).toContain(`add set inet margay ${interval} { type ipv4_addr; flags interval; }`);
    expect(at(`flush chain inet margay ${pin}`)).toBeGreaterThan(-1);
    expect(lines.find((l) => l.startsWith(`add rule inet margay ${pin} `))).toContain(`@${interval} `);
    // The old set goes only after the rule that matched it.
    expect(at(`delete set inet margay ${plain}`)).toBeGreaterThan(at(`flush chain inet margay ${pin}`));
    // And back: the prefix leaves, the set is plain again.
    applyPolicyUpdate(s, { kind: "ip-set-delta-update", id: "pods", added: [], removed: ["10.1.0.0/16"] });
    expect(renderRulesetDelta(b, ifname, s, OPTIONS, cache, dirty(["pods"]))).toBeUndefined();
    const c = renderRuleset(s, [], OPTIONS, cache);
    expect(c.chains.get(pin)?.[0]).toContain(`@${plain} `);
    expect(c.sets.has(interval)).toBe(false);
  });

  it("endpoints with the same chains share them: a delta adds such a pod as two map elements", () => {
    const s = state();
    const cache = createNftRenderCache();
    const a = renderRuleset(s, [], OPTIONS, cache);
    const dirty = (workloads: string[]) => ({
      ipSets: new Set<string>(),
      policies: new Set<string>(),
      profiles: new Set<string>(),
      workloads: new Set(workloads),
    });
    const accepted = new Map([["ns/a", "mgyaaaa"]]);
    const ifname = (id: string) => accepted.get(id);
    const [aIn, aOut] = [chainOf(a, "mgyaaaa", "in"), chainOf(a, "mgyaaaa", "out")];
    applyPolicyUpdate(s, ep({ id: "ns/b", ifname: "mgybbbb" }));
    const d = renderRulesetDelta(a, ifname, s, OPTIONS, cache, dirty(["ns/b"]))!;
    expect(d.text.trim().split("\n")).toEqual([
      `add map inet margay wl-from { type ifname : verdict; elements = { "mgybbbb" : goto ${aOut} } }`,
      `add map inet margay wl-to { type ifname : verdict; elements = { "mgybbbb" : goto ${aIn} } }`,
    ]);
    expect(d.next.endpointChainRefs?.get(aIn)).toBe(2);
    accepted.set("ns/b", "mgybbbb");
    // a goes: its chains stay for b.
    applyPolicyUpdate(s, { kind: "workload-endpoint-remove", id: "ns/a" });
    const e = renderRulesetDelta(d.next, ifname, s, OPTIONS, cache, dirty(["ns/a"]))!;
    expect(e.text).not.toContain("chain");
    expect(e.next.chains.has(aIn)).toBe(true);
    accepted.delete("ns/a");
    // b goes too: the chains go after the map elements that led to them.
    applyPolicyUpdate(s, { kind: "workload-endpoint-remove", id: "ns/b" });
    const f = renderRulesetDelta(e.next, ifname, s, OPTIONS, cache, dirty(["ns/b"]))!;
    const lines = f.text.trim().split("\n");
    expect(lines.indexOf(`delete chain inet margay ${aIn}`)).toBeGreaterThan(
      lines.indexOf('delete element inet margay wl-to { "mgybbbb" }'),
    );
    expect(f.next.chains.has(aIn) || f.next.chains.has(aOut)).toBe(false);
    // The delta path and a full render agree.
    expect(diffRuleset(f.next, renderRuleset(s, [], OPTIONS, cache), OPTIONS)).toBe("");
  });
});

/** A Set that counts how often it is walked (iterated or its size read), to tell O(touched) from O(size). */
class WalkCountingSet<T> extends Set<T> {
  walks = 0;
  override [Symbol.iterator]() {
    this.walks++;
    return super[Symbol.iterator]();
  }
  override values() {
    this.walks++;
    return super.values();
  }
  override keys() {
    this.walks++;
    return super.keys();
  }
  override entries() {
    this.walks++;
    return super.entries();
  }
  override forEach(...args: Parameters<Set<T>["forEach"]>) {
    this.walks++;
    super.forEach(...args);
  }
}

/** A Map that counts how often it is walked (a copy `new Map(m)` walks it). */
class WalkCountingMap<K, V> extends Map<K, V> {
  walks = 0;
  override [Symbol.iterator]() {
    this.walks++;
    return super[Symbol.iterator]();
  }
  override entries() {
    this.walks++;
    return super.entries();
  }
  override keys() {
    this.walks++;
    return super.keys();
  }
  override values() {
    this.walks++;
    return super.values();
  }
  override forEach(...args: Parameters<Map<K, V>["forEach"]>) {
    this.walks++;
    super.forEach(...args);
  }
}

describe("a one-pod delta costs what it touches, not the size of the ruleset", () => {
  const SIZE = 3000;
  const ip = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  const setup = () => {
    const s = createPolicyState();
    applyPolicyUpdate(s, {
      kind: "ip-set-update",
      id: "pods",
      type: "net",
      members: Array.from({ length: SIZE }, (_, i) => `${ip(i)}/32`),
    });
    applyPolicyUpdate(s, {
      kind: "ip-set-update",
      id: "http",
      type: "ip-and-port",
      members: Array.from({ length: SIZE }, (_, i) => `${ip(i)},tcp:8080`),
    });
    applyPolicyUpdate(s, {
      kind: "active-policy-update",
      id: "default/p",
      tier: "default",
      name: "p",
      inbound: [rule({ srcIpSetIds: ["pods"], dstNamedPortIpSetIds: ["http"] })],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    });
    return s;
  };
  const dirtyOf = (members: Map<string, Set<string>>, workloads: string[] = []) => ({
    ipSets: new Set(members.keys()),
    ipSetMembers: members,
    policies: new Set<string>(),
    profiles: new Set<string>(),
    workloads: new Set(workloads),
  });
  /** One pod more and one fewer: what the calc graph sends for them. */
  const podDelta = (s: ReturnType<typeof setup>, add: number, remove: number) => {
    applyPolicyUpdate(s, {
      kind: "ip-set-delta-update",
      id: "pods",
      added: [`${ip(add)}/32`],
      removed: [`${ip(remove)}/32`],
    });
    applyPolicyUpdate(s, {
      kind: "ip-set-delta-update",
      id: "http",
      added: [`${ip(add)},tcp:8080`],
      removed: [`${ip(remove)},tcp:8080`],
    });
    return new Map([
      ["pods", new Set([`${ip(add)}/32`, `${ip(remove)}/32`])],
      ["http", new Set([`${ip(add)},tcp:8080`, `${ip(remove)},tcp:8080`])],
    ]);
  };

  it("changes only the touched members' elements, never walking the sets' members", () => {
    const s = setup();
    const cache = createNftRenderCache();
    const a = renderRuleset(s, [], OPTIONS, cache);
    const ifname = () => undefined;
    // The first delta after a whole render counts each set's elements once.
    const warm = renderRulesetDelta(a, ifname, s, OPTIONS, cache, dirtyOf(podDelta(s, SIZE, 0)))!;
    // From now on no member of either set is read but the touched ones.
    const counted = new Map<string, WalkCountingSet<string>>();
    for (const id of ["pods", "http"]) {
      const held = s.ipSets.get(id)!;
      const walking = new WalkCountingSet(held.members);
      (held as { members: Set<string> }).members = walking;
      counted.set(id, walking);
    }
    const d = renderRulesetDelta(warm.next, ifname, s, OPTIONS, cache, dirtyOf(podDelta(s, SIZE + 1, 1)))!;
    expect([...counted.values()].map((c) => c.walks)).toEqual([0, 0]);
    const plain = nftNames.addrSet("pods", 4, false);
    const port = nftNames.portSet("http", 4);
    expect(d.text.trim().split("\n")).toEqual([
      `delete element inet margay ${plain} { ${ip(1)} }`,
      `add set inet margay ${plain} { type ipv4_addr; elements = { ${ip(SIZE + 1)} } }`,
      `delete element inet margay ${port} { ${ip(1)} . tcp . 8080 }`,
      `add set inet margay ${port} { type ipv4_addr . inet_proto . inet_service; elements = { ${ip(SIZE + 1)} . tcp . 8080 } }`,
    ]);
    // The element-wise result is the whole render's, element for element and in its order.
    expect(diffRuleset(d.next, renderRuleset(s, [], OPTIONS), OPTIONS)).toBe("");
    expect(d.next.sets.get(plain)?.elements).toEqual(renderRuleset(s, [], OPTIONS).sets.get(plain)?.elements);
  });

  it("a member given twice (two spellings of one address) keeps its element until both are gone", () => {
    const s = setup();
    const cache = createNftRenderCache();
    const a = renderRuleset(s, [], OPTIONS, cache);
    const plain = nftNames.addrSet("pods", 4, false);
    const step = (prev: NftRuleset, added: string[], removed: string[]) => {
      applyPolicyUpdate(s, { kind: "ip-set-delta-update", id: "pods", added, removed });
      const d = renderRulesetDelta(prev, () => undefined, s, OPTIONS, cache, {
        ...dirtyOf(new Map([["pods", new Set([...added, ...removed])]])),
      })!;
      expect(diffRuleset(d.next, renderRuleset(s, [], OPTIONS), OPTIONS)).toBe("");
      return d;
    };
    const b = step(a, [ip(5)], []); // 10.100.0.5 and 10.100.0.5/32: one element
    expect(b.text).toBe("");
    const c = step(b.next, [], [`${ip(5)}/32`]);
    expect(c.text).toBe("");
    const d = step(c.next, [], [ip(5)]);
    expect(d.text).toBe(`delete element inet margay ${plain} { ${ip(5)} }\n`);
  });

  it("in place: copies no map of the ruleset, and undo gives back exactly what the kernel holds", () => {
    const s = setup();
    applyPolicyUpdate(s, ep0("ns/a", "mgyaaaa"));
    const cache = createNftRenderCache();
    const a = renderRuleset(s, [], OPTIONS, cache);
    const counting = new Set<WalkCountingMap<unknown, unknown>>();
    const wrap = <K, V>(m: ReadonlyMap<K, V> | undefined) => {
      const w = new WalkCountingMap<K, V>(m);
      counting.add(w as WalkCountingMap<unknown, unknown>);
      return w;
    };
    const maps = wrap(new Map([...a.maps].map(([k, v]) => [k, wrap(v)])));
    const prev: NftRuleset = {
      sets: wrap(a.sets),
      chains: wrap(a.chains),
      maps,
      endpointChainRefs: wrap(a.endpointChainRefs),
    };
    // Contents, not insertion order (nothing reads the order: a full render declares every chain first).
    const sorted = <V>(m: ReadonlyMap<string, V>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
    const snapshot = (rs: NftRuleset) =>
      createHash("sha1")
        .update(
          JSON.stringify({
            sets: sorted(rs.sets),
            chains: sorted(rs.chains),
            maps: sorted(rs.maps).map(([k, v]) => [k, sorted(v)]),
            refs: sorted(rs.endpointChainRefs ?? new Map()),
          }),
        )
        .digest("hex");
    const held = snapshot(prev);
    for (const m of counting) m.walks = 0;
    const members = podDelta(s, SIZE, 0);
    applyPolicyUpdate(s, { kind: "workload-endpoint-remove", id: "ns/a" });
    applyPolicyUpdate(s, ep0("ns/b", "mgybbbb"));
    const accepted = new Map([["ns/a", "mgyaaaa"]]);
    const copied = renderRulesetDelta(prev, (id) => accepted.get(id), s, OPTIONS, cache, {
      ...dirtyOf(members, ["ns/a", "ns/b"]),
    })!;
    expect([...counting].some((m) => m.walks > 0)).toBe(true);
    for (const m of counting) m.walks = 0;
    const d = renderRulesetDelta(
      prev,
      (id) => accepted.get(id),
      s,
      OPTIONS,
      cache,
      { ...dirtyOf(members, ["ns/a", "ns/b"]) },
      { inPlace: true },
    )!;
    expect([...counting].map((m) => m.walks)).toEqual([...counting].map(() => 0));
    // The same transaction and result as the copying delta, and as a whole render.
    expect(d.text).toBe(copied.text);
    expect(snapshot(d.next)).toBe(snapshot(copied.next));
    expect(diffRuleset(d.next, renderRuleset(s, [], OPTIONS), OPTIONS)).toBe("");
    expect(d.text).toContain('delete element inet margay wl-to { "mgyaaaa" }');
    // The kernel refused it: prev is again what it held.
    d.undo();
    expect(snapshot(prev)).toBe(held);
    // A delta that fails half-way leaves prev as it was.
    const failing = () => {
      throw new Error("no interface");
    };
    let calls = 0;
    expect(() =>
      renderRulesetDelta(
        prev,
        (id) => (++calls > 1 ? failing() : accepted.get(id)),
        s,
        OPTIONS,
        cache,
        { ...dirtyOf(members, ["ns/a", "ns/b"]) },
        { inPlace: true },
      ),
    ).toThrow("no interface");
    expect(calls).toBe(2);
    expect(snapshot(prev)).toBe(held);
  });
});

function ep0(id: string, ifname: string): WorkloadEndpointUpdate {
  return {
    kind: "workload-endpoint-update",
    id,
    ifname,
    ipNetworks: ["10.0.0.1/32"],
    tiers: { ingress: [{ tier: "default", defaultAction: "deny", policyIds: ["default/p"] }], egress: [] },
    profileIds: [],
  };
}
