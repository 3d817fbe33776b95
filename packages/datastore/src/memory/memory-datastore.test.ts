import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryDatastore, isDatastoreError, type StoredObject, type WatchEvent } from "../index.js";
import { decodeSnapshot, encodeSnapshot, writeSnapshotAtomic } from "./snapshot.js";

const pool = (name: string, n = 0): StoredObject & { spec: { n: number } } => ({
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name },
  spec: { n },
});

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error("expected a failure");
}

async function take(
  w: AsyncIterable<WatchEvent>,
  n: number,
): Promise<{ events: WatchEvent[]; error?: unknown }> {
  const events: WatchEvent[] = [];
  try {
    for await (const e of w) {
      events.push(e);
      if (events.length === n) break;
    }
  } catch (error) {
    return { events, error };
  }
  return { events };
}

describe("memory datastore: snapshot persistence", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-ds-snap-"));
    path = join(dir, "state.json");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a restarted store has every object, its revision, uid and resourceVersion", async () => {
    const ds1 = createMemoryDatastore({ snapshotPath: path });
    const a = await ds1.create(pool("a", 1));
    const b = await ds1.create(pool("b", 2));
    const b2 = await ds1.update({ ...b, spec: { n: 3 } });
    await ds1.create({ kind: "WorkloadEndpoint", metadata: { name: "w", namespace: "ns" } });
    await ds1.delete({ kind: "IPPool", name: "a" });
    const before = await ds1.list("IPPool");
    const rev = ds1.revision;
    // No close(): with durability "sync" an acknowledged write is already on disk (as after a crash).
    const ds2 = createMemoryDatastore({ snapshotPath: path });
    expect(ds2.revision).toBe(rev);
    expect(await ds2.list("IPPool")).toEqual(before);
    expect(await ds2.get({ kind: "IPPool", name: "b" })).toEqual(b2);
    expect((await ds2.list("WorkloadEndpoint", { namespace: "ns" })).items).toHaveLength(1);
    expect(isDatastoreError(await errorOf(ds2.get({ kind: "IPPool", name: "a" })), "not-found")).toBe(true);
    // Revisions keep increasing across the restart, so resourceVersions never repeat.
    const c = await ds2.create(pool("c"));
    expect(Number(c.metadata.resourceVersion)).toBe(Number(rev) + 1);
    expect(a.metadata.uid).not.toBe(c.metadata.uid);
    await ds1.close();
    await ds2.close();
  });

  it("history does not survive a restart: an older watch gets compacted, a current one works", async () => {
    const ds1 = createMemoryDatastore({ snapshotPath: path });
    const a = await ds1.create(pool("a"));
    await ds1.create(pool("b"));
    await ds1.close();
    const ds2 = createMemoryDatastore({ snapshotPath: path });
    const old = await take(ds2.watch("IPPool", { fromRevision: a.metadata.resourceVersion! }), 1);
    expect(isDatastoreError(old.error, "compacted")).toBe(true);
    const w = ds2.watch("IPPool", { fromRevision: ds2.revision });
    await ds2.create(pool("c"));
    expect((await take(w, 1)).events[0]?.object.metadata.name).toBe("c");
    await ds2.close();
  });

  it("durability sync: the file holds a write as soon as it is acknowledged", async () => {
    const ds = createMemoryDatastore({ snapshotPath: path });
    const created = await Promise.all([ds.create(pool("a")), ds.create(pool("b")), ds.create(pool("c"))]);
    const onDisk = decodeSnapshot(await readFile(path, "utf8"), path);
    expect(onDisk.entries.map((e) => e.name).sort()).toEqual(["a", "b", "c"]);
    expect(onDisk.revision).toBeGreaterThanOrEqual(
      Math.max(...created.map((o) => Number(o.metadata.resourceVersion))),
    );
    await ds.close();
  });

  it("durability sync: a read issued while a write is staged sees it (linearizable reads, no CAS livelock)", async () => {
    const ds = createMemoryDatastore({ snapshotPath: path });
    const v1 = await ds.create(pool("p", 1));
    const pending = ds.update({ ...v1, spec: { n: 2 } });
    // Issued before the staged write's snapshot is on disk: it must wait for it, not read the old state
    // (which a read-modify-write loop would then retry against forever, in microtasks only).
    const read = await ds.get<ReturnType<typeof pool>>({ kind: "IPPool", name: "p" });
    expect(read.spec.n).toBe(2);
    expect((await ds.list("IPPool")).items.map((o) => (o as ReturnType<typeof pool>).spec.n)).toEqual([2]);
    await pending;
    await ds.close();
  });

  it("durability sync: a write staged while an earlier snapshot is being written still guards later writes", async () => {
    const ds = createMemoryDatastore({ snapshotPath: path });
    const first = ds.create(pool("a"));
    // The flush loop takes `a`'s snapshot in this check phase; `b` is staged after it, for the next one.
    await new Promise((r) => setImmediate(r));
    const second = ds.create(pool("b"));
    await first; // `a` has landed; `b` is still staged, its snapshot being written
    expect(isDatastoreError(await errorOf(ds.create(pool("b"))), "already-exists")).toBe(true);
    await second;
    expect((await ds.list("IPPool")).items.map((o) => o.metadata.name)).toEqual(["a", "b"]);
    await ds.close();
  });

  it("durability async: acknowledged at once, on disk after flush()", async () => {
    const ds = createMemoryDatastore({ snapshotPath: path, durability: "async" });
    await ds.create(pool("a"));
    await ds.flush();
    expect(decodeSnapshot(await readFile(path, "utf8"), path).entries.map((e) => e.name)).toEqual(["a"]);
    await ds.create(pool("b"));
    await ds.close(); // close flushes
    expect(decodeSnapshot(await readFile(path, "utf8"), path).entries).toHaveLength(2);
  });

  it("a torn temp file left by a crash never replaces the good snapshot and is cleaned up", async () => {
    const ds1 = createMemoryDatastore({ snapshotPath: path });
    await ds1.create(pool("a", 7));
    await ds1.close();
    const good = await readFile(path, "utf8");
    // What a crash in the middle of writing the next snapshot leaves behind.
    await writeFile(join(dir, "state.json.tmp-12345-deadbeef"), good.slice(0, good.length / 2));
    const ds2 = createMemoryDatastore({ snapshotPath: path });
    expect(
      (
        await ds2.get<{ kind: string; metadata: { name: string }; spec: { n: number } }>({
          kind: "IPPool",
          name: "a",
        })
      ).spec.n,
    ).toBe(7);
    expect(await readdir(dir)).toEqual(["state.json"]);
    await ds2.close();
  });

  it("readers of the snapshot path only ever see a complete snapshot, old or new", async () => {
    const big = (rev: number) =>
      encodeSnapshot({
        revision: rev,
        entries: Array.from({ length: 2000 }, (_, i) => ({
          kind: "IPPool",
          namespace: undefined,
          name: `p${i}`,
          createRevision: 1,
          modRevision: rev,
          json: JSON.stringify({
            kind: "IPPool",
            metadata: { name: `p${i}` },
            spec: { rev, pad: "z".repeat(100) },
          }),
        })),
      });
    await writeSnapshotAtomic(path, big(1));
    let reading = true;
    let reads = 0;
    const reader = (async () => {
      while (reading) {
        const s = decodeSnapshot(await readFile(path, "utf8"), path); // throws on a torn file
        expect(s.entries).toHaveLength(2000);
        reads++;
      }
    })();
    for (let rev = 2; rev <= 15; rev++) await writeSnapshotAtomic(path, big(rev));
    reading = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(decodeSnapshot(await readFile(path, "utf8"), path).revision).toBe(15);
    expect(await readdir(dir)).toEqual(["state.json"]);
  });

  it("a corrupt snapshot fails start-up with invalid instead of starting empty", async () => {
    await writeFile(path, "{ not json");
    const e = await errorOf(() => createMemoryDatastore({ snapshotPath: path }));
    expect(isDatastoreError(e, "invalid")).toBe(true);
    await writeFile(path, JSON.stringify({ something: "else" }));
    expect(
      isDatastoreError(await errorOf(() => createMemoryDatastore({ snapshotPath: path })), "invalid"),
    ).toBe(true);
    // Well-formed envelope, malformed objects: still `invalid`, never a TypeError.
    const format = "margay.datastore.snapshot/v1";
    const entry = { kind: "IPPool", namespace: null, name: "a", createRevision: 2, modRevision: 2 };
    for (const objects of [
      [null],
      [{ ...entry, object: null }],
      [{ ...entry, name: 7, object: { metadata: { name: "a" } } }],
      [{ ...entry, modRevision: 9, object: { metadata: { name: "a" } } }],
    ]) {
      await writeFile(path, JSON.stringify({ format, revision: 3, objects }));
      const bad = await errorOf(() => createMemoryDatastore({ snapshotPath: path }));
      expect(isDatastoreError(bad, "invalid"), String(bad)).toBe(true);
    }
  });

  it("a snapshot that cannot be written fails the write with unavailable", async () => {
    const ds = createMemoryDatastore({ snapshotPath: join(dir, "missing-dir", "state.json") });
    const e = await errorOf(ds.create(pool("a")));
    expect(isDatastoreError(e, "unavailable")).toBe(true);
    expect((e as { retryable: boolean }).retryable).toBe(true);
  });

  it("a write whose snapshot cannot be written is not applied: no data, no revision, no event", async () => {
    // Once the store is open, the snapshot's directory becomes a plain file: no write can succeed there
    // (even as root, which file modes would not stop).
    const blocker = join(dir, "blocker");
    await mkdir(blocker);
    const ds = createMemoryDatastore({ snapshotPath: join(blocker, "state.json") });
    await rm(blocker, { recursive: true });
    await writeFile(blocker, "");
    const ac = new AbortController();
    const watch = ds.watch("IPPool", { signal: ac.signal });
    const seen: WatchEvent[] = [];
    const reading = (async () => {
      try {
        for await (const ev of watch) seen.push(ev);
      } catch {
        // aborted below
      }
    })();
    const before = ds.revision;
    // Two writes in the same tick share one (failing) snapshot; the second depends on the first.
    const [e1, e2] = await Promise.all([
      errorOf(ds.create(pool("a"))),
      errorOf(
        ds.transaction([
          {
            op: "update",
            object: { ...pool("a", 1), metadata: { name: "a", resourceVersion: String(Number(before) + 1) } },
          },
        ]),
      ),
    ]);
    for (const e of [e1, e2]) {
      expect(isDatastoreError(e, "unavailable")).toBe(true);
      expect((e as { details: { reason: string } }).details.reason).toBe("not-applied");
    }
    expect(ds.revision).toBe(before);
    expect(isDatastoreError(await errorOf(ds.get({ kind: "IPPool", name: "a" })), "not-found")).toBe(true);
    expect((await ds.list("IPPool")).items).toEqual([]);
    // A retry is a fresh write, not a conflict with a half-applied one.
    const again = await errorOf(ds.create(pool("a")));
    expect(isDatastoreError(again, "unavailable")).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await reading;
    expect(seen).toEqual([]);
    await ds.close();
  });

  it("after a failed snapshot the store carries on: the retried write succeeds and is the only event", async () => {
    const sub = join(dir, "later");
    const ds = createMemoryDatastore({ snapshotPath: join(sub, "state.json") });
    const watch = ds.watch("IPPool");
    const e = await errorOf(ds.create(pool("a", 1)));
    expect(isDatastoreError(e, "unavailable")).toBe(true);
    await mkdir(sub);
    const created = await ds.create(pool("a", 2));
    expect(created.metadata.resourceVersion).toBe("2");
    const { events } = await take(watch, 1);
    expect(
      events.map((ev) => [ev.type, ev.revision, (ev.object as unknown as { spec: { n: number } }).spec.n]),
    ).toEqual([["added", "2", 2]]);
    const restarted = createMemoryDatastore({ snapshotPath: join(sub, "state.json") });
    expect(restarted.revision).toBe("2");
    await ds.close();
    await restarted.close();
  });
});

describe("memory datastore: options", () => {
  it("validate: a throwing validator becomes invalid with the thrown error as cause", async () => {
    const boom = new Error("spec.n must be even");
    const ds = createMemoryDatastore({
      validate: (o) => {
        if (((o as StoredObject & { spec?: { n?: number } }).spec?.n ?? 0) % 2 === 1) throw boom;
      },
    });
    await ds.create(pool("ok", 2));
    const e = await errorOf(ds.create(pool("bad", 1)));
    expect(isDatastoreError(e, "invalid")).toBe(true);
    expect((e as Error).cause).toBe(boom);
    expect((e as { details: object }).details).toMatchObject({ kind: "IPPool", name: "bad" });
    const t = await errorOf(ds.transaction([{ op: "create", object: pool("bad2", 3) }]));
    expect(isDatastoreError(t, "invalid")).toBe(true);
    expect((await ds.list("IPPool")).items.map((o) => o.metadata.name)).toEqual(["ok"]);
  });

  it("kindScopes: a namespace on the wrong side is invalid", async () => {
    const ds = createMemoryDatastore({ kindScopes: { IPPool: "cluster", WorkloadEndpoint: "namespaced" } });
    const cases: Promise<unknown>[] = [
      ds.create({ kind: "IPPool", metadata: { name: "p", namespace: "ns" } }),
      ds.create({ kind: "WorkloadEndpoint", metadata: { name: "w" } }),
      ds.get({ kind: "WorkloadEndpoint", name: "w" }),
      ds.list("IPPool", { namespace: "ns" }),
    ];
    for (const c of cases) expect(isDatastoreError(await errorOf(c), "invalid")).toBe(true);
    expect(() => ds.watch("IPPool", { namespace: "ns" })).toThrow(/cluster-scoped/);
    await ds.create({ kind: "IPPool", metadata: { name: "p" } });
    await ds.create({ kind: "WorkloadEndpoint", metadata: { name: "w", namespace: "ns" } });
  });

  it("historyLimit: old history is compacted automatically, in whole revisions", async () => {
    const ds = createMemoryDatastore({ historyLimit: 5 });
    const first = await ds.create(pool("p0"));
    for (let i = 1; i < 10; i++) await ds.create(pool(`p${i}`));
    const old = await take(ds.watch("IPPool", { fromRevision: first.metadata.resourceVersion! }), 1);
    expect(isDatastoreError(old.error, "compacted")).toBe(true);
    expect((old.error as { details: { compactRevision?: string } }).details.compactRevision).toBe(
      ds.compactRevision,
    );
    const fromOldest = String(Number(ds.compactRevision) - 1);
    const kept = await take(ds.watch("IPPool", { fromRevision: fromOldest }), 5);
    expect(kept.events.map((e) => e.object.metadata.name)).toEqual(["p5", "p6", "p7", "p8", "p9"]);
  });

  it("watchQueueLimit: a watcher that stops reading fails with compacted (slow-consumer) after its backlog", async () => {
    const ds = createMemoryDatastore({ watchQueueLimit: 3 });
    const w = ds.watch("IPPool");
    for (let i = 0; i < 5; i++) await ds.create(pool(`p${i}`));
    const got = await take(w, 10);
    expect(got.events.map((e) => e.object.metadata.name)).toEqual(["p0", "p1", "p2"]);
    expect(isDatastoreError(got.error, "compacted")).toBe(true);
    expect((got.error as { details: { reason?: string } }).details.reason).toBe("slow-consumer");
    // Other watchers and writes are unaffected.
    await ds.create(pool("p5"));
  });

  it("watchers share one event log: a burst to 200 watchers is held once, and each reads all of it in order", async () => {
    const ds = createMemoryDatastore({ historyLimit: 1_000, watchQueueLimit: 1_000 });
    const ws = Array.from({ length: 200 }, () => ds.watch("IPPool"));
    for (let i = 0; i < 50; i++) await ds.create(pool(`p${i}`));
    // 50 events kept once for the history and all 200 watchers, not once per watcher.
    expect(ds.retainedEvents).toBe(50);
    const got = await Promise.all(ws.map((w) => take(w, 50)));
    const names = Array.from({ length: 50 }, (_, i) => `p${i}`);
    for (const g of got) expect(g.events.map((e) => e.object.metadata.name)).toEqual(names);
    // Every watcher hands out the same frozen event object.
    expect(got[199]!.events[7]).toBe(got[0]!.events[7]);
    await ds.close();
  });

  it("a slow watcher keeps its unread events in the log past a compaction, and itself once historyLimit behind", async () => {
    const ds = createMemoryDatastore({ historyLimit: 5, watchQueueLimit: 20 });
    const first = await ds.create(pool("p0"));
    const w = ds.watch("IPPool", { fromRevision: first.metadata.resourceVersion! });
    for (let i = 1; i <= 4; i++) await ds.create(pool(`p${i}`));
    await ds.compact(ds.revision);
    // The history keeps only p4 now, but the watch's four unread events stay in the log.
    expect(ds.retainedEvents).toBe(4);
    const late = await take(ds.watch("IPPool", { fromRevision: first.metadata.resourceVersion! }), 1);
    expect(isDatastoreError(late.error, "compacted")).toBe(true);
    // More than historyLimit behind: its unread events are copied out, the log holds only the history.
    for (let i = 5; i <= 10; i++) await ds.create(pool(`p${i}`));
    expect(ds.retainedEvents).toBe(5);
    const it = w[Symbol.asyncIterator]();
    const next = async () => ((await it.next()).value as WatchEvent).object.metadata.name;
    const got: string[] = [];
    for (let i = 0; i < 10; i++) got.push(await next());
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `p${i + 1}`));
    await ds.create(pool("p11"));
    expect(ds.retainedEvents).toBe(5);
    expect(await next()).toBe("p11");
    await w.close();
  });

  it("a watch far behind in the log keeps its few unread events itself, so the log stays bounded", async () => {
    const ds = createMemoryDatastore({ historyLimit: 5, watchQueueLimit: 5 });
    const w = ds.watch("IPPool");
    await ds.create(pool("p0"));
    await ds.create(pool("p1"));
    for (let i = 0; i < 30; i++) await ds.create({ ...pool(`n${i}`), kind: "Node" });
    // Only the history: the watch's two unread events no longer pin 30 others in the log.
    expect(ds.retainedEvents).toBe(5);
    await ds.create(pool("p2"));
    const got = await take(w, 3);
    expect(got.error).toBeUndefined();
    expect(got.events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["added", "p0"],
      ["added", "p1"],
      ["added", "p2"],
    ]);
  });

  it("a large watchQueueLimit does not let an unread watch pin the log: it is spilled once historyLimit behind", async () => {
    const ds = createMemoryDatastore({ historyLimit: 10, watchQueueLimit: 1_000_000 });
    const w = ds.watch("IPPool");
    await ds.create(pool("p0"));
    for (let i = 0; i < 200; i++) {
      await ds.create({ ...pool(`n${i}`), kind: "Node" });
      // The history, plus at most the one revision just written before the watch was spilled.
      expect(ds.retainedEvents).toBeLessThanOrEqual(11);
    }
    await ds.create(pool("p1"));
    const got = await take(w, 2);
    expect(got.error).toBeUndefined();
    expect(got.events.map((e) => e.object.metadata.name)).toEqual(["p0", "p1"]);
    await ds.close();
  });

  it("a watch's queue limit counts only its own events; a failed watch still delivers what it had", async () => {
    const ds = createMemoryDatastore({ historyLimit: 2, watchQueueLimit: 3 });
    const mine = ds.watch("WorkloadEndpoint", { namespace: "a" });
    const slow = ds.watch("WorkloadEndpoint", { namespace: "b" });
    const wep = (ns: string, name: string): StoredObject => ({
      apiVersion: "projectcalico.org/v3",
      kind: "WorkloadEndpoint",
      metadata: { name, namespace: ns },
    });
    for (let i = 0; i < 6; i++) await ds.create(wep("b", `w${i}`));
    for (let i = 0; i < 3; i++) await ds.create(wep("a", `w${i}`));
    // `slow` overflowed at its fourth event; the log moves on, and it still has its first three.
    for (let i = 6; i < 20; i++) await ds.create(wep("b", `w${i}`));
    const a = await take(mine, 3);
    expect(a.error).toBeUndefined();
    expect(a.events.map((e) => e.object.metadata.name)).toEqual(["w0", "w1", "w2"]);
    const b = await take(slow, 10);
    expect(b.events.map((e) => e.object.metadata.name)).toEqual(["w0", "w1", "w2"]);
    expect((b.error as { details: { reason?: string } }).details.reason).toBe("slow-consumer");
    expect(ds.retainedEvents).toBe(2);
  });

  it("a cancelled watch stops holding its unread events in the log", async () => {
    const ds = createMemoryDatastore({ historyLimit: 10 });
    const ac = new AbortController();
    const w = ds.watch("IPPool", { signal: ac.signal });
    for (let i = 0; i < 6; i++) await ds.create(pool(`p${i}`));
    await ds.compact(ds.revision);
    expect(ds.retainedEvents).toBe(6);
    ac.abort();
    expect(await take(w, 1)).toEqual({ events: [] });
    // Only the history: compact(revision) keeps that revision's own event.
    expect(ds.retainedEvents).toBe(1);
  });

  it("a transaction of many ops refuses a key written twice, and writes many distinct keys", async () => {
    const ds = createMemoryDatastore();
    const ops = Array.from({ length: 20 }, (_, i) => ({ op: "create" as const, object: pool(`t${i}`) }));
    const dup = await errorOf(ds.transaction([...ops, { op: "create", object: pool("t3") }]));
    expect(isDatastoreError(dup, "invalid")).toBe(true);
    expect((dup as { details: { opIndex?: number; name?: string } }).details).toMatchObject({
      opIndex: 20,
      name: "t3",
    });
    const res = await ds.transaction(ops);
    expect(res.results).toHaveLength(20);
    expect((await ds.list("IPPool")).items).toHaveLength(20);
  });

  it("compact beyond the current revision is invalid", async () => {
    const ds = createMemoryDatastore();
    await ds.create(pool("a"));
    expect(isDatastoreError(await errorOf(ds.compact(String(Number(ds.revision) + 1))), "invalid")).toBe(
      true,
    );
    await ds.compact(ds.revision);
    expect(ds.compactRevision).toBe(ds.revision);
  });

  it("rejects bad options", () => {
    expect(() => createMemoryDatastore({ historyLimit: 0 })).toThrow(/historyLimit/);
    expect(() => createMemoryDatastore({ durability: "maybe" as "sync" })).toThrow(/durability/);
  });
});

describe("memory datastore: scale paths", () => {
  it("watchers share one deep-frozen event (no copy per watcher), live and replayed from history", async () => {
    const ds = createMemoryDatastore();
    const from = ds.revision;
    const a = ds.watch("IPPool");
    const b = ds.watch("IPPool");
    await ds.create(pool("p1", 1));
    const created: StoredObject = await ds.update({ ...pool("p1", 2), metadata: { name: "p1" } });
    const [ea, eb] = await Promise.all([take(a, 2), take(b, 2)]);
    const replayed = await take(ds.watch("IPPool", { fromRevision: from }), 2);
    for (let i = 0; i < 2; i++) {
      expect(eb.events[i]).toBe(ea.events[i]);
      expect(replayed.events[i]).toBe(ea.events[i]);
    }
    const ev = ea.events[1]!;
    expect(Object.isFrozen(ev)).toBe(true);
    expect(Object.isFrozen(ev.object.metadata)).toBe(true);
    expect(Object.isFrozen(ev.previous)).toBe(true);
    expect(ev.object).toMatchObject({
      spec: { n: 2 },
      metadata: { resourceVersion: created.metadata.resourceVersion },
    });
    // A watcher cannot change what another sees, nor the store.
    expect(() => {
      (ev.object as StoredObject & { spec: { n: number } }).spec.n = 99;
    }).toThrow(TypeError);
    expect(
      (await ds.get<StoredObject & { spec: { n: number } }>({ kind: "IPPool", name: "p1" })).spec.n,
    ).toBe(2);
    await ds.close();
  });

  it("lists from the index in list order: cluster-scoped first, then by namespace and name, prefix per scope", async () => {
    const ds = createMemoryDatastore();
    const names = ["b", "a-2", "a-10", "a", "ab", "a-1"];
    const scopes = [undefined, "ns2", "ns", "ns-1"];
    for (const namespace of scopes)
      for (const name of names)
        await ds.create({
          kind: "Thing",
          metadata: namespace === undefined ? { name } : { name, namespace },
        });
    await ds.delete({ kind: "Thing", name: "a-10", namespace: "ns" });
    const ids = (r: { items: StoredObject[] }) =>
      r.items.map((o) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`);
    const all = ids(await ds.list("Thing"));
    const expected: string[] = [];
    for (const ns of ["", "ns", "ns-1", "ns2"])
      for (const name of ["a", "a-1", "a-10", "a-2", "ab", "b"])
        if (!(ns === "ns" && name === "a-10")) expected.push(`${ns}/${name}`);
    expect(all).toEqual(expected);
    expect(ids(await ds.list("Thing", { namePrefix: "a-" }))).toEqual(
      expected.filter((id) => id.split("/")[1]!.startsWith("a-")),
    );
    expect(ids(await ds.list("Thing", { namespace: "ns", namePrefix: "a" }))).toEqual([
      "ns/a",
      "ns/a-1",
      "ns/a-2",
      "ns/ab",
    ]);
    expect(ids(await ds.list("Thing", { namespace: "ns-1", namePrefix: "c" }))).toEqual([]);
    // A deleted scope's last entry takes the scope out of the walk.
    for (const name of names) await ds.delete({ kind: "Thing", name, namespace: "ns2" });
    expect(ids(await ds.list("Thing", { namePrefix: "b" }))).toEqual(["/b", "ns/b", "ns-1/b"]);
    await ds.close();
  });
});

describe("memory datastore: stored objects are kept, frozen, not as JSON text", () => {
  it("a transaction result is the stored object itself, frozen, and the watch event shares it", async () => {
    const ds = createMemoryDatastore();
    const w = ds.watch("IPPool");
    const res = await ds.transaction([{ op: "create", object: pool("a", 1) }]);
    const stored = res.results[0]!;
    expect(Object.isFrozen(stored)).toBe(true);
    expect(Object.isFrozen((stored as ReturnType<typeof pool>).spec)).toBe(true);
    const { events } = await take(w, 1);
    expect(events[0]!.object).toBe(stored);
    await w.close();
    await ds.close();
  });

  it("a write that reuses parts of a stored object shares them instead of storing a second copy", async () => {
    const ds = createMemoryDatastore();
    const w = ds.watch("Block");
    type Block = StoredObject & { spec: { attrs: { h: string }[]; n: number } };
    const block: Block = { kind: "Block", metadata: { name: "b" }, spec: { attrs: [{ h: "x" }], n: 1 } };
    const first = await ds.transaction([{ op: "create", object: block }]);
    const prev = first.results[0] as Block;
    // The caller builds the next version from the frozen result, as IPAM does.
    const next = { ...prev, spec: { ...prev.spec, attrs: [...prev.spec.attrs, { h: "y" }], n: 2 } };
    const second = await ds.transaction([{ op: "update", object: next }]);
    const now = second.results[0] as typeof prev;
    expect(now.spec.attrs[0]).toBe(prev.spec.attrs[0]);
    expect(now.spec.attrs[1]).not.toBe(next.spec.attrs[1]); // the caller's own object was copied
    expect(now.metadata).not.toBe(prev.metadata);
    expect(now.metadata.resourceVersion).toBe(second.revision);
    const { events } = await take(w, 2);
    expect(events[1]!.previous).toBe(prev);
    expect(events[1]!.object).toBe(now);
    await w.close();
    await ds.close();
  });

  it("get, list, create, update and delete still hand out copies the caller may change", async () => {
    const ds = createMemoryDatastore();
    const created = await ds.create(pool("a", 1));
    created.spec.n = 99;
    const got = await ds.get<ReturnType<typeof pool>>({ kind: "IPPool", name: "a" });
    expect(got.spec.n).toBe(1);
    got.spec.n = 2;
    const updated = await ds.update(got);
    updated.spec.n = 98;
    const listed = (await ds.list<ReturnType<typeof pool>>("IPPool")).items[0]!;
    expect(listed.spec.n).toBe(2);
    listed.spec.n = 97;
    const deleted = await ds.delete<ReturnType<typeof pool>>({ kind: "IPPool", name: "a" });
    expect(deleted.spec.n).toBe(2);
    deleted.spec.n = 96;
    await ds.close();
  });

  it("a snapshot written from stored objects reloads equal, and the reloaded objects are shared too", async () => {
    const dir = await mkdtemp(join(tmpdir(), "margay-mem-obj-"));
    try {
      const path = join(dir, "snap.json");
      const ds = createMemoryDatastore({ snapshotPath: path });
      await ds.create(pool("a", 1));
      await ds.create({
        kind: "Thing",
        metadata: { name: "t", namespace: "ns" },
        spec: { x: [1, null, "s"] },
      });
      await ds.close();
      const again = createMemoryDatastore({ snapshotPath: path });
      const w = again.watch("IPPool", { fromRevision: again.revision });
      expect((await again.get<ReturnType<typeof pool>>({ kind: "IPPool", name: "a" })).spec.n).toBe(1);
      expect((await again.list("Thing")).items[0]).toMatchObject({ spec: { x: [1, null, "s"] } });
      const r = await again.transaction([
        { op: "update", object: await again.get({ kind: "IPPool", name: "a" }) },
      ]);
      expect(Object.isFrozen(r.results[0])).toBe(true);
      await w.close();
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("memory datastore: creation timestamps", () => {
  it("follow the injected clock: objects created in one millisecond share it, a later one gets its own", async () => {
    let t = Date.parse("2026-01-02T03:04:05.006Z");
    const ds = createMemoryDatastore({ now: () => new Date(t) });
    const make = (name: string) =>
      ds.create<StoredObject & { spec: object }>({ kind: "Thing", metadata: { name }, spec: {} });
    try {
      const a = await make("a");
      const b = await make("b");
      t += 1;
      const c = await make("c");
      t -= 5; // a clock stepped back is followed too
      const d = await make("d");
      expect([a, b, c, d].map((o) => o.metadata.creationTimestamp)).toEqual([
        "2026-01-02T03:04:05.006Z",
        "2026-01-02T03:04:05.006Z",
        "2026-01-02T03:04:05.007Z",
        "2026-01-02T03:04:05.002Z",
      ]);
      // An update keeps the creation time.
      t += 100;
      const a2 = await ds.update<StoredObject & { spec: object }>({ ...a, spec: { x: 1 } });
      expect(a2.metadata.creationTimestamp).toBe("2026-01-02T03:04:05.006Z");
    } finally {
      await ds.close();
    }
  });
});
