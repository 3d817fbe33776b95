import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { describe, expect, it } from "vitest";
import { createIpam } from "./index.js";
import { putIpamConfig, putPool, recordBlockWrites } from "./test-support.js";
import { type IpamBlockObject, IpamKind } from "./types.js";

describe("block writes", () => {
  it("pass the datastore no options object without a signal, and a fresh one carrying it with one", async () => {
    const ds = createMemoryDatastore();
    await putPool(ds, "p", { cidr: "10.9.0.0/24", blockSize: 26 });
    const seen: unknown[] = [];
    const recording = new Proxy(ds, {
      get(target, prop, receiver) {
        if (prop === "transaction") {
          return (...args: Parameters<Datastore["transaction"]>) => {
            seen.push(args[1]);
            return target.transaction(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const ipam = createIpam({ datastore: recording });
    await ipam.autoAssign({ handleId: "a", node: "n1", num4: 1 });
    const signal = new AbortController().signal;
    await ipam.autoAssign({ handleId: "b", node: "n1", num4: 1, signal });
    expect(seen).toHaveLength(2);
    // No shared (frozen) options object a backend could be handed and trip over.
    expect(seen[0]).toBeUndefined();
    expect(seen[1]).toEqual({ signal });
    expect(Object.isFrozen(seen[1])).toBe(false);
    await ipam.close();
    await ds.close();
  });

  it("hand the datastore frozen block specs, and consecutive versions of a block share what did not change", async () => {
    const ds = createMemoryDatastore();
    await putIpamConfig(ds, {});
    await putPool(ds, "p", { cidr: "10.9.0.0/24", blockSize: 26 });
    const { datastore: recording, blockWrites } = recordBlockWrites(ds);
    const ipam = createIpam({ datastore: recording });
    const w = ds.watch<IpamBlockObject>(IpamKind.Block);
    for (let i = 0; i < 3; i++) await ipam.autoAssign({ handleId: `h${i}`, node: "n1", num4: 1 });
    expect(blockWrites).toHaveLength(3);
    for (const op of blockWrites) {
      const spec = (op as unknown as { object: IpamBlockObject }).object.spec;
      expect(
        Object.isFrozen(spec) && Object.isFrozen(spec.allocations) && Object.isFrozen(spec.attributes),
      ).toBe(true);
    }
    const versions: IpamBlockObject[] = [];
    for await (const e of w) {
      versions.push(e.object);
      if (versions.length === 3) break;
    }
    // The first allocation's attribute entry is stored once, not once per version of the block.
    expect(versions[1]!.spec.attributes[0]).toBe(versions[0]!.spec.attributes[0]);
    expect(versions[2]!.spec.attributes[0]).toBe(versions[0]!.spec.attributes[0]);
    expect(versions[2]!.spec.attributes.map((a) => a.handleId)).toEqual(["h0", "h1", "h2"]);
    await ipam.close();
    await ds.close();
  });
});
