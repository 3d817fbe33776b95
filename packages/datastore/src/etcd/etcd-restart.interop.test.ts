import { randomBytes } from "node:crypto";
import { createRecordingLogger, sleep } from "@margay/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEtcdDatastore,
  type EtcdDatastore,
  isDatastoreError,
  type StoredObject,
  type WatchEvent,
} from "../index.js";
import { type EtcdServer, freePort, startEtcd, startTcpProxy } from "../testing/index.js";

const KIND = "RestartProbe";
const obj = (name: string, n: number): StoredObject & { spec: { n: number } } => ({
  apiVersion: "margay.io/v1",
  kind: KIND,
  metadata: { name },
  spec: { n },
});

/** Reads the watch into `out` in the background; resolves with the error that ended it (if any). */
function drain(w: AsyncIterable<WatchEvent>, out: WatchEvent[]): Promise<unknown> {
  return (async () => {
    try {
      for await (const ev of w) out.push(ev);
      return undefined;
    } catch (e) {
      return e;
    }
  })();
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("etcd backend across an etcd crash and restart", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("loses no acknowledged write and the watcher sees every change exactly once, in order", async () => {
    const prefix = `/margay-restart-${randomBytes(4).toString("hex")}`;
    const logger = createRecordingLogger();
    const ds = createEtcdDatastore({
      endpoints: etcd.endpoints,
      prefix,
      requestTimeoutMs: 2_000,
      dialTimeoutMs: 1_000,
      watchReconnectMaxDelayMs: 300,
      logger,
    });
    try {
      const start = await ds.list(KIND);
      const events: WatchEvent[] = [];
      const w = ds.watch(KIND, { fromRevision: start.revision });
      const ended = drain(w, events);

      const acked = new Map<string, string>(); // name -> revision acknowledged by create
      let unknownOutcome = 0;
      let stop = false;
      let i = 0;
      const writer = (async () => {
        while (!stop) {
          const name = `o${String(i).padStart(4, "0")}`;
          try {
            const created = await ds.create(obj(name, i));
            acked.set(name, created.metadata.resourceVersion!);
            i++;
          } catch (e) {
            if (isDatastoreError(e, "already-exists")) {
              i++; // an earlier attempt whose reply was lost did commit
              continue;
            }
            if (!isDatastoreError(e, "unavailable")) throw e;
            unknownOutcome++;
            await sleep(25);
          }
        }
      })();

      await until(() => acked.size >= 40, 20_000, "40 writes before the crash");
      const ackedBeforeKill = new Map(acked);
      await etcd.kill();
      await sleep(500);
      await etcd.restart();
      const afterRestart = acked.size;
      await until(() => acked.size >= afterRestart + 40, 30_000, "40 writes after the restart");
      stop = true;
      await writer;

      // Durability: every write acknowledged before the SIGKILL is there, at its acknowledged revision.
      const final = await ds.list(KIND);
      const byName = new Map(final.items.map((o) => [o.metadata.name, o] as const));
      for (const [name, revision] of ackedBeforeKill) {
        expect(byName.get(name)?.metadata.resourceVersion).toBe(revision);
      }
      for (const [name, revision] of acked) expect(byName.get(name)?.metadata.resourceVersion).toBe(revision);

      // The watch: exactly the stored objects, each once, in strictly increasing revision order.
      await until(() => events.length >= final.items.length, 30_000, "the watcher to catch up");
      await sleep(300);
      expect(events.map((e) => e.type)).toEqual(final.items.map(() => "added"));
      const revs = events.map((e) => Number(e.revision));
      for (let k = 1; k < revs.length; k++) expect(revs[k]).toBeGreaterThan(revs[k - 1]!);
      expect(events.map((e) => e.object.metadata.name)).toEqual(
        [...final.items]
          .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
          .map((o) => o.metadata.name),
      );
      for (const e of events)
        expect(e.revision).toBe(byName.get(e.object.metadata.name)?.metadata.resourceVersion);
      expect(Number(final.revision)).toBeGreaterThanOrEqual(revs[revs.length - 1]!);
      // The watch is still healthy: it did not fail or signal a relist.
      await w.close();
      expect(await ended).toBeUndefined();
      expect(acked.size).toBeGreaterThanOrEqual(80);
      // Writes attempted while etcd was down failed as `unavailable` (retryable), never silently.
      expect(unknownOutcome).toBeGreaterThan(0);
      // The outage is in the log: the watch lost its stream and came back, the endpoint's circuit opened
      // and closed again; every record says which component and backend.
      const tagged = { component: "datastore", backend: "etcd", kind: KIND };
      expect(logger.find({ message: "etcd watch disconnected; reconnecting" })[0]).toMatchObject({
        level: "warn",
        attributes: tagged,
      });
      expect(logger.find({ message: "etcd watch reconnected" })[0]).toMatchObject({
        level: "info",
        attributes: tagged,
      });
      expect(logger.find({ message: "etcd endpoint unreachable; circuit open" })[0]).toMatchObject({
        level: "warn",
        attributes: { component: "datastore", backend: "etcd" },
      });
      expect(logger.find({ message: "etcd endpoint reachable; circuit closed" })).not.toHaveLength(0);
    } finally {
      await ds.close();
    }
  });

  it("a compaction past the watcher's position while it is cut off surfaces as compacted", async () => {
    const prefix = `/margay-compact-${randomBytes(4).toString("hex")}`;
    const proxy = await startTcpProxy(new URL(etcd.endpoints[0]!));
    const watching: EtcdDatastore = createEtcdDatastore({
      endpoints: [proxy.endpoint],
      prefix,
      watchReconnectMaxDelayMs: 200,
    });
    const writing = createEtcdDatastore({ endpoints: etcd.endpoints, prefix });
    try {
      const start = await writing.list(KIND);
      const events: WatchEvent[] = [];
      const w = watching.watch(KIND, { fromRevision: start.revision });
      const ended = drain(w, events);
      await writing.create(obj("before", 0));
      await until(() => events.length === 1, 10_000, "the first event");

      await proxy.down(); // the watcher's connection is cut; the writer still reaches etcd
      await sleep(200);
      let last: StoredObject | undefined;
      for (let k = 0; k < 5; k++) last = await writing.create(obj(`during${k}`, k));
      await writing.client.kv.compact({ revision: last!.metadata.resourceVersion!, physical: true });
      await proxy.up();

      const err = await Promise.race([ended, sleep(20_000).then(() => "timeout")]);
      expect(isDatastoreError(err, "compacted")).toBe(true);
      // Nothing from before the compaction point was invented, and the error says where it stood.
      expect(events.map((e) => e.object.metadata.name)).toEqual(["before"]);
      expect((err as { details: { revision?: string } }).details.revision).toBe(events[0]!.revision);

      // The remedy: relist and watch from the list's revision.
      const relist = await watching.list(KIND);
      expect(relist.items.map((o) => o.metadata.name)).toEqual([
        "before",
        "during0",
        "during1",
        "during2",
        "during3",
        "during4",
      ]);
      const w2 = watching.watch(KIND, { fromRevision: relist.revision });
      const more: WatchEvent[] = [];
      const ended2 = drain(w2, more);
      await writing.create(obj("after", 9));
      await until(() => more.length === 1, 10_000, "the event after relisting");
      expect(more[0]!.object.metadata.name).toBe("after");
      await w2.close();
      expect(await ended2).toBeUndefined();
    } finally {
      await watching.close();
      await writing.close();
      await proxy.down();
    }
  });

  it("a connection cut in the middle of a catch-up resumes after the last delivered event", async () => {
    // etcd sends a catch-up in batches whose header carries the *current* revision; a client that resumes
    // from the last header revision (as etcd3's watcher does by itself) would skip the rest of the backlog.
    const prefix = `/margay-catchup-${randomBytes(4).toString("hex")}`;
    const proxy = await startTcpProxy(new URL(etcd.endpoints[0]!));
    const watching = createEtcdDatastore({
      endpoints: [proxy.endpoint],
      prefix,
      watchReconnectMaxDelayMs: 200,
    });
    const writing = createEtcdDatastore({ endpoints: etcd.endpoints, prefix });
    try {
      const start = await writing.list(KIND);
      const total = 2500;
      const pad = "x".repeat(300);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < total) {
            const k = next++;
            await writing.create({ ...obj(`c${String(k).padStart(5, "0")}`, k), pad });
          }
        }),
      );
      const final = await writing.list(KIND);
      expect(final.items).toHaveLength(total);
      // Let the first ~1000-revision batch through, then cut the stream in the middle of the next one.
      proxy.cutAfter(600_000);
      const events: WatchEvent[] = [];
      const w = watching.watch(KIND, { fromRevision: start.revision });
      const ended = drain(w, events);
      await until(() => proxy.cuts === 1, 20_000, "the proxy to cut the catch-up");
      const atCut = events.length;
      await sleep(100);
      await proxy.up();
      await until(() => events.length >= total, 30_000, `all ${total} events (had ${events.length})`);
      await sleep(300);
      expect(atCut).toBeGreaterThan(0);
      expect(atCut).toBeLessThan(total);
      expect(events).toHaveLength(total);
      const expected = [...final.items]
        .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
        .map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`);
      expect(events.map((e) => `${e.object.metadata.name}@${e.revision}`)).toEqual(expected);
      await w.close();
      expect(await ended).toBeUndefined();
    } finally {
      await watching.close();
      await writing.close();
      await proxy.down();
    }
  });

  it("calls against an unreachable etcd fail with unavailable (retryable)", async () => {
    const port = await freePort();
    const ds = createEtcdDatastore({
      endpoints: [`http://127.0.0.1:${port}`],
      dialTimeoutMs: 500,
      requestTimeoutMs: 1_000,
      readAttempts: 1,
    });
    try {
      for (const p of [ds.get({ kind: KIND, name: "x" }), ds.create(obj("x", 0)), ds.list(KIND)]) {
        const e = await p.then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(isDatastoreError(e, "unavailable")).toBe(true);
        expect((e as { retryable: boolean }).retryable).toBe(true);
      }
    } finally {
      await ds.close();
    }
  });
});
