import { describe, expect, it } from "vitest";
import { isDatastoreError, type WatchEvent } from "./index.js";
import { type EventLog, LogWatch } from "./memory/log-watch.js";
import type { WatchBase } from "./watch-base.js";
import { WatchStream } from "./watch-stream.js";

/** An event of kind `K` at revision `n`. */
const ev = (n: number, kind = "K"): WatchEvent => ({
  type: "added",
  object: { kind, metadata: { name: `o${n}` } },
  revision: String(n),
});

/** What iterating `s` to its end gives: the revisions read, then the error it threw, if any. */
async function drain(s: AsyncIterable<WatchEvent>): Promise<{ got: string[]; error?: unknown }> {
  const got: string[] = [];
  try {
    for await (const e of s) got.push(e.revision);
    return { got };
  } catch (error) {
    return { got, error };
  }
}

interface Options {
  queueLimit?: number;
  signal?: AbortSignal;
  onStop?: () => void;
}

/** A watch of either backend and how to hand it events, so one suite covers what they share. */
interface Subject {
  watch: WatchBase & { readonly pending: number };
  give(events: WatchEvent[]): void;
}

const kinds: { name: string; make(o: Options): Subject }[] = [
  {
    name: "WatchStream",
    make(o) {
      const watch = new WatchStream({
        queueLimit: o.queueLimit ?? 10,
        backend: "t",
        signal: o.signal,
        onStop: o.onStop ?? (() => undefined),
      });
      return { watch, give: (events) => watch.push(events) };
    },
  },
  {
    name: "LogWatch",
    make(o) {
      const log: WatchEvent[] = [];
      const eventLog: EventLog = { eventFor: (_w, seq) => log[seq] };
      const watch = new LogWatch({
        kind: "K",
        namespace: undefined,
        after: 0,
        from: 0,
        queueLimit: o.queueLimit ?? 10,
        log: eventLog,
        backend: "t",
        signal: o.signal,
        onStop: o.onStop ?? (() => undefined),
      });
      return {
        watch,
        give(events) {
          log.push(...events);
          watch.advance(log.length, events.length);
        },
      };
    },
  },
];

describe.each(kinds)("the watch lifecycle of $name", ({ make }) => {
  it("delivers queued events in order, then the failure", async () => {
    let stops = 0;
    const { watch, give } = make({ onStop: () => void stops++ });
    give([ev(1), ev(2)]);
    give([ev(3)]);
    watch.fail(new Error("boom"));
    const r = await drain(watch);
    expect(r.got).toEqual(["1", "2", "3"]);
    expect((r.error as Error).message).toBe("boom");
    expect(stops).toBe(1);
  });

  it("overflow fails with compacted (slow-consumer) after the events that fit", async () => {
    const { watch, give } = make({ queueLimit: 2 });
    give([ev(1), ev(2)]);
    give([ev(3)]);
    give([ev(4)]); // ignored: the watch has already failed
    const r = await drain(watch);
    expect(r.got).toEqual(["1", "2"]);
    expect(isDatastoreError(r.error, "compacted")).toBe(true);
  });

  it("delivers thousands of events in order, those given while reading behind the unread ones", async () => {
    const { watch, give } = make({ queueLimit: 5000 });
    const want: string[] = [];
    for (let n = 1; n <= 3000; n += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => ev(n + i));
      give(batch);
      for (const e of batch) want.push(e.revision);
    }
    expect(watch.pending).toBe(3000);
    const got: string[] = [];
    for await (const e of watch) {
      got.push(e.revision);
      if (got.length === 2000) give([ev(3001)]);
      if (got.length === 3001) break;
    }
    expect(got).toEqual([...want, "3001"]);
    expect(watch.stopped).toBe(true);
  });

  it("close() ends a waiting consumer; breaking out of for-await stops the watch once", async () => {
    let stops = 0;
    const s = make({ onStop: () => void stops++ }).watch;
    const pending = drain(s);
    await new Promise((r) => setTimeout(r, 5));
    await s.close();
    expect(await pending).toEqual({ got: [] });
    const t = make({ onStop: () => void stops++ });
    t.give([ev(1), ev(2)]);
    for await (const _ of t.watch) break;
    expect(t.watch.pending).toBe(0);
    await t.watch.close();
    expect(stops).toBe(2);
  });

  it("close() drops unread events; a failure before it is still thrown to the reader", async () => {
    const { watch, give } = make({});
    give([ev(1)]);
    watch.fail(new Error("boom"));
    await watch.close();
    expect(watch.pending).toBe(0);
    const r = await drain(watch);
    expect(r.got).toEqual([]);
    expect((r.error as Error | undefined)?.message).toBe("boom");
  });

  it("an already-aborted or later-aborted signal ends the iteration without error, onStop once", async () => {
    let stops = 0;
    const ac = new AbortController();
    ac.abort();
    const { watch, give } = make({ signal: ac.signal, onStop: () => void stops++ });
    expect(watch.stopped).toBe(true);
    give([ev(1)]);
    expect(watch.pending).toBe(0);
    expect(await drain(watch)).toEqual({ got: [] });
    await watch.close();
    watch.fail(new Error("late"));
    const ac2 = new AbortController();
    const t = make({ signal: ac2.signal, onStop: () => void stops++ }).watch;
    const pending = drain(t);
    ac2.abort();
    expect(await pending).toEqual({ got: [] });
    await t.close();
    expect(stops).toBe(2);
  });
});
