/**
 * Pins the fake API server's answers to recorded answers of real kube-apiservers (see
 * ./testdata/recorded/README.md for where each came from): the same situation is provoked over HTTP and
 * the answer must have the recording's shape — keys, JSON types, kind/apiVersion/status/reason/code and
 * the form of the message.
 */

import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../__tests__/helpers.js";
import { createKubeClient } from "../client/kube-client.js";
import type { KubeLease, KubeObject, KubePod } from "../kube-types.js";
import { createLeaderElector } from "../leader/leader-elector.js";
import { JsonLineFramer } from "../transport/json-lines.js";
import { createHttpTransport, type KubeTransport, readBody } from "../transport/transport.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "./fake-kube-api-server.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const recorded = (file: string): string =>
  readFileSync(new URL(`./testdata/recorded/${file}`, import.meta.url), "utf8");
const recordedJson = (file: string): { [k: string]: Json } => JSON.parse(recorded(file));
const recordedLines = (file: string): { [k: string]: Json }[] =>
  recorded(file)
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));

const typeOf = (v: Json | undefined): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/**
 * Every key of `want` exists in `got` with the same JSON type, recursively (arrays: element by element,
 * up to the shorter length); with `exact`, `got` has no other keys either. Returns the differences.
 */
function shapeDiff(want: Json, got: Json | undefined, exact: boolean, path = "$"): string[] {
  if (typeOf(want) !== typeOf(got)) return [`${path}: ${typeOf(want)} recorded, ${typeOf(got)} served`];
  const out: string[] = [];
  if (Array.isArray(want)) {
    const g = got as Json[];
    for (let i = 0; i < Math.min(want.length, g.length); i++)
      out.push(...shapeDiff(want[i]!, g[i], exact, `${path}[${i}]`));
  } else if (typeof want === "object" && want !== null) {
    const g = got as { [k: string]: Json };
    for (const [k, v] of Object.entries(want)) {
      if (!(k in g)) out.push(`${path}.${k}: recorded, not served`);
      else out.push(...shapeDiff(v, g[k], exact, `${path}.${k}`));
    }
    if (exact)
      for (const k of Object.keys(g)) if (!(k in want)) out.push(`${path}.${k}: served, not recorded`);
  }
  return out;
}

/** Checks a served Status against a recorded one: exact key set and types, the same enumerated values. */
function expectSameStatus(got: { status: number; body: Json }, want: { [k: string]: Json }) {
  expect(shapeDiff(want, got.body, true)).toEqual([]);
  const body = got.body as { [k: string]: Json };
  for (const k of ["kind", "apiVersion", "status", "reason", "code"]) expect(body[k], k).toEqual(want[k]);
  expect(got.status).toBe(want.code);
}

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

async function call(method: "GET" | "POST" | "PUT", path: string, body?: unknown, t = transport) {
  const res = await t.request(method, path, body === undefined ? {} : { body: JSON.stringify(body) });
  return { status: res.status, body: JSON.parse((await readBody(res)).toString("utf8")) as Json };
}

describe("the fake API server answers as recorded kube-apiservers do", () => {
  it("404 NotFound for a missing pod", async () => {
    const want = recordedJson("status-404-not-found.json");
    const got = await call("GET", "/api/v1/namespaces/default/pods/grafana");
    expectSameStatus(got, want);
    expect((got.body as { message: string }).message).toBe(want.message);
    expect((got.body as { details: Json }).details).toEqual(want.details);
  });

  it("409 AlreadyExists for a create of an existing service", async () => {
    const want = recordedJson("status-409-already-exists.json");
    const svc = { metadata: { name: "mock-2" }, spec: { ports: [{ port: 99 }] } };
    expect((await call("POST", "/api/v1/namespaces/default/services", svc)).status).toBe(201);
    const got = await call("POST", "/api/v1/namespaces/default/services", svc);
    expectSameStatus(got, want);
    expect((got.body as { message: string }).message).toBe(want.message);
    expect((got.body as { details: Json }).details).toEqual(want.details);
  });

  it("409 Conflict for an update carrying a stale resourceVersion", async () => {
    const want = recordedJson("status-409-conflict.json");
    const created = (await call("POST", "/api/v1/namespaces/default/pods", { metadata: { name: "quota" } }))
      .body as unknown as KubePod;
    const path = "/api/v1/namespaces/default/pods/quota";
    expect(
      (await call("PUT", path, { ...created, metadata: { ...created.metadata, labels: { a: "1" } } })).status,
    ).toBe(200);
    const got = await call("PUT", path, {
      ...created,
      metadata: { ...created.metadata, labels: { a: "2" } },
    });
    expectSameStatus(got, want);
    // The recording is about resourcequotas; ours about pods: the same sentence otherwise.
    expect((got.body as { message: string }).message).toBe(
      (want.message as string).replace('resourcequotas "quota"', 'pods "quota"'),
    );
    expect((got.body as { details: Json }).details).toEqual({ name: "quota", kind: "pods" });
  });

  it("422 Invalid, with causes per field, for an object without a name", async () => {
    const want = recordedJson("status-422-invalid.json");
    const got = await call("POST", "/api/v1/namespaces/default/pods", { metadata: {} });
    expectSameStatus(got, want);
    const body = got.body as {
      message: string;
      details: { kind: string; causes: { reason: string; field: string }[] };
    };
    const wantDetails = want.details as { causes: { reason: string; field: string }[] };
    expect(body.details.kind).toBe("Pod");
    expect(body.details.causes.map((c) => [c.reason, c.field])).toEqual(
      wantDetails.causes.map((c) => [c.reason, c.field]),
    );
    // `<Kind> "<name>" is invalid: <field>: <cause>`: the recording's form, today's cause wording.
    expect(body.message).toMatch(/^Pod "" is invalid: metadata\.name: /);
    expect(want.message).toMatch(/^Secret "" is invalid: metadata\.name: /);
  });

  it("401 Unauthorized for a token it does not accept", async () => {
    const want = recordedJson("status-401-unauthorized.json");
    server.setTokens(["good"]);
    const bad = createHttpTransport({ server: server.url, headers: { Authorization: "Bearer expired" } });
    try {
      const got = await call("GET", "/api/v1/pods", undefined, bad);
      expectSameStatus(got, want);
      expect(got.body).toEqual(want);
    } finally {
      bad.close();
    }
  });

  it("an ERROR event with a 410 Expired Status for a watch from a compacted resourceVersion", async () => {
    const [want] = recordedLines("watch-410-expired.jsonl");
    server.create("pods", { metadata: { name: "a", namespace: "default" } });
    const old = server.resourceVersion;
    server.create("pods", { metadata: { name: "b", namespace: "default" } });
    server.compact();
    const res = await transport.get(`/api/v1/pods?watch=1&resourceVersion=${old}`);
    const lines = (await readBody(res)).toString("utf8").trim().split("\n");
    expect(res.status).toBe(200);
    expect(lines).toHaveLength(1);
    const got = JSON.parse(lines[0]!) as Json;
    expect(shapeDiff(want!, got, true)).toEqual([]);
    const o = (got as { object: { [k: string]: Json } }).object;
    const w = want!.object as { [k: string]: Json };
    for (const k of ["kind", "apiVersion", "status", "reason", "code"]) expect(o[k], k).toEqual(w[k]);
    expect(o.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
    expect(w.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
  });

  it("watch events ADDED, MODIFIED, DELETED and BOOKMARK shaped as recorded", async () => {
    const want = recordedLines("watch-stream.jsonl");
    const client = createKubeClient(transport);
    const res = await transport.get(
      `/api/v1/pods?watch=1&resourceVersion=${server.resourceVersion}&allowWatchBookmarks=true`,
    );
    const events: { [k: string]: Json }[] = [];
    const framer = new JsonLineFramer();
    const reading = (async () => {
      for await (const chunk of res.body) for (const l of framer.push(chunk)) events.push(JSON.parse(l));
    })().catch(() => {});
    try {
      const p = await client.create<KubePod>("pods", {
        metadata: { name: "", generateName: "kubernetes-dashboard-5498ccf677-", namespace: "kube-system" },
      });
      await client.patch(
        "pods",
        "kube-system",
        p.metadata.name,
        { metadata: { labels: { a: "b" } } },
        { type: "merge" },
      );
      await client.delete("pods", "kube-system", p.metadata.name);
      await waitFor(
        () => events.some((e) => e.type === "BOOKMARK") && events.some((e) => e.type === "DELETED"),
        "events",
      );
    } finally {
      res.destroy();
      await reading;
    }
    for (const w of want) {
      const got = events.find((e) => e.type === w.type);
      expect(got, String(w.type)).toBeDefined();
      const wo = structuredClone(w.object) as {
        kind?: string;
        apiVersion?: string;
        metadata: { [k: string]: Json };
      };
      // Kubernetes 1.20 stopped serving selfLink (KEP-1164).
      delete wo.metadata.selfLink;
      expect(shapeDiff({ ...w, object: wo }, got!, false), String(w.type)).toEqual([]);
      const go = got!.object as { kind: string; apiVersion: string; metadata: { [k: string]: Json } };
      expect([go.kind, go.apiVersion]).toEqual([
        wo.kind ?? "Pod",
        (wo as { apiVersion?: string }).apiVersion ?? "v1",
      ]);
      expect(go.metadata.resourceVersion).toMatch(/^\d+$/);
    }
    // A bookmark carries nothing but the type meta and the resourceVersion.
    const bookmark = events.find((e) => e.type === "BOOKMARK")!;
    expect(shapeDiff(want.find((w) => w.type === "BOOKMARK")!, bookmark, true)).toEqual([]);
    const deleted = events.find((e) => e.type === "DELETED")!.object as unknown as KubeObject;
    expect(deleted.metadata.generateName).toBe("kubernetes-dashboard-5498ccf677-");
  });

  it("a Lease written by the leader elector has the recorded Lease's fields and time formats", async () => {
    const want = recordedJson("lease.json");
    const client = createKubeClient(transport);
    const elector = createLeaderElector({
      client,
      namespace: "koordinator-system",
      name: "koordinator-manager",
      identity: "koord-manager-74866c758d-h68kc_835791dc-866c-475b-89ad-cc48862d79b2",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    elector.start();
    try {
      await waitFor(() => elector.isLeader, "leading");
    } finally {
      await elector.stop();
    }
    const got = (await client.get<KubeLease>("leases", "koordinator-system", "koordinator-manager"))!;
    const gotJson = JSON.parse(JSON.stringify(got)) as Json;
    // The spec and the metadata exactly (a Lease has no generation; managedFields are off by default).
    expect(
      shapeDiff({ apiVersion: want.apiVersion!, kind: want.kind!, spec: want.spec! }, gotJson, false),
    ).toEqual([]);
    expect(shapeDiff(want.spec!, (gotJson as { spec: Json }).spec, true)).toEqual([]);
    expect(shapeDiff(want.metadata!, (gotJson as { metadata: Json }).metadata, true)).toEqual([]);
    expect([got.apiVersion, got.kind]).toEqual([want.apiVersion, want.kind]);
    const ws = want.spec as { [k: string]: string };
    const micro = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
    for (const t of [ws.acquireTime, ws.renewTime, got.spec?.acquireTime, got.spec?.renewTime])
      expect(t).toMatch(micro);
    const seconds = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
    expect((want.metadata as { creationTimestamp: string }).creationTimestamp).toMatch(seconds);
    expect(got.metadata.creationTimestamp).toMatch(seconds);
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    expect((want.metadata as { uid: string }).uid).toMatch(uuid);
    expect(got.metadata.uid).toMatch(uuid);
    expect(got.spec).toMatchObject({ leaseDurationSeconds: 15, leaseTransitions: 0 });
  });
});
