import { describe, expect, it } from "vitest";
import { isPolicyError } from "../errors.js";
import { convertNetworkPolicy } from "./network-policy.js";

describe("convertNetworkPolicy", () => {
  it("names, tiers, orders and selects as Calico does", () => {
    const p = convertNetworkPolicy({
      metadata: { name: "web", namespace: "shop" },
      spec: { podSelector: { matchLabels: { app: "web", tier: "fe" } } },
    });
    expect(p).toEqual({
      apiVersion: "margay.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "knp.default.web", namespace: "shop" },
      spec: {
        tier: "default",
        order: 1000,
        selector: "projectcalico.org/orchestrator == 'k8s' && app == 'web' && tier == 'fe'",
        types: ["Ingress"],
        ingress: [],
        egress: [],
      },
    });
  });

  it("converts peers: pod selector alone, namespace selector alone, both, and ipBlock with except", () => {
    const p = convertNetworkPolicy({
      metadata: { name: "n", namespace: "ns" },
      spec: {
        podSelector: {},
        ingress: [
          {
            from: [
              { podSelector: { matchExpressions: [{ key: "role", operator: "In", values: ["a", "b"] }] } },
              { namespaceSelector: {} },
              {
                namespaceSelector: { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] },
                podSelector: { matchLabels: { x: "1" } },
              },
              { ipBlock: { cidr: "10.1.2.3/16", except: ["10.1.0.0/24"] } },
            ],
          },
        ],
      },
    });
    expect(p.spec.ingress?.map((r) => r.source)).toEqual([
      { selector: "projectcalico.org/orchestrator == 'k8s' && role in { 'a', 'b' }" },
      { selector: "projectcalico.org/orchestrator == 'k8s'", namespaceSelector: "all()" },
      { selector: "projectcalico.org/orchestrator == 'k8s' && x == '1'", namespaceSelector: "! has(env)" },
      { nets: ["10.1.0.0/16"], notNets: ["10.1.0.0/24"] },
    ]);
    expect(p.spec.ingress?.every((r) => r.action === "Allow" && r.protocol === undefined)).toBe(true);
  });

  it("groups ports by protocol (TCP by default), with named ports and endPort ranges", () => {
    const p = convertNetworkPolicy({
      metadata: { name: "n", namespace: "ns" },
      spec: {
        podSelector: {},
        egress: [
          {
            to: [{ podSelector: { matchLabels: { a: "b" } } }],
            ports: [
              { port: 80 },
              { port: "http", protocol: "TCP" },
              { port: 5000, endPort: 5100, protocol: "UDP" },
              { protocol: "SCTP" },
            ],
          },
        ],
      },
    });
    expect(p.spec.types).toEqual(["Ingress", "Egress"]);
    expect(p.spec.egress).toEqual([
      {
        action: "Allow",
        protocol: "SCTP",
        destination: { selector: "projectcalico.org/orchestrator == 'k8s' && a == 'b'" },
      },
      {
        action: "Allow",
        protocol: "TCP",
        destination: { selector: "projectcalico.org/orchestrator == 'k8s' && a == 'b'", ports: [80, "http"] },
      },
      {
        action: "Allow",
        protocol: "UDP",
        destination: {
          selector: "projectcalico.org/orchestrator == 'k8s' && a == 'b'",
          ports: ["5000:5100"],
        },
      },
    ]);
  });

  it("defaults an empty port entry's protocol to TCP, as the API server does: every TCP port", () => {
    const p = convertNetworkPolicy({
      metadata: { name: "n", namespace: "ns" },
      spec: { ingress: [{ ports: [{ port: 80 }, {}] }] },
    });
    expect(p.spec.ingress).toEqual([{ action: "Allow", protocol: "TCP", source: {}, destination: {} }]);
    const anyPort = convertNetworkPolicy({
      metadata: { name: "n", namespace: "ns" },
      spec: { ingress: [{ ports: [] }] },
    });
    expect(anyPort.spec.ingress).toEqual([{ action: "Allow", source: {}, destination: {} }]);
  });

  it("keeps explicit policyTypes and defaults a missing namespace to default", () => {
    const p = convertNetworkPolicy({
      metadata: { name: "n" },
      spec: { policyTypes: ["Egress"], egress: [] },
    });
    expect(p.metadata.namespace).toBe("default");
    expect(p.spec.types).toEqual(["Egress"]);
  });

  it("drops a rule it cannot convert (fail closed), reports it with its path, and keeps the rest", () => {
    for (const bad of [
      { from: [{ ipBlock: { cidr: "10.0.0.0/33" } }] },
      { ports: [{ port: 90, endPort: 80 }] },
      { ports: [{ port: "http", endPort: 80 }] },
      { ports: [{ port: 0 }] },
      { from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } }] },
      { from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["fd00::/64"] } }] },
    ]) {
      const errors: unknown[] = [];
      const p = convertNetworkPolicy(
        {
          metadata: { name: "bad", namespace: "ns" },
          spec: { ingress: [bad, { ports: [{ port: 443 }] }] },
        },
        { onInvalidRule: (e) => errors.push(e) },
      );
      // The pods stay isolated for ingress; only the good rule allows anything.
      expect(p.spec.types).toEqual(["Ingress"]);
      expect(p.spec.ingress).toEqual([
        { action: "Allow", protocol: "TCP", source: {}, destination: { ports: [443] } },
      ]);
      expect(errors).toHaveLength(1);
      expect(isPolicyError(errors[0], "invalid-input")).toBe(true);
      expect(String((errors[0] as { details: { path: string } }).details.path)).toContain(
        "NetworkPolicy/ns/bad spec.ingress[0]",
      );
    }
  });
});
