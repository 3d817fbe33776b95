import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startFakeKubeApiServer, type FakeKubeApiServer } from "../testing/index.js";
import { createHttpTransport, type KubeTransport } from "../transport/transport.js";
import { KubeResources } from "../resources.js";
import type { KubeObject, KubePod } from "../kube-types.js";
import { createInformer, type InformerEvent, type InformerTransition } from "./informer.js";
import { namespace, pod, waitFor } from "../__tests__/helpers.js";

let server: FakeKubeApiServer;
let transport: KubeTransport;

beforeEach(async () => {
  server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
  transport = createHttpTransport({ server: server.url });
});

afterEach(async () => {
  transport.close();
  await server.close();
});

const fastBackoff = { initialMs: 5, maxMs: 40, jitter: 0 };

function recorder() {
  const events: InformerEvent<KubeObject>[] = [];
  const transitions: InformerTransition[] = [];
  return {
    events,
    transitions,
    onEvent: (e: InformerEvent<KubeObject>) => events.push(e),
    onTransition: (t: InformerTransition) => transitions.push(t),
  };
}

describe("informer", () => {
  it("lists in pages, then follows the watch from the list's resourceVersion", async () => {
    for (let i = 0; i < 7; i++) server.create("pods", pod("a", `p-${i}`, "n1", `10.0.0.${i + 1}`));
    const rec = recorder();
    const inf = createInformer({
      transport,
      resource: KubeResources.pods,
      pageSize: 3,
      backoff: fastBackoff,
      ...rec,
    });
    await inf.waitForSync();
    expect(inf.stats.listPages).toBe(3);
    expect(inf.cache.size).toBe(7);
    expect(rec.events.map((e) => e.type)).toEqual(Array(7).fill("added"));
    expect(inf.resourceVersion).toBe(server.resourceVersion);

    server.create("pods", pod("a", "p-new", "n1", "10.0.1.1"));
    const updated = server.get("pods", "a", "p-0")!;
    updated.metadata.labels = { app: "changed" };
    server.update("pods", updated);
    server.delete("pods", "a", "p-1");
    await waitFor(() => rec.events.length === 10, "three watch events");
    expect(rec.events.slice(7).map((e) => [e.type, e.key, e.fromRelist])).toEqual([
      ["added", "a/p-new", false],
      ["modified", "a/p-0", false],
      ["deleted", "a/p-1", false],
    ]);
    expect(inf.cache.get("a/p-0")?.metadata.labels).toEqual({ app: "changed" });
    expect(inf.cache.has("a/p-1")).toBe(false);
    expect(inf.resourceVersion).toBe(server.resourceVersion);
    expect(inf.stats.lists).toBe(1);
    await inf.close();
    expect(inf.phase).toBe("closed");
  });

  it("keeps namespace and custom indexes in step with the cache", async () => {
    server.create("pods", pod("a", "p-1", "n1", "10.0.0.1"));
    server.create("pods", pod("b", "p-2", "n1", "10.0.0.2"));
    server.create("pods", pod("b", "p-3", "n2", "10.0.0.3"));
    const inf = createInformer({
      transport,
      resource: KubeResources.pods,
      indexers: { node: (o) => [(o as KubePod).spec!.nodeName!] },
    });
    await inf.waitForSync();
    expect(
      inf.cache
        .byIndex("namespace", "b")
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["p-2", "p-3"]);
    expect(
      inf.cache
        .byIndex("node", "n1")
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["p-1", "p-2"]);
    const moved = server.get("pods", "b", "p-2")! as ReturnType<typeof pod>;
    moved.spec!.nodeName = "n2";
    server.update("pods", moved);
    await waitFor(() => inf.cache.byIndex("node", "n2").length === 2, "index update");
    expect(inf.cache.byIndex("node", "n1").map((p) => p.metadata.name)).toEqual(["p-1"]);
    server.delete("pods", "a", "p-1");
    await waitFor(() => inf.cache.byIndex("node", "n1").length === 0, "index removal");
    expect(inf.cache.indexValues("namespace")).toEqual(["b"]);
    await inf.close();
  });

  it("advances its resourceVersion on bookmarks alone", async () => {
    server.create("namespaces", namespace("a"));
    const inf = createInformer({ transport, resource: KubeResources.namespaces });
    await inf.waitForSync();
    // Changes to another kind move the store's resourceVersion; only a bookmark tells this watch.
    for (let i = 0; i < 5; i++) server.create("pods", pod("a", `p-${i}`, "n1", `10.0.0.${i + 1}`));
    await waitFor(() => inf.resourceVersion === server.resourceVersion, "bookmark");
    expect(inf.stats.bookmarks).toBeGreaterThan(0);
    expect(inf.stats.events).toBe(0);
    await inf.close();
  });

  it("resumes at once after a quiet watch the server ended at its timeout (no bookmarks asked for)", async () => {
    server.create("namespaces", namespace("a"));
    const rec = recorder();
    const inf = createInformer({
      transport,
      resource: KubeResources.namespaces,
      watchTimeoutSeconds: 1,
      allowWatchBookmarks: false,
      // A pause would outlast the test: the watch must be renewed without one.
      backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 },
      ...rec,
    });
    await inf.waitForSync();
    await waitFor(() => inf.stats.watches >= 3, "two watches renewed after their timeouts", 15_000);
    expect(rec.transitions.filter((t) => t.to === "backing-off")).toEqual([]);
    expect(rec.transitions.filter((t) => t.reason === "watch-ended" && t.to === "watching").length).toBe(
      inf.stats.watches - 1,
    );
    server.create("namespaces", namespace("b"));
    await waitFor(() => inf.cache.has("b"), "event on the renewed watch");
    expect(inf.stats.bookmarks).toBe(0);
    expect(inf.stats.lists).toBe(1);
    await inf.close();
  });

  it("cuts a watch that outlives its timeout (a dead connection) and resumes from its resourceVersion", async () => {
    server.create("namespaces", namespace("a"));
    // The first watch goes into a black hole: the server is told no timeout and the bytes it sends are
    // lost, as on a connection whose peer vanished. Later requests pass through.
    let watches = 0;
    const blackHole: KubeTransport = {
      server: transport.server,
      close: () => transport.close(),
      request: (method, path, opts) => transport.request(method, path, opts),
      get: async (path, opts) => {
        if (!path.includes("watch=") || watches++ > 0) return transport.get(path, opts);
        const res = await transport.get(path.replace(/&timeoutSeconds=\d+/, ""), opts);
        return {
          status: res.status,
          headers: res.headers,
          destroy: () => res.destroy(),
          body: {
            [Symbol.asyncIterator]: () => ({
              async next(): Promise<IteratorResult<Buffer>> {
                for await (const _lost of res.body) {
                  // lost on the way
                }
                return { done: true, value: undefined };
              },
            }),
          },
        };
      },
    };
    const rec = recorder();
    const inf = createInformer({
      transport: blackHole,
      resource: KubeResources.namespaces,
      watchTimeoutSeconds: 1,
      allowWatchBookmarks: false,
      backoff: fastBackoff,
      ...rec,
    });
    await inf.waitForSync();
    await waitFor(() => server.openWatches === 1, "watch open");
    server.create("namespaces", namespace("b"));
    await waitFor(() => inf.cache.has("b"), "the event, on the watch that replaced the stalled one");
    expect(inf.stats.lists).toBe(1);
    const failed = rec.transitions.find((t) => t.reason === "watch-failed");
    expect(failed?.error).toMatchObject({
      code: "network",
      message: expect.stringContaining("outlived its timeoutSeconds=1"),
    });
    expect(rec.events.map((e) => e.key)).toEqual(["a", "b"]);
    await inf.close();
  });

  it("resumes a dropped watch from the last resourceVersion without relisting", async () => {
    server.create("namespaces", namespace("a"));
    const rec = recorder();
    const inf = createInformer({
      transport,
      resource: KubeResources.namespaces,
      backoff: fastBackoff,
      ...rec,
    });
    await inf.waitForSync();
    server.create("namespaces", namespace("b"));
    await waitFor(() => inf.cache.has("b"), "first event");
    await waitFor(() => server.openWatches === 1, "watch open");
    expect(server.dropWatches()).toBe(1);
    server.create("namespaces", namespace("c"));
    await waitFor(() => inf.cache.has("c"), "event after the drop");
    expect(inf.stats.lists).toBe(1);
    expect(inf.stats.watches).toBeGreaterThanOrEqual(2);
    expect(inf.stats.gone).toBe(0);
    expect(rec.events.map((e) => e.key)).toEqual(["a", "b", "c"]);
    expect(rec.transitions.some((t) => t.reason === "watch-dropped" || t.reason === "watch-ended")).toBe(
      true,
    );
    await inf.close();
  });

  it("relists on 410 Gone and synthesizes deletes for objects that vanished unseen", async () => {
    for (const n of ["a", "b", "c"]) server.create("namespaces", namespace(n));
    const rec = recorder();
    const inf = createInformer({
      transport,
      resource: KubeResources.namespaces,
      backoff: fastBackoff,
      ...rec,
    });
    await inf.waitForSync();
    await waitFor(() => server.openWatches === 1, "watch open");
    // Keep the informer away while the history it would resume from is changed and compacted.
    server.failRequests(1_000_000);
    server.dropWatches();
    await waitFor(() => server.stats.injectedFailures > 0, "informer retrying");
    server.delete("namespaces", undefined, "b");
    const c = server.get("namespaces", undefined, "c")!;
    c.metadata.labels = { v: "2" };
    server.update("namespaces", c);
    server.create("namespaces", namespace("d"));
    server.compact();
    server.failRequests(0);
    await waitFor(() => inf.stats.lists === 2, "relist");
    expect(inf.stats.gone).toBe(1);
    expect(inf.stats.relistDeletes).toBe(1);
    expect([...inf.cache.keys()].sort()).toEqual(["a", "c", "d"]);
    const fromRelist = rec.events.filter((e) => e.fromRelist).map((e) => [e.type, e.key]);
    expect(fromRelist).toEqual(
      expect.arrayContaining([
        ["modified", "c"],
        ["added", "d"],
        ["deleted", "b"],
      ]),
    );
    expect(fromRelist).toHaveLength(3);
    expect(rec.transitions.some((t) => t.reason === "gone" && t.to === "listing")).toBe(true);
    await inf.close();
  });

  it("restarts a list whose continue token expired mid-way", async () => {
    for (let i = 0; i < 10; i++) server.create("namespaces", namespace(`ns-${i}`));
    // Compact the history after the first page, as if etcd compacted while the client paged.
    let pages = 0;
    const compacting: KubeTransport = {
      server: transport.server,
      close: () => transport.close(),
      request: (method, path, opts) => transport.request(method, path, opts),
      get: async (path, opts) => {
        const res = await transport.get(path, opts);
        if (!path.includes("watch=") && pages++ === 0) {
          server.create("namespaces", namespace("late"));
          server.compact();
        }
        return res;
      },
    };
    const inf = createInformer({
      transport: compacting,
      resource: KubeResources.namespaces,
      pageSize: 4,
      backoff: fastBackoff,
    });
    await inf.waitForSync();
    expect(inf.stats.gone).toBe(1);
    expect(inf.cache.size).toBe(11);
    expect(inf.cache.has("late")).toBe(true);
    await inf.close();
  });

  it("backs off exponentially while the server fails, then recovers", async () => {
    server.create("namespaces", namespace("a"));
    server.failRequests(4, 503);
    const rec = recorder();
    const inf = createInformer({
      transport,
      resource: KubeResources.namespaces,
      backoff: { initialMs: 10, maxMs: 1000, factor: 2, jitter: 0 },
      ...rec,
    });
    await inf.waitForSync();
    const delays = rec.transitions.filter((t) => t.to === "backing-off").map((t) => t.delayMs);
    expect(delays).toEqual([10, 20, 40, 80]);
    const failed = rec.transitions.filter((t) => t.to === "backing-off" && t.reason === "list-failed");
    expect(failed).toHaveLength(4);
    expect(failed.every((t) => (t.error as { details?: { status?: number } }).details?.status === 503)).toBe(
      true,
    );
    // After each pause the informer lists again, until the list succeeds and it watches.
    expect(rec.transitions.filter((t) => t.reason === "backoff-elapsed" && t.to === "listing")).toHaveLength(
      4,
    );
    await waitFor(() => inf.phase === "watching", "watching phase");
    expect(inf.stats.failures).toBe(4);
    expect(inf.cache.has("a")).toBe(true);
    await inf.close();
  });

  it("treats a watch ERROR event with code 410 as Gone", async () => {
    server.create("namespaces", namespace("a"));
    const inf = createInformer({ transport, resource: KubeResources.namespaces, backoff: fastBackoff });
    await inf.waitForSync();
    await waitFor(() => server.openWatches === 1, "watch open");
    server.failRequests(1_000_000);
    server.dropWatches();
    await waitFor(() => server.stats.injectedFailures > 0, "informer retrying");
    server.create("namespaces", namespace("b"));
    server.compact();
    const goneBefore = server.stats.gone;
    server.failRequests(0);
    await waitFor(() => inf.cache.has("b"), "relist");
    // The fake answers a too-old watch as the API server does: 200, then an ERROR event with Status 410.
    expect(server.stats.gone).toBe(goneBefore + 1);
    expect(inf.stats.gone).toBe(1);
    await inf.close();
  });

  it("close() stops a running watch and rejects pending waits when closed before syncing", async () => {
    server.failRequests(1_000_000);
    const inf = createInformer({ transport, resource: KubeResources.pods, backoff: fastBackoff });
    const wait = inf.waitForSync();
    await inf.close();
    await expect(wait).rejects.toMatchObject({ code: "closed" });
    expect(inf.phase).toBe("closed");
  });

  it("stops when its signal aborts", async () => {
    const ac = new AbortController();
    const inf = createInformer({ transport, resource: KubeResources.pods, signal: ac.signal });
    await inf.waitForSync();
    await waitFor(() => server.openWatches === 1, "watch open");
    ac.abort();
    await waitFor(() => inf.phase === "closed", "closed phase");
    await waitFor(() => server.openWatches === 0, "watch closed on the server");
  });
});

describe("informer transform", () => {
  it("drops metadata.managedFields by default, from listed and watched objects alike", async () => {
    await using managed = await startFakeKubeApiServer({ managedFields: true });
    const t = createHttpTransport({ server: managed.url });
    managed.create("pods", pod("a", "listed", "n1", "10.0.0.1"));
    expect(managed.get("pods", "a", "listed")?.metadata.managedFields).toHaveLength(1);
    const seen: KubeObject[] = [];
    const inf = createInformer<KubePod>({
      transport: t,
      resource: KubeResources.pods,
      onEvent: (e) => seen.push(e.object),
    });
    try {
      await inf.waitForSync();
      managed.create("pods", pod("a", "watched", "n1", "10.0.0.2"));
      await waitFor(() => inf.cache.get("a/watched") !== undefined, "watched pod");
      for (const key of ["a/listed", "a/watched"]) {
        expect(inf.cache.get(key)?.metadata).not.toHaveProperty("managedFields");
        expect(inf.cache.get(key)?.metadata.uid).toBeDefined();
      }
      expect(seen.every((o) => !("managedFields" in o.metadata))).toBe(true);
    } finally {
      await inf.close();
      t.close();
    }
  });

  it("applies a custom transform before caching and before handlers see the object", async () => {
    await using managed = await startFakeKubeApiServer({ managedFields: true });
    const t = createHttpTransport({ server: managed.url });
    managed.create("pods", pod("a", "p", "n1", "10.0.0.1"));
    const slim = (p: KubePod): KubePod => ({
      metadata: { name: p.metadata.name, namespace: p.metadata.namespace, labels: p.metadata.labels },
      spec: { nodeName: p.spec?.nodeName },
    });
    const seen: KubePod[] = [];
    const slimmed = createInformer<KubePod>({
      transport: t,
      resource: KubeResources.pods,
      transform: slim,
      onEvent: (e) => seen.push(e.object),
    });
    const whole = createInformer<KubePod>({
      transport: t,
      resource: KubeResources.pods,
      transform: (o) => o,
    });
    try {
      await Promise.all([slimmed.waitForSync(), whole.waitForSync()]);
      managed.update("pods", {
        ...managed.get("pods", "a", "p")!,
        metadata: { name: "p", namespace: "a", labels: { x: "y" } },
      });
      await waitFor(() => slimmed.cache.get("a/p")?.metadata.labels?.x === "y", "modified");
      expect(slimmed.cache.get("a/p")).toEqual({
        metadata: { name: "p", namespace: "a", labels: { x: "y" } },
        spec: { nodeName: "n1" },
      });
      expect(seen.map((p) => Object.keys(p).sort())).toEqual([
        ["metadata", "spec"],
        ["metadata", "spec"],
      ]);
      // The identity transform keeps everything the server sent, managedFields included.
      expect(whole.cache.get("a/p")?.metadata.managedFields).toHaveLength(1);
    } finally {
      await Promise.all([slimmed.close(), whole.close()]);
      t.close();
    }
  });
});
