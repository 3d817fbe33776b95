import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createInformer } from "../informer/informer.js";
import { KubeResources } from "../resources.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "../testing/index.js";
import { loadKubeConfig, transportFromKubeConfig } from "./kubeconfig.js";
import { readBody } from "./transport.js";

// Test PKI from ./testdata (see regenerate.sh there): a CA, a server cert for 127.0.0.1, a client cert.
const pem = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url));
const b64 = (f: string) => pem(f).toString("base64");
const dir = mkdtempSync(join(tmpdir(), `mg-kubeconfig-${randomBytes(4).toString("hex")}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(
  clusters: Record<string, Record<string, unknown>>,
  users: Record<string, Record<string, unknown>>,
  contexts: Record<string, [string, string]>,
  current: string,
): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: Object.entries(clusters).map(([name, cluster]) => ({ name, cluster })),
    users: Object.entries(users).map(([name, user]) => ({ name, user })),
    contexts: Object.entries(contexts).map(([name, [cluster, user]]) => ({
      name,
      context: { cluster, user },
    })),
    "current-context": current,
  });
}

async function seeded(server: FakeKubeApiServer): Promise<FakeKubeApiServer> {
  server.create("namespaces", { metadata: { name: "kube-system" } });
  server.create("namespaces", { metadata: { name: "default" } });
  return server;
}

async function listNamespaces(transport: ReturnType<typeof transportFromKubeConfig>): Promise<string[]> {
  const inf = createInformer({ transport, resource: KubeResources.namespaces });
  try {
    await inf.waitForSync();
    return [...inf.cache.keys()].sort();
  } finally {
    await inf.close();
    transport.close();
  }
}

describe("kubeconfig", () => {
  it("authenticates with a bearer token over HTTP, from a kubeconfig file", async () => {
    await using server = await seeded(await startFakeKubeApiServer({ token: "s3cr3t" }));
    const path = join(dir, "token.yaml");
    writeFileSync(
      path,
      kubeconfig(
        { fake: { server: server.url } },
        { admin: { token: "s3cr3t" }, wrong: { token: "nope" } },
        { good: ["fake", "admin"], bad: ["fake", "wrong"] },
        "good",
      ),
    );
    expect(await listNamespaces(transportFromKubeConfig(loadKubeConfig({ path })))).toEqual([
      "default",
      "kube-system",
    ]);
    // The other context's user has the wrong token: the server says 401.
    const bad = transportFromKubeConfig(loadKubeConfig({ path, context: "bad" }));
    const res = await bad.get("/api/v1/namespaces");
    expect(res.status).toBe(401);
    expect(JSON.parse((await readBody(res)).toString())).toMatchObject({ reason: "Unauthorized" });
    bad.close();
  });

  it("authenticates with a client certificate over HTTPS, verifying the server against the CA", async () => {
    await using server = await seeded(
      await startFakeKubeApiServer({
        tls: { key: pem("server.key"), cert: pem("server.crt"), ca: pem("ca.crt") },
        requireClientCert: true,
      }),
    );
    const text = kubeconfig(
      {
        fake: { server: server.url, "certificate-authority-data": b64("ca.crt") },
        untrusted: { server: server.url },
      },
      {
        node: { "client-certificate-data": b64("client.crt"), "client-key-data": b64("client.key") },
        anonymous: {},
      },
      { mtls: ["fake", "node"], anon: ["fake", "anonymous"], untrusted: ["untrusted", "node"] },
      "mtls",
    );
    expect(await listNamespaces(transportFromKubeConfig(loadKubeConfig({ text })))).toEqual([
      "default",
      "kube-system",
    ]);
    const anon = transportFromKubeConfig(loadKubeConfig({ text, context: "anon" }));
    expect((await anon.get("/api/v1/namespaces")).status).toBe(401);
    anon.close();
    // Without the CA the server's certificate is not trusted.
    const untrusted = transportFromKubeConfig(loadKubeConfig({ text, context: "untrusted" }));
    await expect(untrusted.get("/api/v1/namespaces")).rejects.toMatchObject({ code: "network" });
    untrusted.close();
  });

  it("loads in-cluster credentials from a service-account directory", async () => {
    await using server = await seeded(
      await startFakeKubeApiServer({
        tls: { key: pem("server.key"), cert: pem("server.crt") },
        token: "sa-token",
      }),
    );
    const sa = join(dir, "serviceaccount");
    rmSync(sa, { recursive: true, force: true });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(sa);
    writeFileSync(join(sa, "token"), "sa-token");
    writeFileSync(join(sa, "ca.crt"), pem("ca.crt"));
    const port = new URL(server.url).port;
    const kc = loadKubeConfig({ inCluster: { host: "127.0.0.1", port, serviceAccountDir: sa } });
    expect(kc.getCurrentCluster()?.server).toBe(`https://127.0.0.1:${port}`);
    expect(await listNamespaces(transportFromKubeConfig(kc))).toEqual(["default", "kube-system"]);
  });

  it("speaks HTTPS in-cluster on any port, as client-go (the token never goes out in clear text)", () => {
    for (const port of ["80", "8080", "8001", "443", "6443"]) {
      const kc = loadKubeConfig({ inCluster: { host: "10.96.0.1", port, serviceAccountDir: dir } });
      expect(kc.getCurrentCluster()?.server).toBe(`https://10.96.0.1:${port}`);
    }
    const v6 = loadKubeConfig({ inCluster: { host: "fd00::1", port: "443", serviceAccountDir: dir } });
    expect(v6.getCurrentCluster()?.server).toBe("https://[fd00::1]:443");
  });

  /** Replaces a file the way the kubelet rotates a projected token: a new file swapped in whole. */
  function rotate(path: string, content: string) {
    writeFileSync(`${path}.new`, content);
    renameSync(`${path}.new`, path);
  }

  it("uses a kubeconfig tokenFile, and the rotated token on the very next request", async () => {
    await using server = await seeded(await startFakeKubeApiServer({ tokens: ["first"] }));
    const tokenDir = join(dir, "token-file");
    mkdirSync(tokenDir, { recursive: true });
    writeFileSync(join(tokenDir, "token"), "first\n");
    const path = join(tokenDir, "kubeconfig.yaml");
    // kubectl's spelling, and a path relative to the kubeconfig's directory.
    writeFileSync(
      path,
      kubeconfig(
        { fake: { server: server.url } },
        { sa: { tokenFile: "token" } },
        { ctx: ["fake", "sa"] },
        "ctx",
      ),
    );
    const transport = transportFromKubeConfig(loadKubeConfig({ path }));
    try {
      expect((await transport.get("/api/v1/namespaces")).status).toBe(200);
      rotate(join(tokenDir, "token"), "second\n");
      server.setTokens(["second"]);
      expect((await transport.get("/api/v1/namespaces")).status).toBe(200);
      // A token file that vanishes keeps the last token read (client-go's rule).
      rmSync(join(tokenDir, "token"));
      expect((await transport.get("/api/v1/namespaces")).status).toBe(200);
    } finally {
      transport.close();
    }
  });

  it("re-reads the in-cluster projected token as the kubelet rotates it", async () => {
    await using server = await seeded(
      await startFakeKubeApiServer({
        tls: { key: pem("server.key"), cert: pem("server.crt") },
        tokens: ["t1"],
      }),
    );
    const sa = join(dir, "rotating-serviceaccount");
    rmSync(sa, { recursive: true, force: true });
    mkdirSync(sa);
    writeFileSync(join(sa, "token"), "t1");
    writeFileSync(join(sa, "ca.crt"), pem("ca.crt"));
    const port = new URL(server.url).port;
    const transport = transportFromKubeConfig(
      loadKubeConfig({ inCluster: { host: "127.0.0.1", port, serviceAccountDir: sa } }),
    );
    try {
      expect((await transport.get("/api/v1/namespaces")).status).toBe(200);
      rotate(join(sa, "token"), "t2");
      server.setTokens(["t2"]); // the old token is refused from now on
      expect((await transport.get("/api/v1/namespaces")).status).toBe(200);
      rotate(join(sa, "token"), "t3");
      server.setTokens(["t3"]);
      expect(await listNamespaces(transport)).toEqual(["default", "kube-system"]);
    } finally {
      transport.close();
    }
  });

  it("merges a KUBECONFIG list as kubectl: first file wins per name and for current-context, missing files skipped", async () => {
    await using server = await seeded(await startFakeKubeApiServer({ token: "s3cr3t" }));
    const sub = mkdtempSync(join(dir, "merge-"));
    const first = join(sub, "first.yaml");
    const second = join(sub, "second.yaml");
    writeFileSync(
      first,
      kubeconfig(
        { fake: { server: server.url } },
        { admin: { token: "s3cr3t" } },
        { good: ["fake", "admin"] },
        "good",
      ),
    );
    // Same names as the first file (they lose) plus a context of its own; its current-context loses too.
    writeFileSync(
      second,
      kubeconfig(
        { fake: { server: "http://127.0.0.1:1" }, other: { server: server.url } },
        { admin: { token: "nope" }, ops: { token: "s3cr3t" } },
        { good: ["other", "ops"], second: ["other", "ops"] },
        "second",
      ),
    );
    const paths = [join(sub, "missing.yaml"), first, "", second];
    const kc = loadKubeConfig({ paths });
    expect(kc.getCurrentContext()).toBe("good");
    expect(kc.getCurrentCluster()?.server).toBe(server.url);
    expect(kc.contexts.map((c) => c.name).sort()).toEqual(["good", "second"]);
    const t = transportFromKubeConfig(kc);
    expect(await listNamespaces(t)).toEqual(["default", "kube-system"]);
    // A context only the second file defines, with its own cluster and user.
    const t2 = transportFromKubeConfig(loadKubeConfig({ paths, context: "second" }));
    expect(await listNamespaces(t2)).toEqual(["default", "kube-system"]);
    // The first file's current-context wins even when the second is listed first.
    expect(loadKubeConfig({ paths: [second, first] }).getCurrentContext()).toBe("second");
    expect(() => loadKubeConfig({ paths: [join(sub, "a.yaml"), join(sub, "b.yaml")] })).toThrow(
      expect.objectContaining({ code: "config" }),
    );
  });

  it("fails with a config error for an unreadable or empty kubeconfig", () => {
    expect(() => loadKubeConfig({ path: join(dir, "missing.yaml") })).toThrow(
      expect.objectContaining({ code: "config" }),
    );
    expect(() => loadKubeConfig({ text: stringify({ apiVersion: "v1", kind: "Config" }) })).toThrow(
      expect.objectContaining({ code: "config" }),
    );
  });
});
