import { describe, expect, it } from "vitest";
import type { WatchEvent } from "../index.js";
import { type EventLog, LogWatch } from "./log-watch.js";

// What LogWatch shares with WatchStream is tested for both in ../watch-base.test.ts; here, its cursor.

const event = (revision: number, kind: string): WatchEvent => ({
  type: "added",
  object: { kind, metadata: { name: `o${revision}` } },
  revision: String(revision),
});

/** A watch of kind K over `log` (position `seq` holds `log[seq]`), counting the log's reads. */
function cursorWatch(log: WatchEvent[], signal?: AbortSignal) {
  const reads = { n: 0 };
  const eventLog: EventLog = {
    eventFor(w, seq) {
      reads.n++;
      const e = log[seq];
      return e?.object.kind === w.kind ? e : undefined;
    },
  };
  const watch = new LogWatch({
    kind: "K",
    namespace: undefined,
    after: 0,
    from: 0,
    queueLimit: 10,
    log: eventLog,
    backend: "t",
    signal,
    onStop: () => undefined,
  });
  return { watch, reads };
}

describe("LogWatch's cursor", () => {
  it("a failed watch holds nothing in the log: what it had is read from its own copies", async () => {
    const log = [event(1, "K"), event(2, "Other"), event(3, "K")];
    const { watch } = cursorWatch(log);
    watch.advance(3, 2);
    expect(watch.cursor).toBe(0);
    watch.fail(new Error("boom"));
    expect(watch.cursor).toBe(Number.POSITIVE_INFINITY);
    log.length = 0; // the store may forget them now
    const it = watch[Symbol.asyncIterator]();
    expect((await it.next()).value?.revision).toBe("1");
    expect((await it.next()).value?.revision).toBe("3");
    await expect(it.next()).rejects.toThrow("boom");
  });

  it("spill() moves the cursor to the tip; the copies are read before newer log events", async () => {
    const log = [event(1, "K"), event(2, "K")];
    const { watch } = cursorWatch(log);
    watch.advance(2, 2);
    watch.spill();
    expect(watch.cursor).toBe(2);
    log.push(event(3, "K"));
    watch.advance(3, 1);
    const got: string[] = [];
    for await (const e of watch) {
      got.push(e.revision);
      if (got.length === 3) break;
    }
    expect(got).toEqual(["1", "2", "3"]);
    expect(watch.cursor).toBe(Number.POSITIVE_INFINITY);
  });

  it("moves to the tip past events of others only while it has nothing unread", () => {
    const { watch } = cursorWatch([]);
    watch.advance(5, 0);
    expect(watch.cursor).toBe(5);
    watch.advance(6, 1);
    watch.advance(8, 0);
    expect(watch.cursor).toBe(5);
    expect(watch.pending).toBe(1);
  });

  it("moves to the tip past events of others once its unread events are all spilled", async () => {
    const log = [event(1, "K"), event(2, "Other")];
    const { watch, reads } = cursorWatch(log);
    watch.advance(1, 1);
    watch.advance(2, 0);
    watch.spill();
    expect(watch.cursor).toBe(2);
    // Only others' events since: the spilled one, still unread, holds nothing in the log.
    for (let s = 3; s <= 5; s++) {
      log.push(event(s, "Other"));
      watch.advance(s, 0);
      expect(watch.cursor).toBe(s);
    }
    expect(watch.pending).toBe(1);
    const readsBefore = reads.n;
    watch.spill(); // nothing left in the log to copy
    expect(reads.n).toBe(readsBefore);
    log.push(event(6, "K"));
    watch.advance(6, 1);
    watch.advance(7, 0);
    expect(watch.cursor).toBe(5);
    const got: string[] = [];
    for await (const e of watch) {
      got.push(e.revision);
      if (got.length === 2) break;
    }
    expect(got).toEqual(["1", "6"]);
  });

  it("an already-aborted watch never reads the log", async () => {
    const ac = new AbortController();
    ac.abort();
    const { watch, reads } = cursorWatch([event(1, "K")], ac.signal);
    watch.advance(1, 1);
    watch.spill();
    expect(watch.cursor).toBe(Number.POSITIVE_INFINITY);
    expect(await watch[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    expect(reads.n).toBe(0);
  });
});
