import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEtcdDatastore,
  type EtcdDatastoreOptions,
  isDatastoreError,
  type WatchEvent,
} from "../index.js";
import { type EtcdServer, startEtcd } from "../testing/index.js";

const run = promisify(execFile);
const obj = (name: string) => ({
  apiVersion: "margay.io/v1",
  kind: "SecProbe",
  metadata: { name },
  spec: {},
});

/** create, get, list and a watch event through `opts`; proves the whole surface works over the channel. */
async function roundTrip(opts: EtcdDatastoreOptions) {
  const ds = createEtcdDatastore({ ...opts, prefix: `/margay-sec-${randomBytes(4).toString("hex")}` });
  try {
    const start = await ds.list("SecProbe");
    const w = ds.watch("SecProbe", { fromRevision: start.revision });
    const created = await ds.create(obj("a"));
    expect(await ds.get({ kind: "SecProbe", name: "a" })).toEqual(created);
    const first = await (async () => {
      for await (const ev of w) return ev as WatchEvent;
      return undefined;
    })();
    expect(first?.object.metadata.name).toBe("a");
  } finally {
    await ds.close();
  }
}

async function failure(opts: EtcdDatastoreOptions): Promise<unknown> {
  const ds = createEtcdDatastore({ ...opts, readAttempts: 1, requestTimeoutMs: 3_000, dialTimeoutMs: 1_000 });
  try {
    await ds.get({ kind: "SecProbe", name: "a" });
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await ds.close();
  }
}

describe("etcd backend: TLS with client certificates", () => {
  let dir: string;
  let etcd: EtcdServer;
  const pem: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-ds-tls-"));
    const f = (n: string) => join(dir, n);
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.crt"),
      "-days",
      "1",
      "-subj",
      "/CN=margay-test-ca",
    ]);
    await writeFile(f("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    await writeFile(f("client.ext"), "extendedKeyUsage=clientAuth\n");
    for (const who of ["server", "client"]) {
      await run("openssl", [
        "req",
        ...ec,
        "-keyout",
        f(`${who}.key`),
        "-out",
        f(`${who}.csr`),
        "-subj",
        `/CN=margay-${who}`,
      ]);
      await run("openssl", [
        "x509",
        "-req",
        "-in",
        f(`${who}.csr`),
        "-CA",
        f("ca.crt"),
        "-CAkey",
        f("ca.key"),
        "-CAcreateserial",
        "-out",
        f(`${who}.crt`),
        "-days",
        "1",
        "-extfile",
        f(`${who}.ext`),
      ]);
    }
    for (const n of ["ca.crt", "client.crt", "client.key"]) pem[n] = await readFile(f(n));
    etcd = await startEtcd({
      tls: {
        caFile: f("ca.crt"),
        certFile: f("server.crt"),
        keyFile: f("server.key"),
        clientCertAuth: true,
        clientCertFile: f("client.crt"),
        clientKeyFile: f("client.key"),
      },
    });
  });
  afterAll(async () => {
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("works over https with the CA and a client certificate", async () => {
    expect(etcd.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await roundTrip({
      endpoints: etcd.endpoints,
      tls: { ca: pem["ca.crt"]!, cert: pem["client.crt"]!, key: pem["client.key"]! },
    });
  });

  it("fails unavailable without a client certificate, or with plaintext", async () => {
    const noCert = await failure({ endpoints: etcd.endpoints, tls: { ca: pem["ca.crt"]! } });
    expect(isDatastoreError(noCert, "unavailable")).toBe(true);
    const plain = await failure({ endpoints: [etcd.endpoints[0]!.replace("https:", "http:")] });
    expect(isDatastoreError(plain, "unavailable")).toBe(true);
  });
});

describe("etcd backend: user/password authentication", () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd();
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await admin.user("root").create("root-pw");
      await admin
        .role("root")
        .create()
        .catch(() => undefined); // etcd 3.4 has a built-in root role
      await admin.user("root").addRole("root");
      await admin.auth.authEnable({});
    } finally {
      admin.close();
    }
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it("works with the right username and password", async () => {
    await roundTrip({ endpoints: etcd.endpoints, username: "root", password: "root-pw" });
  });

  it("fails with a wrong password or none, with reason auth", async () => {
    const wrong = await failure({ endpoints: etcd.endpoints, username: "root", password: "nope" });
    expect(isDatastoreError(wrong, "unavailable")).toBe(true);
    expect((wrong as { retryable: boolean }).retryable).toBe(false);
    expect((wrong as { details: { reason?: string } }).details.reason).toBe("auth");
    const none = await failure({ endpoints: etcd.endpoints });
    expect(isDatastoreError(none, "unavailable")).toBe(true);
    expect((none as { details: { reason?: string } }).details.reason).toBe("auth");
  });
});
