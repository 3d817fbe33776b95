import { describe, expect, it } from "vitest";
import {
  changedCells,
  demoPods,
  expectedMatrix,
  expectedVerdict,
  kubernetesPolicyManifests,
  matrixDiff,
  podId,
  policyManifests,
  poolManifest,
  RELABEL,
} from "./scenario.js";

const pods = demoPods(3);
const byId = (id: string) => pods.find((p) => podId(p) === id)!;

describe("demo scenario", () => {
  it("has one pod per tenant and tier, spread over the three hosts", () => {
    expect(pods.map(podId)).toEqual([
      "tenant-a/frontend",
      "tenant-a/backend",
      "tenant-a/database",
      "tenant-b/frontend",
      "tenant-b/backend",
      "tenant-b/database",
    ]);
    expect(new Set(pods.map((p) => p.hostIndex))).toEqual(new Set([0, 1, 2]));
  });

  it("before policy every pod reaches every other; the diagonal is not a flow", () => {
    const m = expectedMatrix(pods, "open");
    expect(m.cells.flat().filter((c) => c === "allow")).toHaveLength(30);
    expect(m.cells.map((row, i) => row[i])).toEqual(Array(6).fill("self"));
  });

  it("zero trust allows frontend → backend → database inside a tenant only", () => {
    const allowed = expectedMatrix(pods, "zero-trust")
      .cells.flatMap((row, i) =>
        row.map((c, j) => (c === "allow" ? `${podId(pods[i]!)}>${podId(pods[j]!)}` : "")),
      )
      .filter((s) => s !== "");
    expect(allowed).toEqual([
      "tenant-a/frontend>tenant-a/backend",
      "tenant-a/backend>tenant-a/database",
      "tenant-b/frontend>tenant-b/backend",
      "tenant-b/backend>tenant-b/database",
    ]);
    expect(expectedVerdict(byId("tenant-a/frontend"), byId("tenant-b/backend"), "zero-trust")).toBe("deny");
    expect(expectedVerdict(byId("tenant-a/backend"), byId("tenant-a/frontend"), "zero-trust")).toBe("deny");
  });

  it("the relabeled pod loses both of its flows; VXLAN changes nothing", () => {
    const before = expectedMatrix(pods, "zero-trust");
    const after = expectedMatrix(pods, "relabeled");
    const changed = changedCells(before, after).map(([i, j]) => `${podId(pods[i]!)}>${podId(pods[j]!)}`);
    expect(changed).toEqual(["tenant-a/frontend>tenant-a/backend", "tenant-a/backend>tenant-a/database"]);
    expect(podId(pods[1]!)).toBe(`${RELABEL.namespace}/${RELABEL.name}`);
    expect(expectedMatrix(pods, "vxlan")).toEqual(after);
  });

  it("matrixDiff names each differing cell", () => {
    const want = expectedMatrix(pods, "zero-trust");
    const got = { pods: want.pods, cells: want.cells.map((r) => [...r]) };
    got.cells[0]![1] = "deny";
    expect(matrixDiff(want, got)).toEqual([
      "tenant-a/frontend → tenant-a/backend: expected allow, measured deny",
    ]);
    expect(matrixDiff(want, want)).toEqual([]);
  });

  it("manifests carry the port and the pool's encapsulation", () => {
    expect(policyManifests(8080)).toContain("ports: [8080]");
    expect(policyManifests(8080)).toMatch(/name: default-deny[\s\S]*tier: default/);
    expect(kubernetesPolicyManifests(8080)).toContain("port: 8080");
    expect(kubernetesPolicyManifests(8080).split("---")).toHaveLength(2);
    expect(poolManifest("p", "10.244.0.0/16", 26, "Always")).toContain("vxlanMode: Always");
  });
});
