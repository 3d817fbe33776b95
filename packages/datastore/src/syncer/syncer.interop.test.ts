import { randomBytes } from "node:crypto";
import { createRecordingLogger, sleep } from "@margay/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEtcdDatastore,
  createSyncer,
  isDatastoreError,
  type Syncer,
  type SyncerEvent,
} from "../index.js";
import { type EtcdServer, startEtcd, startTcpProxy } from "../testing/index.js";
import { fold, id, obj, stored, summary, until } from "./syncer.test-util.js";

/** How long the interop waits: a real etcd on a busy machine. */
const WAIT_MS = 30_000;

const sameMap = (a: Map<string, string>, b: Map<string, string>) =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

describe("syncer on a real etcd", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("after a compaction while its watches were cut off, relists and emits exactly the differences", async () => {
    const prefix = `/margay-syncer-${randomBytes(4).toString("hex")}`;
    const proxy = await startTcpProxy(new URL(etcd.endpoints[0]!));
    const logger = createRecordingLogger();
    const watching = createEtcdDatastore({
      endpoints: [proxy.endpoint],
      prefix,
      watchReconnectMaxDelayMs: 200,
    });
    const writing = createEtcdDatastore({ endpoints: etcd.endpoints, prefix });
    const kinds = ["IPPool", "Node"];
    let syncer: Syncer | undefined;
    try {
      for (const n of ["a-same", "b-changed", "c-deleted"]) await writing.create(obj("IPPool", n));
      await writing.create(obj("Node", "n-same"));
      syncer = createSyncer({
        datastore: watching,
        kinds,
        logger,
        retry: { initialMs: 50, maxMs: 200 },
      });
      const sy = syncer;
      const events: SyncerEvent[] = [];
      const ended = (async () => {
        try {
          for await (const batch of sy) events.push(...batch);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      await until(() => events.some((e) => e.type === "in-sync"), "the barrier", WAIT_MS);
      // Each kind lists on its own, so which kind's list lands first is up to etcd; within a kind, name order.
      const initial = summary(events);
      expect(initial).toHaveLength(5);
      expect(initial.at(-1)).toBe("in-sync");
      expect(initial.filter((l) => l.includes(" IPPool/"))).toEqual([
        "upsert IPPool//a-same",
        "upsert IPPool//b-changed",
        "upsert IPPool//c-deleted",
      ]);
      expect(initial.filter((l) => l.includes(" Node/"))).toEqual(["upsert Node//n-same"]);
      const before = events.length;

      await proxy.down(); // the syncer's connection is cut; the writer still reaches etcd
      await sleep(200);
      const changed = await writing.update(obj("IPPool", "b-changed", 1));
      await writing.delete({ kind: "IPPool", name: "c-deleted" });
      const created = await writing.create(obj("IPPool", "d-created"));
      await writing.create(obj("IPPool", "e-transient"));
      const last = await writing.delete({ kind: "IPPool", name: "e-transient" });
      const head = (await writing.list("IPPool")).revision;
      expect(Number(head)).toBeGreaterThanOrEqual(Number(last.metadata.resourceVersion));
      await writing.client.kv.compact({ revision: head, physical: true });
      await proxy.up();

      const want = await stored(writing, kinds);
      await until(
        () => sy.status.relists >= 1 && sy.status.state === "in-sync" && sameMap(fold(events), want),
        "the relist",
        WAIT_MS,
      );
      await sleep(300);
      const diff = events.slice(before);
      expect(summary(diff)).toEqual([
        "delete IPPool//c-deleted",
        "upsert IPPool//b-changed",
        "upsert IPPool//d-created",
      ]);
      expect(diff[1]).toMatchObject({
        revision: changed.metadata.resourceVersion,
        object: { spec: { n: 1 } },
      });
      expect(diff[2]).toMatchObject({ revision: created.metadata.resourceVersion });
      expect(fold(events)).toEqual(want);
      expect(sy.status.lastError?.code).toBe("compacted");
      expect(logger.find({ message: "syncer relisting after compaction" })).toContainEqual(
        expect.objectContaining({
          attributes: expect.objectContaining({ component: "syncer", kind: "IPPool" }),
        }),
      );
      expect(logger.find({ message: "syncer relist applied" })).toContainEqual(
        expect.objectContaining({
          attributes: expect.objectContaining({ kind: "IPPool", upserts: 2, deletes: 1 }),
        }),
      );

      await sy.close();
      expect(await ended).toBeUndefined();
    } finally {
      await syncer?.close();
      await watching.close();
      await writing.close();
      await proxy.down();
    }
  });

  it("across an etcd crash and restart on the same data directory: no update lost, none twice, no relist", async () => {
    const prefix = `/margay-syncer-${randomBytes(4).toString("hex")}`;
    const logger = createRecordingLogger();
    const ds = createEtcdDatastore({
      endpoints: etcd.endpoints,
      prefix,
      requestTimeoutMs: 2_000,
      dialTimeoutMs: 1_000,
      watchReconnectMaxDelayMs: 300,
      logger,
    });
    const kinds = ["Node", "WorkloadEndpoint"];
    const syncer = createSyncer({ datastore: ds, kinds, logger, retry: { initialMs: 50, maxMs: 300 } });
    let stop = false;
    try {
      await ds.create(obj("Node", "seed"));
      const events: SyncerEvent[] = [];
      const ended = (async () => {
        try {
          for await (const batch of syncer) events.push(...batch);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      await until(() => events.some((e) => e.type === "in-sync"), "the barrier", WAIT_MS);

      let acked = 0;
      let unknownOutcome = 0;
      let i = 0;
      const writer = (async () => {
        while (!stop) {
          const kind = kinds[i % 2]!;
          const name = `o${String(i).padStart(4, "0")}`;
          try {
            // Creates and, every third object, an update of it: two revisions of one key in the stream.
            if (i % 3 === 0) {
              const c = await ds.create(obj(kind, name, 0)).catch((e: unknown) => {
                if (isDatastoreError(e, "already-exists")) return ds.get({ kind, name });
                throw e;
              });
              await ds.update({ ...obj(kind, name, 1), metadata: { ...c.metadata } }).catch((e: unknown) => {
                // A lost reply to an update that did commit comes back as a conflict on the retry.
                if (!isDatastoreError(e, "conflict")) throw e;
              });
            } else {
              await ds.create(obj(kind, name, 0)).catch((e: unknown) => {
                if (!isDatastoreError(e, "already-exists")) throw e;
              });
            }
            acked++;
            i++;
          } catch (e) {
            if (!isDatastoreError(e, "unavailable")) throw e;
            unknownOutcome++;
            await sleep(25);
          }
        }
      })();

      await until(() => acked >= 20, "20 writes before the crash", WAIT_MS);
      await etcd.kill();
      await sleep(500);
      await etcd.restart();
      const afterRestart = acked;
      await until(() => acked >= afterRestart + 20, "20 writes after the restart", WAIT_MS);
      stop = true;
      await writer;

      const want = await stored(ds, kinds);
      await until(() => sameMap(fold(events), want), "the syncer to catch up", WAIT_MS);
      await sleep(300);
      expect(fold(events)).toEqual(want);
      expect(unknownOutcome).toBeGreaterThan(0); // the crash was felt by the writer

      // Nothing twice: every (key, revision) once, and each key's revisions strictly increase.
      const updates = events.filter((e) => e.type !== "in-sync");
      const seen = new Set<string>();
      const lastRev = new Map<string, number>();
      for (const e of updates) {
        const k = `${id(e)}@${e.revision}`;
        expect(seen.has(k), `${k} delivered twice`).toBe(false);
        seen.add(k);
        const prev = lastRev.get(id(e));
        if (prev !== undefined) expect(Number(e.revision)).toBeGreaterThan(prev);
        lastRev.set(id(e), Number(e.revision));
      }
      // Nothing lost: every revision etcd holds for a key arrived; an updated key arrived as create + update.
      for (const [key, rev] of want) expect(lastRev.get(key)).toBe(Number(rev));
      const twice = [...want.keys()].filter((k) => updates.filter((e) => id(e) === k).length === 2);
      expect(twice.length).toBeGreaterThan(0);
      expect(updates.every((e) => e.type === "upsert")).toBe(true);
      expect(events.filter((e) => e.type === "in-sync")).toHaveLength(1);
      // The store's history survived the restart, so the watches resumed instead of relisting.
      expect(syncer.status).toMatchObject({ state: "in-sync", relists: 0 });
      expect(logger.find({ message: "etcd watch disconnected; reconnecting" })).not.toHaveLength(0);
      expect(logger.find({ message: "etcd watch reconnected" })).not.toHaveLength(0);

      await syncer.close();
      expect(await ended).toBeUndefined();
    } finally {
      stop = true;
      await syncer.close();
      await ds.close();
    }
  });
});
