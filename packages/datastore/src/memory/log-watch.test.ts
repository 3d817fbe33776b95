import { describe, expect, it } from "vitest";
import { isDatastoreError, type WatchEvent } from "../index.js";
import { type EventLog, LogWatch } from "./log-watch.js";

const ev = (n: number, kind = "K"): WatchEvent => ({
  type: "added",
  object: { kind, metadata: { name: `o${n}` } },
  revision: String(n),
});

/** A log over an array: position `seq` holds `events[seq]`, for a watch of its kind only. */
function arrayLog(events: WatchEvent[]): EventLog & { reads: number } {
  const log = {
    reads: 0,
    eventFor(w: LogWatch, seq: number): WatchEvent | undefined {
      log.reads++;
      const e = events[seq];
      return e !== undefined && e.object.kind === w.kind ? e : undefined;
    },
  };
  return log;
}

function watchOf(
  log: EventLog,
  more: { queueLimit?: number; signal?: AbortSignal; onStop?: () => void } = {},
) {
  return new LogWatch({
    kind: "K",
    namespace: undefined,
    after: 0,
    from: 0,
    queueLimit: more.queueLimit ?? 10,
    log,
    backend: "t",
    signal: more.signal,
    onStop: more.onStop ?? (() => undefined),
  });
}

async function drain(s: AsyncIterable<WatchEvent>) {
  const got: string[] = [];
  try {
    for await (const e of s) got.push(e.revision);
    return { got };
  } catch (error) {
    return { got, error };
  }
}

describe("LogWatch", () => {
  it("reads its events from the log, then a failure; a failed watch holds nothing in the log", async () => {
    let stops = 0;
    const events = [ev(1), ev(2, "Other"), ev(3)];
    const log = arrayLog(events);
    const w = watchOf(log, { onStop: () => void stops++ });
    w.advance(3, 2);
    expect(w.pending).toBe(2);
    expect(w.cursor).toBe(0);
    w.fail(new Error("boom"));
    expect(w.stopped).toBe(true);
    expect(w.cursor).toBe(Number.POSITIVE_INFINITY);
    // What it had was copied out: the log may forget it.
    events.length = 0;
    const r = await drain(w);
    expect(r.got).toEqual(["1", "3"]);
    expect((r.error as Error).message).toBe("boom");
    expect(stops).toBe(1);
  });

  it("fails with compacted (slow-consumer) after the events that fit", async () => {
    const log = arrayLog([ev(1), ev(2), ev(3)]);
    const w = watchOf(log, { queueLimit: 2 });
    w.advance(2, 2);
    w.advance(3, 1);
    w.advance(3, 1); // ignored: the watch has already failed
    const r = await drain(w);
    expect(r.got).toEqual(["1", "2"]);
    expect(isDatastoreError(r.error, "compacted")).toBe(true);
  });

  it("a spilled watch moves its cursor to the tip and reads its copies before newer log events", async () => {
    const events = [ev(1), ev(2)];
    const w = watchOf(arrayLog(events));
    w.advance(2, 2);
    w.spill();
    expect(w.cursor).toBe(2);
    events.push(ev(3));
    w.advance(3, 1);
    const got: string[] = [];
    for await (const e of w) {
      got.push(e.revision);
      if (got.length === 3) break;
    }
    expect(got).toEqual(["1", "2", "3"]);
    expect(w.stopped).toBe(true);
  });

  it("close() drops unread events and ends iteration quietly, even after a failure", async () => {
    const w = watchOf(arrayLog([ev(1)]));
    w.advance(1, 1);
    w.fail(new Error("boom"));
    await w.close();
    expect(w.pending).toBe(0);
    expect(await drain(w)).toEqual({ got: [] });
  });

  it("close() ends a waiting reader; breaking out of for-await stops the watch once", async () => {
    let stops = 0;
    const w = watchOf(arrayLog([]), { onStop: () => void stops++ });
    const pending = drain(w);
    await new Promise((r) => setTimeout(r, 5));
    await w.close();
    expect(await pending).toEqual({ got: [] });
    const t = watchOf(arrayLog([ev(1), ev(2)]), { onStop: () => void stops++ });
    t.advance(2, 2);
    for await (const _ of t) break;
    await t.close();
    expect(t.cursor).toBe(Number.POSITIVE_INFINITY);
    expect(stops).toBe(2);
  });

  it("an already-aborted or later-aborted signal ends the iteration without error, onStop once", async () => {
    let stops = 0;
    const ac = new AbortController();
    ac.abort();
    const log = arrayLog([ev(1)]);
    const w = watchOf(log, { signal: ac.signal, onStop: () => void stops++ });
    expect(w.stopped).toBe(true);
    w.advance(1, 1);
    expect(w.pending).toBe(0);
    expect(await drain(w)).toEqual({ got: [] });
    expect(log.reads).toBe(0);
    const ac2 = new AbortController();
    const t = watchOf(arrayLog([]), { signal: ac2.signal, onStop: () => void stops++ });
    const pending = drain(t);
    ac2.abort();
    expect(await pending).toEqual({ got: [] });
    await t.close();
    expect(stops).toBe(2);
  });
});
