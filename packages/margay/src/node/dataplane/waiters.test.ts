import { describe, expect, it } from "vitest";
import { isPipelineError, PipelineError } from "./errors.js";
import { compareRevisions, createEndpointWaiters } from "./waiters.js";

const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((r) => setTimeout(r, 0));
  return done;
};

describe("endpoint waiters", () => {
  it("compares etcd revisions as numbers, not text", () => {
    expect(compareRevisions("9", "10")).toBeLessThan(0);
    expect(compareRevisions("100", "100")).toBe(0);
    expect(compareRevisions("18446744073709551617", "18446744073709551616")).toBeGreaterThan(0);
  });

  it("resolves nothing before the first in-sync is applied", async () => {
    const w = createEndpointWaiters();
    w.applied(new Map([["ns/a", { revision: "5", deleted: false }]]));
    const p = w.wait("ns/a", "5");
    expect(await settled(p)).toBe(false);
    w.markInSync();
    await p;
  });

  it("an upsert waiter needs that revision or a later one", async () => {
    const w = createEndpointWaiters();
    w.markInSync();
    w.applied(new Map([["ns/a", { revision: "9", deleted: false }]]));
    const p = w.wait("ns/a", "10");
    expect(await settled(p)).toBe(false);
    w.applied(new Map([["ns/a", { revision: "10", deleted: false }]]));
    await p;
    await w.wait("ns/a", "7"); // older: already satisfied
  });

  it("a deletion waiter needs the key absent with the applied watermark at its revision", async () => {
    const w = createEndpointWaiters();
    w.markInSync();
    w.applied(new Map([["ns/a", { revision: "5", deleted: false }]]));
    const p = w.wait("ns/a", "5", { deleted: true });
    expect(await settled(p)).toBe(false);
    w.applied(new Map([["ns/a", { revision: "8", deleted: true }]]));
    await p;
    // A key never seen, once changes past its revision are applied, is known absent.
    const q = w.wait("ns/never", "20", { deleted: true });
    expect(await settled(q)).toBe(false);
    w.applied(new Map([["ns/other", { revision: "21", deleted: false }]]));
    await q;
    expect(w.pending).toBe(0);
  });

  it("abort and close reject with typed errors and leave no waiter behind", async () => {
    const w = createEndpointWaiters();
    const ac = new AbortController();
    const a = w.wait("ns/a", "1", { signal: ac.signal });
    ac.abort(new Error("client went away"));
    await expect(a).rejects.toSatisfy((e) => isPipelineError(e, "aborted") && e.retryable);
    const b = w.wait("ns/b", "1");
    w.close(new PipelineError("closed", "dataplane pipeline closed"));
    await expect(b).rejects.toSatisfy((e) => isPipelineError(e, "closed") && !e.retryable);
    expect(w.pending).toBe(0);
    await expect(w.wait("ns/c", "1")).rejects.toSatisfy((e) => isPipelineError(e, "closed"));
    await expect(w.wait("", "1")).rejects.toSatisfy((e) => isPipelineError(e, "invalid-options"));
    await expect(w.wait("ns/c", "")).rejects.toSatisfy((e) => isPipelineError(e, "invalid-options"));
  });
});
