import { describe, expect, it } from "vitest";
import { gnp, gns, hep, np, nsProfile, profile, tier, wep } from "../__tests__/builders.js";
import { createCalcGraph } from "../calc/calc-graph.js";
import { evaluateMirror } from "../calc/mirror-evaluate.js";
import { createStreamMirror } from "../calc/stream-mirror.js";
import { isPolicyError } from "../errors.js";
import type { PolicyModelResource } from "../model/resources.js";
import { createEvaluator, type Packet } from "./evaluator.js";

const base: PolicyModelResource[] = [
  nsProfile("ns1", { team: "red" }),
  nsProfile("ns2", { team: "blue" }),
  wep("ns1/client", "10.0.0.1", { app: "client" }),
  wep(
    "ns1/server",
    "10.0.0.2",
    { app: "server" },
    { ports: [{ name: "http", protocol: "TCP", port: 8080 }] },
  ),
  wep("ns2/other", "10.0.0.3", { app: "client" }),
];
const tcp = (from: string, to: string, dstPort: number): Packet => ({
  source: { workload: from },
  destination: { workload: to },
  protocol: "TCP",
  srcPort: 40000,
  dstPort,
});

describe("reference evaluator", () => {
  it("allows through the namespace profile when no policy applies, and says so", () => {
    const ev = createEvaluator(base).evaluate(tcp("ns1/client", "ns1/server", 80));
    expect(ev.verdict).toBe("allow");
    expect(ev.ingress?.decision).toEqual({
      by: "profile-rule",
      profile: "kns.ns1",
      rule: 0,
      action: "allow",
    });
    expect(ev.explanation).toContain("allow by rule 0 of profile kns.ns1");
  });

  it("names the tier, policy and rule that decided, and why earlier rules did not match", () => {
    const ev = createEvaluator([
      ...base,
      np("ns1/web", {
        selector: "app == 'server'",
        ingress: [
          { action: "Allow", protocol: "UDP" },
          { action: "Allow", protocol: "TCP", source: { selector: "app == 'nobody'" } },
          { action: "Deny", protocol: "TCP", destination: { ports: [80] } },
        ],
      }),
    ]).evaluate(tcp("ns1/client", "ns1/server", 80));
    expect(ev.verdict).toBe("deny");
    expect(ev.ingress?.decision).toEqual({
      by: "rule",
      stage: "policy",
      tier: "default",
      policy: "default/ns1/web",
      rule: 2,
      action: "deny",
    });
    expect(ev.ingress?.steps.map((s) => [s.rule, s.outcome, s.reason])).toEqual([
      [0, "no-match", "protocol tcp is not udp"],
      [
        1,
        "no-match",
        'source 10.0.0.1 does not match selector (projectcalico.org/namespace == "ns1" && app == "nobody")',
      ],
      [2, "matched", "all conditions match"],
    ]);
  });

  it("drops at the end of a tier that applied without a verdict, unless its default action is Pass", () => {
    const isolate = np("ns1/isolate", { selector: "app == 'server'", types: ["Ingress"] });
    const deny = createEvaluator([...base, isolate]).evaluate(tcp("ns1/client", "ns1/server", 80));
    expect(deny.ingress?.decision).toEqual({ by: "tier-default", tier: "default", action: "deny" });
    const passTier = createEvaluator([
      ...base,
      tier("app", 10, "Pass"),
      np("ns1/isolate", { tier: "app", selector: "app == 'server'", types: ["Ingress"] }),
    ]);
    expect(passTier.evaluate(tcp("ns1/client", "ns1/server", 80)).verdict).toBe("allow");
  });

  it("skips a tier whose policies do not cover the direction (no end-of-tier drop)", () => {
    const egressOnly = np("ns1/egress", { selector: "app == 'server'", types: ["Egress"], egress: [] });
    expect(createEvaluator([...base, egressOnly]).evaluate(tcp("ns1/client", "ns1/server", 80)).verdict).toBe(
      "allow",
    );
  });

  it("orders tiers, then policies by order (absent last) and name; Pass jumps to the next tier; Log continues", () => {
    const ev = createEvaluator([
      ...base,
      tier("security", 100),
      gnp("b-second", {
        tier: "security",
        order: 5,
        selector: "app == 'server'",
        ingress: [{ action: "Deny" }],
      }),
      gnp("a-first", {
        tier: "security",
        order: 5,
        selector: "app == 'server'",
        ingress: [{ action: "Log" }, { action: "Pass" }],
      }),
      gnp("unordered", { tier: "security", selector: "app == 'server'", ingress: [{ action: "Deny" }] }),
      gnp("allow", { order: 1, selector: "app == 'server'", ingress: [{ action: "Allow" }] }),
    ]).evaluate(tcp("ns1/client", "ns1/server", 80));
    expect(ev.verdict).toBe("allow");
    expect(ev.ingress?.steps.map((s) => [s.policy, s.outcome])).toEqual([
      ["security/a-first", "logged"],
      ["security/a-first", "passed"],
      ["default/allow", "matched"],
    ]);
  });

  it("fails closed on a missing tier (ordered last, Deny) and a missing profile", () => {
    const missingTier = createEvaluator([
      ...base,
      gnp("p", { tier: "ghost", selector: "app == 'server'", ingress: [{ action: "Pass" }] }),
    ]);
    expect(missingTier.evaluate(tcp("ns1/client", "ns1/server", 80)).verdict).toBe("allow");
    const ghostLog = createEvaluator([
      ...base,
      gnp("p", { tier: "ghost", selector: "app == 'server'", ingress: [{ action: "Log" }] }),
    ]);
    expect(ghostLog.evaluate(tcp("ns1/client", "ns1/server", 80)).ingress?.decision).toEqual({
      by: "tier-default",
      tier: "ghost",
      action: "deny",
    });
    const noProfile = createEvaluator([...base.slice(1), wep("ns1/lonely", "10.0.0.9")]);
    const ev = noProfile.evaluate(tcp("ns2/other", "ns1/lonely", 80));
    expect(ev.verdict).toBe("deny");
    expect(ev.ingress?.decision.by).toBe("no-profile");
    expect(ev.ingress?.steps[0]).toMatchObject({ profile: "kns.ns1", outcome: "missing" });
  });

  it("matches namespace selectors, service accounts, network sets, nets and notSelector", () => {
    const model = [
      ...base,
      profile("ksa.ns1.robot", {
        labelsToApply: { "pcsa.kind": "bot", "pcsa.projectcalico.org/name": "robot" },
      }),
      wep(
        "ns1/bot",
        "10.0.0.4",
        { app: "bot" },
        { profiles: ["kns.ns1", "ksa.ns1.robot"], serviceAccountName: "robot" },
      ),
      gns("partners", { partner: "yes" }, ["192.0.2.0/24"]),
      gnp("rules", {
        selector: "app == 'server'",
        ingress: [
          { action: "Deny", source: { namespaceSelector: "team == 'blue'" } },
          { action: "Allow", source: { serviceAccounts: { selector: "kind == 'bot'" } } },
          { action: "Allow", source: { selector: "partner == 'yes'" } },
          { action: "Allow", source: { nets: ["198.51.100.0/24"], notNets: ["198.51.100.7/32"] } },
          { action: "Deny", source: { notSelector: "app == 'client'" } },
          { action: "Allow" },
        ],
      }),
    ];
    const e = createEvaluator(model);
    const from = (source: Packet["source"]) =>
      e.evaluate({ source, destination: { workload: "ns1/server" }, protocol: "TCP", dstPort: 80 });
    expect(from({ workload: "ns2/other" }).ingress?.decision).toMatchObject({ rule: 0, action: "deny" });
    expect(from({ workload: "ns1/bot" }).ingress?.decision).toMatchObject({ rule: 1, action: "allow" });
    expect(from({ ip: "192.0.2.55" }).ingress?.decision).toMatchObject({ rule: 2, action: "allow" });
    expect(from({ ip: "198.51.100.8" }).ingress?.decision).toMatchObject({ rule: 3, action: "allow" });
    expect(from({ ip: "198.51.100.7" }).ingress?.decision).toMatchObject({ rule: 4, action: "deny" });
    expect(from({ workload: "ns1/client" }).ingress?.decision).toMatchObject({ rule: 5, action: "allow" });
  });

  it("matches named ports, port ranges, notPorts, protocol numbers, notProtocol, ICMP and ipVersion", () => {
    const e = createEvaluator([
      ...base,
      gnp("ports", {
        selector: "app == 'server'",
        ingress: [
          { action: "Allow", protocol: "TCP", destination: { ports: ["http"] } },
          { action: "Allow", protocol: "TCP", destination: { ports: ["9000:9100"], notPorts: [9050] } },
          { action: "Allow", protocol: 132 },
          { action: "Allow", protocol: "ICMP", icmp: { type: 8, code: 0 } },
          { action: "Allow", ipVersion: 6 },
          { action: "Deny", notProtocol: "UDP" },
          { action: "Allow" },
        ],
      }),
    ]);
    const to = (p: Omit<Packet, "source" | "destination">) =>
      e.evaluate({ ...p, source: { workload: "ns1/client" }, destination: { workload: "ns1/server" } })
        .ingress?.decision;
    expect(to({ protocol: "TCP", dstPort: 8080 })).toMatchObject({ rule: 0, action: "allow" });
    expect(to({ protocol: "TCP", dstPort: 9001 })).toMatchObject({ rule: 1, action: "allow" });
    expect(to({ protocol: "TCP", dstPort: 9050 })).toMatchObject({ rule: 5, action: "deny" });
    expect(to({ protocol: "SCTP", dstPort: 1 })).toMatchObject({ rule: 2, action: "allow" });
    expect(to({ protocol: "ICMP", icmp: { type: 8, code: 0 } })).toMatchObject({ rule: 3, action: "allow" });
    expect(to({ protocol: "ICMP", icmp: { type: 0, code: 0 } })).toMatchObject({ rule: 5, action: "deny" });
    expect(to({ protocol: "UDP", dstPort: 53 })).toMatchObject({ rule: 6, action: "allow" });
  });

  it("turns an unreadable rule into a Deny with the reason (fail closed)", () => {
    const e = createEvaluator([
      ...base,
      gnp("bad", {
        selector: "app == 'server'",
        ingress: [{ action: "Allow", destination: { ports: [80] } }],
      }),
    ]);
    const ev = e.evaluate(tcp("ns1/client", "ns1/server", 80));
    expect(ev.verdict).toBe("deny");
    expect(ev.ingress?.steps[0]?.reason).toContain("ports need protocol");
  });

  it("applies host endpoint failsafes, doNotTrack and preDNAT before normal policy", () => {
    const e = createEvaluator([
      ...base,
      hep("node1-eth0", "10.9.0.1", { host: "yes" }),
      gnp("deny-all-host", {
        selector: "host == 'yes'",
        ingress: [{ action: "Deny" }],
        egress: [{ action: "Deny" }],
      }),
      gnp("untracked", {
        selector: "host == 'yes'",
        doNotTrack: true,
        applyOnForward: true,
        ingress: [{ action: "Allow", protocol: "UDP", destination: { ports: [4789] } }],
      }),
      gnp("prednat", {
        selector: "host == 'yes'",
        preDNAT: true,
        applyOnForward: true,
        types: ["Ingress"],
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [30080] } }],
      }),
    ]);
    const toHost = (protocol: string, dstPort: number) =>
      e.evaluate({
        source: { ip: "203.0.113.5" },
        destination: { hostEndpoint: "node1-eth0" },
        protocol,
        dstPort,
      }).ingress?.decision;
    expect(toHost("TCP", 22)).toEqual({ by: "failsafe", protocol: "tcp", port: 22, action: "allow" });
    expect(toHost("UDP", 4789)).toMatchObject({ by: "rule", stage: "untracked", action: "allow" });
    expect(toHost("TCP", 30080)).toMatchObject({ by: "rule", stage: "pre-dnat", action: "allow" });
    expect(toHost("TCP", 8080)).toMatchObject({
      by: "rule",
      stage: "policy",
      policy: "default/deny-all-host",
      action: "deny",
    });
    const out = e.evaluate({
      source: { hostEndpoint: "node1-eth0" },
      destination: { ip: "8.8.8.8" },
      protocol: "UDP",
      dstPort: 53,
    });
    expect(out.egress?.decision).toEqual({ by: "failsafe", protocol: "udp", port: 53, action: "allow" });
  });

  it("ignores doNotTrack and preDNAT policies for workloads", () => {
    const e = createEvaluator([
      ...base,
      gnp("untracked", {
        selector: "all()",
        doNotTrack: true,
        applyOnForward: true,
        ingress: [{ action: "Deny" }],
      }),
    ]);
    expect(e.evaluate(tcp("ns1/client", "ns1/server", 80)).verdict).toBe("allow");
  });

  it("rejects unknown endpoints and mixed families with typed errors", () => {
    const e = createEvaluator(base);
    try {
      e.evaluate(tcp("ns1/ghost", "ns1/server", 80));
      expect.unreachable();
    } catch (err) {
      expect(isPolicyError(err, "unknown-endpoint")).toBe(true);
    }
    expect(() =>
      e.evaluate({ source: { ip: "fd00::1" }, destination: { ip: "10.0.0.1" }, protocol: "TCP", dstPort: 1 }),
    ).toThrow(expect.objectContaining({ code: "invalid-input" }));
  });
});

describe("reference evaluator and calc graph with IPv6", () => {
  it("judges IPv6 packets, selecting the endpoint's IPv6 address", () => {
    const model: PolicyModelResource[] = [
      nsProfile("ns1"),
      wep("ns1/a", "10.0.0.1", { app: "a" }, { ipNetworks: ["10.0.0.1/32", "fd00::1/128"] }),
      wep("ns1/b", "10.0.0.2", { app: "b" }, { ipNetworks: ["10.0.0.2/32", "fd00::2/128"] }),
      gnp("v6", {
        selector: "app == 'b'",
        ingress: [
          { action: "Allow", ipVersion: 6, protocol: "ICMPv6", icmp: { type: 128 } },
          {
            action: "Allow",
            protocol: "TCP",
            source: { nets: ["fd00::/64"], selector: "app == 'a'" },
            destination: { ports: [443] },
          },
        ],
      }),
    ];
    const e = createEvaluator(model);
    const ping = e.evaluate({
      source: { workload: "ns1/a" },
      destination: { workload: "ns1/b" },
      protocol: "ICMPv6",
      icmp: { type: 128, code: 0 },
      family: 6,
    });
    expect(ping.source.ip).toBe("fd00::1");
    expect(ping.ingress?.decision).toMatchObject({ rule: 0, action: "allow" });
    const tls6 = e.evaluate({
      source: { workload: "ns1/a" },
      destination: { workload: "ns1/b" },
      protocol: "TCP",
      dstPort: 443,
      family: 6,
    });
    expect(tls6.verdict).toBe("allow");
    const tls4 = e.evaluate({
      source: { workload: "ns1/a" },
      destination: { workload: "ns1/b" },
      protocol: "TCP",
      dstPort: 443,
    });
    expect(tls4.verdict).toBe("deny");

    const g = createCalcGraph();
    for (const r of model) g.upsert(r);
    const m = createStreamMirror();
    m.apply(g.flush());
    expect([...m.ipSets.values()][0]?.members).toEqual(new Set(["10.0.0.1/32", "fd00::1/128"]));
    expect(evaluateMirror(m, { srcIp: "fd00::1", dstIp: "fd00::2", protocol: "TCP", dstPort: 443 })).toBe(
      "allow",
    );
    expect(evaluateMirror(m, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", protocol: "TCP", dstPort: 443 })).toBe(
      "deny",
    );
  });
});
