import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createMemoryDatastore } from "@margay/datastore";
import { describe, expect, it } from "vitest";
import { autoAssign } from "./allocate.js";
import { createIpamContext } from "./context.js";
import { putPool } from "./test-support.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Collects garbage until `ref` is cleared (a WeakRef target survives the current job). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
  }
  return ref.deref() === undefined;
}

describe("autoAssign's module-level scratch lists", () => {
  it("keep no pool of a closed client's config snapshot reachable", async () => {
    const mem = createMemoryDatastore();
    await putPool(mem, "p", { cidr: "10.0.0.0/24", nodeSelector: "all()" });
    let ctx: ReturnType<typeof createIpamContext> | undefined = createIpamContext({ datastore: mem });
    await autoAssign(ctx, { handleId: "a", node: "n1", num4: 1 });
    // The second allocation fills the host's block through the scratch lists.
    const second = await autoAssign(ctx, { handleId: "b", node: "n1", num4: 1 });
    expect(second.ipv4).toHaveLength(1);
    const pool = new WeakRef(ctx.snapshot!.pools[0]!);
    await ctx.close();
    ctx = undefined;
    expect(await collected(pool)).toBe(true);
    await mem.close();
  });
});
