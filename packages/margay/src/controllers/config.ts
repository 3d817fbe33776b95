/**
 * The configuration of `margay-kube-controllers`, read from the environment in this one place, with
 * Calico kube-controllers' names where they exist (`KUBECONFIG`, `ENABLED_CONTROLLERS`, `LOG_LEVEL`,
 * `DATASTORE_TYPE`, `ETCD_*`) and `MARGAY_*` names for the rest. Every bad value is a
 * {@link ControllersConfigError} naming the variable and the value; nothing is read from files here
 * (the kubeconfig and the etcd TLS files are read when the controllers start).
 *
 * | Variable | Default |
 * | --- | --- |
 * | `KUBECONFIG` | in-cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` + service-account token) |
 * | `ENABLED_CONTROLLERS` | `node,policy,namespace,serviceaccount,workloadendpoint` |
 * | `DATASTORE_TYPE` | `etcdv3` (`etcd` accepted; the controllers need the cluster's shared datastore) |
 * | `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `ETCD_USERNAME`, `ETCD_PASSWORD_FILE`, `MARGAY_ETCD_PREFIX` | see `datastore-config.ts` |
 * | `LOG_LEVEL` | `info` (`trace`, `debug`, `info`, `warn`/`warning`, `error`, `fatal`) |
 * | `MARGAY_HEALTH_ENABLED`, `MARGAY_HEALTH_HOST`, `MARGAY_HEALTH_PORT` | `true`, `0.0.0.0`, `9097` |
 * | `MARGAY_METRICS_ENABLED`, `MARGAY_METRICS_HOST`, `MARGAY_METRICS_PORT` | `true`, `0.0.0.0`, `9094` (Calico's) |
 * | `MARGAY_LEADER_ELECTION` | `on` |
 * | `MARGAY_LEADER_ELECTION_NAMESPACE` | `POD_NAMESPACE`, else `kube-system` |
 * | `MARGAY_LEADER_ELECTION_NAME` | `margay-kube-controllers` |
 * | `MARGAY_LEADER_ELECTION_LEASE_DURATION`, `_RENEW_DEADLINE`, `_RETRY_PERIOD` | `15s`, `10s`, `2s` (client-go's) |
 * | `POD_NAME` | the leader identity; default `<hostname>_<random>` |
 * | `MARGAY_IPAM_GC_GRACE_PERIOD` | `15m` (Calico's `leakGracePeriod`) |
 * | `MARGAY_IPAM_GC_DRY_RUN_PERIOD` | `5m` |
 * | `MARGAY_RECONCILER_PERIOD` | `5m` (Calico's `reconcilerPeriod`) |
 *
 * @packageDocumentation
 */
import { randomBytes } from "node:crypto";
import { parseGoDuration } from "@margay/api";
import {
  ETCD_ENV,
  type EtcdDatastoreConfig,
  isDatastoreConfigError,
  parseDatastoreConfig,
} from "../config/datastore-config.js";

/** Brand of {@link ControllersConfigError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/controllers-config-error") as never;

/** What went wrong in the controllers' configuration. */
export const ControllersConfigErrorCode = {
  /** A variable's value cannot be parsed or is out of range. */
  InvalidValue: "invalid-value",
  /** Settings that cannot go together, or one that is required and missing. */
  Conflict: "conflicting-settings",
} as const;
/** Union of {@link ControllersConfigErrorCode} values. */
export type ControllersConfigErrorCode =
  (typeof ControllersConfigErrorCode)[keyof typeof ControllersConfigErrorCode];

/** Context of a {@link ControllersConfigError}. */
export interface ControllersConfigErrorDetails {
  /** The variable at fault: `env:ENABLED_CONTROLLERS`. */
  readonly field: string;
  /** The offending value (never secret: no variable here holds one). */
  readonly value?: string | undefined;
}

/** A bad controllers configuration. Never retryable: the operator must fix it. */
export class ControllersConfigError extends Error {
  /** Always true; see {@link isControllersConfigError}. */
  readonly [BRAND] = true as const;
  /** Always `"ControllersConfigError"`. */
  override readonly name = "ControllersConfigError";
  /** What went wrong. */
  readonly code: ControllersConfigErrorCode;
  /** Always false. */
  readonly retryable = false;
  /** Which variable, with which value. */
  readonly details: ControllersConfigErrorDetails;

  /**
   * @param code - what went wrong.
   * @param message - starts with the variable.
   * @param details - variable and value.
   * @param cause - the underlying failure.
   */
  constructor(
    code: ControllersConfigErrorCode,
    message: string,
    details: ControllersConfigErrorDetails,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** True if `e` is a {@link ControllersConfigError} (brand check, not `instanceof`). */
export function isControllersConfigError(e: unknown): e is ControllersConfigError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

/** The controllers, by Calico's names. */
export const CONTROLLER_NAMES = [
  "node",
  "policy",
  "namespace",
  "serviceaccount",
  "workloadendpoint",
] as const;
/** One of {@link CONTROLLER_NAMES}. */
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

/** Levels `LOG_LEVEL` accepts (pino's; Calico's `warning` is read as `warn`). */
export const CONTROLLERS_LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
/** One of {@link CONTROLLERS_LOG_LEVELS}. */
export type ControllersLogLevel = (typeof CONTROLLERS_LOG_LEVELS)[number];

/** Where the Kubernetes API is. */
export type KubeApiConfig =
  | {
      readonly kind: "kubeconfig";
      /** The first file of `paths`. */
      readonly path: string;
      /**
       * `KUBECONFIG`'s files in order, merged as kubectl merges them (the first to define a name wins).
       * Default: `[path]`.
       */
      readonly paths?: readonly string[] | undefined;
    }
  | { readonly kind: "in-cluster"; readonly host: string; readonly port: string };

/** Leader election over a `coordination.k8s.io/v1` Lease. */
export interface LeaderElectionConfig {
  readonly enabled: boolean;
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Name of the Lease. */
  readonly name: string;
  /** This replica's identity (the Lease's `holderIdentity`). */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** An operations endpoint. */
export interface OpsEndpointConfig {
  readonly enabled: boolean;
  readonly host: string;
  /** 0 lets the kernel choose (tests). */
  readonly port: number;
}

/** The resolved configuration of `margay-kube-controllers`. */
export interface KubeControllersConfig {
  readonly kubeApi: KubeApiConfig;
  /** The controllers to run, in {@link CONTROLLER_NAMES} order, without repeats. */
  readonly enabledControllers: readonly ControllerName[];
  /** The shared datastore (etcd). */
  readonly datastore: EtcdDatastoreConfig;
  readonly logLevel: ControllersLogLevel;
  readonly health: OpsEndpointConfig;
  readonly metrics: OpsEndpointConfig;
  readonly leaderElection: LeaderElectionConfig;
  /** The IPAM garbage collector's settings (read by the IPAM GC of the node controller). */
  readonly ipamGc: { readonly gracePeriodMs: number; readonly dryRunPeriodMs: number };
  /** Period of the full reconciliations (policy/profile resync, pod controller pass), ms. */
  readonly reconcilerPeriodMs: number;
}

/** Environment the configuration is read from. */
export type ControllersEnv = Readonly<Record<string, string | undefined>>;

/** Options of {@link resolveControllersConfig}. */
export interface ResolveControllersOptions {
  /** Host name, for the default leader identity. Default `localhost`. */
  readonly hostname?: string | undefined;
  /** Random suffix of the default identity. Default 4 random bytes in hex. */
  readonly randomSuffix?: (() => string) | undefined;
}

function bad(name: string, value: string, expected: string): ControllersConfigError {
  const shown = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return new ControllersConfigError(
    ControllersConfigErrorCode.InvalidValue,
    `env:${name}: ${expected}, got ${JSON.stringify(shown)}`,
    { field: `env:${name}`, value },
  );
}

/** The variable's value, or undefined when unset or empty. */
function read(env: ControllersEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function bool(env: ControllersEnv, name: string, dflt: boolean): boolean {
  const v = read(env, name);
  if (v === undefined) return dflt;
  const s = v.toLowerCase();
  if (["true", "1", "yes", "on", "enabled"].includes(s)) return true;
  if (["false", "0", "no", "off", "disabled"].includes(s)) return false;
  throw bad(name, v, "must be on or off (true/false)");
}

function port(env: ControllersEnv, name: string, dflt: number): number {
  const v = read(env, name);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw bad(name, v, "must be a port number in [0, 65535]");
  return Number(v);
}

function duration(env: ControllersEnv, name: string, dflt: string, minMs: number): number {
  const v = read(env, name) ?? dflt;
  const ms = parseGoDuration(v);
  if (ms === undefined || ms < minMs)
    throw bad(name, v, `must be a duration such as "15s", "500ms" or "5m" of at least ${minMs} ms`);
  return ms;
}

/** A DNS-1123 subdomain (a Lease's name and namespace). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function dnsName(env: ControllersEnv, name: string, dflt: string): string {
  const v = read(env, name) ?? dflt;
  if (v.length > 253 || !DNS_SUBDOMAIN.test(v)) throw bad(name, v, "must be a DNS subdomain");
  return v;
}

/** Parses `ENABLED_CONTROLLERS` (comma-separated, case-insensitive, repeats ignored). */
export function parseEnabledControllers(raw: string): ControllerName[] {
  const names = raw
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
  for (const n of names)
    if (!(CONTROLLER_NAMES as readonly string[]).includes(n))
      throw bad("ENABLED_CONTROLLERS", raw, `must list controllers among ${CONTROLLER_NAMES.join(", ")}`);
  return CONTROLLER_NAMES.filter((n) => names.includes(n));
}

function logLevel(env: ControllersEnv): ControllersLogLevel {
  const v = read(env, "LOG_LEVEL");
  if (v === undefined) return "info";
  const s = v.toLowerCase() === "warning" ? "warn" : v.toLowerCase();
  if (!(CONTROLLERS_LOG_LEVELS as readonly string[]).includes(s))
    throw bad("LOG_LEVEL", v, `must be one of ${CONTROLLERS_LOG_LEVELS.join(", ")}`);
  return s as ControllersLogLevel;
}

function kubeApi(env: ControllersEnv): KubeApiConfig {
  const path = read(env, "KUBECONFIG");
  if (path !== undefined) {
    // A list as kubectl takes it (empty entries dropped), merged when loaded.
    const paths = path.split(":").filter((p) => p !== "");
    if (paths.length === 0 || paths.some((p) => !p.startsWith("/")))
      throw bad("KUBECONFIG", path, 'must be absolute paths separated by ":"');
    return { kind: "kubeconfig", path: paths[0]!, paths };
  }
  const host = read(env, "KUBERNETES_SERVICE_HOST");
  const p = read(env, "KUBERNETES_SERVICE_PORT");
  if (host === undefined || p === undefined)
    throw new ControllersConfigError(
      ControllersConfigErrorCode.Conflict,
      "env:KUBECONFIG: not set and not in a pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset): set KUBECONFIG",
      { field: "env:KUBECONFIG" },
    );
  if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535)
    throw bad("KUBERNETES_SERVICE_PORT", p, "must be a port number");
  return { kind: "in-cluster", host, port: p };
}

function datastore(env: ControllersEnv): EtcdDatastoreConfig {
  const type = (read(env, "DATASTORE_TYPE") ?? "etcdv3").toLowerCase();
  if (type !== "etcdv3" && type !== "etcd")
    throw bad(
      "DATASTORE_TYPE",
      type,
      "must be etcdv3 (or etcd): the controllers write the cluster's shared datastore",
    );
  const prefix = read(env, "MARGAY_ETCD_PREFIX");
  try {
    return parseDatastoreConfig(
      { type: "etcd", ...(prefix === undefined ? {} : { prefix }) },
      { env, path: "$.datastore" },
    ) as EtcdDatastoreConfig;
  } catch (e) {
    if (!isDatastoreConfigError(e)) throw e;
    // Every field here came from a variable: name it, not the JSON path of the parsed object.
    const m = /^\$\.datastore\.([a-zA-Z]+)/.exec(e.details.field);
    const env =
      m === null
        ? e.details.field
        : m[1] === "prefix"
          ? "env:MARGAY_ETCD_PREFIX"
          : `env:${ETCD_ENV[m[1] as keyof typeof ETCD_ENV] ?? m[1]}`;
    throw new ControllersConfigError(
      ControllersConfigErrorCode.InvalidValue,
      e.message.replace(/^\$\.datastore\.[a-zA-Z]+(\[\d+\])?/, env),
      { field: env },
      e,
    );
  }
}

/**
 * Resolves the configuration from `env`. Throws {@link ControllersConfigError} (`invalid-value`,
 * `conflicting-settings`) naming the variable.
 */
export function resolveControllersConfig(
  env: ControllersEnv,
  options: ResolveControllersOptions = {},
): KubeControllersConfig {
  const enabledRaw = read(env, "ENABLED_CONTROLLERS");
  const enabledControllers =
    enabledRaw === undefined ? [...CONTROLLER_NAMES] : parseEnabledControllers(enabledRaw);
  if (enabledControllers.length === 0)
    throw bad("ENABLED_CONTROLLERS", enabledRaw ?? "", "must name at least one controller");
  const leaseDurationMs = duration(env, "MARGAY_LEADER_ELECTION_LEASE_DURATION", "15s", 100);
  const renewDeadlineMs = duration(env, "MARGAY_LEADER_ELECTION_RENEW_DEADLINE", "10s", 50);
  const retryPeriodMs = duration(env, "MARGAY_LEADER_ELECTION_RETRY_PERIOD", "2s", 10);
  // client-go's checks (leaderelection.NewLeaderElector): a leader must renew before its lease runs out.
  if (renewDeadlineMs >= leaseDurationMs)
    throw new ControllersConfigError(
      ControllersConfigErrorCode.Conflict,
      "env:MARGAY_LEADER_ELECTION_RENEW_DEADLINE: must be shorter than MARGAY_LEADER_ELECTION_LEASE_DURATION",
      { field: "env:MARGAY_LEADER_ELECTION_RENEW_DEADLINE" },
    );
  if (!(renewDeadlineMs > 1.2 * retryPeriodMs))
    throw new ControllersConfigError(
      ControllersConfigErrorCode.Conflict,
      "env:MARGAY_LEADER_ELECTION_RETRY_PERIOD: 1.2 times it must be shorter than MARGAY_LEADER_ELECTION_RENEW_DEADLINE (retries are jittered)",
      { field: "env:MARGAY_LEADER_ELECTION_RETRY_PERIOD" },
    );
  const suffix = options.randomSuffix ?? (() => randomBytes(4).toString("hex"));
  const identity = read(env, "POD_NAME") ?? `${options.hostname ?? "localhost"}_${suffix()}`;
  return {
    kubeApi: kubeApi(env),
    enabledControllers,
    datastore: datastore(env),
    logLevel: logLevel(env),
    health: {
      enabled: bool(env, "MARGAY_HEALTH_ENABLED", true),
      host: read(env, "MARGAY_HEALTH_HOST") ?? "0.0.0.0",
      port: port(env, "MARGAY_HEALTH_PORT", 9097),
    },
    metrics: {
      enabled: bool(env, "MARGAY_METRICS_ENABLED", true),
      host: read(env, "MARGAY_METRICS_HOST") ?? "0.0.0.0",
      port: port(env, "MARGAY_METRICS_PORT", 9094),
    },
    leaderElection: {
      enabled: bool(env, "MARGAY_LEADER_ELECTION", true),
      namespace: dnsName(
        env,
        "MARGAY_LEADER_ELECTION_NAMESPACE",
        read(env, "POD_NAMESPACE") ?? "kube-system",
      ),
      name: dnsName(env, "MARGAY_LEADER_ELECTION_NAME", "margay-kube-controllers"),
      identity,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    },
    ipamGc: {
      gracePeriodMs: duration(env, "MARGAY_IPAM_GC_GRACE_PERIOD", "15m", 0),
      dryRunPeriodMs: duration(env, "MARGAY_IPAM_GC_DRY_RUN_PERIOD", "5m", 0),
    },
    reconcilerPeriodMs: duration(env, "MARGAY_RECONCILER_PERIOD", "5m", 0),
  };
}

/** The variables {@link resolveControllersConfig} reads, for `--help`. */
export const CONTROLLERS_ENV_HELP: readonly (readonly [string, string])[] = Object.freeze([
  ["KUBECONFIG", "kubeconfig file (default: in-cluster service account)"],
  ["ENABLED_CONTROLLERS", `comma-separated (default ${CONTROLLER_NAMES.join(",")})`],
  ["DATASTORE_TYPE", "etcdv3 (default; etcd accepted)"],
  ["ETCD_ENDPOINTS", "etcd client URLs, comma-separated (required)"],
  ["ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE", "etcd TLS files"],
  ["ETCD_USERNAME, ETCD_PASSWORD_FILE", "etcd user and the file holding its password"],
  ["MARGAY_ETCD_PREFIX", "key prefix of the model in etcd (default /margay/v1)"],
  ["LOG_LEVEL", "trace|debug|info|warn|error|fatal (default info)"],
  [
    "MARGAY_HEALTH_ENABLED, MARGAY_HEALTH_HOST, MARGAY_HEALTH_PORT",
    "/livez /readyz (default on, 0.0.0.0, 9097)",
  ],
  [
    "MARGAY_METRICS_ENABLED, MARGAY_METRICS_HOST, MARGAY_METRICS_PORT",
    "/metrics (default on, 0.0.0.0, 9094)",
  ],
  ["MARGAY_LEADER_ELECTION", "on|off (default on)"],
  ["MARGAY_LEADER_ELECTION_NAMESPACE", "namespace of the Lease (default POD_NAMESPACE, else kube-system)"],
  ["MARGAY_LEADER_ELECTION_NAME", "name of the Lease (default margay-kube-controllers)"],
  [
    "MARGAY_LEADER_ELECTION_LEASE_DURATION, _RENEW_DEADLINE, _RETRY_PERIOD",
    "durations (default 15s, 10s, 2s)",
  ],
  ["POD_NAME", "this replica's identity in the Lease (default <hostname>_<random>)"],
  ["MARGAY_IPAM_GC_GRACE_PERIOD", "age before a leaked address is freed (default 15m)"],
  ["MARGAY_IPAM_GC_DRY_RUN_PERIOD", "after start, only log what would be freed (default 5m)"],
  ["MARGAY_RECONCILER_PERIOD", "full reconciliation period (default 5m)"],
]);
