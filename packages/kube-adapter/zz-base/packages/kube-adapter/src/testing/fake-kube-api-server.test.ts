import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KubeList, KubeObject } from "../kube-types.js";
import { JsonLineFramer } from "../transport/json-lines.js";
import { createHttpTransport, type KubeTransport, readBody } from "../transport/transport.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "./fake-kube-api-server.js";

let server: FakeKubeApiServer;
let http: KubeTransport;

beforeEach(async () => {
  server = await startFakeKubeApiServer({ bookmarkIntervalMs: 20 });
  http = createHttpTransport({ server: server.url });
});
afterEach(async () => {
  http.close();
  await server.close();
});

async function getJson<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await http.get(path);
  return { status: res.status, body: JSON.parse((await readBody(res)).toString()) as T };
}

/** Reads a watch until the server ends it (or `max` events), returning the events. */
async function watch(path: string, max = Number.POSITIVE_INFINITY) {
  const res = await http.get(path);
  const framer = new JsonLineFramer();
  const events: {
    type: string;
    object: { metadata?: { name?: string; resourceVersion?: string }; code?: number };
  }[] = [];
  for await (const chunk of res.body) {
    for (const l of framer.push(chunk)) events.push(JSON.parse(l));
    if (events.length >= max) break;
  }
  res.destroy();
  return events;
}

describe("fake API server", () => {
  it("pages a list from one consistent snapshot, whatever changes between pages", async () => {
    for (let i = 0; i < 5; i++) server.create("namespaces", { metadata: { name: `ns-${i}` } });
    const first = await getJson<KubeList>("/api/v1/namespaces?limit=2");
    expect(first.body.items.map((n) => n.metadata.name)).toEqual(["ns-0", "ns-1"]);
    expect(first.body.metadata.remainingItemCount).toBe(3);
    server.delete("namespaces", undefined, "ns-3");
    server.create("namespaces", { metadata: { name: "ns-9" } });
    const names: string[] = [];
    let cont = first.body.metadata.continue;
    while (cont !== undefined) {
      const page = await getJson<KubeList>(`/api/v1/namespaces?limit=2&continue=${cont}`);
      expect(page.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
      names.push(...page.body.items.map((n) => n.metadata.name));
      cont = page.body.metadata.continue;
    }
    expect(names).toEqual(["ns-2", "ns-3", "ns-4"]);
  });

  it("answers 410 Expired to a continue token older than the compaction point", async () => {
    for (let i = 0; i < 3; i++) server.create("namespaces", { metadata: { name: `ns-${i}` } });
    const first = await getJson<KubeList>("/api/v1/namespaces?limit=1");
    server.create("namespaces", { metadata: { name: "later" } });
    server.compact();
    const next = await getJson<{ code: number; reason: string }>(
      `/api/v1/namespaces?limit=1&continue=${first.body.metadata.continue}`,
    );
    expect(next.status).toBe(410);
    expect(next.body).toMatchObject({ code: 410, reason: "Expired" });
  });

  it("filters namespaced collections and 404s unknown routes", async () => {
    server.create("pods", { metadata: { name: "a", namespace: "x" } });
    server.create("pods", { metadata: { name: "b", namespace: "y" } });
    const inX = await getJson<KubeList>("/api/v1/namespaces/x/pods");
    expect(inX.body.items.map((p) => p.metadata.name)).toEqual(["a"]);
    expect((await getJson("/api/v1/widgets")).status).toBe(404);
    expect((await getJson("/apis/networking.k8s.io/v1/nodes")).status).toBe(404);
  });

  it("replays history after a resourceVersion, then ends the stream after timeoutSeconds", async () => {
    const a = server.create<KubeObject>("namespaces", { metadata: { name: "a" } });
    server.create("pods", { metadata: { name: "p", namespace: "a" } });
    server.create("namespaces", { metadata: { name: "b" } });
    server.delete("namespaces", undefined, "a");
    const events = await watch(
      `/api/v1/namespaces?watch=1&resourceVersion=${a.metadata.resourceVersion}&timeoutSeconds=1`,
    );
    expect(events.map((e) => [e.type, e.object.metadata?.name])).toEqual([
      ["ADDED", "b"],
      ["DELETED", "a"],
    ]);
    expect(server.openWatches).toBe(0);
  });

  it("sends BOOKMARKs carrying the store's resourceVersion when allowed", async () => {
    server.create("pods", { metadata: { name: "p", namespace: "a" } });
    const events = await watch(
      `/api/v1/namespaces?watch=1&resourceVersion=${server.resourceVersion}&allowWatchBookmarks=true`,
      2,
    );
    expect(events.map((e) => e.type)).toEqual(["BOOKMARK", "BOOKMARK"]);
    expect(events[0]!.object.metadata?.resourceVersion).toBe(server.resourceVersion);
  });

  it("answers a watch from a compacted resourceVersion with an ERROR event carrying Status 410", async () => {
    const a = server.create<KubeObject>("namespaces", { metadata: { name: "a" } });
    server.create("namespaces", { metadata: { name: "b" } });
    server.compact();
    const events = await watch(`/api/v1/namespaces?watch=1&resourceVersion=${a.metadata.resourceVersion}`);
    expect(events).toEqual([
      {
        type: "ERROR",
        object: expect.objectContaining({ kind: "Status", code: 410, reason: "Expired" }),
      },
    ]);
    expect(server.stats.gone).toBe(1);
  });

  it("compacts its history automatically beyond historyLimit", async () => {
    await using small = await startFakeKubeApiServer({ historyLimit: 3 });
    for (let i = 0; i < 10; i++) small.create("namespaces", { metadata: { name: `n-${i}` } });
    expect(Number(small.compactedResourceVersion)).toBe(Number(small.resourceVersion) - 3);
  });
});
