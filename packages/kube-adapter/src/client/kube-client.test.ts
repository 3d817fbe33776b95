import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../__tests__/helpers.js";
import { isKubeAdapterError, type KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import { createInformer } from "../informer/informer.js";
import type { KubeLease, KubeObject, KubePod, KubeStatus } from "../kube-types.js";
import { KubeResources } from "../resources.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "../testing/index.js";
import { createHttpTransport, type KubeTransport } from "../transport/transport.js";
import { createKubeClient, type KubeClient } from "./kube-client.js";

let server: FakeKubeApiServer;
let transport: KubeTransport;
let client: KubeClient;

beforeEach(async () => {
  server = await startFakeKubeApiServer({ bookmarkIntervalMs: 50 });
  transport = createHttpTransport({ server: server.url });
  client = createKubeClient(transport);
});
afterEach(async () => {
  transport.close();
  await server.close();
});

async function failureOf(p: Promise<unknown>): Promise<KubeAdapterError> {
  try {
    await p;
  } catch (e) {
    if (isKubeAdapterError(e)) return e;
    throw e;
  }
  throw new Error("expected a failure");
}

const lease = (name: string, holder: string): KubeLease => ({
  metadata: { name, namespace: "kube-system" },
  spec: { holderIdentity: holder, leaseDurationSeconds: 15 },
});

const pod = (name: string, node: string, labels: Record<string, string> = {}): KubePod => ({
  metadata: { name, namespace: "default", labels },
  spec: { nodeName: node, containers: [] },
  status: { phase: "Running" },
});

describe("kube client against the fake API server (HTTP)", () => {
  it("creates, reads, updates and deletes with resourceVersion semantics", async () => {
    expect(await client.get("leases", "kube-system", "l")).toBeUndefined();
    const created = await client.create("leases", lease("l", "a"));
    expect(created).toMatchObject({
      kind: "Lease",
      apiVersion: "coordination.k8s.io/v1",
      metadata: { name: "l", namespace: "kube-system" },
      spec: { holderIdentity: "a" },
    });
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.resourceVersion).toBe(server.resourceVersion);
    expect(await client.get("leases", "kube-system", "l")).toEqual(created);

    const updated = await client.update("leases", {
      ...created,
      spec: { ...created.spec, holderIdentity: "b" },
    });
    expect(updated.metadata.resourceVersion).not.toBe(created.metadata.resourceVersion);
    // A Lease has no generation (its strategy keeps none; a real Lease read back has no such field).
    expect(created.metadata).not.toHaveProperty("generation");
    expect(updated.metadata).not.toHaveProperty("generation");
    expect(updated.metadata.uid).toBe(created.metadata.uid);

    // The first writer won; a write from the stale copy is refused.
    const stale = await failureOf(client.update("leases", { ...created, spec: { holderIdentity: "c" } }));
    expect(stale.code).toBe(KubeAdapterErrorCode.Conflict);
    expect(stale.retryable).toBe(true);
    expect(stale.details).toMatchObject({ status: 409, reason: "Conflict", method: "PUT", kind: "Lease" });
    expect(stale.message).toBe(
      'Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object has been modified; please apply your changes to the latest version and try again',
    );

    // A write that changes nothing changes nothing (no new resourceVersion, no event).
    const rv = server.resourceVersion;
    expect((await client.update("leases", updated)).metadata.resourceVersion).toBe(
      updated.metadata.resourceVersion,
    );
    expect(server.resourceVersion).toBe(rv);

    const dup = await failureOf(client.create("leases", lease("l", "x")));
    expect(dup.code).toBe(KubeAdapterErrorCode.Conflict);
    expect(dup.retryable).toBe(false);
    expect(dup.details.reason).toBe("AlreadyExists");
    expect(dup.message).toBe('leases.coordination.k8s.io "l" already exists');

    const badPre = await failureOf(
      client.delete("leases", "kube-system", "l", {
        preconditions: { resourceVersion: created.metadata.resourceVersion },
      }),
    );
    expect(badPre.code).toBe(KubeAdapterErrorCode.Conflict);
    expect(badPre.message).toMatch(/Precondition failed: ResourceVersion in precondition/);
    const deleted = (await client.delete("leases", "kube-system", "l", {
      preconditions: { uid: created.metadata.uid, resourceVersion: updated.metadata.resourceVersion },
    })) as KubeStatus;
    expect(deleted).toMatchObject({
      kind: "Status",
      status: "Success",
      details: { name: "l", kind: "leases" },
    });
    const gone = await failureOf(client.delete("leases", "kube-system", "l"));
    expect(gone.code).toBe(KubeAdapterErrorCode.NotFound);
    expect(gone.message).toBe('leases.coordination.k8s.io "l" not found');
    // Nodes, pods, namespaces… have no create-on-update: a PUT of a missing one is 404.
    const node = await client.create("nodes", { metadata: { name: "n1" } });
    await client.delete("nodes", undefined, "n1");
    const missing = await failureOf(client.update("nodes", node));
    expect(missing.code).toBe(KubeAdapterErrorCode.NotFound);
  });

  it("keeps the Lease strategy: a PUT needs a resourceVersion (422 without), a PUT of a missing Lease creates it", async () => {
    const created = await client.create("leases", lease("l", "a"));
    const { resourceVersion: _rv, ...meta } = created.metadata;
    const unversioned = await failureOf(
      client.update("leases", { ...created, metadata: meta, spec: { holderIdentity: "b" } }),
    );
    expect(unversioned.code).toBe(KubeAdapterErrorCode.Invalid);
    expect(unversioned.details).toMatchObject({
      status: 422,
      reason: "Invalid",
      causes: [{ field: "metadata.resourceVersion", reason: "FieldValueInvalid" }],
    });
    expect(unversioned.message).toBe(
      'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
    );
    expect((await client.get<KubeLease>("leases", "kube-system", "l"))?.spec?.holderIdentity).toBe("a");
    // Other built-in types take a PUT without resourceVersion as an unconditional update.
    const ns = await client.create<KubeObject>("namespaces", { metadata: { name: "x", labels: { a: "1" } } });
    const { resourceVersion: _nrv, ...nsMeta } = ns.metadata;
    const nsUpdated = await client.update("namespaces", {
      ...ns,
      metadata: { ...nsMeta, labels: { a: "2" } },
    });
    expect(nsUpdated.metadata.labels).toEqual({ a: "2" });

    // AllowCreateOnUpdate: the Lease deleted between a candidate's GET and PUT is created by the PUT.
    await client.delete("leases", "kube-system", "l");
    const recreated = await client.update("leases", { ...created, spec: { holderIdentity: "c" } });
    expect(recreated.spec?.holderIdentity).toBe("c");
    expect(recreated.metadata.uid).not.toBe(created.metadata.uid);
    expect(server.get("leases", "kube-system", "l")?.metadata.resourceVersion).toBe(
      recreated.metadata.resourceVersion,
    );
  });

  it("answers deletes of pods with the deleted object, and assigns generateName names", async () => {
    const p = await client.create<KubePod>("pods", {
      ...pod("", "n1"),
      metadata: { name: "", generateName: "web-", namespace: "default" },
    });
    expect(p.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    const last = (await client.delete("pods", "default", p.metadata.name)) as KubePod;
    expect(last).toMatchObject({ kind: "Pod", metadata: { name: p.metadata.name, uid: p.metadata.uid } });
  });

  it("refuses invalid objects with 422 and the causes per field", async () => {
    const noName = await failureOf(
      client.create("leases", { metadata: { name: "", namespace: "kube-system" } }),
    );
    expect(noName.code).toBe(KubeAdapterErrorCode.Invalid);
    expect(noName.details.causes).toEqual([
      {
        reason: "FieldValueRequired",
        message: "Required value: name or generateName is required",
        field: "metadata.name",
      },
    ]);
    const bad = await failureOf(
      client.create("leases", {
        metadata: { name: "Bad_Name", namespace: "kube-system" },
        spec: { leaseDurationSeconds: 0 },
      }),
    );
    expect(bad.code).toBe(KubeAdapterErrorCode.Invalid);
    expect(bad.details.status).toBe(422);
    expect(bad.details.causes?.map((c) => c.field)).toEqual(["metadata.name", "spec.leaseDurationSeconds"]);
    expect(bad.message).toMatch(
      /^Lease\.coordination\.k8s\.io "Bad_Name" is invalid: \[metadata\.name: Invalid value/,
    );
    const slice = await failureOf(
      client.create("endpointslices", {
        metadata: { name: "s", namespace: "default" },
        endpoints: [],
      } as KubeObject),
    );
    expect(slice.details.causes).toEqual([
      { reason: "FieldValueRequired", message: "Required value", field: "addressType" },
    ]);
    // Client-side refusal: a namespaced object without a namespace never leaves the process.
    const noNs = await failureOf(client.create("pods", { metadata: { name: "x" } }));
    expect(noNs.code).toBe(KubeAdapterErrorCode.Invalid);
    expect(server.stats.requests).toBe(3);
  });

  it("patches with merge, JSON and strategic merge patches", async () => {
    await client.create("pods", pod("p", "n1", { app: "web", tier: "a" }));
    const merged = await client.patch<KubePod>(
      "pods",
      "default",
      "p",
      { metadata: { labels: { tier: null, team: "x" } } },
      { type: "merge" },
    );
    expect(merged.metadata.labels).toEqual({ app: "web", team: "x" });
    const json = await client.patch<KubePod>(
      "pods",
      "default",
      "p",
      [
        { op: "test", path: "/metadata/labels/app", value: "web" },
        { op: "replace", path: "/metadata/labels/app", value: "db" },
        { op: "add", path: "/metadata/annotations", value: { "a/b": "c" } },
      ],
      { type: "json" },
    );
    expect(json.metadata.labels).toEqual({ app: "db", team: "x" });
    expect(json.metadata.annotations).toEqual({ "a/b": "c" });
    const failedTest = await failureOf(
      client.patch("pods", "default", "p", [{ op: "test", path: "/metadata/labels/app", value: "web" }], {
        type: "json",
      }),
    );
    expect(failedTest.code).toBe(KubeAdapterErrorCode.Invalid);
    const strategic = await client.patch<KubePod>(
      "pods",
      "default",
      "p",
      { spec: { nodeName: "n2" }, metadata: { labels: { team: "y" } } },
      { type: "strategic" },
    );
    expect(strategic.spec?.nodeName).toBe("n2");
    expect(strategic.metadata.labels).toEqual({ app: "db", team: "y" });
    expect(strategic.metadata.generation).toBe(2);
    // A resourceVersion in a patch is a precondition.
    const stalePatch = await failureOf(
      client.patch(
        "pods",
        "default",
        "p",
        { metadata: { resourceVersion: merged.metadata.resourceVersion } },
        { type: "merge" },
      ),
    );
    expect(stalePatch.details.reason).toBe("Conflict");
    // Custom resources do not take strategic merge patches.
    await client.create("adminnetworkpolicies", {
      metadata: { name: "anp" },
      spec: { priority: 1 },
    } as KubeObject);
    const unsupported = await failureOf(
      client.patch(
        "adminnetworkpolicies",
        undefined,
        "anp",
        { spec: { priority: 2 } },
        { type: "strategic" },
      ),
    );
    expect(unsupported.details).toMatchObject({ status: 415, reason: "UnsupportedMediaType" });
    expect(
      await client.patch(
        "adminnetworkpolicies",
        undefined,
        "anp",
        { spec: { priority: 2 } },
        { type: "merge" },
      ),
    ).toMatchObject({ spec: { priority: 2 } });
    const notThere = await failureOf(client.patch("pods", "default", "nope", {}, { type: "merge" }));
    expect(notThere.code).toBe(KubeAdapterErrorCode.NotFound);
  });

  it("lists with label and field selectors across pages", async () => {
    for (let i = 0; i < 7; i++) {
      await client.create(
        "pods",
        pod(`p${i}`, i % 2 === 0 ? "n1" : "n2", { app: i < 4 ? "web" : "db", idx: String(i) }),
      );
    }
    const names = async (o: Parameters<KubeClient["list"]>[1]) =>
      (await client.list("pods", { pageSize: 2, ...o })).items.map((p) => p.metadata.name);
    expect(await names({ fieldSelector: "spec.nodeName=n1" })).toEqual(["p0", "p2", "p4", "p6"]);
    expect(await names({ labelSelector: "app=web,idx notin (0,1)" })).toEqual(["p2", "p3"]);
    expect(await names({ labelSelector: "app in (db),idx!=5", fieldSelector: "spec.nodeName!=n1" })).toEqual(
      [],
    );
    expect(await names({ labelSelector: "!app" })).toEqual([]);
    expect(await names({ fieldSelector: "metadata.name=p3", namespace: "default" })).toEqual(["p3"]);
    expect(await names({ namespace: "other" })).toEqual([]);
    const badField = await failureOf(client.list("pods", { fieldSelector: "spec.bogus=1" }));
    expect(badField.code).toBe(KubeAdapterErrorCode.Invalid);
    expect(badField.message).toBe("field label not supported: spec.bogus");
    const badLabel = await failureOf(client.list("pods", { labelSelector: "a in (" }));
    expect(badLabel.details.status).toBe(400);
  });

  it("watches through a label selector: objects entering and leaving it arrive as ADDED and DELETED", async () => {
    await client.create("pods", pod("a", "n1", { app: "web" }));
    await client.create("pods", pod("b", "n1", { app: "db" }));
    const events: string[] = [];
    const inf = createInformer<KubePod>({
      transport,
      resource: KubeResources.pods,
      labelSelector: "app=web",
      fieldSelector: "spec.nodeName=n1",
      onEvent: (e) => events.push(`${e.type} ${e.key}`),
    });
    try {
      await inf.waitForSync();
      expect([...inf.cache.keys()]).toEqual(["default/a"]);
      await client.patch("pods", "default", "b", { metadata: { labels: { app: "web" } } }, { type: "merge" });
      await client.patch("pods", "default", "a", { metadata: { labels: { app: "db" } } }, { type: "merge" });
      await client.patch("pods", "default", "b", { spec: { nodeName: "n3" } }, { type: "merge" });
      await waitFor(() => events.length === 4, "4 events");
      expect(events).toEqual([
        "added default/a",
        "added default/b",
        "deleted default/a",
        "deleted default/b",
      ]);
      expect(inf.cache.size).toBe(0);
    } finally {
      await inf.close();
    }
  });

  it("fails writes on injected failures, and answers 401 once the accepted token rotates", async () => {
    server.failRequests(1, 503, (r) => r.method === "POST");
    await client.get("pods", "default", "x"); // a GET passes the filter
    const injected = await failureOf(client.create("pods", pod("x", "n1")));
    expect(injected).toMatchObject({ code: KubeAdapterErrorCode.Http, retryable: true });
    expect(injected.details.status).toBe(503);
    await client.create("pods", pod("x", "n1"));

    server.setTokens(["t1"]);
    const authed = createKubeClient(
      createHttpTransport({ server: server.url, headers: { Authorization: "Bearer t1" } }),
    );
    expect(await authed.get("pods", "default", "x")).toBeDefined();
    server.setTokens(["t2"]);
    const denied = await failureOf(authed.get("pods", "default", "x"));
    expect(denied.code).toBe(KubeAdapterErrorCode.Unauthorized);
    expect(denied.message).toBe("Unauthorized");
    authed.transport.close();
  });
});
