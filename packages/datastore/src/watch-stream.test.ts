import { describe, expect, it } from "vitest";
import { isDatastoreError, type WatchEvent } from "./index.js";
import { WatchStream } from "./watch-stream.js";

const ev = (n: number): WatchEvent => ({
  type: "added",
  object: { kind: "K", metadata: { name: `o${n}` } },
  revision: String(n),
});

async function drain(s: AsyncIterable<WatchEvent>) {
  const got: string[] = [];
  try {
    for await (const e of s) got.push(e.revision);
    return { got };
  } catch (error) {
    return { got, error };
  }
}

describe("WatchStream", () => {
  it("delivers queued events in order, then the failure", async () => {
    let stops = 0;
    const s = new WatchStream({ queueLimit: 10, backend: "t", onStop: () => void stops++ });
    s.push([ev(1), ev(2)]);
    s.push([ev(3)]);
    s.fail(new Error("boom"));
    const r = await drain(s);
    expect(r.got).toEqual(["1", "2", "3"]);
    expect((r.error as Error).message).toBe("boom");
    expect(stops).toBe(1);
  });

  it("overflow fails with compacted (slow-consumer) after the events that fit", async () => {
    const s = new WatchStream({ queueLimit: 2, backend: "t", onStop: () => undefined });
    s.push([ev(1), ev(2)]);
    s.push([ev(3)]);
    s.push([ev(4)]); // ignored: the stream has already failed
    const r = await drain(s);
    expect(r.got).toEqual(["1", "2"]);
    expect(isDatastoreError(r.error, "compacted")).toBe(true);
  });

  it("close() ends a waiting consumer; breaking out of for-await stops the watch once", async () => {
    let stops = 0;
    const s = new WatchStream({ queueLimit: 10, backend: "t", onStop: () => void stops++ });
    const pending = drain(s);
    await new Promise((r) => setTimeout(r, 5));
    await s.close();
    expect(await pending).toEqual({ got: [] });
    const t = new WatchStream({ queueLimit: 10, backend: "t", onStop: () => void stops++ });
    t.push([ev(1), ev(2)]);
    for await (const _ of t) break;
    await t.close();
    expect(stops).toBe(2);
  });

  it("an already-aborted or later-aborted signal ends the iteration without error", async () => {
    const ac = new AbortController();
    ac.abort();
    const s = new WatchStream({ queueLimit: 10, backend: "t", signal: ac.signal, onStop: () => undefined });
    expect(await drain(s)).toEqual({ got: [] });
    const ac2 = new AbortController();
    const t = new WatchStream({ queueLimit: 10, backend: "t", signal: ac2.signal, onStop: () => undefined });
    const pending = drain(t);
    ac2.abort();
    expect(await pending).toEqual({ got: [] });
  });

  it("a failure still reaches a reader after close() drops the queued events", async () => {
    const s = new WatchStream({ queueLimit: 10, backend: "t", onStop: () => undefined });
    s.push([ev(1)]);
    s.fail(new Error("boom"));
    await s.close();
    const r = await drain(s);
    expect(r.got).toEqual([]);
    expect((r.error as Error).message).toBe("boom");
  });

  it("delivers thousands of queued events in order (the queue cuts off what was read as it goes)", async () => {
    const s = new WatchStream({ queueLimit: 5000, backend: "t", onStop: () => undefined });
    const want: string[] = [];
    for (let n = 1; n <= 3000; n += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => ev(n + i));
      s.push(batch);
      for (const e of batch) want.push(e.revision);
    }
    expect(s.pending).toBe(3000);
    const got: string[] = [];
    for await (const e of s) {
      got.push(e.revision);
      // Events pushed while reading go behind the unread ones.
      if (got.length === 2000) s.push([ev(3001)]);
      if (got.length === 3001) break;
    }
    expect(got).toEqual([...want, "3001"]);
    expect(s.stopped).toBe(true);
  });

  it("onStop runs once however often the watch is stopped; a closed watch takes no more events", async () => {
    let stops = 0;
    const ac = new AbortController();
    ac.abort();
    const s = new WatchStream({
      queueLimit: 10,
      backend: "t",
      signal: ac.signal,
      onStop: () => void stops++,
    });
    expect(s.stopped).toBe(true);
    s.push([ev(1)]);
    expect(s.pending).toBe(0);
    await s.close();
    s.fail(new Error("late"));
    expect(await drain(s)).toEqual({ got: [] });
    expect(stops).toBe(1);
  });
});
