import { createRecordingLogger, sleep } from "@margay/api";
import { afterEach, describe, expect, it } from "vitest";
import {
  createMemoryDatastore,
  createSyncer,
  type Datastore,
  isDatastoreError,
  decorateDatastore,
  type ListOptions,
  type MemoryDatastore,
  type StoredObject,
  type Syncer,
  type SyncerEvent,
  type SyncerStatus,
  unavailableError,
  type Watch,
  type WatchEvent,
} from "../index.js";
import { fold, obj, stored, summary, until } from "./syncer.test-util.js";

const FAST_RETRY = { initialMs: 10, maxMs: 40 };

/** Reads a syncer in the background into `events`; `ended` resolves with the error that ended it, if any. */
function read(s: Syncer, events: SyncerEvent[], opts: { paused?: () => boolean } = {}) {
  const ended = (async () => {
    try {
      for await (const batch of s) {
        events.push(...batch);
        while (opts.paused?.()) await sleep(5);
      }
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  return ended;
}

/**
 * The memory datastore behind a seam the test controls: `cut()` fails every live watch with `unavailable`
 * and makes new lists and watches fail too (a lost connection), `restore()` ends that; `afterList` runs
 * after a list has read its result, before the syncer sees it (to write in between).
 */
function controllable(inner: MemoryDatastore, opts: { replay?: boolean } = {}) {
  let cut = false;
  const live = new Set<(e: unknown) => void>();
  const hooks: { afterList?: ((kind: string) => Promise<void>) | undefined } = {};
  const refuse = () => unavailableError("connection cut by the test", { backend: "test" });
  const wrap = (w: Watch): Watch => {
    let fail: (e: unknown) => void = () => {};
    const failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    failed.catch(() => {});
    live.add(fail);
    return {
      async *[Symbol.asyncIterator]() {
        const it = w[Symbol.asyncIterator]();
        try {
          for (;;) {
            const r = await Promise.race([it.next(), failed]);
            if (r.done === true) return;
            yield r.value as WatchEvent;
          }
        } finally {
          live.delete(fail);
          await w.close();
        }
      },
      close: () => w.close(),
      [Symbol.asyncDispose]: () => w.close(),
    };
  };
  const ds: Datastore = decorateDatastore(inner, {
    list: async <T extends StoredObject = StoredObject>(kind: string, o?: ListOptions) => {
      if (cut) throw refuse();
      const r = await inner.list<T>(kind, o);
      await hooks.afterList?.(kind);
      return r;
    },
    watch: (kind, o) => {
      if (cut) throw refuse();
      // `replay`: a backend that resumes one revision early, redelivering the event at `fromRevision`.
      const from = o?.fromRevision;
      const shifted =
        opts.replay === true && from !== undefined && Number(from) > 1
          ? { ...o, fromRevision: String(Number(from) - 1) }
          : o;
      return wrap(inner.watch(kind, shifted)) as never;
    },
  });
  return {
    ds,
    hooks,
    cut() {
      cut = true;
      for (const f of [...live]) f(refuse());
    },
    restore() {
      cut = false;
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function track<T extends { close(): Promise<void> }>(x: T): T {
  cleanups.push(() => x.close());
  return x;
}

describe("syncer on the memory datastore", () => {
  it("delivers every kind's list, then one barrier, then changes in order; the barrier never repeats", async () => {
    const ds = track(createMemoryDatastore());
    await ds.create(obj("IPPool", "p1"));
    await ds.create(obj("IPPool", "p2"));
    await ds.create(obj("Node", "n1"));
    await ds.create(obj("WorkloadEndpoint", "w1", 0, "ns1"));
    const statuses: SyncerStatus[] = [];
    const s = track(
      createSyncer({
        datastore: ds,
        kinds: ["IPPool", "Node", "WorkloadEndpoint"],
        onStatus: (st) => statuses.push(st),
      }),
    );
    expect(s.status.state).toBe("wait-for-datastore");
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.some((e) => e.type === "in-sync"), "the barrier");
    const barrierAt = events.findIndex((e) => e.type === "in-sync");
    expect(new Set(summary(events.slice(0, barrierAt)))).toEqual(
      new Set([
        "upsert IPPool//p1",
        "upsert IPPool//p2",
        "upsert Node//n1",
        "upsert WorkloadEndpoint/ns1/w1",
      ]),
    );
    expect(barrierAt).toBe(4);
    // Within a kind, the list order (namespace, name) is kept.
    expect(summary(events.filter((e) => e.type !== "in-sync" && e.kind === "IPPool"))).toEqual([
      "upsert IPPool//p1",
      "upsert IPPool//p2",
    ]);

    const n1 = await ds.update({ ...obj("Node", "n1", 1) });
    await ds.create(obj("IPPool", "p3"));
    await ds.delete({ kind: "IPPool", name: "p1" });
    await ds.create(obj("WorkloadEndpoint", "w2", 0, "ns2"));
    await until(() => events.length === barrierAt + 5, "four changes");
    const changes = events.slice(barrierAt + 1);
    expect(summary(changes)).toEqual([
      "upsert Node//n1",
      "upsert IPPool//p3",
      "delete IPPool//p1",
      "upsert WorkloadEndpoint/ns2/w2",
    ]);
    const revs = changes.map((e) => Number((e as { revision: string }).revision));
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]!);
    expect((changes[0] as { revision: string }).revision).toBe(n1.metadata.resourceVersion);
    expect(changes[0]).toMatchObject({ type: "upsert", object: { spec: { n: 1 } } });

    await sleep(50);
    expect(events.filter((e) => e.type === "in-sync")).toHaveLength(1);
    expect(fold(events)).toEqual(await stored(ds, ["IPPool", "Node", "WorkloadEndpoint"]));
    expect(s.status).toMatchObject({ state: "in-sync", synced: true, relists: 0, watchRestarts: 0 });
    expect(statuses.map((st) => st.state)).toEqual(["resyncing", "in-sync"]);
  });

  it("a kind with nothing stored still counts toward the barrier", async () => {
    const ds = track(createMemoryDatastore());
    const s = track(createSyncer({ datastore: ds, kinds: ["BGPPeer", "Node"] }));
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.length === 1, "the barrier");
    expect(events).toEqual([{ type: "in-sync" }]);
  });

  it("a delete (and create) landing between the initial list and its watch is delivered after the listed object", async () => {
    const mem = track(createMemoryDatastore());
    await mem.create(obj("IPPool", "gone"));
    await mem.create(obj("IPPool", "kept"));
    const c = controllable(mem);
    let once = true;
    c.hooks.afterList = async (kind) => {
      if (kind !== "IPPool" || !once) return;
      once = false;
      await mem.delete({ kind: "IPPool", name: "gone" });
      await mem.create(obj("IPPool", "new"));
    };
    const s = track(createSyncer({ datastore: c.ds, kinds: ["IPPool"] }));
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.length === 5, "list, barrier and the two changes");
    expect(summary(events)).toEqual([
      "upsert IPPool//gone",
      "upsert IPPool//kept",
      "in-sync",
      "delete IPPool//gone",
      "upsert IPPool//new",
    ]);
    expect(fold(events)).toEqual(await stored(mem, ["IPPool"]));
  });

  it("after a compaction while its watch was cut off, relists and emits exactly the differences", async () => {
    const mem = track(createMemoryDatastore());
    for (const n of ["a-same", "b-changed", "c-deleted"]) await mem.create(obj("IPPool", n));
    await mem.create(obj("Node", "n-same"));
    const c = controllable(mem);
    const logger = createRecordingLogger();
    const s = track(createSyncer({ datastore: c.ds, kinds: ["IPPool", "Node"], logger, retry: FAST_RETRY }));
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.some((e) => e.type === "in-sync"), "the barrier");
    const before = events.length;

    c.cut();
    await until(() => s.status.watchRestarts >= 2, "both watches to notice the cut");
    const changed = await mem.update(obj("IPPool", "b-changed", 1));
    await mem.delete({ kind: "IPPool", name: "c-deleted" });
    const created = await mem.create(obj("IPPool", "d-created"));
    await mem.create(obj("IPPool", "e-transient"));
    await mem.delete({ kind: "IPPool", name: "e-transient" });
    await mem.compact(mem.revision);
    c.restore();

    await until(() => s.status.relists >= 1 && s.status.state === "in-sync", "the relist");
    await sleep(50);
    const diff = events.slice(before);
    expect(summary(diff)).toEqual([
      "delete IPPool//c-deleted",
      "upsert IPPool//b-changed",
      "upsert IPPool//d-created",
    ]);
    expect(diff[1]).toMatchObject({ revision: changed.metadata.resourceVersion, object: { spec: { n: 1 } } });
    expect(diff[2]).toMatchObject({ revision: created.metadata.resourceVersion });
    expect(fold(events)).toEqual(await stored(mem, ["IPPool", "Node"]));
    // The compaction passed Node's position too: it relisted, found nothing changed and emitted nothing.
    expect(s.status.relists).toBe(2);
    expect(diff.filter((e) => e.type !== "in-sync" && e.kind === "Node")).toEqual([]);
    expect(events.filter((e) => e.type === "in-sync")).toHaveLength(1);
    expect(isDatastoreError(s.status.lastError)).toBe(true);
    expect(logger.find({ message: "syncer watch failed; restarting from last revision" })[0]).toMatchObject({
      level: "warn",
      attributes: { component: "syncer", code: "unavailable" },
    });
    expect(logger.find({ message: "syncer relisting after compaction" })).toContainEqual(
      expect.objectContaining({
        level: "info",
        attributes: expect.objectContaining({ component: "syncer", kind: "IPPool" }),
      }),
    );
    expect(logger.find({ message: "syncer relist applied" })).toContainEqual(
      expect.objectContaining({
        attributes: expect.objectContaining({ kind: "IPPool", upserts: 2, deletes: 1 }),
      }),
    );
  });

  it("a watch cut without compaction resumes from its last revision: nothing lost, nothing twice, no relist", async () => {
    const mem = track(createMemoryDatastore());
    const c = controllable(mem);
    const s = track(createSyncer({ datastore: c.ds, kinds: ["Node"], retry: FAST_RETRY }));
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.length === 1, "the barrier");
    await mem.create(obj("Node", "n1"));
    await until(() => events.length === 2, "n1");
    c.cut();
    await until(() => s.status.watchRestarts >= 1, "the cut");
    await mem.create(obj("Node", "n2"));
    await mem.update(obj("Node", "n1", 1));
    c.restore();
    await until(() => events.length === 4, "the changes made while cut");
    await sleep(50);
    expect(summary(events)).toEqual(["in-sync", "upsert Node//n1", "upsert Node//n2", "upsert Node//n1"]);
    expect(s.status.relists).toBe(0);
    expect(fold(events)).toEqual(await stored(mem, ["Node"]));
  });

  it("a backend that redelivers the event at the resume revision: nothing reaches the reader twice", async () => {
    const mem = track(createMemoryDatastore());
    await mem.create(obj("Node", "n0"));
    const c = controllable(mem, { replay: true });
    const s = track(createSyncer({ datastore: c.ds, kinds: ["Node"], retry: FAST_RETRY }));
    const events: SyncerEvent[] = [];
    void read(s, events);
    await until(() => events.length === 2, "the barrier");
    await mem.create(obj("Node", "n1"));
    await until(() => events.length === 3, "n1");
    c.cut();
    await until(() => s.status.watchRestarts >= 1, "the cut");
    await mem.delete({ kind: "Node", name: "n0" });
    c.restore();
    await until(() => events.length === 4, "the delete made while cut");
    await mem.create(obj("Node", "n2"));
    await until(() => events.length === 5, "n2");
    await sleep(50);
    expect(summary(events)).toEqual([
      "upsert Node//n0",
      "in-sync",
      "upsert Node//n1",
      "delete Node//n0",
      "upsert Node//n2",
    ]);
    expect(fold(events)).toEqual(await stored(mem, ["Node"]));
  });

  it("a reader that falls behind makes the watch overflow; the relist brings it back to the store's state", async () => {
    const mem = track(createMemoryDatastore({ watchQueueLimit: 4 }));
    const s = track(createSyncer({ datastore: mem, kinds: ["Node"], highWaterMark: 2, retry: FAST_RETRY }));
    const events: SyncerEvent[] = [];
    let paused = false;
    void read(s, events, { paused: () => paused });
    await until(() => events.length === 1, "the barrier");
    paused = true;
    for (let i = 0; i < 30; i++) await mem.create(obj("Node", `n${i}`));
    for (let i = 0; i < 10; i++) await mem.delete({ kind: "Node", name: `n${i}` });
    await sleep(50);
    paused = false;
    const want = await stored(mem, ["Node"]);
    await until(() => s.status.relists >= 1 && fold(events).size === want.size, "the relist");
    expect(fold(events)).toEqual(want);
    expect(s.status.lastError?.code).toBe("compacted");
  });

  it("close() and an aborted signal end the iteration; a closed syncer delivers nothing more", async () => {
    const ds = track(createMemoryDatastore());
    const s = createSyncer({ datastore: ds, kinds: ["Node"] });
    const events: SyncerEvent[] = [];
    const ended = read(s, events);
    await until(() => events.length === 1, "the barrier");
    await s.close();
    await s.close();
    expect(await ended).toBeUndefined();
    expect(s.status.state).toBe("closed");
    await ds.create(obj("Node", "late"));
    await sleep(20);
    expect(events).toEqual([{ type: "in-sync" }]);

    const ac = new AbortController();
    const s2 = createSyncer({ datastore: ds, kinds: ["Node"], signal: ac.signal });
    const events2: SyncerEvent[] = [];
    const ended2 = read(s2, events2);
    await until(() => events2.some((e) => e.type === "in-sync"), "the barrier");
    ac.abort();
    expect(await ended2).toBeUndefined();
    expect(s2.status.state).toBe("closed");

    const s3 = createSyncer({ datastore: ds, kinds: ["Node"], signal: AbortSignal.abort() });
    expect(s3.status.state).toBe("closed");
    const events3: SyncerEvent[] = [];
    expect(await read(s3, events3)).toBeUndefined();
    expect(events3).toEqual([]);
  });

  it("breaking out of the loop closes the syncer", async () => {
    const ds = track(createMemoryDatastore());
    const s = createSyncer({ datastore: ds, kinds: ["Node"] });
    for await (const batch of s) {
      expect(batch).toEqual([{ type: "in-sync" }]);
      break;
    }
    expect(s.status.state).toBe("closed");
  });

  it("ends with the datastore's closed error when the datastore is closed under it", async () => {
    const ds = createMemoryDatastore();
    const s = track(createSyncer({ datastore: ds, kinds: ["Node"], retry: FAST_RETRY }));
    const events: SyncerEvent[] = [];
    const ended = read(s, events);
    await until(() => events.length === 1, "the barrier");
    await ds.close();
    const err = await ended;
    expect(isDatastoreError(err, "closed")).toBe(true);
    expect(s.status).toMatchObject({ state: "closed", lastError: { code: "closed" } });
  });

  it("rejects bad options with typed invalid errors, and a second reader", async () => {
    const ds = track(createMemoryDatastore());
    for (const kinds of [[], ["Node", "Node"], [""]]) {
      let err: unknown;
      try {
        createSyncer({ datastore: ds, kinds });
      } catch (e) {
        err = e;
      }
      expect(isDatastoreError(err, "invalid")).toBe(true);
      expect(err).toMatchObject({ retryable: false, details: { field: "kinds" } });
    }
    expect(() => createSyncer({ datastore: ds, kinds: ["Node"], highWaterMark: 0 })).toThrow(/highWaterMark/);
    let retryErr: unknown;
    try {
      createSyncer({ datastore: ds, kinds: ["Node"], retry: { initialMs: -1 } });
    } catch (e) {
      retryErr = e;
    }
    expect(retryErr).toMatchObject({ code: "invalid", details: { field: "retry" } });
    const s = track(createSyncer({ datastore: ds, kinds: ["Node"] }));
    s[Symbol.asyncIterator]();
    let err: unknown;
    try {
      s[Symbol.asyncIterator]();
    } catch (e) {
      err = e;
    }
    expect(isDatastoreError(err, "invalid")).toBe(true);
  });

  it("a kind the datastore rejects stops the syncer with invalid instead of retrying forever", async () => {
    const ds = track(createMemoryDatastore());
    const s = track(createSyncer({ datastore: ds, kinds: ["Node", "not a kind"], retry: FAST_RETRY }));
    const err = await read(s, []);
    expect(isDatastoreError(err, "invalid")).toBe(true);
    expect(s.status.state).toBe("closed");
  });

  it("follows a dozen kinds without Node's listener-leak warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const ds = track(createMemoryDatastore());
      const kinds = Array.from({ length: 12 }, (_, i) => `Kind${i}`);
      const s = track(createSyncer({ datastore: ds, kinds, retry: FAST_RETRY }));
      const events: SyncerEvent[] = [];
      void read(s, events);
      await until(() => events.some((e) => e.type === "in-sync"), "in-sync");
      await sleep(20); // warnings are emitted on a later tick
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("MaxListenersExceededWarning");
  });
});
