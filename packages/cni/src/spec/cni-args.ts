/**
 * `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`, with libcni's `IgnoreUnknown` convention and the
 * keys Kubernetes runtimes pass.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "./errors.js";

/** The keys Kubernetes runtimes (kubelet via CRI) put in `CNI_ARGS`. */
export const K8S_CNI_ARGS = [
  "K8S_POD_NAMESPACE",
  "K8S_POD_NAME",
  "K8S_POD_INFRA_CONTAINER_ID",
  "K8S_POD_UID",
] as const;
/** Union of {@link K8S_CNI_ARGS}. */
export type K8sCniArg = (typeof K8S_CNI_ARGS)[number];

/** Kubernetes identity of the pod, from `CNI_ARGS`. */
export interface K8sPodArgs {
  /** `K8S_POD_NAMESPACE`. */
  namespace?: string;
  /** `K8S_POD_NAME`. */
  name?: string;
  /** `K8S_POD_INFRA_CONTAINER_ID`. */
  infraContainerId?: string;
  /** `K8S_POD_UID`. */
  uid?: string;
}

/** Parsed `CNI_ARGS`. */
export interface CniArgs {
  /** Every pair, in order of appearance (later duplicates win), `IgnoreUnknown` excluded. */
  values: Readonly<Record<string, string>>;
  /** Whether the runtime asked plugins to ignore keys they do not know. */
  ignoreUnknown: boolean;
  /** The Kubernetes keys, when present. */
  k8s: K8sPodArgs;
}

/** Options of {@link parseCniArgs}. */
export interface ParseCniArgsOptions {
  /**
   * Keys the plugin understands, besides `IgnoreUnknown`. When given, an unknown key fails with code 4
   * unless `IgnoreUnknown` is set. Default: undefined (accept any key).
   */
  known?: readonly string[] | undefined;
}

function parseBool(s: string): boolean | undefined {
  const l = s.toLowerCase();
  if (l === "1" || l === "t" || l === "true") return true;
  if (l === "0" || l === "f" || l === "false") return false;
  return undefined;
}

/**
 * Parses `CNI_ARGS`. A pair without `=` or with an empty key fails with code 4 (the variable is
 * invalid); so does an unknown key when `known` is given and `IgnoreUnknown` is not true.
 */
export function parseCniArgs(raw: string | undefined, options: ParseCniArgsOptions = {}): CniArgs {
  const values: Record<string, string> = {};
  let ignoreUnknown = false;
  const bad = (msg: string, details: string) =>
    new CniError(CniErrorCode.InvalidEnvironmentVariables, `CNI_ARGS: ${msg}`, { details });
  if (raw !== undefined && raw !== "") {
    for (const pair of raw.split(";")) {
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) throw bad("invalid pair", JSON.stringify(pair));
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (key === "IgnoreUnknown") {
        const b = parseBool(value);
        if (b === undefined) throw bad("IgnoreUnknown must be a boolean", JSON.stringify(value));
        ignoreUnknown = b;
        continue;
      }
      values[key] = value;
    }
  }
  if (options.known !== undefined && !ignoreUnknown) {
    for (const key of Object.keys(values)) {
      if (!options.known.includes(key)) throw bad("unknown key (set IgnoreUnknown=1 to ignore)", key);
    }
  }
  const k8s: K8sPodArgs = {};
  if (values.K8S_POD_NAMESPACE !== undefined) k8s.namespace = values.K8S_POD_NAMESPACE;
  if (values.K8S_POD_NAME !== undefined) k8s.name = values.K8S_POD_NAME;
  if (values.K8S_POD_INFRA_CONTAINER_ID !== undefined)
    k8s.infraContainerId = values.K8S_POD_INFRA_CONTAINER_ID;
  if (values.K8S_POD_UID !== undefined) k8s.uid = values.K8S_POD_UID;
  return { values, ignoreUnknown, k8s };
}

/** Formats pairs as a `CNI_ARGS` string (the runtime side). Keys and values must not contain `;`. */
export function formatCniArgs(pairs: Readonly<Record<string, string>>): string {
  return Object.entries(pairs)
    .map(([k, v]) => {
      if (k.includes(";") || k.includes("=") || v.includes(";")) {
        throw new CniError(
          CniErrorCode.InvalidEnvironmentVariables,
          "CNI_ARGS: key or value contains ';' or '='",
          {
            details: k,
          },
        );
      }
      return `${k}=${v}`;
    })
    .join(";");
}
