import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEtcdDatastore, type EtcdDatastoreOptions, isDatastoreError } from "../index.js";
import { createTestPki, type TestPki } from "../testing/index.js";

// No etcd needed: every case here is decided at construction, before any connection.
const PASSWORD = "s3cret-Pa55word-do-not-print";
const EP = ["https://127.0.0.1:1"];

/** The base64 body of a PEM block, the part that must never be printed. */
const pemBody = (pem: Buffer) =>
  pem
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("-----"))
    .join("");

describe("etcd options: TLS material checked at construction", () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });
  afterAll(async () => {
    await pki?.remove();
  });

  const cases: [string, () => EtcdDatastoreOptions, string][] = [
    [
      "cert without key",
      () => ({ endpoints: EP, tls: { ca: pki.ca.cert, cert: pki.client.cert } }),
      "tls.key",
    ],
    [
      "key without cert",
      () => ({ endpoints: EP, tls: { ca: pki.ca.cert, key: pki.client.key } }),
      "tls.cert",
    ],
    [
      "key not matching cert",
      () => ({ endpoints: EP, tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.foreignClient.key } }),
      "tls.key",
    ],
    [
      "cert that is not PEM",
      () => ({ endpoints: EP, tls: { ca: pki.ca.cert, cert: "not a certificate", key: pki.client.key } }),
      "tls.cert",
    ],
    ["CA that is not PEM", () => ({ endpoints: EP, tls: { ca: "garbage" } }), "tls.ca"],
    ["password without user", () => ({ endpoints: EP, password: PASSWORD }), "username"],
    ["user without password", () => ({ endpoints: EP, username: "alice" }), "password"],
    [
      "credentials in an endpoint URL",
      () => ({ endpoints: [`https://alice:${PASSWORD}@127.0.0.1:2379`] }),
      "endpoints[0]",
    ],
    ["endpoint that is not a URL", () => ({ endpoints: ["127.0.0.1:2379"] }), "endpoints[0]"],
  ];

  it.each(cases)("%s fails invalid naming the field, printing no secret", (_name, opts, field) => {
    let err: unknown;
    try {
      createEtcdDatastore(opts()).close();
    } catch (e) {
      err = e;
    }
    expect(isDatastoreError(err, "invalid"), String(err)).toBe(true);
    const e = err as { details: { field?: string }; retryable: boolean; message: string };
    expect(e.details.field).toBe(field);
    expect(e.retryable).toBe(false);
    const printed = `${e.message}\n${inspect(err, { depth: 8 })}`;
    expect(printed).not.toContain(PASSWORD);
    expect(printed).not.toContain(pemBody(pki.client.key));
    expect(printed).not.toContain(pemBody(pki.foreignClient.key));
  });

  it("printing the datastore or its client shows neither password nor private key", async () => {
    const ds = createEtcdDatastore({
      endpoints: EP,
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
      username: "alice",
      password: PASSWORD,
    });
    try {
      const surfaces = [
        inspect(ds),
        inspect(ds, { depth: Number.POSITIVE_INFINITY }),
        inspect(ds.client, { depth: 6 }),
        JSON.stringify(ds),
        String(ds),
      ].join("\n");
      expect(surfaces).toContain("alice");
      expect(surfaces).not.toContain(PASSWORD);
      expect(surfaces).not.toContain(pemBody(pki.client.key));
      expect(surfaces).not.toContain(pki.client.key.toString("base64"));
    } finally {
      await ds.close();
    }
  });
});
