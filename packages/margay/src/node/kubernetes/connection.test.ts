import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestPki, type TestPki } from "@margay/datastore/testing";
import { isKubeAdapterError } from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isWorkloadApiError } from "../workload/errors.js";
import { type KubernetesApi, openKubernetesApi } from "./connection.js";
import { createPodInfoSource } from "./pod-info.js";

let pki: TestPki;
let saDir: string;
let server: FakeKubeApiServer;
let api: KubernetesApi | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  saDir = await mkdtemp(join(tmpdir(), "margay-sa-"));
  await writeFile(join(saDir, "ca.crt"), pki.ca.cert);
  await writeFile(join(saDir, "token"), "token-1\n");
  server = await startFakeKubeApiServer({
    tls: { key: pki.server.key, cert: pki.server.cert },
    token: "token-1",
  });
  server.create("namespaces", { metadata: { name: "shop" } });
  server.create("pods", {
    metadata: { name: "web", namespace: "shop", labels: { app: "web" } },
    spec: { nodeName: "n1", containers: [{ name: "c" }] },
  });
});

afterAll(async () => {
  api?.close();
  await server?.close();
  await rm(saDir, { recursive: true, force: true });
  await pki?.remove();
});

describe("openKubernetesApi (the agent's connection)", () => {
  it("in-cluster: the mounted CA and token; a rotated token is used at the next request without a restart", async () => {
    const port = Number(new URL(server.url).port);
    api = openKubernetesApi({ inCluster: { host: "127.0.0.1", port } }, { serviceAccountDir: saDir });
    expect(api.server).toBe(`https://127.0.0.1:${port}`);
    const source = createPodInfoSource({ getter: api.client, nodeName: "n1" });
    const signal = AbortSignal.timeout(10_000);
    expect((await source.lookup("shop", "web", signal)).labels).toMatchObject({ app: "web" });

    // The kubelet rotates the projected token; the API server stops taking the old one.
    server.setTokens(["token-2"]);
    const refused = await source.lookup("shop", "web", signal).catch((e: unknown) => e);
    expect(isWorkloadApiError(refused, "kubernetes-unavailable")).toBe(true);
    expect((refused as { details: { status?: number } }).details.status).toBe(401);
    await writeFile(join(saDir, "token"), "token-2\n");
    expect((await source.lookup("shop", "web", signal)).labels).toMatchObject({ app: "web" });
  });

  it("a KUBECONFIG list is merged as kubectl: missing files skipped, the first file's context wins", async () => {
    const kubeconfig = (server: string, context: string) =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server, "certificate-authority": join(saDir, "ca.crt") } }],
        users: [{ name: "u", user: { token: "token-2" } }],
        contexts: [{ name: context, context: { cluster: "c", user: "u" } }],
        "current-context": context,
      });
    const first = join(saDir, "kubeconfig-first");
    const second = join(saDir, "kubeconfig-second");
    await writeFile(first, kubeconfig(server.url, "mine"));
    await writeFile(second, kubeconfig("https://127.0.0.1:1", "theirs"));
    const merged = openKubernetesApi({ kubeconfig: `${join(saDir, "missing")}:${first}:${second}` });
    try {
      expect(merged.server).toBe(server.url);
      server.setTokens(["token-2"]);
      const source = createPodInfoSource({ getter: merged.client, nodeName: "n1" });
      expect((await source.lookup("shop", "web", AbortSignal.timeout(10_000))).labels).toMatchObject({
        app: "web",
      });
    } finally {
      merged.close();
    }
  });

  it("a kubeconfig that cannot be read is a config error at start", () => {
    let err: unknown;
    try {
      openKubernetesApi({ kubeconfig: join(saDir, "missing") });
    } catch (e) {
      err = e;
    }
    expect(isKubeAdapterError(err, "config")).toBe(true);
  });
});
