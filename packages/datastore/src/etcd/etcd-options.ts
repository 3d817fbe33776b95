/**
 * The etcd backend's options: their types, defaults, and the one check made at construction. Secrets
 * (password, private key) are kept as non-enumerable properties, so `util.inspect` and JSON never show them.
 */

import { createSecureContext } from "node:tls";
import { X509Certificate } from "node:crypto";
import type { Logger } from "@margay/api";
import { backendLogger, DEFAULT_WATCH_QUEUE_LIMIT, positiveInt } from "../backend-common.js";
import { invalidError } from "../errors.js";
import type { ValidationOptions } from "../validation.js";
import { DEFAULT_PREFIX } from "./keys.js";
import { type DiagnosisTls, redactUrlCredentials } from "./tls-diagnosis.js";

/**
 * TLS material (PEM), passed as data: the library never reads files itself. Checked at construction:
 * a certificate without its key (or the reverse), a key that does not match the certificate, or data that
 * is not PEM fail `invalid` naming the field.
 */
export interface EtcdTlsOptions {
  /** CA certificate(s) that sign the etcd server certificate. */
  ca: Buffer | string;
  /** Client certificate, for etcd's `--client-cert-auth`; requires `key`. */
  cert?: Buffer | string | undefined;
  /** Private key of `cert`; requires `cert`. Never printed. */
  key?: Buffer | string | undefined;
}

/** Options of {@link createEtcdDatastore}. */
export interface EtcdDatastoreOptions extends ValidationOptions {
  /**
   * etcd client URLs, e.g. `["http://127.0.0.1:2379"]` (`https://` with `tls`). Required. URLs carrying
   * credentials (`https://user:pw@host`) are refused `invalid`: use `username`/`password`.
   */
  endpoints: readonly string[];
  /** TLS; default: plaintext unless an endpoint is `https://` (then the system CAs). */
  tls?: EtcdTlsOptions | undefined;
  /** etcd user for authentication (with `password`). Default: none. */
  username?: string | undefined;
  /** Password of `username`. Default: none. Never printed (not by `util.inspect`, not in errors). */
  password?: string | undefined;
  /** Key prefix (no trailing `/`). Default `/margay/v1`. */
  prefix?: string | undefined;
  /** Connection establishment timeout, ms. Default 5 000. */
  dialTimeoutMs?: number | undefined;
  /** Deadline of each unary request, ms (a timed-out call fails `unavailable`). Default 10 000. */
  requestTimeoutMs?: number | undefined;
  /**
   * Attempts of an idempotent read (get, list) on retryable failures (`unavailable`), each on a randomly
   * picked endpoint; `tls`, `unauthenticated`, `permission-denied` and other non-retryable failures are
   * never retried. Writes are never retried blindly: a write whose outcome is unknown fails `unavailable`.
   * Default 3.
   */
  readAttempts?: number | undefined;
  /** Longest delay between watch stream reconnection attempts, ms. Default 2 000. */
  watchReconnectMaxDelayMs?: number | undefined;
  /** Events one watch may have queued before it fails with `compacted` (slow consumer). Default 10 000. */
  watchQueueLimit?: number | undefined;
  /** Clock for `creationTimestamp`. Default `() => new Date()`. */
  now?: (() => Date) | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "datastore", backend: "etcd"`. Watch
   * disconnects and reconnects, read retries and endpoints the circuit breaker takes out of (and back into)
   * service are logged. Default: silent.
   */
  logger?: Logger | undefined;
}

/** The backend name in error details and log records. */
export const BACKEND = "etcd";

const DEFAULTS = Object.freeze({
  prefix: DEFAULT_PREFIX,
  dialTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  readAttempts: 3,
  watchReconnectMaxDelayMs: 2_000,
  watchQueueLimit: DEFAULT_WATCH_QUEUE_LIMIT,
});

/** {@link EtcdDatastoreOptions} checked, defaults applied; `password` is non-enumerable. */
export interface CheckedEtcdOptions {
  endpoints: readonly string[];
  prefix: string;
  validation: ValidationOptions;
  readAttempts: number;
  watchQueueLimit: number;
  now: () => Date;
  log: Logger;
  requestTimeoutMs: number;
  watchReconnectMaxDelayMs: number;
  dialTimeoutMs: number;
  /** Each endpoint's TLS diagnosis handshake: no longer than the dial timeout, at most 5 s. */
  diagnoseTimeoutMs: number;
  tls: DiagnosisTls | undefined;
  username: string | undefined;
  /** Set (non-enumerable) exactly when `username` is. */
  password?: string | undefined;
}

/** Checks every option once, in a fixed order, failing `invalid` with the faulty field named. */
export function checkEtcdOptions(options: EtcdDatastoreOptions): CheckedEtcdOptions {
  const endpoints = checkEndpoints(options?.endpoints);
  const prefix = options.prefix ?? DEFAULTS.prefix;
  if (!/^\/[\x21-\x7e]*[^/]$/.test(prefix) || prefix.includes("//")) {
    throw invalidError(`invalid prefix ${JSON.stringify(prefix)}: starts with "/", no trailing "/"`, {
      field: "prefix",
      backend: BACKEND,
    });
  }
  const readAttempts = positiveInt(options.readAttempts, DEFAULTS.readAttempts, "readAttempts");
  const watchQueueLimit = positiveInt(options.watchQueueLimit, DEFAULTS.watchQueueLimit, "watchQueueLimit");
  const now = options.now ?? (() => new Date());
  const log = backendLogger(options.logger, BACKEND);
  const requestTimeoutMs = positiveInt(
    options.requestTimeoutMs,
    DEFAULTS.requestTimeoutMs,
    "requestTimeoutMs",
  );
  const watchReconnectMaxDelayMs = positiveInt(
    options.watchReconnectMaxDelayMs,
    DEFAULTS.watchReconnectMaxDelayMs,
    "watchReconnectMaxDelayMs",
  );
  const dialTimeoutMs = positiveInt(options.dialTimeoutMs, DEFAULTS.dialTimeoutMs, "dialTimeoutMs");
  const tls = options.tls === undefined ? undefined : checkTls(options.tls);
  let username: string | undefined;
  let password: string | undefined;
  if (options.username !== undefined || options.password !== undefined) {
    if (!options.username || typeof options.password !== "string") {
      throw invalidError("username and password go together", {
        field: options.username ? "password" : "username",
        backend: BACKEND,
      });
    }
    username = options.username;
    password = options.password;
  }
  const checked: CheckedEtcdOptions = {
    endpoints,
    prefix,
    validation: { kindScopes: options.kindScopes, validate: options.validate },
    readAttempts,
    watchQueueLimit,
    now,
    log,
    requestTimeoutMs,
    watchReconnectMaxDelayMs,
    dialTimeoutMs,
    diagnoseTimeoutMs: Math.min(dialTimeoutMs, 5_000),
    tls,
    username,
  };
  if (password !== undefined) hide(checked, "password", password);
  return checked;
}

/** Sets `obj[key] = value` as a non-enumerable property: `util.inspect` and JSON skip it. */
export function hide<T extends object>(obj: T, key: string, value: unknown): T {
  Object.defineProperty(obj, key, { value, enumerable: false, writable: false, configurable: false });
  return obj;
}

function checkEndpoints(endpoints: unknown): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw invalidError("endpoints must list at least one etcd URL", { field: "endpoints", backend: BACKEND });
  }
  return endpoints.map((e: unknown, i) => {
    const field = `endpoints[${i}]`;
    let url: URL;
    try {
      if (typeof e !== "string") throw new TypeError("not a string");
      url = new URL(e);
    } catch {
      throw invalidError(`${field} is not a URL`, { field, backend: BACKEND });
    }
    if (url.username !== "" || url.password !== "") {
      throw invalidError(
        `${field} (${redactUrlCredentials(url.href)}) carries credentials; pass username and password instead`,
        { field, backend: BACKEND },
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw invalidError(`${field} must be an http:// or https:// URL`, { field, backend: BACKEND });
    }
    return e as string;
  });
}

/** Checks the TLS material once, naming the faulty field (gRPC would throw a bare `Error`). */
function checkTls(tls: EtcdTlsOptions): DiagnosisTls {
  const pem = (v: unknown, field: string): Buffer | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string" && !Buffer.isBuffer(v)) {
      throw invalidError(`${field} must be PEM data (a string or a Buffer)`, { field, backend: BACKEND });
    }
    return Buffer.from(v);
  };
  const ca = pem(tls.ca, "tls.ca");
  const cert = pem(tls.cert, "tls.cert");
  const key = pem(tls.key, "tls.key");
  if (cert !== undefined && key === undefined) {
    throw invalidError("tls.cert is given without tls.key", { field: "tls.key", backend: BACKEND });
  }
  if (key !== undefined && cert === undefined) {
    throw invalidError("tls.key is given without tls.cert", { field: "tls.cert", backend: BACKEND });
  }
  // OpenSSL's messages name the problem, never the material; they go into the message as they are.
  const tryContext = (field: string, o: Parameters<typeof createSecureContext>[0]) => {
    try {
      createSecureContext(o);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalidError(`${field} is unusable: ${why}`, { field, backend: BACKEND });
    }
  };
  const tryCert = (field: string, pemData: Buffer) => {
    try {
      new X509Certificate(pemData); // OpenSSL silently skips a CA bundle that holds no certificate
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalidError(`${field} is not a PEM certificate: ${why}`, { field, backend: BACKEND });
    }
  };
  if (ca !== undefined) {
    tryCert("tls.ca", ca);
    tryContext("tls.ca", { ca });
  }
  if (cert !== undefined && key !== undefined) {
    tryCert("tls.cert", cert);
    tryContext("tls.cert", { cert });
    tryContext("tls.key", { cert, key });
  }
  const out: DiagnosisTls = {};
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) hide(out, "key", key);
  return out;
}
