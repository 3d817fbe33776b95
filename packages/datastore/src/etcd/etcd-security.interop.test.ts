import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createEtcdDatastore,
  type DatastoreError,
  type EtcdDatastoreOptions,
  isDatastoreError,
  type WatchEvent,
} from "../index.js";
import { type EtcdServer, startEtcd } from "../testing/index.js";

// One etcd 3.4 as production runs it: TLS with client certificates (--client-cert-auth), authentication
// on, and a user whose role grants only `/margay-sec/` (readwrite).
const ROOT_PW = `root-${randomBytes(6).toString("hex")}`;
const USER_PW = `alice-${randomBytes(6).toString("hex")}`;
const WRONG_PW = `wrong-${randomBytes(6).toString("hex")}`;
const GRANT = "/margay-sec/";
const obj = (name: string) => ({
  apiVersion: "margay.io/v1",
  kind: "SecProbe",
  metadata: { name },
  spec: {},
});
const child = fileURLToPath(new URL("./security-child.fixture.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd({
    tls: "generate",
    rbac: { rootPassword: ROOT_PW, users: [{ name: "alice", password: USER_PW, prefix: GRANT }] },
  });
});
afterAll(async () => {
  await etcd?.stop();
});

/** The options of a correctly configured client of `etcd` (user alice, inside her grant). */
function good(): EtcdDatastoreOptions {
  return {
    endpoints: etcd.endpoints,
    tls: etcd.clientTls!,
    username: "alice",
    password: USER_PW,
    prefix: `${GRANT}${randomBytes(4).toString("hex")}`,
  };
}

/** Every secret of the run, as it could leak: passwords and the base64 bodies of private keys. */
function secrets(): string[] {
  const pki = etcd.pki!;
  const body = (pem: Buffer) =>
    pem
      .toString("utf8")
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("-----"))
      .join("");
  return [
    ROOT_PW,
    USER_PW,
    WRONG_PW,
    body(pki.client.key),
    body(pki.foreignClient.key),
    body(pki.server.key),
  ];
}

interface ChildError {
  code: string;
  retryable?: boolean;
  reason?: string;
  message: string;
  inspected: string;
}
interface ChildResult {
  get: ChildError;
  watch: ChildError;
  inspected: string;
  exited: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs one `get` and one watch with `options` in a child process, which closes the datastore and must
 * then exit by itself. Bounded generously: a child still running 60 s after its output is killed and
 * reported as not exited.
 */
function runChild(options: EtcdDatastoreOptions): Promise<ChildResult> {
  const tls = options.tls;
  const b64 = (v: Buffer | string | undefined) =>
    v === undefined ? undefined : Buffer.from(v).toString("base64");
  const input = JSON.stringify({
    options: {
      ...options,
      tls: tls === undefined ? undefined : { ca: b64(tls.ca), cert: b64(tls.cert), key: b64(tls.key) },
    },
    watchBoundMs: 45_000,
  });
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child], {
      cwd: repoRoot,
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    let stdout = "";
    let stderr = "";
    let exitTimer: NodeJS.Timeout | undefined;
    const hardTimer = setTimeout(() => proc.kill("SIGKILL"), 110_000);
    proc.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
      // Output is written after close(); from then on the process has 60 s to exit on its own.
      exitTimer ??= setTimeout(() => proc.kill("SIGKILL"), 60_000);
    });
    proc.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    proc.on("error", reject);
    proc.on("exit", (code, signal) => {
      clearTimeout(hardTimer);
      clearTimeout(exitTimer);
      let parsed: Omit<ChildResult, "exited" | "stdout" | "stderr">;
      try {
        parsed = JSON.parse(stdout);
      } catch {
        reject(new Error(`child printed no result (exit ${code ?? signal}): ${stderr.slice(-2000)}`));
        return;
      }
      resolve({ ...parsed, exited: code === 0 && signal === null, stdout, stderr });
    });
    proc.stdin.end(input);
  });
}

describe("etcd backend: TLS client certificates + RBAC, prefix-restricted user", () => {
  it("works end to end with the right CA, certificate, user and password", async () => {
    const ds = createEtcdDatastore(good());
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
      await ds.delete({ kind: "SecProbe", name: "a" });
    } finally {
      await ds.close();
    }
  });

  // Each misconfiguration: its code and reason, not retryable, for a get and for a watch (which used to
  // hang or reconnect forever), nothing secret printed, and the process exits after close().
  const table: [
    name: string,
    options: () => EtcdDatastoreOptions,
    code: string,
    reason: string | undefined,
  ][] = [
    [
      "server certificate from another CA",
      () => ({ ...good(), tls: { ...etcd.clientTls!, ca: etcd.pki!.otherCa.cert } }),
      "tls",
      "unknown-ca",
    ],
    [
      "no client certificate",
      () => ({ ...good(), tls: { ca: etcd.clientTls!.ca } }),
      "tls",
      "client-certificate-rejected",
    ],
    [
      "client certificate from another CA",
      () => ({
        ...good(),
        tls: { ca: etcd.clientTls!.ca, cert: etcd.pki!.foreignClient.cert, key: etcd.pki!.foreignClient.key },
      }),
      "tls",
      "client-certificate-rejected",
    ],
    [
      "endpoint name not in the server certificate (SAN mismatch)",
      () => ({ ...good(), endpoints: etcd.endpoints.map((e) => e.replace("127.0.0.1", "localhost")) }),
      "tls",
      "hostname-mismatch",
    ],
    [
      "http:// against the TLS port",
      () => {
        const { tls: _tls, ...rest } = good();
        return { ...rest, endpoints: etcd.endpoints.map((e) => e.replace("https:", "http:")) };
      },
      "tls",
      "protocol-mismatch",
    ],
    ["wrong password", () => ({ ...good(), password: WRONG_PW }), "unauthenticated", undefined],
    [
      "prefix outside the user's grant",
      () => ({ ...good(), prefix: `/margay-other-${randomBytes(4).toString("hex")}` }),
      "permission-denied",
      undefined,
    ],
    [
      "no user (the certificate's CN is no etcd user)",
      () => {
        const { username: _u, password: _p, ...rest } = good();
        return rest;
      },
      "permission-denied",
      undefined,
    ],
  ];

  it.each(table)(
    "%s: fails with its code, not retryable, prints no secret, process exits after close()",
    async (_name, options, code, reason) => {
      const r = await runChild({ ...options(), dialTimeoutMs: 2_000, requestTimeoutMs: 10_000 });
      for (const [op, e] of [
        ["get", r.get],
        ["watch", r.watch],
      ] as const) {
        expect({ op, code: e.code, retryable: e.retryable }, e.message).toEqual({
          op,
          code,
          retryable: false,
        });
        if (reason !== undefined) expect(e.reason, e.message).toBe(reason);
      }
      expect(r.exited, `child did not exit after close(): ${r.stderr.slice(-1000)}`).toBe(true);
      const printed = [r.stdout, r.stderr].join("\n");
      for (const s of secrets()) expect(printed).not.toContain(s);
    },
    150_000,
  );

  it("does not retry a read that failed for a non-retryable reason", async () => {
    const ds = createEtcdDatastore({ ...good(), password: WRONG_PW, readAttempts: 3 });
    let calls = 0;
    const range = ds.client.kv.range.bind(ds.client.kv);
    ds.client.kv.range = (...args: Parameters<typeof range>) => {
      calls++;
      return range(...args);
    };
    try {
      const e = await ds.get({ kind: "SecProbe", name: "a" }).catch((err: unknown) => err);
      expect(isDatastoreError(e, "unauthenticated")).toBe(true);
      expect(calls).toBe(1);
    } finally {
      await ds.close();
    }
  });

  it("keeps reporting the TLS cause once the circuit breaker has opened", async () => {
    // No username: etcd3 fetches a token outside the breaker, so only an unauthenticated client meets it.
    const { username: _u, password: _p, ...rest } = good();
    const ds = createEtcdDatastore({
      ...rest,
      tls: { ...etcd.clientTls!, ca: etcd.pki!.otherCa.cert },
      readAttempts: 1,
      dialTimeoutMs: 2_000,
    });
    try {
      const errors: DatastoreError[] = [];
      // More consecutive failures than the breaker's threshold (3), so the last ones meet an open breaker.
      for (let i = 0; i < 6; i++) {
        errors.push(
          (await ds.get({ kind: "SecProbe", name: "a" }).catch((e: unknown) => e)) as DatastoreError,
        );
      }
      for (const e of errors) {
        expect(isDatastoreError(e, "tls"), String(e)).toBe(true);
        expect(e.details.reason).toBe("unknown-ca");
        expect(e.retryable).toBe(false);
      }
      expect(errors.some((e) => /circuit breaker is open/.test(e.message))).toBe(true);
    } finally {
      await ds.close();
    }
  });

  it("prints no secret: datastore, errors and their causes", async () => {
    const ds = createEtcdDatastore({ ...good(), password: WRONG_PW });
    const ok = createEtcdDatastore(good());
    try {
      const e = await ds.get({ kind: "SecProbe", name: "a" }).catch((err: unknown) => err);
      expect(isDatastoreError(e, "unauthenticated")).toBe(true);
      const printed = [
        inspect(ds, { depth: Number.POSITIVE_INFINITY }),
        inspect(ok, { depth: Number.POSITIVE_INFINITY }),
        inspect(e, { depth: 8 }),
        String((e as Error).stack),
        JSON.stringify(ok),
      ].join("\n");
      for (const s of secrets()) expect(printed).not.toContain(s);
    } finally {
      await ds.close();
      await ok.close();
    }
  });
});
