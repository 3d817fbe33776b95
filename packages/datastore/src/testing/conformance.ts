/**
 * The shared conformance suite of the {@link Datastore} seam. Every backend (ours, or a vendor's) runs it:
 *
 * ```ts
 * import { describeDatastoreConformance } from "@margay/datastore/testing";
 * describeDatastoreConformance("my-backend", async () => {
 *   const ds = await openMyBackend();
 *   return { ds, compact: (rev) => ds.compactTo(rev), cleanup: () => ds.close() };
 * });
 * ```
 */

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isDatastoreError } from "../errors.js";
import type {
  Datastore,
  DatastoreErrorCode,
  ObjectKey,
  StoredObject,
  TxnOp,
  Watch,
  WatchEvent,
} from "../types.js";

/** What a conformance factory returns: a fresh, empty datastore and how to dispose of it. */
export interface ConformanceContext {
  /** The fresh, empty datastore the test runs against. */
  ds: Datastore;
  /**
   * Compacts the backend's history before `revision` (etcd semantics: a watch may still start right after
   * `revision - 1`). Omit if the backend cannot compact on demand; the compaction tests are then skipped.
   */
  compact?: ((revision: string) => Promise<void>) | undefined;
  /** Releases everything the factory created. Called after each test, also after `ds.close()`. */
  cleanup: () => Promise<void>;
}

/** Creates one fresh, empty datastore per test. */
export type ConformanceFactory = () => Promise<ConformanceContext>;

/** Options of {@link describeDatastoreConformance}. */
export interface DatastoreConformanceOptions {
  /** How long a test waits for expected watch events, ms. Default 10 000. */
  watchTimeoutMs?: number | undefined;
  /** Concurrent writers in the lost-update test. Default 20. */
  writers?: number | undefined;
  /** Increments per writer in the lost-update test. Default 5. */
  incrementsPerWriter?: number | undefined;
  /**
   * Opens a datastore of this backend that cannot reach its storage (e.g. an etcd client pointed at a closed
   * port, with short timeouts): every read and write must then fail `unavailable`. The suite closes it.
   * Omit for a backend without remote storage (such as the in-process one): the test is not registered.
   */
  unreachable?: (() => Promise<Datastore>) | undefined;
}

/**
 * @deprecated Use {@link DatastoreConformanceOptions}; `ConformanceOptions` was also the name of the CNI
 * kit's options (`@margay/cni/testing`), a different thing. Removed in the next minor release.
 */
export type ConformanceOptions = DatastoreConformanceOptions;

interface Counter extends StoredObject {
  spec: { n: number; note?: string };
}

const API = "margay.io/v1";
const POOL = "ConfPool";
const EP = "ConfEndpoint";

function pool(name: string, n = 0): Counter {
  return { apiVersion: API, kind: POOL, metadata: { name }, spec: { n } };
}

function endpoint(namespace: string, name: string, n = 0): Counter {
  return { apiVersion: API, kind: EP, metadata: { name, namespace }, spec: { n } };
}

const keyOf = (o: StoredObject): ObjectKey =>
  o.metadata.namespace === undefined
    ? { kind: o.kind, name: o.metadata.name }
    : { kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace };

/** Awaits `p` and returns the error it rejects with; fails the test if it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Asserts `p` rejects with a datastore error of `code` and returns it. */
async function expectCode(p: Promise<unknown>, code: DatastoreErrorCode) {
  const e = await rejection(p);
  if (!isDatastoreError(e)) throw new Error(`expected a DatastoreError(${code}), got: ${String(e)}`);
  expect(e.code).toBe(code);
  return e;
}

/** Starts a watch and asserts it fails with `code`, either at once or when iterated. */
async function expectWatchCode(start: () => Watch, code: DatastoreErrorCode, timeoutMs: number) {
  let w: Watch;
  try {
    w = start();
  } catch (e) {
    expect(isDatastoreError(e, code)).toBe(true);
    return;
  }
  const e = await rejection(collect(w, 1, timeoutMs));
  expect(isDatastoreError(e, code)).toBe(true);
}

/** Reads exactly `n` events (fails on timeout, reporting what arrived); leaves the watch open. */
async function collect(w: Watch, n: number, timeoutMs: number): Promise<WatchEvent[]> {
  const got: WatchEvent[] = [];
  if (n === 0) return got;
  const it = w[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`watch timed out after ${got.length}/${n} events: ${JSON.stringify(got)}`)),
      timeoutMs,
    );
  });
  try {
    while (got.length < n) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`watch ended after ${got.length}/${n} events`);
      got.push(r.value);
    }
    return got;
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts no further event arrives within `ms` (used after the expected ones, to catch duplicates). */
async function expectQuiet(w: Watch, ms: number): Promise<void> {
  const it = w[Symbol.asyncIterator]();
  const r = await Promise.race([
    it.next(),
    new Promise<"quiet">((res) => setTimeout(() => res("quiet"), ms)),
  ]);
  if (r !== "quiet") throw new Error(`unexpected extra watch event: ${JSON.stringify(r)}`);
}

const rev = (o: StoredObject) => Number(o.metadata.resourceVersion);

/**
 * Registers the conformance suite for one backend. `factory` is called before every test and must
 * return an empty store (e.g. a fresh key prefix on a shared server).
 */
export function describeDatastoreConformance(
  name: string,
  factory: ConformanceFactory,
  options: DatastoreConformanceOptions = {},
): void {
  const T = options.watchTimeoutMs ?? 10_000;
  const writers = options.writers ?? 20;
  const perWriter = options.incrementsPerWriter ?? 5;

  describe(`Datastore conformance: ${name}`, () => {
    let ctx: ConformanceContext;
    let ds: Datastore;
    const watches: Watch[] = [];
    const track = <W extends Watch>(w: W): W => {
      watches.push(w);
      return w;
    };

    beforeEach(async () => {
      ctx = await factory();
      ds = ctx.ds;
    });
    afterEach(async () => {
      await Promise.all(watches.splice(0).map((w) => w.close().catch(() => undefined)));
      await ctx.cleanup();
    });

    describe("crud and typed errors", () => {
      it("create assigns resourceVersion, uid and creationTimestamp; get returns the same", async () => {
        const created = await ds.create(pool("a", 1));
        expect(created.metadata.resourceVersion).toMatch(/^[1-9][0-9]*$/);
        expect(typeof created.metadata.uid).toBe("string");
        expect(Number.isNaN(Date.parse(created.metadata.creationTimestamp ?? ""))).toBe(false);
        const got = await ds.get<Counter>({ kind: POOL, name: "a" });
        expect(got).toEqual(created);
        expect(got.spec.n).toBe(1);
      });

      it("create of an existing object fails already-exists; get of a missing one not-found", async () => {
        await ds.create(pool("a"));
        const e = await expectCode(ds.create(pool("a")), "already-exists");
        expect(e.retryable).toBe(false);
        expect(e.details).toMatchObject({ kind: POOL, name: "a" });
        const nf = await expectCode(ds.get({ kind: POOL, name: "nope" }), "not-found");
        expect(nf.details).toMatchObject({ kind: POOL, name: "nope" });
        expect(nf.retryable).toBe(false);
      });

      it("update with the current resourceVersion succeeds and bumps it; a stale one conflicts", async () => {
        const v1 = await ds.create(pool("a", 1));
        const v2 = await ds.update<Counter>({ ...v1, spec: { n: 2 } });
        expect(rev(v2)).toBeGreaterThan(rev(v1));
        expect(v2.metadata.uid).toBe(v1.metadata.uid);
        expect(v2.metadata.creationTimestamp).toBe(v1.metadata.creationTimestamp);
        const e = await expectCode(ds.update<Counter>({ ...v1, spec: { n: 3 } }), "conflict");
        expect(e.retryable).toBe(true);
        expect(e.details).toMatchObject({
          kind: POOL,
          name: "a",
          expectedRevision: v1.metadata.resourceVersion,
          actualRevision: v2.metadata.resourceVersion,
        });
        expect((await ds.get<Counter>(keyOf(v1))).spec.n).toBe(2);
      });

      it("update without resourceVersion is unconditional and keeps uid/creationTimestamp", async () => {
        const v1 = await ds.create(pool("a", 1));
        await ds.update<Counter>({ ...v1, spec: { n: 2 } });
        const v3 = await ds.update<Counter>({
          apiVersion: API,
          kind: POOL,
          metadata: { name: "a" },
          spec: { n: 3 },
        });
        expect(v3.metadata.uid).toBe(v1.metadata.uid);
        expect(v3.metadata.creationTimestamp).toBe(v1.metadata.creationTimestamp);
        expect((await ds.get<Counter>(keyOf(v1))).spec.n).toBe(3);
      });

      it("update of a missing object fails not-found; of a recreated one (old uid) conflicts", async () => {
        await expectCode(ds.update(pool("ghost")), "not-found");
        const old = await ds.create(pool("a", 1));
        await ds.delete(keyOf(old));
        await ds.create(pool("a", 2));
        const { resourceVersion: _rv, ...noRv } = old.metadata;
        await expectCode(ds.update({ ...old, metadata: noRv }), "conflict");
      });

      it("returned objects are copies: mutating them (or the input) does not change the store", async () => {
        const input = pool("a", 1);
        const created = await ds.create<Counter>(input);
        input.spec.n = 99;
        created.spec.n = 98;
        const got = await ds.get<Counter>(keyOf(created));
        expect(got.spec.n).toBe(1);
        got.spec.n = 97;
        expect((await ds.get<Counter>(keyOf(created))).spec.n).toBe(1);
        const listed = await ds.list<Counter>(POOL);
        listed.items[0]!.spec.n = 96;
        expect((await ds.get<Counter>(keyOf(created))).spec.n).toBe(1);
      });

      const unreachable = options.unreachable;
      if (unreachable !== undefined)
        it("calls that cannot reach the storage fail with unavailable (retryable)", async () => {
          const cut = await unreachable();
          try {
            const calls: [string, () => Promise<unknown>][] = [
              ["get", () => cut.get({ kind: POOL, name: "a" })],
              ["list", () => cut.list(POOL)],
              ["create", () => cut.create(pool("a"))],
              ["update", () => cut.update({ ...pool("a"), metadata: { name: "a", resourceVersion: "5" } })],
              ["delete", () => cut.delete({ kind: POOL, name: "a" })],
              ["transaction", () => cut.transaction([{ op: "create", object: pool("b") }])],
            ];
            for (const [what, call] of calls) {
              const e = await rejection(call());
              expect(isDatastoreError(e, "unavailable"), `${what}: ${String(e)}`).toBe(true);
              expect((e as { retryable: boolean }).retryable, what).toBe(true);
            }
          } finally {
            await cut.close();
          }
        });

      it("rejects malformed keys, objects and revisions with invalid", async () => {
        const bad: Promise<unknown>[] = [
          ds.get({ kind: "", name: "a" }),
          ds.get({ kind: POOL, name: "" }),
          ds.get({ kind: POOL, name: "a/b" }),
          ds.get({ kind: POOL, name: ".." }),
          ds.get({ kind: "Bad/Kind", name: "a" }),
          ds.get({ kind: EP, name: "a", namespace: "_cluster" }),
          ds.get({ kind: EP, name: "a", namespace: "Upper" }),
          ds.create({ kind: POOL, metadata: { name: "x y" } }),
          ds.create({ kind: POOL } as unknown as StoredObject),
          ds.update({ kind: POOL, metadata: { name: "a", resourceVersion: "abc" } }),
          ds.update({ kind: POOL, metadata: { name: "a", resourceVersion: "-1" } }),
          ds.delete({ kind: POOL, name: "a" }, { resourceVersion: "1.5" }),
          ds.list(""),
          ds.list(POOL, { namespace: "a/b" }),
          ds.transaction([]),
          ds.transaction([{ op: "bogus" } as unknown as TxnOp]),
        ];
        for (const p of bad) {
          const e = await expectCode(p, "invalid");
          expect(e.retryable).toBe(false);
        }
        expect((await ds.list(POOL)).items).toEqual([]);
      });
    });

    describe("delete", () => {
      it("returns the last state; the object is gone; a second delete is not-found", async () => {
        const v1 = await ds.create(pool("a", 5));
        const gone = await ds.delete<Counter>(keyOf(v1));
        expect(gone.spec.n).toBe(5);
        expect(gone.metadata.resourceVersion).toBe(v1.metadata.resourceVersion);
        await expectCode(ds.get(keyOf(v1)), "not-found");
        await expectCode(ds.delete(keyOf(v1)), "not-found");
      });

      it("honours a resourceVersion precondition", async () => {
        const v1 = await ds.create(pool("a"));
        const v2 = await ds.update({ ...v1 });
        const e = await expectCode(
          ds.delete(keyOf(v1), { resourceVersion: v1.metadata.resourceVersion! }),
          "conflict",
        );
        expect(e.details).toMatchObject({ name: "a", actualRevision: v2.metadata.resourceVersion });
        await ds.get(keyOf(v1));
        await ds.delete(keyOf(v1), { resourceVersion: v2.metadata.resourceVersion! });
        await expectCode(ds.get(keyOf(v1)), "not-found");
      });
    });

    describe("compare-and-swap under concurrency", () => {
      it(`${writers} concurrent read-modify-write loops lose no update`, async () => {
        const created = await ds.create(pool("counter", 0));
        let successes = 0;
        const worker = async () => {
          for (let i = 0; i < perWriter; i++) {
            for (;;) {
              const cur = await ds.get<Counter>({ kind: POOL, name: "counter" });
              try {
                await ds.update<Counter>({ ...cur, spec: { n: cur.spec.n + 1 } });
                successes++;
                break;
              } catch (e) {
                if (!isDatastoreError(e, "conflict")) throw e;
              }
            }
          }
        };
        await Promise.all(Array.from({ length: writers }, worker));
        const final = await ds.get<Counter>({ kind: POOL, name: "counter" });
        expect(final.spec.n).toBe(writers * perWriter);
        // Every increment committed exactly once: one revision per successful update.
        expect(rev(final) - rev(created)).toBeGreaterThanOrEqual(writers * perWriter);
        expect(successes).toBe(writers * perWriter);
      });

      it("concurrent writes from one read: exactly one update, delete or transaction wins", async () => {
        const v1 = await ds.create(pool("race", 0));
        const updates = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => ds.update<Counter>({ ...v1, spec: { n: i + 1 } })),
        );
        const won = updates.filter((r) => r.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const r of updates) {
          if (r.status === "rejected") expect(isDatastoreError(r.reason, "conflict")).toBe(true);
        }
        const v2 = (won[0] as PromiseFulfilledResult<Counter>).value;
        expect(await ds.get<Counter>(keyOf(v1))).toEqual(v2);

        const txns = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            ds.transaction([
              { op: "update", object: { ...v2, spec: { n: 100 + i } } as Counter },
              { op: "create", object: pool(`side${i}`) },
            ]),
          ),
        );
        expect(txns.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const r of txns) {
          if (r.status === "rejected") expect(isDatastoreError(r.reason, "conflict")).toBe(true);
        }
        // The losers wrote nothing: exactly one side object exists, and it belongs to the winner.
        const after = await ds.list<Counter>(POOL, { namePrefix: "side" });
        expect(after.items).toHaveLength(1);
        const v3 = await ds.get<Counter>(keyOf(v1));
        expect(after.items[0]!.metadata.name).toBe(`side${v3.spec.n - 100}`);

        const deletes = await Promise.allSettled(
          Array.from({ length: 8 }, () =>
            ds.delete(keyOf(v3), { resourceVersion: v3.metadata.resourceVersion! }),
          ),
        );
        expect(deletes.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const r of deletes) {
          if (r.status === "rejected") expect(isDatastoreError(r.reason, "not-found", "conflict")).toBe(true);
        }
        await expectCode(ds.get(keyOf(v1)), "not-found");
      });

      it("concurrent creates of one name: exactly one wins", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => ds.create(pool("one", i))),
        );
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected") expect(isDatastoreError(r.reason, "already-exists")).toBe(true);
        }
      });
    });

    describe("transactions", () => {
      it("applies creates, updates, deletes and checks atomically at one revision", async () => {
        const b = await ds.create(pool("b", 1));
        const c = await ds.create(pool("c", 1));
        const d = await ds.create(pool("d", 1));
        const res = await ds.transaction([
          { op: "create", object: pool("a", 1) },
          { op: "update", object: { ...b, spec: { n: 2 } } as Counter },
          { op: "delete", key: keyOf(c), resourceVersion: c.metadata.resourceVersion! },
          { op: "check", key: keyOf(d), resourceVersion: d.metadata.resourceVersion! },
          { op: "check", key: { kind: POOL, name: "zz" }, absent: true },
        ]);
        expect(Number(res.revision)).toBeGreaterThan(rev(d));
        expect(res.results).toHaveLength(5);
        expect(res.results[0]?.metadata.resourceVersion).toBe(res.revision);
        expect(res.results[1]?.metadata.resourceVersion).toBe(res.revision);
        expect(res.results[1]?.metadata.uid).toBe(b.metadata.uid);
        expect(res.results.slice(2)).toEqual([null, null, null]);
        expect((await ds.get<Counter>({ kind: POOL, name: "a" })).metadata.resourceVersion).toBe(
          res.revision,
        );
        expect((await ds.get<Counter>(keyOf(b))).spec.n).toBe(2);
        await expectCode(ds.get(keyOf(c)), "not-found");
      });

      it("a failing precondition aborts every op and the conflict names the key", async () => {
        const b = await ds.create(pool("b", 1));
        await ds.update({ ...b, spec: { n: 2 } });
        const e = await expectCode(
          ds.transaction([
            { op: "create", object: pool("new", 1) },
            { op: "check", key: { kind: POOL, name: "new2" }, absent: true },
            { op: "update", object: { ...b, spec: { n: 10 } } as Counter },
          ]),
          "conflict",
        );
        expect(e.retryable).toBe(true);
        expect(e.details).toMatchObject({ kind: POOL, name: "b", opIndex: 2 });
        await expectCode(ds.get({ kind: POOL, name: "new" }), "not-found");
        expect((await ds.get<Counter>(keyOf(b))).spec.n).toBe(2);
      });

      it("names the failing op: a key written twice (invalid), create of an existing key, check of a missing one", async () => {
        const a = await ds.create(pool("a"));
        const e1 = await expectCode(
          ds.transaction([
            { op: "delete", key: keyOf(a) },
            { op: "create", object: pool("a") },
          ]),
          "invalid",
        );
        expect(e1.details).toMatchObject({ name: "a", opIndex: 1 });
        const e2 = await expectCode(
          ds.transaction([
            { op: "create", object: pool("x") },
            { op: "create", object: pool("a") },
          ]),
          "conflict",
        );
        expect(e2.details).toMatchObject({ name: "a", opIndex: 1, reason: "exists" });
        const e3 = await expectCode(
          ds.transaction([
            { op: "check", key: keyOf(a), resourceVersion: a.metadata.resourceVersion! },
            { op: "check", key: { kind: POOL, name: "missing" } },
          ]),
          "conflict",
        );
        expect(e3.details).toMatchObject({ name: "missing", opIndex: 1, reason: "missing" });
        await expectCode(ds.get({ kind: POOL, name: "x" }), "not-found");
      });

      it("rejects an update without resourceVersion", async () => {
        await ds.create(pool("a"));
        await expectCode(ds.transaction([{ op: "update", object: pool("a") }]), "invalid");
      });

      it("concurrent transactions over shared keys serialise (no lost update)", async () => {
        await ds.create(pool("x", 0));
        await ds.create(pool("y", 0));
        const worker = async () => {
          for (let i = 0; i < 3; i++) {
            for (;;) {
              const [x, y] = await Promise.all([
                ds.get<Counter>({ kind: POOL, name: "x" }),
                ds.get<Counter>({ kind: POOL, name: "y" }),
              ]);
              try {
                await ds.transaction([
                  { op: "update", object: { ...x, spec: { n: x.spec.n + 1 } } as Counter },
                  { op: "update", object: { ...y, spec: { n: y.spec.n + 1 } } as Counter },
                ]);
                break;
              } catch (e) {
                if (!isDatastoreError(e, "conflict")) throw e;
              }
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        const [x, y] = await Promise.all([
          ds.get<Counter>({ kind: POOL, name: "x" }),
          ds.get<Counter>({ kind: POOL, name: "y" }),
        ]);
        expect(x.spec.n).toBe(24);
        expect(y.spec.n).toBe(24);
        expect(x.metadata.resourceVersion).toBe(y.metadata.resourceVersion);
      });
    });

    describe("list", () => {
      it("returns items sorted by namespace then name, with a revision covering every write", async () => {
        await ds.create(endpoint("ns2", "b"));
        await ds.create(endpoint("ns1", "z"));
        const last = await ds.create(endpoint("ns1", "a"));
        await ds.create(pool("p"));
        const all = await ds.list(EP);
        expect(all.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
          "ns1/a",
          "ns1/z",
          "ns2/b",
        ]);
        expect(Number(all.revision)).toBeGreaterThanOrEqual(rev(last));
        const ns1 = await ds.list(EP, { namespace: "ns1" });
        expect(ns1.items.map((o) => o.metadata.name)).toEqual(["a", "z"]);
        const pre = await ds.list(EP, { namespace: "ns1", namePrefix: "z" });
        expect(pre.items.map((o) => o.metadata.name)).toEqual(["z"]);
        const preAll = await ds.list(EP, { namePrefix: "b" });
        expect(preAll.items.map((o) => o.metadata.name)).toEqual(["b"]);
        expect((await ds.list("ConfNothing")).items).toEqual([]);
      });

      it("is consistent under concurrent writes, and a watch from its revision fills the rest exactly", async () => {
        const total = 40;
        const writes = (async () => {
          for (let i = 0; i < total; i++) {
            await ds.create(pool(`w${String(i).padStart(3, "0")}`, i));
          }
        })();
        await new Promise((r) => setTimeout(r, 5));
        const snap = await ds.list(POOL);
        for (const o of snap.items) expect(rev(o)).toBeLessThanOrEqual(Number(snap.revision));
        const w = track(ds.watch(POOL, { fromRevision: snap.revision }));
        await writes;
        const events = await collect(w, total - snap.items.length, T);
        const seen = new Set(snap.items.map((o) => o.metadata.name));
        for (const ev of events) {
          expect(ev.type).toBe("added");
          expect(Number(ev.revision)).toBeGreaterThan(Number(snap.revision));
          expect(seen.has(ev.object.metadata.name)).toBe(false);
          seen.add(ev.object.metadata.name);
        }
        expect(seen.size).toBe(total);
        await expectQuiet(w, 200);
      });
    });

    describe("watch", () => {
      it("delivers every change in order with its revision, type, object and previous state", async () => {
        const start = (await ds.list(POOL)).revision;
        const w = track(ds.watch<Counter>(POOL, { fromRevision: start }));
        const a1 = await ds.create(pool("a", 1));
        const a2 = await ds.update<Counter>({ ...a1, spec: { n: 2 } });
        const b1 = await ds.create(pool("b", 1));
        const gone = await ds.delete<Counter>(keyOf(a2));
        await ds.create(endpoint("ns", "other")); // another kind: not delivered
        const evs = (await collect(w, 4, T)) as WatchEvent<Counter>[];
        expect(evs.map((e) => e.type)).toEqual(["added", "modified", "added", "deleted"]);
        expect(evs.map((e) => e.object.metadata.name)).toEqual(["a", "a", "b", "a"]);
        const revs = evs.map((e) => Number(e.revision));
        for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]!);
        expect(revs.slice(0, 3)).toEqual([rev(a1), rev(a2), rev(b1)]);
        expect(evs[0]!.object).toEqual(a1);
        expect(evs[1]!.object.spec.n).toBe(2);
        expect(evs[1]!.previous?.spec.n).toBe(1);
        expect(evs[3]!.object).toEqual(gone);
        expect(evs[3]!.previous?.metadata.name).toBe("a");
        await expectQuiet(w, 200);
      });

      it("resumes from the last seen revision with no gap and no duplicate", async () => {
        const start = (await ds.list(POOL)).revision;
        for (let i = 0; i < 6; i++) await ds.create(pool(`r${i}`, i));
        const w1 = track(ds.watch(POOL, { fromRevision: start }));
        const first = await collect(w1, 3, T);
        await w1.close();
        for (let i = 6; i < 9; i++) await ds.create(pool(`r${i}`, i));
        const w2 = track(ds.watch(POOL, { fromRevision: first[2]!.revision }));
        const rest = await collect(w2, 6, T);
        expect([...first, ...rest].map((e) => e.object.metadata.name)).toEqual(
          Array.from({ length: 9 }, (_, i) => `r${i}`),
        );
        await expectQuiet(w2, 200);
      });

      it("a watch from a revision not reached yet delivers only the changes after it", async () => {
        const start = Number((await ds.list(POOL)).revision);
        const from = start + 2;
        const w = track(ds.watch(POOL, { fromRevision: String(from) }));
        const written = [];
        for (const n of ["f1", "f2", "f3", "f4"]) written.push(await ds.create(pool(n)));
        const expected = written.filter((o) => rev(o) > from).map((o) => o.metadata.name);
        expect(expected.length).toBeGreaterThan(0);
        const evs = await collect(w, expected.length, T);
        expect(evs.map((e) => e.object.metadata.name)).toEqual(expected);
        await expectQuiet(w, 200);
      });

      it("events of one transaction share its revision and arrive in op order", async () => {
        const start = (await ds.list(POOL)).revision;
        const w = track(ds.watch(POOL, { fromRevision: start }));
        const res = await ds.transaction([
          { op: "create", object: pool("t2") },
          { op: "create", object: pool("t1") },
        ]);
        const after = await ds.create(pool("t3"));
        const evs = await collect(w, 3, T);
        expect(evs.map((e) => [e.object.metadata.name, e.revision])).toEqual([
          ["t2", res.revision],
          ["t1", res.revision],
          ["t3", after.metadata.resourceVersion],
        ]);
      });

      it("a namespace filter delivers that namespace only", async () => {
        const start = (await ds.list(EP)).revision;
        const w = track(ds.watch(EP, { namespace: "ns-a", fromRevision: start }));
        await ds.create(endpoint("ns-b", "x"));
        await ds.create(endpoint("ns-a", "x"));
        await ds.create(endpoint("ns-ab", "x"));
        await ds.create({ apiVersion: API, kind: EP, metadata: { name: "x" } });
        const evs = await collect(w, 1, T);
        expect(evs[0]!.object.metadata).toMatchObject({ namespace: "ns-a", name: "x" });
        await expectQuiet(w, 200);
      });

      it("close() and an aborted signal end the iteration", async () => {
        const w = ds.watch(POOL);
        const done = (async () => {
          for await (const _ of w) {
            // drain
          }
          return "ended";
        })();
        await w.close();
        expect(await done).toBe("ended");
        const ac = new AbortController();
        const w2 = ds.watch(POOL, { signal: ac.signal });
        const done2 = (async () => {
          for await (const _ of w2) {
            // drain
          }
          return "ended";
        })();
        ac.abort();
        expect(await done2).toBe("ended");
      });

      it("a watch from before the compaction point fails with compacted", async (t) => {
        if (ctx.compact === undefined) {
          t.skip("no compact() hook: this backend cannot compact on demand");
          return;
        }
        const a = await ds.create(pool("a"));
        const b = await ds.create(pool("b"));
        const c = await ds.create(pool("c"));
        await ctx.compact(c.metadata.resourceVersion!);
        await expectWatchCode(
          () => track(ds.watch(POOL, { fromRevision: a.metadata.resourceVersion! })),
          "compacted",
          T,
        );
        // Right after the compaction point is still servable.
        const w = track(ds.watch(POOL, { fromRevision: b.metadata.resourceVersion! }));
        const evs = await collect(w, 1, T);
        expect(evs[0]!.object.metadata.name).toBe("c");
        // The remedy works: relist, then watch from the list's revision.
        const relist = await ds.list(POOL);
        expect(relist.items.map((o) => o.metadata.name)).toEqual(["a", "b", "c"]);
        const w2 = track(ds.watch(POOL, { fromRevision: relist.revision }));
        await ds.create(pool("d"));
        expect((await collect(w2, 1, T))[0]!.object.metadata.name).toBe("d");
      });
    });

    describe("scopes and key layout", () => {
      it("keeps cluster-scoped and namespaced objects of one kind and name apart", async () => {
        await ds.create({ apiVersion: API, kind: EP, metadata: { name: "x" }, spec: { n: 0 } } as Counter);
        await ds.create(endpoint("a", "x", 1));
        await ds.create(endpoint("b", "x", 2));
        expect((await ds.get<Counter>({ kind: EP, name: "x" })).spec.n).toBe(0);
        expect((await ds.get<Counter>({ kind: EP, name: "x", namespace: "a" })).spec.n).toBe(1);
        expect((await ds.get<Counter>({ kind: EP, name: "x", namespace: "b" })).spec.n).toBe(2);
        const all = await ds.list(EP);
        expect(all.items.map((o) => o.metadata.namespace ?? "-")).toEqual(["-", "a", "b"]);
        expect((await ds.list(EP, { namespace: "a" })).items).toHaveLength(1);
        await ds.delete({ kind: EP, name: "x", namespace: "a" });
        expect((await ds.get<Counter>({ kind: EP, name: "x" })).spec.n).toBe(0);
        expect((await ds.list(EP)).items).toHaveLength(2);
      });

      it("listing a kind or namespace never includes a longer kind or namespace sharing its prefix", async () => {
        await ds.create(pool("a"));
        await ds.create({ apiVersion: API, kind: `${POOL}X`, metadata: { name: "a" } });
        await ds.create(endpoint("ab", "n"));
        await ds.create(endpoint("abc", "n"));
        await ds.create(endpoint("ab", "n2"));
        expect((await ds.list(POOL)).items.map((o) => o.kind)).toEqual([POOL]);
        expect((await ds.list(`${POOL}X`)).items.map((o) => o.kind)).toEqual([`${POOL}X`]);
        const ab = await ds.list(EP, { namespace: "ab" });
        expect(ab.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(["ab/n", "ab/n2"]);
        const abN = await ds.list(EP, { namespace: "ab", namePrefix: "n" });
        expect(abN.items).toHaveLength(2);
      });
    });

    describe("lifecycle", () => {
      it("aborted signals fail calls with aborted and write nothing", async () => {
        const ac = new AbortController();
        ac.abort();
        const signal = ac.signal;
        await expectCode(ds.create(pool("a"), { signal }), "aborted");
        await expectCode(ds.get({ kind: POOL, name: "a" }, { signal }), "aborted");
        await expectCode(ds.update(pool("a"), { signal }), "aborted");
        await expectCode(ds.delete({ kind: POOL, name: "a" }, { signal }), "aborted");
        await expectCode(ds.list(POOL, { signal }), "aborted");
        await expectCode(ds.transaction([{ op: "create", object: pool("b") }], { signal }), "aborted");
        expect((await ds.list(POOL)).items).toEqual([]);
      });

      it("after close every call fails with closed and running watches stop", async () => {
        const x = await ds.create(pool("x"));
        const w = ds.watch(POOL, { fromRevision: x.metadata.resourceVersion! });
        const ended = (async () => {
          try {
            for await (const _ of w) {
              // drain
            }
            return "ended";
          } catch (e) {
            return isDatastoreError(e, "closed") ? "closed" : `other: ${String(e)}`;
          }
        })();
        await ds.close();
        expect(["ended", "closed"]).toContain(await ended);
        await expectCode(ds.get(keyOf(x)), "closed");
        await expectCode(ds.list(POOL), "closed");
        await expectCode(ds.create(pool("y")), "closed");
        await expectCode(ds.update(x), "closed");
        await expectCode(ds.delete(keyOf(x)), "closed");
        await expectCode(ds.transaction([{ op: "create", object: pool("y") }]), "closed");
        await expectWatchCode(() => ds.watch(POOL), "closed", T);
        await ds.close(); // idempotent
      });
    });
  });
}
