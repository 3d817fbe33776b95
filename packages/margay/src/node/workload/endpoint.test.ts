import { validateResource } from "@margay/api";
import { describe, expect, it } from "vitest";
import { attachmentIdentity, buildWorkloadEndpoint, sameEndpoint, workloadHandleId } from "./endpoint.js";

const content = {
  node: "node-a",
  containerId: "3f2a",
  ifName: "eth0",
  interfaceName: "mgy0123456789ab",
  ips: ["10.70.0.2", "fd70::2"],
  mac: "02:00:00:00:00:aa",
  labels: { app: "web", "example.com/tier": "front" },
};

describe("the WorkloadEndpoint the workload API writes", () => {
  it.each([
    ["k8s", { pod: "web-0", workload: undefined }],
    ["cni", { pod: undefined, workload: undefined }],
    ["cni with a workload name", { pod: undefined, workload: "vm-7" }],
  ] as const)("passes the API's validation (%s)", (_name, who) => {
    const id = attachmentIdentity("node-a", {
      containerId: "3f2a",
      ifName: "eth0",
      namespace: "team-a",
      endpoint: "eth0",
      ...who,
    });
    const wep = buildWorkloadEndpoint(id, content);
    expect(() => validateResource(wep, "WorkloadEndpoint")).not.toThrow();
    expect(wep.spec.ipNetworks).toEqual(["10.70.0.2/32", "fd70::2/128"]);
    expect(id.key).toBe(`team-a/${wep.metadata.name}`);
  });

  it("compares by content, not by datastore metadata or key order", () => {
    const id = attachmentIdentity("n", {
      containerId: "c",
      ifName: "eth0",
      namespace: "default",
      pod: "p",
      workload: undefined,
      endpoint: "eth0",
    });
    const a = buildWorkloadEndpoint(id, content);
    const b = buildWorkloadEndpoint(id, { ...content, labels: { "example.com/tier": "front", app: "web" } });
    expect(sameEndpoint(a, { ...b, metadata: { ...b.metadata, resourceVersion: "9" } })).toBe(true);
    expect(sameEndpoint(a, buildWorkloadEndpoint(id, { ...content, mac: "02:00:00:00:00:bb" }))).toBe(false);
  });

  it("handles fit the IPAM's 200-character limit for the longest accepted ids", () => {
    expect(workloadHandleId("a".repeat(128), "e".repeat(15)).length).toBeLessThanOrEqual(200);
  });
});
