/**
 * A private etcd server for tests and benchmarks: loopback only, ports found free at run time, a temp data
 * directory with a random suffix, spawned with an argument array and a clean environment (etcd would
 * otherwise pick up any `ETCD_*` variable of the caller).
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "@margay/api";
import { createTestPki, type TestPki } from "./pki.js";

/** TLS for the client port of a private etcd (PEM files, e.g. made by a test with openssl). */
export interface StartEtcdTlsOptions {
  /** CA that signed the server (and client) certificates. */
  caFile: string;
  /** Server certificate; must name the bound address (e.g. `IP:127.0.0.1`) as a subject alt name. */
  certFile: string;
  /** Private key of `certFile`. */
  keyFile: string;
  /**
   * Require client certificates signed by `caFile` (`--client-cert-auth`); the health probe then presents
   * `clientCertFile`/`clientKeyFile`. Default false.
   */
  clientCertAuth?: boolean | undefined;
  /** Client certificate the health probe presents when `clientCertAuth` is set. */
  clientCertFile?: string | undefined;
  /** Private key of `clientCertFile`. */
  clientKeyFile?: string | undefined;
}

/** A user {@link startEtcd} creates when `rbac` is set: one role of the same name, one key prefix. */
export interface StartEtcdUser {
  /** User (and role) name. */
  name: string;
  /** Password. */
  password: string;
  /**
   * The only key range the user's role grants, as an etcd prefix (e.g. `/margay-t1/`: the datastore's
   * `prefix` plus `/`).
   */
  prefix: string;
  /** Grant `read` instead of `readwrite`. Default false. */
  readOnly?: boolean | undefined;
}

/** Role-based access control for a private etcd, set up with `etcdctl` before {@link startEtcd} returns. */
export interface StartEtcdRbacOptions {
  /** Password of the `root` user (which holds the `root` role). */
  rootPassword: string;
  /** Further users, each limited to one prefix. Default none. */
  users?: readonly StartEtcdUser[] | undefined;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /**
   * Serve clients over TLS (`https://` endpoints). `"generate"` makes a throw-away PKI with
   * {@link createTestPki} (removed by `stop()`), requires client certificates, and exposes it as
   * {@link EtcdServer.pki}. Default: plaintext.
   */
  tls?: StartEtcdTlsOptions | "generate" | undefined;
  /** Enable authentication with a root user and prefix-restricted users (via `etcdctl`). Default off. */
  rbac?: StartEtcdRbacOptions | undefined;
  /** `etcdctl` binary, used when `rbac` is set. Default `/usr/bin/etcdctl`. */
  etcdctl?: string | undefined;
  /** etcd binary. Default `/usr/bin/etcd` (Debian `etcd-server`). */
  binary?: string | undefined;
  /** Loopback address to bind. Default `127.0.0.1`. */
  host?: string | undefined;
  /** How long to wait for `/health` to report healthy, ms. Default 20 000. */
  startTimeoutMs?: number | undefined;
  /**
   * Directory in which the temp data directory is made. Default the OS temp dir. A tmpfs (`/dev/shm`) takes
   * disk fsync latency out of benchmarks; it does not survive a reboot, which tests never need.
   */
  baseDir?: string | undefined;
  /** Extra command-line flags, appended as given. Default none. */
  extraArgs?: readonly string[] | undefined;
}

/** A running private etcd. */
export interface EtcdServer {
  /** Client URLs, e.g. `["http://127.0.0.1:40123"]`. */
  readonly endpoints: string[];
  /** The data directory (kept across {@link EtcdServer.kill} and {@link EtcdServer.restart}). */
  readonly dataDir: string;
  /** Process id of the current etcd process (undefined while stopped). */
  readonly pid: number | undefined;
  /** The generated PKI when started with `tls: "generate"`. */
  readonly pki: TestPki | undefined;
  /**
   * TLS material a client needs for this server (PEM data: CA, and the client certificate and key when
   * known), ready for `createEtcdDatastore({ tls })`; undefined for plaintext.
   */
  readonly clientTls: { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** Terminates etcd (SIGTERM, then SIGKILL after 5 s) and deletes the data directory. Idempotent. */
  stop(): Promise<void>;
  /** Kills etcd with SIGKILL (a crash) and waits for it to exit; the data directory is kept. */
  kill(): Promise<void>;
  /** Stops etcd if it runs, then starts it again on the same ports and data directory; waits for health. */
  restart(): Promise<void>;
  /** Same as {@link EtcdServer.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Finds a free TCP port on `host` by binding port 0. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Returns a function that asks etcd's `/health` endpoint once (false while it is not up). */
async function healthProbe(
  clientUrl: string,
  tls: StartEtcdTlsOptions | undefined,
): Promise<() => Promise<boolean>> {
  const isHealthy = (body: string) => {
    try {
      const h = (JSON.parse(body) as { health?: unknown }).health;
      return h === "true" || h === true;
    } catch {
      return false;
    }
  };
  if (tls === undefined) {
    return async () => {
      try {
        const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        return res.ok && isHealthy(await res.text());
      } catch {
        return false;
      }
    };
  }
  const ca = await readFile(tls.caFile);
  const cert = tls.clientCertFile === undefined ? undefined : await readFile(tls.clientCertFile);
  const key = tls.clientKeyFile === undefined ? undefined : await readFile(tls.clientKeyFile);
  return () =>
    new Promise<boolean>((resolve) => {
      const req = httpsGet(
        `${clientUrl}/health`,
        {
          ca,
          ...(cert === undefined ? {} : { cert }),
          ...(key === undefined ? {} : { key }),
          timeout: 1_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            body += c;
          });
          res.on("end", () => resolve(res.statusCode === 200 && isHealthy(body)));
          res.on("error", () => resolve(false));
        },
      );
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });
}

function etcdctl(file: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // A clean environment: etcdctl would otherwise pick up any ETCDCTL_* variable of the caller.
    execFile(file, [...args], { env: {}, timeout: 30_000 }, (err, _out, stderr) => {
      if (err)
        reject(
          new Error(`etcdctl ${args.find((a) => !a.startsWith("-")) ?? ""} failed: ${String(stderr).trim()}`),
        );
      else resolve();
    });
  });
}

/** Creates root, the prefix-restricted users and their roles, then turns authentication on. */
async function setUpRbac(
  file: string,
  endpoint: string,
  tls: StartEtcdTlsOptions | undefined,
  rbac: StartEtcdRbacOptions,
): Promise<void> {
  const conn = [
    "--endpoints",
    endpoint,
    "--dial-timeout",
    "5s",
    ...(tls === undefined ? [] : ["--cacert", tls.caFile]),
    ...(tls?.clientCertFile === undefined ? [] : ["--cert", tls.clientCertFile]),
    ...(tls?.clientKeyFile === undefined ? [] : ["--key", tls.clientKeyFile]),
  ];
  const ctl = (...args: string[]) => etcdctl(file, [...conn, ...args]);
  await ctl("user", "add", "root", "--new-user-password", rbac.rootPassword);
  await ctl("role", "add", "root").catch(() => undefined); // some versions make it with the root user
  await ctl("user", "grant-role", "root", "root");
  for (const u of rbac.users ?? []) {
    await ctl("role", "add", u.name);
    await ctl(
      "role",
      "grant-permission",
      u.name,
      "--prefix=true",
      u.readOnly ? "read" : "readwrite",
      u.prefix,
    );
    await ctl("user", "add", u.name, "--new-user-password", u.password);
    await ctl("user", "grant-role", u.name, u.name);
  }
  await ctl("auth", "enable");
}

/** Starts a private single-member etcd and waits until it is healthy. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  if (options.tls === "generate") {
    const pki = await createTestPki({ baseDir: options.baseDir });
    try {
      const inner = await startEtcd({
        ...options,
        tls: {
          caFile: pki.ca.certFile,
          certFile: pki.server.certFile,
          keyFile: pki.server.keyFile,
          clientCertAuth: true,
          clientCertFile: pki.client.certFile,
          clientKeyFile: pki.client.keyFile,
        },
      });
      const server: EtcdServer = Object.create(inner, {
        pki: { value: pki, enumerable: true },
        stop: {
          value: async () => {
            await inner.stop();
            await pki.remove();
          },
        },
        [Symbol.asyncDispose]: { value: () => server.stop() },
      });
      return server;
    } catch (e) {
      await pki.remove();
      throw e;
    }
  }
  const binary = options.binary ?? "/usr/bin/etcd";
  const host = options.host ?? "127.0.0.1";
  const startTimeout = options.startTimeoutMs ?? 20_000;
  const dataDir = await mkdtemp(join(options.baseDir ?? tmpdir(), "margay-etcd-"));
  const clientPort = await freePort(host);
  let peerPort = await freePort(host);
  while (peerPort === clientPort) peerPort = await freePort(host);
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const tls = options.tls;
  const clientUrl = `${tls === undefined ? "http" : "https"}://${hostPart}:${clientPort}`;
  const peerUrl = `http://${hostPart}:${peerPort}`;
  const name = `margay-${clientPort}`;
  const args = [
    "--name",
    name,
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `${name}=${peerUrl}`,
    "--initial-cluster-state",
    "new",
    "--logger",
    "zap",
    "--log-level",
    "error",
    ...(tls === undefined
      ? []
      : [
          "--cert-file",
          tls.certFile,
          "--key-file",
          tls.keyFile,
          "--trusted-ca-file",
          tls.caFile,
          ...(tls.clientCertAuth === true ? ["--client-cert-auth"] : []),
        ]),
    ...(options.extraArgs ?? []),
  ];
  const probe = await healthProbe(clientUrl, tls);
  const clientTls =
    tls === undefined
      ? undefined
      : {
          ca: await readFile(tls.caFile),
          ...(tls.clientCertFile === undefined ? {} : { cert: await readFile(tls.clientCertFile) }),
          ...(tls.clientKeyFile === undefined ? {} : { key: await readFile(tls.clientKeyFile) }),
        };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = "";
  let removed = false;

  const launch = async () => {
    stderr = "";
    const proc = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], env: {} });
    child = proc;
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    exited = new Promise<void>((resolve) => {
      proc.once("exit", () => {
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once("error", (e) => {
        stderr += `\nspawn error: ${e.message}`;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + startTimeout;
    for (;;) {
      if (child !== proc) throw new Error(`etcd exited during start-up: ${stderr.trim()}`);
      if (await probe()) return;
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`etcd did not become healthy within ${startTimeout} ms: ${stderr.trim()}`);
      }
      await sleep(50);
    }
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (proc === undefined) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await launch();
    if (options.rbac !== undefined) {
      await setUpRbac(options.etcdctl ?? "/usr/bin/etcdctl", clientUrl, tls, options.rbac);
    }
  } catch (e) {
    await terminate("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }

  const server: EtcdServer = {
    endpoints: [clientUrl],
    dataDir,
    get pid() {
      return child?.pid;
    },
    pki: undefined,
    clientTls,
    async stop() {
      await terminate("SIGTERM");
      if (!removed) {
        removed = true;
        await rm(dataDir, { recursive: true, force: true });
      }
    },
    async kill() {
      await terminate("SIGKILL");
    },
    async restart() {
      if (removed) throw new Error("etcd was stopped and its data directory removed");
      await terminate("SIGTERM");
      await launch();
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
