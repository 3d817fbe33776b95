import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DatastoreConfigError,
  type EtcdDatastoreConfig,
  isDatastoreConfigError,
  loadDatastoreConnection,
  parseDatastoreConfig,
} from "./datastore-config.js";

function errorOf(f: () => unknown): DatastoreConfigError {
  try {
    f();
  } catch (e) {
    if (isDatastoreConfigError(e)) return e;
    throw e;
  }
  throw new Error("expected an error");
}

async function rejectionOf(p: Promise<unknown>): Promise<DatastoreConfigError> {
  try {
    await p;
  } catch (e) {
    if (isDatastoreConfigError(e)) return e;
    throw e;
  }
  throw new Error("expected an error");
}

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";
const PASSWORD = "s3cret-Pa55";

describe("parseDatastoreConfig", () => {
  it("reads a memory datastore with its default lock timeout", () => {
    expect(parseDatastoreConfig({ type: "memory", snapshotPath: "/var/lib/x.json" })).toEqual({
      type: "memory",
      snapshotPath: "/var/lib/x.json",
      lockTimeoutMs: 10_000,
    });
  });

  it("reads a secured etcd datastore (file paths only)", () => {
    const c = parseDatastoreConfig(
      {
        type: "etcd",
        endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
        prefix: "/margay/v1",
        caCertFile: "/pki/ca.crt",
        certFile: "/pki/c.crt",
        keyFile: "/pki/c.key",
        username: "margay",
        passwordFile: "/pki/pw",
        requestTimeoutMs: 1500,
      },
      { dialTimeoutMs: 2000 },
    );
    expect(c).toEqual({
      type: "etcd",
      endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
      prefix: "/margay/v1",
      caCertFile: "/pki/ca.crt",
      certFile: "/pki/c.crt",
      keyFile: "/pki/c.key",
      username: "margay",
      passwordFile: "/pki/pw",
      dialTimeoutMs: 2000,
      requestTimeoutMs: 1500,
    });
  });

  it("fills missing etcd fields from Calico's ETCD_* variables; the object wins", () => {
    const c = parseDatastoreConfig(
      { type: "etcd", certFile: "/obj/c.crt" },
      {
        env: {
          ETCD_ENDPOINTS: "https://a:2379, https://b:2379",
          ETCD_CA_CERT_FILE: "/env/ca.crt",
          ETCD_CERT_FILE: "/env/c.crt",
          ETCD_KEY_FILE: "/env/c.key",
          ETCD_USERNAME: "u",
          ETCD_PASSWORD_FILE: "/env/pw",
        },
      },
    ) as EtcdDatastoreConfig;
    expect(c.endpoints).toEqual(["https://a:2379", "https://b:2379"]);
    expect(c.caCertFile).toBe("/env/ca.crt");
    expect(c.certFile).toBe("/obj/c.crt");
    expect(c.keyFile).toBe("/env/c.key");
    expect(c.username).toBe("u");
    expect(c.passwordFile).toBe("/env/pw");
  });

  const bad: Array<[string, unknown, Record<string, string>, RegExp]> = [
    ["not an object", "etcd", {}, /^\$\.datastore: must be an object/],
    ["unknown type", { type: "consul" }, {}, /^\$\.datastore\.type: must be "memory" or "etcd"/],
    [
      "a tls block (unknown field)",
      { type: "etcd", endpoints: ["https://a:2379"], tls: {} },
      {},
      /^\$\.datastore\.tls: unknown field for a etcd datastore/,
    ],
    [
      "misspelt field",
      { type: "etcd", endpoints: ["http://a:2379"], userName: "u" },
      {},
      /^\$\.datastore\.userName: unknown field/,
    ],
    [
      "memory field on etcd",
      { type: "memory", snapshotPath: "/x", endpoints: [] },
      {},
      /^\$\.datastore\.endpoints: unknown field for a memory datastore/,
    ],
    [
      "inline password",
      { type: "etcd", endpoints: ["http://a:2379"], username: "u", password: PASSWORD },
      {},
      /^\$\.datastore\.password: an inline password is not accepted/,
    ],
    [
      "ETCD_PASSWORD in the environment",
      { type: "etcd", endpoints: ["http://a:2379"] },
      { ETCD_PASSWORD: PASSWORD },
      /^env:ETCD_PASSWORD: a password in the environment is not accepted/,
    ],
    [
      "no endpoints at all",
      { type: "etcd" },
      {},
      /^\$\.datastore\.endpoints: required \(or set ETCD_ENDPOINTS\)/,
    ],
    [
      "credentials in an endpoint URL",
      { type: "etcd", endpoints: [`https://u:${PASSWORD}@a:2379`] },
      {},
      /^\$\.datastore\.endpoints\[0\]: must not carry credentials/,
    ],
    [
      "bad scheme",
      { type: "etcd", endpoints: ["unix:///x"] },
      {},
      /^\$\.datastore\.endpoints\[0\]: must be an http/,
    ],
    [
      "mixed schemes",
      { type: "etcd", endpoints: ["http://a:2379", "https://b:2379"] },
      {},
      /^\$\.datastore\.endpoints: must all be http/,
    ],
    [
      "cert without key",
      { type: "etcd", endpoints: ["https://a:2379"], certFile: "/c" },
      {},
      /^\$\.datastore\.keyFile: certFile and keyFile go together/,
    ],
    [
      "username without password file",
      { type: "etcd", endpoints: ["https://a:2379"], username: "u" },
      {},
      /^\$\.datastore\.passwordFile: username and passwordFile go together/,
    ],
    [
      "TLS files with http endpoints",
      { type: "etcd", endpoints: ["http://a:2379"], caCertFile: "/ca" },
      {},
      /^\$\.datastore\.endpoints: TLS files are configured but the endpoints are http/,
    ],
    [
      "relative key path from the environment",
      { type: "etcd", endpoints: ["https://a:2379"], certFile: "/c" },
      { ETCD_KEY_FILE: "key.pem" },
      /^env:ETCD_KEY_FILE: must be an absolute path/,
    ],
    [
      "zero request timeout",
      { type: "etcd", endpoints: ["http://a:2379"], requestTimeoutMs: 0 },
      {},
      /^\$\.datastore\.requestTimeoutMs: must be an integer/,
    ],
    [
      "prefix with a trailing slash",
      { type: "etcd", endpoints: ["http://a:2379"], prefix: "/m/" },
      {},
      /prefix/,
    ],
  ];
  for (const [what, raw, env, msg] of bad) {
    it(`rejects ${what}, naming the field and never the secret`, () => {
      const e = errorOf(() => parseDatastoreConfig(raw, { env }));
      expect(e.code).toBe("invalid-config");
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(msg);
      expect(e.message).not.toContain(PASSWORD);
    });
  }
});

describe("loadDatastoreConnection", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mg-dscfg-"));
    await writeFile(join(dir, "ca.crt"), PEM_CERT);
    await writeFile(join(dir, "c.crt"), PEM_CERT);
    await writeFile(join(dir, "c.key"), PEM_KEY, { mode: 0o600 });
    await writeFile(join(dir, "pw"), `${PASSWORD}\n`, { mode: 0o600 });
    await writeFile(join(dir, "empty"), "");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const cfg = (o: Partial<EtcdDatastoreConfig>): EtcdDatastoreConfig => ({
    type: "etcd",
    endpoints: ["https://127.0.0.1:2379"],
    dialTimeoutMs: 1000,
    requestTimeoutMs: 1000,
    ...o,
  });

  it("reads every file once; printing the result shows neither the password nor the key", async () => {
    const c = await loadDatastoreConnection(
      cfg({
        caCertFile: join(dir, "ca.crt"),
        certFile: join(dir, "c.crt"),
        keyFile: join(dir, "c.key"),
        username: "margay",
        passwordFile: join(dir, "pw"),
      }),
    );
    expect(c.password).toBe(PASSWORD);
    expect(c.tls?.key?.toString()).toBe(PEM_KEY);
    expect(c.tls?.ca.toString()).toBe(PEM_CERT);
    for (const printed of [inspect(c, { depth: 5 }), JSON.stringify(c), `${inspect({ wrapped: c })}`]) {
      expect(printed).not.toContain(PASSWORD);
      expect(printed).not.toContain("SECRETKEYMATERIAL");
    }
    expect(JSON.stringify(c)).toContain("[redacted]");
  });

  const broken: Array<[string, Partial<EtcdDatastoreConfig>, string, RegExp]> = [
    [
      "missing CA file",
      { caCertFile: "/nonexistent/ca.crt" },
      "/nonexistent/ca.crt",
      /caCertFile: cannot read CA certificate file \/nonexistent\/ca\.crt \(ENOENT\)/,
    ],
    ["CA file that is a key", { caCertFile: "KEY" }, "KEY", /does not hold a PEM certificate/],
    [
      "key file that is a certificate",
      { certFile: "CRT", keyFile: "CRT2" },
      "CRT2",
      /keyFile: .* does not hold a PEM private key/,
    ],
    [
      "empty password file",
      { username: "u", passwordFile: "EMPTY" },
      "EMPTY",
      /passwordFile: password file .* is empty/,
    ],
    [
      "unreadable password file",
      { username: "u", passwordFile: "/nonexistent/pw" },
      "/nonexistent/pw",
      /cannot read password file/,
    ],
  ];
  for (const [what, partial, file, msg] of broken) {
    it(`${what} → unreadable-file naming the file`, async () => {
      const fix = (p: string | undefined) =>
        p === "KEY"
          ? join(dir, "c.key")
          : p === "CRT" || p === "CRT2"
            ? join(dir, "c.crt")
            : p === "EMPTY"
              ? join(dir, "empty")
              : p;
      const c = cfg(
        Object.fromEntries(
          Object.entries(partial).map(([k, v]) => [k, k === "username" ? v : fix(v as string)]),
        ),
      );
      const e = await rejectionOf(loadDatastoreConnection(c));
      expect(e.code).toBe("unreadable-file");
      expect(e.details.file).toBe(fix(file));
      expect(e.message).toMatch(msg);
      expect(e.message).not.toContain("SECRETKEYMATERIAL");
    });
  }
});
