import { createMemoryDatastore } from "@margay/datastore";
import { describe, expect, it } from "vitest";
import { createIpam } from "./index.js";
import { putIpamConfig, putPool, recordBlockWrites } from "./test-support.js";
import { type IpamBlockObject, IpamKind } from "./types.js";

describe("block writes", () => {
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
