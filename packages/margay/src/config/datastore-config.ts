/**
 * The datastore configuration every Margay executable takes (margay-ipam now; margay-node, margayctl and
 * the controllers reuse it): one schema, read from a JSON object (a CNI `ipam.datastore` section, a
 * config file) with Calico's `ETCD_*` environment variables filling what the object leaves out.
 *
 * Secrets are never inline: TLS material and the etcd password are named by FILE paths, read once at
 * start by {@link loadDatastoreConnection}; a file that cannot be read fails with an error naming the
 * file (never its content). `ETCD_PASSWORD` and a `password` field are rejected for that reason.
 *
 * ```json
 * { "type": "etcd", "endpoints": ["https://10.0.0.1:2379"], "prefix": "/margay/v1",
 *   "caCertFile": "/etc/margay/pki/ca.crt", "certFile": "/etc/margay/pki/client.crt",
 *   "keyFile": "/etc/margay/pki/client.key", "username": "margay",
 *   "passwordFile": "/etc/margay/etcd-password", "dialTimeoutMs": 2000, "requestTimeoutMs": 2000 }
 * ```
 *
 * @packageDocumentation
 */

import { readFile } from "node:fs/promises";

/** Brand of {@link DatastoreConfigError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/datastore-config-error") as never;

/** What went wrong in a datastore configuration. */
export const DatastoreConfigErrorCode = {
  /** A field is missing, unknown, of the wrong type or out of range. */
  Invalid: "invalid-config",
  /** A file the configuration names cannot be read or does not hold what it should. */
  File: "unreadable-file",
} as const;
/** Union of {@link DatastoreConfigErrorCode} values. */
export type DatastoreConfigErrorCode =
  (typeof DatastoreConfigErrorCode)[keyof typeof DatastoreConfigErrorCode];

/** Context of a {@link DatastoreConfigError}. */
export interface DatastoreConfigErrorDetails {
  /** The JSON path (`$.ipam.datastore.keyFile`) or environment variable (`env:ETCD_KEY_FILE`) at fault. */
  field: string;
  /** The file concerned, for `unreadable-file`. */
  file?: string | undefined;
}

/** A bad datastore configuration. Never retryable: the operator must fix it. */
export class DatastoreConfigError extends Error {
  /** Always true; see {@link isDatastoreConfigError}. */
  readonly [BRAND] = true as const;
  /** Always `"DatastoreConfigError"`. */
  override readonly name = "DatastoreConfigError";
  /** What went wrong. */
  readonly code: DatastoreConfigErrorCode;
  /** Always false. */
  readonly retryable = false;
  /** Which field / file. */
  readonly details: DatastoreConfigErrorDetails;

  /**
   * @param code - what went wrong.
   * @param message - starts with the field; never contains secret material.
   * @param details - field and file.
   * @param cause - the underlying failure (e.g. `ENOENT`).
   */
  constructor(
    code: DatastoreConfigErrorCode,
    message: string,
    details: DatastoreConfigErrorDetails,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** True if `e` is a {@link DatastoreConfigError} (brand check, not `instanceof`). */
export function isDatastoreConfigError(e: unknown): e is DatastoreConfigError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

/** One host: the memory datastore persisted to a snapshot file, serialised by a lock file. */
export interface MemoryDatastoreConfig {
  type: "memory";
  /** Absolute path of the snapshot file. */
  snapshotPath: string;
  /** Longest wait for the lock file, ms. Default 10 000. */
  lockTimeoutMs: number;
}

/** Many hosts: etcd v3. Secrets are file paths, read by {@link loadDatastoreConnection}. */
export interface EtcdDatastoreConfig {
  type: "etcd";
  /** Client URLs (`http://` or `https://`). Env: `ETCD_ENDPOINTS` (comma-separated). */
  endpoints: string[];
  /** Key prefix. Default: the datastore's (`/margay/v1`). */
  prefix?: string | undefined;
  /** PEM CA bundle that signs etcd's server certificate. Env: `ETCD_CA_CERT_FILE`. */
  caCertFile?: string | undefined;
  /** PEM client certificate (with `keyFile`). Env: `ETCD_CERT_FILE`. */
  certFile?: string | undefined;
  /** PEM private key of `certFile`. Env: `ETCD_KEY_FILE`. */
  keyFile?: string | undefined;
  /** etcd user (with `passwordFile`). Env: `ETCD_USERNAME`. */
  username?: string | undefined;
  /** File holding the user's password (one trailing newline is ignored). Env: `ETCD_PASSWORD_FILE`. */
  passwordFile?: string | undefined;
  /** Connection establishment timeout, ms. Default: the caller's (see {@link ParseDatastoreOptions}). */
  dialTimeoutMs: number;
  /** Deadline of each request, ms. Default: the caller's. */
  requestTimeoutMs: number;
}

/** A parsed datastore configuration. */
export type DatastoreConfig = MemoryDatastoreConfig | EtcdDatastoreConfig;

/** Options of {@link parseDatastoreConfig}. */
export interface ParseDatastoreOptions {
  /** JSON path of the object, for error messages. Default `$.datastore`. */
  path?: string | undefined;
  /** Environment whose `ETCD_*` variables fill fields the object leaves out. Default: none. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Default `dialTimeoutMs`. Default 5 000. */
  dialTimeoutMs?: number | undefined;
  /** Default `requestTimeoutMs`. Default 10 000. */
  requestTimeoutMs?: number | undefined;
}

/** Calico's environment names (and ours for the password file) → field. */
export const ETCD_ENV = Object.freeze({
  endpoints: "ETCD_ENDPOINTS",
  caCertFile: "ETCD_CA_CERT_FILE",
  certFile: "ETCD_CERT_FILE",
  keyFile: "ETCD_KEY_FILE",
  username: "ETCD_USERNAME",
  passwordFile: "ETCD_PASSWORD_FILE",
} as const);

const MEMORY_FIELDS = ["type", "snapshotPath", "lockTimeoutMs"] as const;
const ETCD_FIELDS = [
  "type",
  "endpoints",
  "prefix",
  "caCertFile",
  "certFile",
  "keyFile",
  "username",
  "passwordFile",
  "dialTimeoutMs",
  "requestTimeoutMs",
] as const;

function invalid(field: string, message: string): DatastoreConfigError {
  return new DatastoreConfigError(DatastoreConfigErrorCode.Invalid, `${field}: ${message}`, { field });
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return typeof v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== "string" || v === "") throw invalid(field, `must be a non-empty string, got ${show(v)}`);
  return v;
}

function absPath(v: unknown, field: string): string {
  const s = str(v, field);
  if (!s.startsWith("/")) throw invalid(field, `must be an absolute path, got ${show(s)}`);
  return s;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw invalid(
      field,
      `must be an integer in [${min}, ${max}], got ${typeof v === "number" ? v : show(v)}`,
    );
  return v;
}

function checkEndpoint(url: string, field: string): "http" | "https" {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(field, "must be an http:// or https:// URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw invalid(field, `must be an http:// or https:// URL, got scheme ${JSON.stringify(u.protocol)}`);
  // Credentials in a URL would be echoed by every error that names the endpoint.
  if (u.username !== "" || u.password !== "")
    throw invalid(field, "must not carry credentials (use username and passwordFile)");
  return u.protocol === "https:" ? "https" : "http";
}

/**
 * Validates a datastore section. Unknown fields are rejected (a misspelt `usrname` or a `tls` block
 * must not be dropped silently), as is an inline `password`. For etcd, the `ETCD_*` variables of
 * `options.env` fill the fields the object leaves out (the object wins). Files are not read here.
 */
export function parseDatastoreConfig(raw: unknown, options: ParseDatastoreOptions = {}): DatastoreConfig {
  const path = options.path ?? "$.datastore";
  const at = (k: string) => `${path}.${k}`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw invalid(path, `must be an object, got ${show(raw)}`);
  const o = raw as Record<string, unknown>;
  const type = str(o.type, at("type"));
  if (type !== "memory" && type !== "etcd")
    throw invalid(at("type"), `must be "memory" or "etcd", got ${show(type)}`);
  const allowed: readonly string[] = type === "memory" ? MEMORY_FIELDS : ETCD_FIELDS;
  for (const k of Object.keys(o)) {
    if (allowed.includes(k)) continue;
    if (k === "password")
      throw invalid(
        at(k),
        "an inline password is not accepted: put it in a file and name it in passwordFile",
      );
    throw invalid(at(k), `unknown field for a ${type} datastore (known: ${allowed.join(", ")})`);
  }
  if (type === "memory") {
    return {
      type,
      snapshotPath: absPath(o.snapshotPath, at("snapshotPath")),
      lockTimeoutMs:
        o.lockTimeoutMs === undefined ? 10_000 : int(o.lockTimeoutMs, at("lockTimeoutMs"), 1, 600_000),
    };
  }
  const env = options.env ?? {};
  if (env.ETCD_PASSWORD !== undefined && env.ETCD_PASSWORD !== "")
    throw invalid(
      "env:ETCD_PASSWORD",
      "a password in the environment is not accepted: use ETCD_PASSWORD_FILE",
    );
  // The object's value, else the environment's; `field` names where the value came from.
  const pick = (k: keyof typeof ETCD_ENV): { v: unknown; field: string } | undefined => {
    if (o[k] !== undefined) return { v: o[k], field: at(k) };
    const e = env[ETCD_ENV[k]];
    return e === undefined || e === "" ? undefined : { v: e, field: `env:${ETCD_ENV[k]}` };
  };
  const ep = pick("endpoints");
  if (ep === undefined) throw invalid(at("endpoints"), `required (or set ${ETCD_ENV.endpoints})`);
  let endpoints: string[];
  if (typeof ep.v === "string")
    endpoints = ep.v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  else if (Array.isArray(ep.v)) endpoints = ep.v.map((e, i) => str(e, `${ep.field}[${i}]`));
  else throw invalid(ep.field, `must be an array of URLs, got ${show(ep.v)}`);
  if (endpoints.length === 0) throw invalid(ep.field, "must list at least one endpoint");
  const schemes = new Set(
    endpoints.map((e, i) => checkEndpoint(e, Array.isArray(ep.v) ? `${ep.field}[${i}]` : ep.field)),
  );
  if (schemes.size > 1) throw invalid(ep.field, "must all be http:// or all https://");
  const out: EtcdDatastoreConfig = {
    type,
    endpoints,
    dialTimeoutMs:
      o.dialTimeoutMs === undefined
        ? (options.dialTimeoutMs ?? 5_000)
        : int(o.dialTimeoutMs, at("dialTimeoutMs"), 1, 600_000),
    requestTimeoutMs:
      o.requestTimeoutMs === undefined
        ? (options.requestTimeoutMs ?? 10_000)
        : int(o.requestTimeoutMs, at("requestTimeoutMs"), 1, 600_000),
  };
  if (o.prefix !== undefined) {
    const p = str(o.prefix, at("prefix"));
    if (!p.startsWith("/") || p.endsWith("/"))
      throw invalid(at("prefix"), `must start with "/" and not end with one, got ${show(p)}`);
    out.prefix = p;
  }
  for (const k of ["caCertFile", "certFile", "keyFile", "passwordFile"] as const) {
    const p = pick(k);
    if (p !== undefined) out[k] = absPath(p.v, p.field);
  }
  const user = pick("username");
  if (user !== undefined) out.username = str(user.v, user.field);
  if ((out.certFile === undefined) !== (out.keyFile === undefined))
    throw invalid(
      at(out.certFile === undefined ? "certFile" : "keyFile"),
      "certFile and keyFile go together",
    );
  if ((out.username === undefined) !== (out.passwordFile === undefined))
    throw invalid(
      at(out.username === undefined ? "username" : "passwordFile"),
      "username and passwordFile go together",
    );
  const tls = out.caCertFile !== undefined || out.certFile !== undefined;
  if (tls && schemes.has("http"))
    throw invalid(ep.field, "TLS files are configured but the endpoints are http://: use https://");
  return out;
}

/** The connection options of an etcd datastore (the `EtcdDatastoreOptions` subset), secrets loaded. */
export interface EtcdConnection {
  endpoints: string[];
  prefix?: string | undefined;
  tls?: { ca: Buffer; cert?: Buffer | undefined; key?: Buffer | undefined } | undefined;
  username?: string | undefined;
  /** Hidden from `JSON.stringify` / `util.inspect` of this object (as is `tls.key`). */
  password?: string | undefined;
  dialTimeoutMs: number;
  requestTimeoutMs: number;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** What printing an {@link EtcdConnection} shows: everything but the password and the key. */
function safeView(c: EtcdConnection): Record<string, unknown> {
  const view: Record<string, unknown> = { ...c };
  if (c.password !== undefined) view.password = "[redacted]";
  if (c.tls !== undefined) {
    view.tls = {
      ca: `[${c.tls.ca.length} bytes]`,
      ...(c.tls.cert ? { cert: `[${c.tls.cert.length} bytes]` } : {}),
      ...(c.tls.key ? { key: "[redacted]" } : {}),
    };
  }
  return view;
}

function redacted(c: EtcdConnection): EtcdConnection {
  Object.defineProperty(c, "toJSON", { value: () => safeView(c), enumerable: false });
  Object.defineProperty(c, INSPECT, { value: () => safeView(c), enumerable: false });
  return c;
}

async function readSecretFile(file: string, field: string, what: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new DatastoreConfigError(
      DatastoreConfigErrorCode.File,
      `${field}: cannot read ${what} file ${file} (${code})`,
      { field, file },
      e,
    );
  }
  if (data.length === 0)
    throw new DatastoreConfigError(DatastoreConfigErrorCode.File, `${field}: ${what} file ${file} is empty`, {
      field,
      file,
    });
  return data;
}

function expectPem(data: Buffer, marker: RegExp, file: string, field: string, what: string): void {
  if (!marker.test(data.toString("latin1")))
    throw new DatastoreConfigError(
      DatastoreConfigErrorCode.File,
      `${field}: ${file} does not hold a PEM ${what}`,
      { field, file },
    );
}

/**
 * Reads the files an etcd configuration names (CA, client certificate and key, password) once, and
 * returns the options for `createEtcdDatastore`. Errors name the field and the file, never the content.
 * The returned object hides the password and the key from `JSON.stringify` and `util.inspect`.
 */
export async function loadDatastoreConnection(
  config: EtcdDatastoreConfig,
  path = "$.datastore",
): Promise<EtcdConnection> {
  const at = (k: string) => `${path}.${k}`;
  const out: EtcdConnection = {
    endpoints: [...config.endpoints],
    dialTimeoutMs: config.dialTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
  };
  if (config.prefix !== undefined) out.prefix = config.prefix;
  if (config.caCertFile !== undefined || config.certFile !== undefined) {
    const tls: NonNullable<EtcdConnection["tls"]> = { ca: Buffer.alloc(0) };
    if (config.caCertFile !== undefined) {
      tls.ca = await readSecretFile(config.caCertFile, at("caCertFile"), "CA certificate");
      expectPem(tls.ca, /-----BEGIN CERTIFICATE-----/, config.caCertFile, at("caCertFile"), "certificate");
    }
    if (config.certFile !== undefined && config.keyFile !== undefined) {
      tls.cert = await readSecretFile(config.certFile, at("certFile"), "client certificate");
      expectPem(tls.cert, /-----BEGIN CERTIFICATE-----/, config.certFile, at("certFile"), "certificate");
      const key = await readSecretFile(config.keyFile, at("keyFile"), "client key");
      expectPem(key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, config.keyFile, at("keyFile"), "private key");
      tls.key = key;
    }
    if (config.caCertFile === undefined) {
      // A client certificate with the system CAs: the datastore requires `ca`, so hand it Node's roots.
      const { rootCertificates } = await import("node:tls");
      tls.ca = Buffer.from(rootCertificates.join("\n"));
    }
    out.tls = tls;
  }
  if (config.username !== undefined && config.passwordFile !== undefined) {
    out.username = config.username;
    const raw = (await readSecretFile(config.passwordFile, at("passwordFile"), "password")).toString("utf8");
    const password = raw.replace(/\r?\n$/, "");
    if (password === "")
      throw new DatastoreConfigError(
        DatastoreConfigErrorCode.File,
        `${at("passwordFile")}: password file ${config.passwordFile} holds only a newline`,
        { field: at("passwordFile"), file: config.passwordFile },
      );
    out.password = password;
  }
  return redacted(out);
}
