/**
 * Where margayctl finds its datastore, as calicoctl does: flags, then the environment, then the config
 * file (`/etc/margay/margayctl.cfg`, or `--config`), then the default (etcd at `http://127.0.0.1:2379`).
 * Each field is taken from the first source that sets it; an error names that source (the flag, the
 * variable or the file and field), never a secret. The result is validated by the distribution's one
 * datastore schema (`parseDatastoreConfig`).
 *
 * ```yaml
 * apiVersion: margay.io/v1          # projectcalico.org/v3 / CalicoAPIConfig is read too
 * kind: MargayctlConfig
 * spec:
 *   datastoreType: etcdv3           # etcdv3 | etcd | memory
 *   etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379
 *   etcdCACertFile: /etc/margay/pki/ca.crt
 *   etcdCertFile: /etc/margay/pki/client.crt
 *   etcdKeyFile: /etc/margay/pki/client.key
 * ```
 *
 * @packageDocumentation
 */

import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import {
  type DatastoreConfig,
  isDatastoreConfigError,
  parseDatastoreConfig,
} from "../config/datastore-config.js";
import { CtlError, CtlErrorCode } from "./errors.js";

/** The config file read when `--config` is not given (a missing default file is not an error). */
export const DEFAULT_CONFIG_FILE = "/etc/margay/margayctl.cfg";

/** The datastore flags every command takes. */
export interface DatastoreFlags {
  config?: string | undefined;
  datastoreType?: string | undefined;
  etcdEndpoints?: string | undefined;
  etcdCaCertFile?: string | undefined;
  etcdCertFile?: string | undefined;
  etcdKeyFile?: string | undefined;
  etcdUsername?: string | undefined;
  etcdPasswordFile?: string | undefined;
  etcdPrefix?: string | undefined;
  snapshotPath?: string | undefined;
}

/** One field of the datastore configuration and its names in each source. */
interface FieldSource {
  /** Field of `parseDatastoreConfig`'s object. */
  field: string;
  flag: keyof DatastoreFlags;
  flagName: string;
  env: string;
  file: string;
}

const FIELDS: readonly FieldSource[] = [
  {
    field: "endpoints",
    flag: "etcdEndpoints",
    flagName: "--etcd-endpoints",
    env: "ETCD_ENDPOINTS",
    file: "etcdEndpoints",
  },
  {
    field: "caCertFile",
    flag: "etcdCaCertFile",
    flagName: "--etcd-ca-cert-file",
    env: "ETCD_CA_CERT_FILE",
    file: "etcdCACertFile",
  },
  {
    field: "certFile",
    flag: "etcdCertFile",
    flagName: "--etcd-cert-file",
    env: "ETCD_CERT_FILE",
    file: "etcdCertFile",
  },
  {
    field: "keyFile",
    flag: "etcdKeyFile",
    flagName: "--etcd-key-file",
    env: "ETCD_KEY_FILE",
    file: "etcdKeyFile",
  },
  {
    field: "username",
    flag: "etcdUsername",
    flagName: "--etcd-username",
    env: "ETCD_USERNAME",
    file: "etcdUsername",
  },
  {
    field: "passwordFile",
    flag: "etcdPasswordFile",
    flagName: "--etcd-password-file",
    env: "ETCD_PASSWORD_FILE",
    file: "etcdPasswordFile",
  },
  { field: "prefix", flag: "etcdPrefix", flagName: "--etcd-prefix", env: "ETCD_PREFIX", file: "etcdPrefix" },
  {
    field: "snapshotPath",
    flag: "snapshotPath",
    flagName: "--snapshot-path",
    env: "MARGAY_SNAPSHOT_PATH",
    file: "snapshotPath",
  },
];

const TYPE_SOURCE: FieldSource = {
  field: "type",
  flag: "datastoreType",
  flagName: "--datastore-type",
  env: "DATASTORE_TYPE",
  file: "datastoreType",
};

const FILE_FIELDS = new Set([TYPE_SOURCE.file, ...FIELDS.map((f) => f.file)]);

/** The resolved configuration and where each field came from. */
export interface ResolvedConfig {
  datastore: DatastoreConfig;
  /** The config file read, if any. */
  file: string | undefined;
  /** field → its source (`--etcd-endpoints`, `env:ETCD_ENDPOINTS`, `<file>: spec.etcdEndpoints`, `default`). */
  sources: Record<string, string>;
}

function bad(message: string, details: Record<string, unknown>): CtlError {
  return new CtlError(CtlErrorCode.InvalidConfig, message, details);
}

/** Reads the config file's `spec` (or top-level fields); undefined when the default file is absent. */
function readConfigFile(path: string, explicit: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!explicit && code === "ENOENT") return undefined;
    throw new CtlError(
      CtlErrorCode.InvalidConfig,
      `config file ${path}: cannot read it (${code ?? "error"})`,
      {
        file: path,
      },
      e,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw bad(`config file ${path}: not YAML (${(e as Error).message.split("\n")[0]})`, { file: path });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw bad(`config file ${path}: must be a YAML mapping`, { file: path });
  const o = doc as Record<string, unknown>;
  const body =
    o.spec !== undefined
      ? o.spec
      : Object.fromEntries(
          Object.entries(o).filter(([k]) => !["apiVersion", "kind", "metadata"].includes(k)),
        );
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw bad(`config file ${path}: spec must be a mapping`, { file: path, field: "spec" });
  const spec = body as Record<string, unknown>;
  for (const k of Object.keys(spec)) {
    if (!FILE_FIELDS.has(k))
      throw bad(`config file ${path}: spec.${k}: unknown field (known: ${[...FILE_FIELDS].join(", ")})`, {
        file: path,
        field: `spec.${k}`,
      });
  }
  return spec;
}

function datastoreType(v: unknown, source: string): "etcd" | "memory" {
  if (v === "etcdv3" || v === "etcd") return "etcd";
  if (v === "memory") return "memory";
  throw bad(`${source}: datastore type must be etcdv3, etcd or memory, got ${JSON.stringify(v)}`, {
    field: source,
  });
}

/**
 * Resolves the datastore configuration from flags, environment and config file (in that order of
 * precedence). Throws a {@link CtlError} `invalid-config` naming the source of a bad value.
 */
export function resolveConfig(flags: DatastoreFlags, env: NodeJS.ProcessEnv): ResolvedConfig {
  const filePath = flags.config ?? env.MARGAYCTL_CONFIG ?? DEFAULT_CONFIG_FILE;
  const explicit = flags.config !== undefined || env.MARGAYCTL_CONFIG !== undefined;
  const file = readConfigFile(filePath, explicit);
  if (env.ETCD_PASSWORD !== undefined && env.ETCD_PASSWORD !== "")
    throw bad("env:ETCD_PASSWORD: a password in the environment is not accepted: use ETCD_PASSWORD_FILE", {
      field: "env:ETCD_PASSWORD",
    });
  const sources: Record<string, string> = {};
  const pick = (f: FieldSource): unknown => {
    const flag = flags[f.flag];
    if (flag !== undefined) {
      sources[f.field] = f.flagName;
      return flag;
    }
    const e = env[f.env];
    if (e !== undefined && e !== "") {
      sources[f.field] = `env:${f.env}`;
      return e;
    }
    if (file !== undefined && file[f.file] !== undefined) {
      sources[f.field] = `${filePath}: spec.${f.file}`;
      return file[f.file];
    }
    return undefined;
  };
  const rawType = pick(TYPE_SOURCE);
  const type = rawType === undefined ? "etcd" : datastoreType(rawType, sources.type!);
  if (rawType === undefined) sources.type = "default";
  const raw: Record<string, unknown> = { type };
  for (const f of FIELDS) {
    const v = pick(f);
    if (v === undefined) continue;
    // Fields of the other datastore type are ignored (an ETCD_ENDPOINTS left in the environment must not
    // break a memory datastore), but one set on the command line for the wrong type is an error.
    const memoryField = f.field === "snapshotPath";
    if (memoryField !== (type === "memory")) {
      if (sources[f.field] === f.flagName)
        throw bad(`${f.flagName}: does not apply to a ${type} datastore`, { field: f.flagName });
      delete sources[f.field];
      continue;
    }
    raw[f.field] = v;
  }
  if (type === "etcd" && raw.endpoints === undefined) {
    raw.endpoints = "http://127.0.0.1:2379";
    sources.endpoints = "default";
  }
  if (type === "memory" && raw.snapshotPath === undefined)
    throw bad(
      "a memory datastore needs its snapshot file: --snapshot-path, MARGAY_SNAPSHOT_PATH or snapshotPath in the config file",
      {
        field: "snapshotPath",
      },
    );
  try {
    const datastore = parseDatastoreConfig(raw, { path: "$" });
    return { datastore, file: file === undefined ? undefined : filePath, sources };
  } catch (e) {
    throw configError(e, sources);
  }
}

/**
 * Rewrites a `DatastoreConfigError` (from parsing, or from reading the files it names) so that it names
 * the flag, variable or file field that set the value. Other errors are returned unchanged.
 */
export function configError(e: unknown, sources: Readonly<Record<string, string>>): unknown {
  if (!isDatastoreConfigError(e)) return e;
  // `$.endpoints[0]: ...` → the source that set `endpoints`.
  const m = /^\$\.([A-Za-z]+)(.*)$/.exec(e.details.field);
  const source = m === null ? e.details.field : (sources[m[1]!] ?? m[1]!);
  const message = e.message.replace(/^\S+: /, "");
  return new CtlError(
    CtlErrorCode.InvalidConfig,
    `${source}${m?.[2] ?? ""}: ${message}`,
    { field: source },
    e,
  );
}
