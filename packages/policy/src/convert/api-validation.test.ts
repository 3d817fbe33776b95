import { checkResource } from "@margay/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NETPOL_CASES } from "../__tests__/netpol-cases.js";
import { isPolicyError } from "../errors.js";
import { world } from "../__tests__/netpol-world.js";
import {
  convertAdminNetworkPolicy,
  convertBaselineAdminNetworkPolicy,
  kubernetesTiers,
} from "./admin-network-policy.js";
import { convertNetworkPolicy } from "./network-policy.js";
import { convertServiceAccount } from "./profiles.js";

describe("converted resources are valid @margay/api resources", () => {
  it("every NetworkPolicy of the e2e cases, the namespace profiles and the tiers", () => {
    const resources = [
      ...world(),
      ...kubernetesTiers(),
      convertServiceAccount({ metadata: { name: "default", namespace: "x", labels: { team: "a" } } }),
      ...NETPOL_CASES.flatMap((c) => c.steps.flatMap((s) => s.policies.map((p) => convertNetworkPolicy(p)))),
    ];
    const invalid = resources
      .map((r) => [r, checkResource(r)] as const)
      .filter(([, res]) => !res.ok)
      .map(
        ([r, res]) =>
          `${r.kind}/${r.metadata.name}: ${res.ok ? "" : res.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      );
    expect(invalid).toEqual([]);
  });

  it("AdminNetworkPolicy and BaselineAdminNetworkPolicy conversions", () => {
    const anp = convertAdminNetworkPolicy({
      metadata: { name: "a" },
      spec: {
        priority: 5,
        subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: "x" } } } },
        ingress: [
          {
            action: "Pass",
            from: [{ namespaces: { matchLabels: { t: "1" } } }],
            ports: [{ namedPort: "http" }, { portRange: { start: 1, end: 9 } }],
          },
        ],
        egress: [{ action: "Deny", to: [{ networks: ["10.0.0.0/8"] }] }],
      },
    });
    const banp = convertBaselineAdminNetworkPolicy({
      metadata: { name: "default" },
      spec: { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] },
    });
    for (const r of [anp, banp]) {
      const res = checkResource(r);
      // The whole resource must be valid, including Calico's generated names
      // (`kanp.adminnetworkpolicy.<name>`, `kbanp.baselineadminnetworkpolicy.<name>`).
      const issues = res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`);
      expect(issues).toEqual([]);
    }
  });
});

const selArb = fc.option(
  fc.record(
    {
      matchLabels: fc.dictionary(
        fc.constantFrom("app", "team", "kubernetes.io/metadata.name"),
        fc.constantFrom("a", "b", "x"),
      ),
      matchExpressions: fc.array(
        fc.record({
          key: fc.constantFrom("app", "env"),
          operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist" as const),
          values: fc.array(fc.constantFrom("a", "b"), { maxLength: 2 }),
        }),
        { maxLength: 2 },
      ),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);
const peerArb = fc.oneof(
  fc.record({ podSelector: selArb, namespaceSelector: selArb }, { requiredKeys: [] }),
  fc.record({
    ipBlock: fc.record({
      cidr: fc.constantFrom("10.0.0.0/8", "10.1.2.3/16", "fd00::/64", "300.0.0.0/8"),
      except: fc.array(fc.constantFrom("10.1.0.0/24", "fd00::/96"), { maxLength: 2 }),
    }),
  }),
);
const portArb = fc.record(
  {
    protocol: fc.constantFrom("TCP", "UDP", "SCTP" as const),
    port: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constantFrom("http", "dns", "80")),
    endPort: fc.integer({ min: 1, max: 65535 }),
  },
  { requiredKeys: [] },
);

describe("convertNetworkPolicy on random input (fast-check)", () => {
  it("always produces a valid @margay/api NetworkPolicy, reporting each rule it drops as a PolicyError", () => {
    fc.assert(
      fc.property(
        selArb,
        fc.array(
          fc.record(
            { from: fc.array(peerArb, { maxLength: 3 }), ports: fc.array(portArb, { maxLength: 3 }) },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        fc.array(
          fc.record(
            { to: fc.array(peerArb, { maxLength: 3 }), ports: fc.array(portArb, { maxLength: 3 }) },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        fc.option(fc.subarray(["Ingress", "Egress"] as ("Ingress" | "Egress")[]), { nil: undefined }),
        (podSelector, ingress, egress, policyTypes) => {
          const spec = JSON.parse(JSON.stringify({ podSelector, ingress, egress, policyTypes }));
          const dropped: unknown[] = [];
          const out = convertNetworkPolicy(
            { metadata: { name: "fuzz", namespace: "ns" }, spec },
            { onInvalidRule: (e) => dropped.push(e) },
          );
          expect(dropped.every((e) => isPolicyError(e))).toBe(true);
          // One report per dropped Kubernetes rule, never more.
          expect(dropped.length).toBeLessThanOrEqual(ingress.length + egress.length);
          const res = checkResource(out);
          expect(res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
