/**
 * One name for one interface: the host-side interface name of a workload endpoint is derived here, and
 * only here, from the endpoint's identity. The CNI path (the dataplane's workload plumber), the
 * Kubernetes conversion (`convertPod`) and the policy dataplane (which treats `<prefix>*` interfaces as
 * workloads) all use {@link workloadInterfaceName} and {@link DEFAULT_WORKLOAD_INTERFACE_PREFIX}, so the
 * interface a pod's packets arrive on is the one its WorkloadEndpoint names.
 *
 * @packageDocumentation
 */

import { hash } from "node:crypto";
import { API_ERROR_BRAND, ApiErrorCode, hasApiErrorCode } from "./errors.js";

/**
 * Default prefix of host-side workload interfaces: `mgy`. Not Calico's `cali`, on purpose: the dataplane
 * drops traffic of every `<prefix>*` interface that has no endpoint (fail closed), so a prefix of our
 * own never captures another plugin's interfaces (a Calico left on the node, or one being migrated
 * from); and it leaves 12 hex digits (48 bits) of hash where `cali` leaves 11. Pass `"cali"` to get
 * exactly Calico's names.
 */
export const DEFAULT_WORKLOAD_INTERFACE_PREFIX = "mgy";

/** Longest Linux interface name in bytes: IFNAMSIZ (16) minus the terminating NUL. */
export const MAX_INTERFACE_NAME_BYTES = 15;

/**
 * @deprecated Use {@link MAX_INTERFACE_NAME_BYTES} (the same value; the limit is in bytes, and the name
 * `@margay/cni` uses for it). Removed in the next minor release.
 */
export const MAX_INTERFACE_NAME_LENGTH: number = MAX_INTERFACE_NAME_BYTES;

/** The endpoint identity an interface name is derived from. */
export interface WorkloadInterfaceIdentity {
  /** The endpoint's namespace (a WorkloadEndpoint's `metadata.namespace`). */
  readonly namespace: string;
  /** The workload: the pod name for Kubernetes (`spec.pod`), else `spec.workload` or the container id. */
  readonly workload: string;
  /**
   * The endpoint within the workload (`spec.endpoint`). `eth0` and absent give the same name, so a pod's
   * main interface has Calico's name; any other endpoint gets a name of its own.
   */
  readonly endpoint?: string | undefined;
}

/** Structured details of an {@link InterfaceNameError}. */
export interface InterfaceNameErrorDetails {
  /** The offending prefix. */
  readonly prefix?: string;
  /** The offending interface name. */
  readonly ifname?: string;
  /** The offending identity field (`namespace`, `workload`, `endpoint`). */
  readonly field?: string;
}

/** Thrown when an interface name, a workload prefix or an endpoint identity is not acceptable. */
export class InterfaceNameError extends Error {
  /** Always `"invalid-interface-name"`. */
  readonly code = ApiErrorCode.InvalidInterfaceName;
  /** The same input fails the same way. */
  readonly retryable = false;
  /** What was wrong. */
  readonly details: InterfaceNameErrorDetails;
  /** Brand checked by {@link isInterfaceNameError}. */
  readonly [API_ERROR_BRAND] = true;

  /** @param message - what went wrong. */
  constructor(message: string, details: InterfaceNameErrorDetails) {
    super(message);
    this.name = "InterfaceNameError";
    this.details = details;
  }
}

/** Returns true if `e` is an {@link InterfaceNameError} (by brand and code, never `instanceof`). */
export function isInterfaceNameError(e: unknown): e is InterfaceNameError {
  return hasApiErrorCode(e, ApiErrorCode.InvalidInterfaceName);
}

// What iproute2 accepts and nftables `ifname` matches can express without quoting.
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Short enough to leave at least 7 hex digits (28 bits) of hash; lower case so `<prefix>*` is unambiguous.
const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;

/** True if `name` is a usable Linux interface name: 1..15 bytes of `[A-Za-z0-9_.-]`, not `.`/`..`. */
export function isValidInterfaceName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    Buffer.byteLength(name) <= MAX_INTERFACE_NAME_BYTES &&
    IFNAME_RE.test(name) &&
    name !== "." &&
    name !== ".."
  );
}

/** True if `prefix` may be a workload interface prefix: 1..8 characters, `[a-z][a-z0-9]*`. */
export function isValidWorkloadInterfacePrefix(prefix: unknown): prefix is string {
  return typeof prefix === "string" && PREFIX_RE.test(prefix);
}

/** Throws `invalid-interface-name` unless {@link isValidWorkloadInterfacePrefix}; returns the prefix. */
export function validateWorkloadInterfacePrefix(prefix: string): string {
  if (!isValidWorkloadInterfacePrefix(prefix)) {
    throw new InterfaceNameError(
      "workload interface prefix must be 1-8 characters of [a-z0-9], a letter first",
      {
        prefix: String(prefix),
      },
    );
  }
  return prefix;
}

function identityPart(identity: WorkloadInterfaceIdentity, field: "namespace" | "workload"): string {
  const v = (identity as unknown as Record<string, unknown> | null)?.[field];
  if (typeof v !== "string" || v === "") {
    throw new InterfaceNameError(`endpoint identity needs a non-empty ${field}`, { field });
  }
  return v;
}

/**
 * The host-side interface name of a workload endpoint: `prefix` + the first `15 - prefix.length` hex
 * digits of SHA-1(`<namespace>.<workload>`) (with `.<endpoint>` appended for an endpoint other than
 * `eth0`). With prefix `cali` this is exactly the name Calico's CNI plugin gives a pod's veth. Always a
 * valid interface name of 15 characters; throws `invalid-interface-name` for a bad prefix or identity.
 */
export function workloadInterfaceName(
  identity: WorkloadInterfaceIdentity,
  prefix: string = DEFAULT_WORKLOAD_INTERFACE_PREFIX,
): string {
  validateWorkloadInterfacePrefix(prefix);
  const namespace = identityPart(identity, "namespace");
  const workload = identityPart(identity, "workload");
  const endpoint = identity.endpoint;
  if (endpoint !== undefined && (typeof endpoint !== "string" || endpoint === "")) {
    throw new InterfaceNameError("endpoint identity has an empty endpoint", { field: "endpoint" });
  }
  const key =
    endpoint === undefined || endpoint === "eth0"
      ? `${namespace}.${workload}`
      : `${namespace}.${workload}.${endpoint}`;
  const name =
    prefix +
    // One-shot hash (no Hash object per call): this runs for every pod event on the informer path.
    hash("sha1", key, "hex").slice(0, MAX_INTERFACE_NAME_BYTES - prefix.length);
  // Holds by construction; checked so a future change of the rules above cannot emit a bad name.
  if (!isValidInterfaceName(name))
    throw new InterfaceNameError("derived interface name is invalid", { ifname: name });
  return name;
}
