import { validateResource } from "@margay/api";
import { describe, expect, it } from "vitest";
import { convertNode, POD_CIDRS_ANNOTATION } from "./node.js";

describe("convertNode", () => {
  it("keeps labels, Internal/External addresses, pod CIDRs and Calico's BGP annotations", () => {
    const node = convertNode({
      metadata: {
        name: "worker-1",
        labels: { "kubernetes.io/hostname": "worker-1", zone: "a" },
        annotations: {
          "projectcalico.org/IPv4Address": "10.0.0.11/24",
          "projectcalico.org/IPv6Address": "fd00:0::11/64",
          "projectcalico.org/ASNumber": "64512",
        },
      },
      spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24", "fd10:0:0:1::/64"] },
      status: {
        addresses: [
          { type: "InternalIP", address: "10.0.0.11" },
          { type: "InternalIP", address: "fd00::11" },
          { type: "ExternalIP", address: "203.0.113.7" },
          { type: "Hostname", address: "worker-1" },
          { type: "InternalIP", address: "not-an-ip" },
        ],
      },
    });
    expect(node).toEqual({
      apiVersion: "margay.io/v1",
      kind: "Node",
      metadata: {
        name: "worker-1",
        labels: { "kubernetes.io/hostname": "worker-1", zone: "a" },
        annotations: { [POD_CIDRS_ANNOTATION]: "10.244.1.0/24,fd10:0:0:1::/64" },
      },
      spec: {
        bgp: { ipv4Address: "10.0.0.11/24", ipv6Address: "fd00::11/64", asNumber: 64512 },
        orchRefs: [{ orchestrator: "k8s", nodeName: "worker-1" }],
        addresses: [
          { address: "10.0.0.11", type: "InternalIP" },
          { address: "fd00::11", type: "InternalIP" },
          { address: "203.0.113.7", type: "ExternalIP" },
        ],
      },
    });
    expect(() => validateResource(node)).not.toThrow();
  });

  it("converts a bare node (no addresses, CIDRs or annotations) into a valid Node", () => {
    const node = convertNode({ metadata: { name: "bare" } });
    expect(node.spec).toEqual({ orchRefs: [{ orchestrator: "k8s", nodeName: "bare" }] });
    expect(node.metadata.annotations).toBeUndefined();
    expect(() => validateResource(node)).not.toThrow();
  });

  it("ignores malformed BGP annotations", () => {
    const node = convertNode({
      metadata: {
        name: "n",
        annotations: { "projectcalico.org/IPv4Address": "fd00::1/64", "projectcalico.org/ASNumber": "x" },
      },
    });
    expect(node.spec.bgp).toBeUndefined();
  });
});
