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

  it("calls made by an operation's synchronous part queue behind it, in order, even when it throws", async () => {
    const mem = createMemoryDatastore();
    const ctx = createIpamContext({ datastore: mem });
    const log: string[] = [];
    const queued: Promise<void>[] = [];
    let finish!: () => void;
    const outer = ctx.serialised(() => {
      queued.push(ctx.serialised(async () => void log.push("a")));
      queued.push(ctx.serialised(async () => void log.push("b")));
      return new Promise<void>((resolve) => {
        finish = () => {
          log.push("outer done");
          resolve();
        };
      });
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(log).toEqual([]);
    finish();
    await Promise.all([outer, ...queued]);
    expect(log).toEqual(["outer done", "a", "b"]);
    // A synchronous throw is a rejected promise, and what it queued still runs after it.
    let after: Promise<void> | undefined;
    const failing = ctx.serialised(() => {
      after = ctx.serialised(async () => void log.push("c"));
      throw new Error("sync failure");
    });
    expect(log).toEqual(["outer done", "a", "b"]);
    await expect(failing).rejects.toThrow("sync failure");
    await after;
    expect(log.at(-1)).toBe("c");
    // Idle again: starts at once.
    const next = ctx.serialised(async () => void log.push("d"));
    expect(log.at(-1)).toBe("d");
    await next;
    await ctx.close();
    await mem.close();
  });

  it("a call made by caller code the running operation runs synchronously (nodeLabels) waits for it", async () => {
    const mem = createMemoryDatastore();
    await putPool(mem, "p", { cidr: "10.0.0.0/24", nodeSelector: "rack == 'r1'" });
    const log: string[] = [];
    // Commits are logged when they complete, so an operation overlapping another shows up in the order.
    const ds = new Proxy(mem, {
      get(target, prop, receiver) {
        if (prop === "transaction") {
          return async (...args: Parameters<Datastore["transaction"]>) => {
            const res = await target.transaction(...args);
            log.push("commit");
            return res;
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    let reenter = false;
    let inner: Promise<unknown> | undefined;
    const ipam = createIpam({
      datastore: ds,
      nodeLabels: async (node) => {
        log.push(`labels ${node}`);
        if (reenter && node === "n1") inner = ipam.autoAssign({ handleId: "inner", node: "n2", num4: 1 });
        return { rack: "r1" };
      },
    });
    // Warm the config and block caches: the next call runs up to nodeLabels without an await.
    await ipam.autoAssign({ handleId: "warm", node: "n1", num4: 1 });
    log.length = 0;
    reenter = true;
    const outer = ipam.autoAssign({ handleId: "outer", node: "n1", num4: 1 });
    const o = await outer;
    expect(o.ipv4).toHaveLength(1);
    expect(await inner).toMatchObject({ ipv4: [expect.any(Object)] });
    // The inner operation started (read its node's labels) only after the outer one committed.
    expect(log).toEqual(["labels n1", "commit", "labels n2", "commit"]);
    await ipam.close();
    await mem.close();
  });
});
