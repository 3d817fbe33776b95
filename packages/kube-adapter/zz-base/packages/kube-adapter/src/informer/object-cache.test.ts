import { describe, expect, it } from "vitest";
import type { KubeObject } from "../kube-types.js";
import { ObjectCache } from "./object-cache.js";

const obj = (ns: string | undefined, name: string, zone: string[]): KubeObject => ({
  metadata: { name, ...(ns === undefined ? {} : { namespace: ns }), labels: { zones: zone.join(",") } },
});

describe("ObjectCache", () => {
  it("indexes by namespace and by custom multi-valued indexers, and unindexes on change", () => {
    const c = new ObjectCache<KubeObject>({
      zone: (o) => (o.metadata.labels?.zones ?? "").split(",").filter((z) => z !== ""),
    });
    c.upsert(obj("a", "x", ["z1", "z2"]));
    c.upsert(obj("b", "y", ["z2"]));
    c.upsert(obj(undefined, "cluster", []));
    expect(c.size).toBe(3);
    expect(c.get("a/x")?.metadata.name).toBe("x");
    expect(c.get("cluster")?.metadata.name).toBe("cluster");
    expect(
      c
        .byIndex("zone", "z2")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["x", "y"]);
    expect(c.indexValues("namespace").sort()).toEqual(["a", "b"]);
    const old = c.upsert(obj("a", "x", ["z3"]));
    expect(old?.metadata.labels?.zones).toBe("z1,z2");
    expect(c.byIndex("zone", "z1")).toEqual([]);
    expect(c.byIndex("zone", "z2").map((o) => o.metadata.name)).toEqual(["y"]);
    expect(c.remove("b/y")?.metadata.name).toBe("y");
    expect(c.remove("b/y")).toBeUndefined();
    expect(c.indexValues("zone")).toEqual(["z3"]);
    expect(c.indexValues("namespace")).toEqual(["a"]);
    expect(() => c.byIndex("nope", "x")).toThrow(RangeError);
  });
});
