import { describe, expect, it } from "vitest";
import { decorateDatastore } from "./decorate.js";
import { createMemoryDatastore } from "./memory/memory-datastore.js";

const pool = (name: string) => ({
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name },
  spec: { cidr: "10.0.0.0/16" },
});

describe("decorateDatastore", () => {
  it("forwards every method to the inner store with the inner store as receiver", async () => {
    const inner = createMemoryDatastore();
    const ds = decorateDatastore(inner);
    await ds.create(pool("a"));
    await ds.update({ ...(await ds.get({ kind: "IPPool", name: "a" })), spec: { cidr: "10.1.0.0/16" } });
    await ds.transaction([{ op: "create", object: pool("b") }]);
    expect((await ds.list("IPPool")).items.map((o) => o.metadata.name)).toEqual(["a", "b"]);
    await ds.delete({ kind: "IPPool", name: "b" });
    expect((await inner.list("IPPool")).items.map((o) => o.metadata.name)).toEqual(["a"]);
    const w = ds.watch("IPPool");
    await ds.create(pool("c"));
    for await (const ev of w) {
      expect([ev.type, ev.object.metadata.name]).toEqual(["added", "c"]);
      break;
    }
    await ds[Symbol.asyncDispose]();
    await expect(inner.get({ kind: "IPPool", name: "a" })).rejects.toMatchObject({ code: "closed" });
  });

  it("uses the replaced methods, and a replaced close for dispose too", async () => {
    const inner = createMemoryDatastore();
    const calls: string[] = [];
    const ds = decorateDatastore(inner, {
      list: () => Promise.reject(new Error("down")),
      close: async () => {
        calls.push("close");
        await inner.close();
      },
    });
    await expect(ds.list("IPPool")).rejects.toThrow("down");
    await ds.create(pool("a"));
    await ds[Symbol.asyncDispose]();
    expect(calls).toEqual(["close"]);
  });
});
