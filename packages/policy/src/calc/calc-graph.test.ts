import { describe, expect, it } from "vitest";
import { gnp, hep, np, nsProfile, tier, wep } from "../__tests__/builders.js";
import { isPolicyError, type PolicyError } from "../errors.js";
import { createCalcGraph } from "./calc-graph.js";
import { createStreamMirror } from "./stream-mirror.js";
import type { PolicyUpdate } from "@margay/dataplane-contract";

const kinds = (us: readonly PolicyUpdate[]) => us.map((u) => u.kind);

describe("calculation graph output", () => {
  it("orders a batch: IP sets, policies, profiles, endpoints, then in-sync", () => {
    const g = createCalcGraph();
    g.upsert(wep("ns1/a", "10.0.0.1", { app: "a" }));
    g.upsert(nsProfile("ns1"));
    g.upsert(
      np("ns1/p", {
        selector: "app == 'a'",
        ingress: [{ action: "Allow", source: { selector: "app == 'b'" } }],
      }),
    );
    g.upsert(wep("ns1/b", "10.0.0.2", { app: "b" }));
    g.markInSync();
    const out = g.flush();
    expect(kinds(out)).toEqual([
      "ip-set-update",
      "active-policy-update",
      "active-profile-update",
      "workload-endpoint-update",
      "workload-endpoint-update",
      "in-sync",
    ]);
    expect(out[0]).toMatchObject({ type: "net", members: ["10.0.0.2/32"] });
    const pol = out[1] as Extract<PolicyUpdate, { kind: "active-policy-update" }>;
    expect(pol.id).toBe("default/ns1/p");
    expect(pol.inbound[0]?.srcIpSetIds).toEqual([(out[0] as { id: string }).id]);
    expect(out[3]).toMatchObject({
      id: "ns1/a",
      ifname: "cali-a",
      tiers: {
        ingress: [{ tier: "default", defaultAction: "deny", policyIds: ["default/ns1/p"] }],
        egress: [],
      },
      profileIds: ["kns.ns1"],
    });
    expect(g.flush()).toEqual([]);
  });

  it("removes in reverse: endpoints, then policies and profiles, then IP sets", () => {
    const g = createCalcGraph();
    const m = createStreamMirror();
    g.upsert(nsProfile("ns1"));
    g.upsert(
      np("ns1/p", { selector: "all()", ingress: [{ action: "Allow", source: { selector: "app == 'b'" } }] }),
    );
    g.upsert(wep("ns1/a", "10.0.0.1"));
    m.apply(g.flush());
    g.remove({ kind: "WorkloadEndpoint", namespace: "ns1", name: "a" });
    const out = g.flush();
    expect(kinds(out)).toEqual([
      "workload-endpoint-remove",
      "active-policy-remove",
      "active-profile-remove",
      "ip-set-remove",
    ]);
    m.apply(out);
    expect(m.snapshot()).toEqual({
      ipSets: {},
      policies: {},
      profiles: {},
      workloadEndpoints: {},
      hostEndpoints: {},
    });
  });

  it("coalesces a burst of changes into one update per object, and sends membership changes as deltas", () => {
    const g = createCalcGraph();
    const m = createStreamMirror();
    g.upsert(nsProfile("ns1"));
    g.upsert(
      np("ns1/p", {
        selector: "app == 'a'",
        ingress: [{ action: "Allow", source: { selector: "role == 'db'" } }],
      }),
    );
    g.upsert(wep("ns1/a", "10.0.0.1", { app: "a" }));
    g.upsert(wep("ns1/db1", "10.0.0.5", { role: "db" }));
    m.apply(g.flush());
    for (let i = 0; i < 5; i++) g.upsert(wep("ns1/db2", "10.0.0.6", { role: i % 2 === 0 ? "db" : "web" }));
    g.upsert(wep("ns1/db1", "10.0.0.5", { role: "web" }));
    g.upsert(wep("ns1/db1", "10.0.0.5", { role: "db" }));
    const out = g.flush();
    expect(out.filter((u) => u.kind === "ip-set-delta-update")).toEqual([
      { kind: "ip-set-delta-update", id: expect.any(String), added: ["10.0.0.6/32"], removed: [] },
    ]);
    expect(out.filter((u) => u.kind === "workload-endpoint-update").map((u) => u.id)).toEqual(["ns1/db2"]);
    m.apply(out);
  });

  it("refcounts members contributed by several items", () => {
    const g = createCalcGraph();
    const m = createStreamMirror();
    g.upsert(gnp("p", { selector: "all()", ingress: [{ action: "Allow", source: { selector: "has(x)" } }] }));
    g.upsert(wep("ns1/a", "10.0.0.1", { x: "1" }));
    g.upsert(wep("ns1/b", "10.0.0.1", { x: "2" }));
    m.apply(g.flush());
    g.upsert(wep("ns1/a", "10.0.0.1", {}));
    expect(g.flush().filter((u) => u.kind.startsWith("ip-set"))).toEqual([]);
    g.upsert(wep("ns1/b", "10.0.0.1", {}));
    expect(g.flush().find((u) => u.kind === "ip-set-delta-update")).toMatchObject({
      removed: ["10.0.0.1/32"],
    });
  });

  it("renders named ports into ip-and-port sets", () => {
    const g = createCalcGraph();
    g.upsert(
      gnp("p", {
        selector: "app == 'web'",
        ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: ["http", 443] } }],
      }),
    );
    g.upsert(
      wep(
        "ns1/web",
        "10.0.0.1",
        { app: "web" },
        {
          ports: [
            { name: "http", protocol: "TCP", port: 8080 },
            { name: "http", protocol: "UDP", port: 99 },
          ],
        },
      ),
    );
    const out = g.flush();
    const set = out.find((u) => u.kind === "ip-set-update");
    expect(set).toMatchObject({ type: "ip-and-port", members: ["10.0.0.1,tcp:8080"] });
    const rule = out.find((u) => u.kind === "active-policy-update")!.inbound[0]!;
    expect(rule).toMatchObject({
      protocol: 6,
      dstPorts: [{ first: 443, last: 443 }],
      dstNamedPortIpSetIds: [(set as { id: string }).id],
    });
  });

  it("only renders local endpoints, but remote ones still fill IP sets", () => {
    const g = createCalcGraph({ nodeName: "n1" });
    g.upsert(gnp("p", { selector: "all()", ingress: [{ action: "Allow", source: { selector: "all()" } }] }));
    g.upsert(wep("ns1/local", "10.0.0.1", {}, { node: "n1" }));
    g.upsert(wep("ns1/remote", "10.0.0.2", {}, { node: "n2" }));
    g.upsert(gnp("remote-only", { selector: "app == 'x'", ingress: [] }));
    g.upsert(wep("ns1/x", "10.0.0.3", { app: "x" }, { node: "n2" }));
    const out = g.flush();
    expect(out.filter((u) => u.kind === "workload-endpoint-update").map((u) => u.id)).toEqual(["ns1/local"]);
    expect(out.find((u) => u.kind === "ip-set-update")).toMatchObject({
      members: ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"],
    });
    expect(out.filter((u) => u.kind === "active-policy-update").map((u) => u.id)).toEqual(["default/p"]);
    g.upsert(wep("ns1/remote", "10.0.0.2", {}, { node: "n1" }));
    expect(kinds(g.flush())).toEqual(["workload-endpoint-update"]);
  });

  it("fails closed on missing references: empty profile, missing tier ordered last with Deny", () => {
    const g = createCalcGraph();
    g.upsert(wep("ns1/a", "10.0.0.1", { app: "a" }, { profiles: ["kns.ns1", "nope"] }));
    g.upsert(gnp("p", { tier: "ghost", selector: "all()", ingress: [{ action: "Pass" }] }));
    g.upsert(gnp("q", { tier: "early", selector: "all()", ingress: [{ action: "Pass" }] }));
    g.upsert(tier("early", 1, "Pass"));
    const out = g.flush();
    expect(out.filter((u) => u.kind === "active-profile-update")).toEqual([
      { kind: "active-profile-update", id: "kns.ns1", inbound: [], outbound: [] },
      { kind: "active-profile-update", id: "nope", inbound: [], outbound: [] },
    ]);
    expect(out.find((u) => u.kind === "workload-endpoint-update")).toMatchObject({
      tiers: {
        ingress: [
          { tier: "early", defaultAction: "pass", policyIds: ["early/q"] },
          { tier: "ghost", defaultAction: "deny", policyIds: ["ghost/p"] },
        ],
      },
    });
    g.upsert(nsProfile("ns1"));
    expect(g.flush()).toEqual([expect.objectContaining({ kind: "active-profile-update", id: "kns.ns1" })]);
  });

  it("counts one profile reference per endpoint, however often the endpoint lists it", () => {
    const g = createCalcGraph();
    const m = createStreamMirror();
    g.upsert(nsProfile("ns1"));
    g.upsert(wep("ns1/a", "10.0.0.1", {}, { profiles: ["kns.ns1", "kns.ns1"] }));
    m.apply(g.flush());
    g.upsert(wep("ns1/a", "10.0.0.1", {}, { profiles: ["kns.ns1"] }));
    m.apply(g.flush());
    g.remove({ kind: "WorkloadEndpoint", namespace: "ns1", name: "a" });
    const out = g.flush();
    expect(out).toEqual([
      { kind: "workload-endpoint-remove", id: "ns1/a" },
      { kind: "active-profile-remove", id: "kns.ns1" },
    ]);
    m.apply(out);
    expect(g.stats().activeProfiles).toBe(0);
  });

  it("splits host endpoint tiers into normal, untracked, pre-DNAT and forward, with failsafes", () => {
    const g = createCalcGraph();
    g.upsert(hep("h1", "10.9.0.1", { host: "y" }));
    g.upsert(
      gnp("normal", {
        selector: "host == 'y'",
        ingress: [{ action: "Allow" }],
        egress: [{ action: "Allow" }],
      }),
    );
    g.upsert(gnp("fwd", { selector: "host == 'y'", applyOnForward: true, ingress: [{ action: "Allow" }] }));
    g.upsert(
      gnp("raw", {
        selector: "host == 'y'",
        doNotTrack: true,
        applyOnForward: true,
        ingress: [{ action: "Deny" }],
        egress: [{ action: "Deny" }],
      }),
    );
    g.upsert(
      gnp("dnat", {
        selector: "host == 'y'",
        preDNAT: true,
        applyOnForward: true,
        types: ["Ingress"],
        ingress: [{ action: "Deny" }],
      }),
    );
    const out = g.flush();
    const h = out.find((u) => u.kind === "host-endpoint-update");
    expect(h).toMatchObject({
      id: "h1",
      ifname: "eth0",
      expectedIps: ["10.9.0.1"],
      tiers: {
        ingress: [{ policyIds: ["default/fwd", "default/normal"] }],
        egress: [{ policyIds: ["default/normal"] }],
      },
      untrackedTiers: { ingress: [{ policyIds: ["default/raw"] }], egress: [{ policyIds: ["default/raw"] }] },
      preDnatTiers: { ingress: [{ policyIds: ["default/dnat"] }], egress: [] },
      forwardTiers: { ingress: [{ policyIds: ["default/fwd"] }], egress: [] },
    });
    expect(h && "failsafe" in h && h.failsafe.inbound).toContainEqual({ protocol: "tcp", port: 22 });
    expect(out.find((u) => u.kind === "active-policy-update" && u.id === "default/raw")).toMatchObject({
      flags: { untracked: true, preDnat: false, applyOnForward: true },
    });
  });

  it("re-renders endpoints when a tier's order changes, and sends in-sync only once", () => {
    const g = createCalcGraph();
    g.upsert(wep("ns1/a", "10.0.0.1"));
    g.upsert(gnp("x", { tier: "t1", selector: "all()", ingress: [] }));
    g.upsert(gnp("y", { tier: "t2", selector: "all()", ingress: [] }));
    g.upsert(tier("t1", 1));
    g.upsert(tier("t2", 2));
    g.markInSync();
    expect(g.flush().at(-1)).toEqual({ kind: "in-sync" });
    g.upsert(tier("t1", 3));
    g.markInSync();
    const out = g.flush();
    expect(kinds(out)).toEqual(["workload-endpoint-update"]);
    expect(out[0]).toMatchObject({ tiers: { ingress: [{ tier: "t2" }, { tier: "t1" }] } });
  });

  it("reports unreadable resources and treats them as absent", () => {
    const errors: [PolicyError, string][] = [];
    const g = createCalcGraph({ onInvalid: (e, k) => errors.push([e, k]) });
    g.upsert(gnp("p", { selector: "app ==", ingress: [] }));
    g.upsert(wep("ns1/a", "10.0.0.300"));
    expect(g.flush()).toEqual([]);
    expect(errors.map(([e, k]) => [isPolicyError(e, "invalid-input"), k])).toEqual([
      [true, "GlobalNetworkPolicy/p"],
      [true, "WorkloadEndpoint/ns1/a"],
    ]);
  });
});

describe("calculation graph incremental work", () => {
  /**
   * A namespace of `pods` pods (apps of 10 pods, one NetworkPolicy per app allowing the next app in) and
   * `others` small namespaces like it; pod 0 of each namespace is local.
   */
  function world(pods: number, others: number) {
    const g = createCalcGraph({ nodeName: "n1" });
    let ip = 0;
    const addNamespace = (ns: string, size: number) => {
      g.upsert(nsProfile(ns));
      const apps = Math.max(1, Math.ceil(size / 10));
      for (let i = 0; i < size; i++) {
        ip++;
        const addr = `10.${(ip >> 16) & 255}.${(ip >> 8) & 255}.${ip & 255}`;
        g.upsert(wep(`${ns}/p${i}`, addr, { app: `app-${i % apps}` }, { node: i === 0 ? "n1" : "n2" }));
      }
      for (let k = 0; k < apps; k++) {
        g.upsert(
          np(`${ns}/np${k}`, {
            selector: `app == 'app-${k}'`,
            ingress: [{ action: "Allow", source: { selector: `app == 'app-${(k + 1) % apps}'` } }],
          }),
        );
      }
    };
    addNamespace("big", pods);
    for (let n = 0; n < others; n++) addNamespace(`ns${n}`, 20);
    g.markInSync();
    g.flush();
    return g;
  }

  it("a pod's label change evaluates the same selectors whatever the size of its namespace and cluster", () => {
    const work = (pods: number, others: number) => {
      const g = world(pods, others);
      const before = g.stats().selectorsEvaluated;
      // Pod 1 moves from app-1 to app-0 (remote: it only changes IP-set members).
      g.upsert(wep("big/p1", "10.0.0.2", { app: "app-0" }, { node: "n2" }));
      const out = g.flush();
      return { evaluated: g.stats().selectorsEvaluated - before, updates: kinds(out) };
    };
    const small = work(20, 1);
    const large = work(2_000, 50);
    // Filed under its new labels: np0's selector only (np0 is active through local p0, so its rule's
    // app-1 selector is indexed; nothing active names app-0 as a peer); its old matches are dropped
    // without evaluation.
    expect(small.evaluated).toBe(1);
    expect(large.evaluated).toBe(small.evaluated);
    // It leaves np0's peer set (app-1) in both: one IP-set delta.
    expect(small.updates).toEqual(["ip-set-delta-update"]);
    expect(large.updates).toEqual(small.updates);
  });
});

describe("stream mirror", () => {
  it("rejects updates that break the ordering contract", () => {
    const m = createStreamMirror();
    const rule = {
      action: "allow" as const,
      index: 0,
      ruleId: "r",
      srcNets: [],
      notSrcNets: [],
      srcIpSetIds: ["s:missing"],
      notSrcIpSetIds: [],
      srcPorts: [],
      notSrcPorts: [],
      srcNamedPortIpSetIds: [],
      notSrcNamedPortIpSetIds: [],
      dstNets: [],
      notDstNets: [],
      dstIpSetIds: [],
      notDstIpSetIds: [],
      dstPorts: [],
      notDstPorts: [],
      dstNamedPortIpSetIds: [],
      notDstNamedPortIpSetIds: [],
    };
    const policy: PolicyUpdate = {
      kind: "active-policy-update",
      id: "default/p",
      tier: "default",
      name: "p",
      inbound: [rule],
      outbound: [],
      flags: { untracked: false, preDnat: false, applyOnForward: false },
    };
    expect(() => m.apply([policy])).toThrow(expect.objectContaining({ code: "stream-violation" }));
    m.apply([{ kind: "ip-set-update", id: "s:missing", type: "net", members: [] }, policy]);
    expect(() => m.apply([{ kind: "ip-set-remove", id: "s:missing" }])).toThrow(
      expect.objectContaining({ code: "stream-violation" }),
    );
    expect(() =>
      m.apply([{ kind: "ip-set-delta-update", id: "s:missing", added: [], removed: ["10.0.0.1/32"] }]),
    ).toThrow(expect.objectContaining({ code: "stream-violation" }));
    expect(() =>
      m.apply([
        {
          kind: "workload-endpoint-update",
          id: "ns/a",
          ifname: "x",
          ipNetworks: [],
          tiers: { ingress: [], egress: [] },
          profileIds: ["nope"],
        },
      ]),
    ).toThrow(expect.objectContaining({ code: "stream-violation" }));
    m.apply([{ kind: "in-sync" }]);
    expect(() => m.apply([{ kind: "in-sync" }])).toThrow(
      expect.objectContaining({ code: "stream-violation" }),
    );
  });
});
