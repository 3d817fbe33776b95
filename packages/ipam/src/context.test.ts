import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIpamContext } from "./context.js";
import { isIpamError } from "./errors.js";
import { createIpam } from "./ipam.js";
import { putPool } from "./test-support.js";

/** A datastore whose transactions always lose the compare-and-swap on one block. */
function alwaysConflicting(inner: Datastore, onConflict: (n: number) => void = () => {}): Datastore {
  let n = 0;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "transaction") {
        return async () => {
          onConflict(++n);
          throw Object.assign(new Error("conflict"), {
            name: "DatastoreError",
            code: "conflict",
            details: { kind: "IPAMBlock", name: "10-0-0-0-26" },
          });
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(isIpamError(e), String(e)).toBe(true);
    return (e as { code: string }).code;
  }
  return undefined;
}

describe("retry back-off (@margay/api's backoffDelay under the IPAM's retry loop)", () => {
  let mem: Datastore;
  beforeEach(async () => {
    mem = createMemoryDatastore();
    await putPool(mem, "p", { cidr: "10.0.0.0/24", blockSize: 26 });
  });
  afterEach(async () => {
    await mem.close();
  });

  it("accepts a backoffMs above the 100 ms cap and gives up after maxAttempts", async () => {
    let attempts = 0;
    const ipam = createIpam({
      datastore: alwaysConflicting(mem, (n) => {
        attempts = n;
      }),
      backoffMs: 1000,
      maxAttempts: 3,
      random: () => 0, // full jitter at 0: no actual waiting
    });
    expect(await codeOf(ipam.autoAssign({ handleId: "h", node: "n", num4: 1 }))).toBe(
      "conflict-retries-exhausted",
    );
    expect(attempts).toBe(3);
    await ipam.close();
  });

  it("backoffMs 0 retries without waiting", async () => {
    const ipam = createIpam({ datastore: alwaysConflicting(mem), backoffMs: 0, maxAttempts: 5 });
    expect(await codeOf(ipam.autoAssign({ handleId: "h", node: "n", num4: 1 }))).toBe(
      "conflict-retries-exhausted",
    );
    await ipam.close();
  });

  it("an abort while backing off between conflicting attempts ends the call with aborted", async () => {
    const ac = new AbortController();
    let attempts = 0;
    const ipam = createIpam({
      datastore: alwaysConflicting(mem, (n) => {
        attempts = n;
        // After the second conflict the client backs off; abort while it waits.
        if (n === 2) setTimeout(() => ac.abort(), 1);
      }),
      backoffMs: 100,
      maxAttempts: 1000,
      random: () => 0.99,
    });
    expect(await codeOf(ipam.autoAssign({ handleId: "h", node: "n", num4: 1, signal: ac.signal }))).toBe(
      "aborted",
    );
    expect(attempts).toBeLessThan(1000);
    await ipam.close();
  });
});

describe("serialised operations of one client", () => {
  it("starts an operation at once on an idle client and queues the next behind the running one", async () => {
    const mem = createMemoryDatastore();
    const ctx = createIpamContext({ datastore: mem });
    const log: string[] = [];
    let finishFirst!: (fail: boolean) => void;
    const first = ctx.serialised(
      () =>
        new Promise<string>((resolve, reject) => {
          log.push("first starts");
          finishFirst = (fail) => (fail ? reject(new Error("first failed")) : resolve("first"));
        }),
    );
    // Idle: started within the call, not a turn of the microtask queue later.
    expect(log).toEqual(["first starts"]);
    const second = ctx.serialised(async () => {
      log.push("second starts");
      return "second";
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(log).toEqual(["first starts"]);
    // A failed operation still lets the next one run, after it.
    finishFirst(true);
    await expect(first).rejects.toThrow("first failed");
    await expect(second).resolves.toBe("second");
    expect(log).toEqual(["first starts", "second starts"]);
    // Idle again: the next one starts at once too.
    const third = ctx.serialised(async () => {
      log.push("third starts");
      return "third";
    });
    expect(log.at(-1)).toBe("third starts");
    await expect(third).resolves.toBe("third");
    await ctx.close();
    await expect(ctx.serialised(async () => "late")).rejects.toMatchObject({ code: "closed" });
    await mem.close();
  });
});
