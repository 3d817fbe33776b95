import { validateResource } from "@margay/api";
import { describe, expect, it } from "vitest";
import { networkPolicy, pod } from "../__tests__/helpers.js";
import type { KubeObject } from "../kube-types.js";
import { defaultConverters } from "./converters.js";

describe("defaultConverters", () => {
  it("turn every supported Kubernetes kind into valid model resources with Calico's names", () => {
    const cases: [keyof typeof defaultConverters, KubeObject, string, string | undefined][] = [
      ["pods", pod("a", "p-1", "n1", "10.0.0.1"), "n1-k8s-p--1-eth0", "a"],
      ["namespaces", { metadata: { name: "a", labels: { team: "x" } } }, "kns.a", undefined],
      ["serviceaccounts", { metadata: { name: "sa", namespace: "a" } }, "ksa.a.sa", undefined],
      ["nodes", { metadata: { name: "n1" } }, "n1", undefined],
      ["networkpolicies", networkPolicy("a", "allow-web", "web", "client"), "knp.default.allow-web", "a"],
      [
        "adminnetworkpolicies",
        {
          metadata: { name: "deny-all" },
          spec: {
            priority: 10,
            subject: { namespaces: {} },
            ingress: [{ action: "Deny", from: [{ namespaces: {} }] }],
          },
        } as KubeObject,
        "kanp.adminnetworkpolicy.deny-all",
        undefined,
      ],
      [
        "baselineadminnetworkpolicies",
        {
          metadata: { name: "default" },
          spec: { subject: { namespaces: {} }, ingress: [{ action: "Allow", from: [{ namespaces: {} }] }] },
        } as KubeObject,
        "kbanp.baselineadminnetworkpolicy.default",
        undefined,
      ],
    ];
    for (const [resource, input, name, ns] of cases) {
      const c = defaultConverters[resource];
      const [out, ...rest] = c.convert(input);
      expect(rest).toEqual([]);
      expect(out!.metadata.name).toBe(name);
      expect(out!.metadata.namespace).toBe(ns);
      expect(c.modelKinds).toContain(out!.kind);
      // Every converted object, including Calico's generated ANP names, is a valid API resource.
      expect(() => validateResource(out)).not.toThrow();
    }
  });

  it("yield nothing for a pod without an endpoint", () => {
    const hostNet = pod("a", "h", "n1", "10.0.0.1");
    hostNet.spec!.hostNetwork = true;
    expect(defaultConverters.pods.convert(hostNet)).toEqual([]);
  });

  it("report a malformed policy rule and leave it out (failing closed) instead of losing the policy", () => {
    const bad = networkPolicy("a", "bad", "web", "x") as { spec: { ingress: unknown[] } } & KubeObject;
    bad.spec.ingress = [
      { from: [{ ipBlock: { cidr: "not-a-cidr" } }] },
      { from: [{ podSelector: { matchLabels: { role: "ok" } } }] },
    ];
    const issues: unknown[] = [];
    const [np] = defaultConverters.networkpolicies.convert(bad, {
      onIssue: (e) => issues.push(e),
    }) as unknown as [{ spec: { ingress: unknown[] } }];
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: "invalid-input" });
    expect(np.spec.ingress).toHaveLength(1);
  });

  it("throw on an object that cannot be converted at all", () => {
    const anp = {
      metadata: { name: "x" },
      spec: { priority: 5000, subject: { namespaces: {} } },
    } as unknown as KubeObject;
    expect(() => defaultConverters.adminnetworkpolicies.convert(anp)).toThrow();
  });
});
