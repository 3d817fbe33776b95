/**
 * Strict validation of workload API request bodies: unknown fields rejected, every value checked
 * against the rules of the place it ends up (kernel interface names, datastore names, Kubernetes
 * names and labels, IPAM handles), defaults applied. Each failure is a {@link WorkloadApiError} naming
 * the field by its JSON path. Imports only `node:net`.
 *
 * @packageDocumentation
 */
import { isIPv4, isIPv6 } from "node:net";
import { WorkloadApiError, WorkloadErrorCode } from "./errors.js";
import type {
  WorkloadAddRequest,
  WorkloadAttachment,
  WorkloadDelRequest,
  WorkloadGcRequest,
} from "./protocol.js";

/** An add (or check) request with its defaults applied. */
export interface ValidAddRequest {
  readonly containerId: string;
  readonly ifName: string;
  readonly netns: string;
  readonly namespace: string;
  readonly pod: string | undefined;
  readonly workload: string | undefined;
  readonly endpoint: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ips: readonly string[];
  readonly pools: readonly string[];
  readonly mac: string | undefined;
  readonly mtu: number | undefined;
  readonly args: Readonly<Record<string, string>>;
  /** Addresses allocated outside the agent (see `WorkloadAddRequest.externalIps`); undefined: the agent's IPAM. */
  readonly externalIps: readonly string[] | undefined;
}

/** A del request with its defaults applied. */
export interface ValidDelRequest {
  readonly containerId: string;
  readonly ifName: string;
  readonly netns: string | undefined;
  readonly namespace: string;
  readonly pod: string | undefined;
  readonly workload: string | undefined;
  readonly endpoint: string;
  readonly args: Readonly<Record<string, string>>;
}

/** Longest container id accepted (the IPAM handle `margay:<id>:<ifName>` must stay within 200). */
export const MAX_CONTAINER_ID_LENGTH = 128;
const MAX_LABELS = 64;
const MAX_ARGS = 32;
const MAX_POOLS = 16;
const MAX_ATTACHMENTS = 100_000;

// CNI's alphabet for container ids and network names.
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// What iproute2 accepts and nftables can match without quoting (as @margay/api's interface names).
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// Same rule as the dataplane's netns paths (nsenter --net=PATH receives it as one argument).
const NETNS_RE = /^\/[A-Za-z0-9_./-]+$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const ARG_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const POOL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,252}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Labels the agent sets itself; a request may not override them. */
const RESERVED_LABEL_PREFIX = "projectcalico.org/";

function invalid(field: string, reason: string, extra: Record<string, unknown> = {}): WorkloadApiError {
  return new WorkloadApiError(WorkloadErrorCode.InvalidField, `invalid ${field}: ${reason}`, {
    details: { field, reason, ...extra },
  });
}

function objectOf(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    if (field === "") {
      throw new WorkloadApiError(WorkloadErrorCode.InvalidJson, "request body must be a JSON object", {
        details: { field: "" },
      });
    }
    throw invalid(field, "must be an object");
  }
  return v as Record<string, unknown>;
}

function onlyKnown(o: Record<string, unknown>, known: readonly string[], prefix = ""): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      throw new WorkloadApiError(WorkloadErrorCode.UnknownField, `unknown field ${prefix}${k}`, {
        details: { field: `${prefix}${k}`, known },
      });
    }
  }
}

function required(o: Record<string, unknown>, field: string): unknown {
  const v = o[field];
  if (v === undefined || v === null) {
    throw new WorkloadApiError(WorkloadErrorCode.MissingField, `missing field ${field}`, {
      details: { field },
    });
  }
  return v;
}

function str(v: unknown, field: string, max: number): string {
  if (typeof v !== "string") throw invalid(field, "must be a string");
  if (v === "") throw invalid(field, "must not be empty");
  if (Buffer.byteLength(v) > max) throw invalid(field, `longer than ${max} bytes`);
  return v;
}

function containerId(v: unknown, field = "containerId"): string {
  const s = str(v, field, MAX_CONTAINER_ID_LENGTH);
  if (!ID_RE.test(s)) throw invalid(field, "must match [A-Za-z0-9][A-Za-z0-9_.-]*");
  return s;
}

function ifName(v: unknown, field: string, max = 15): string {
  const s = str(v, field, max);
  if (!IFNAME_RE.test(s) || s === "." || s === "..") {
    throw invalid(field, "must be an interface name: [A-Za-z0-9][A-Za-z0-9_.-]*");
  }
  return s;
}

function netns(v: unknown, field = "netns"): string {
  const s = str(v, field, 4095);
  if (!NETNS_RE.test(s) || s.split("/").includes("..")) {
    throw invalid(field, "must be an absolute path of [A-Za-z0-9_./-] without '..'");
  }
  return s;
}

function k8sNamespace(v: unknown): string {
  if (v === undefined) return "default";
  const s = str(v, "namespace", 63);
  if (!DNS_LABEL_RE.test(s)) throw invalid("namespace", "must be an RFC 1123 label");
  return s;
}

function podName(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = str(v, "pod", 253);
  if (!DNS_SUBDOMAIN_RE.test(s)) throw invalid("pod", "must be an RFC 1123 subdomain");
  return s;
}

function labels(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const o = objectOf(v, "labels");
  const keys = Object.keys(o);
  if (keys.length > MAX_LABELS) throw invalid("labels", `more than ${MAX_LABELS} labels`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const field = `labels.${k}`;
    const slash = k.indexOf("/");
    const prefix = slash < 0 ? undefined : k.slice(0, slash);
    const name = slash < 0 ? k : k.slice(slash + 1);
    if (
      (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))) ||
      name.length === 0 ||
      name.length > 63 ||
      !LABEL_NAME_RE.test(name)
    ) {
      throw invalid(field, "not a label key ([prefix/]name)");
    }
    if (k.startsWith(RESERVED_LABEL_PREFIX)) throw invalid(field, "reserved: the agent sets it");
    const value = o[k];
    if (typeof value !== "string") throw invalid(field, "label value must be a string");
    if (value !== "" && (value.length > 63 || !LABEL_NAME_RE.test(value))) {
      throw invalid(field, "not a label value");
    }
    out[k] = value;
  }
  return out;
}

function stringArray(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(field, "must be an array");
  if (v.length > max) throw invalid(field, `more than ${max} entries`);
  return v;
}

function ips(v: unknown, name = "ips"): string[] {
  if (v === undefined) return [];
  const out: string[] = [];
  const families = new Set<number>();
  stringArray(v, name, 2).forEach((ip, i) => {
    const field = `${name}[${i}]`;
    const s = str(ip, field, 64);
    const family = isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0;
    if (family === 0) throw invalid(field, "not an IP address (no prefix length)");
    if (families.has(family)) throw invalid(field, `a second IPv${family} address`);
    families.add(family);
    out.push(s);
  });
  return out;
}

function pools(v: unknown): string[] {
  if (v === undefined) return [];
  return stringArray(v, "pools", MAX_POOLS).map((p, i) => {
    const s = str(p, `pools[${i}]`, 253);
    if (!POOL_RE.test(s)) throw invalid(`pools[${i}]`, "not a pool name or CIDR");
    return s;
  });
}

function mac(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = str(v, "mac", 17).toLowerCase();
  if (!MAC_RE.test(s)) throw invalid("mac", "must be six colon-separated hex octets");
  if ((Number.parseInt(s.slice(0, 2), 16) & 1) === 1) throw invalid("mac", "must be a unicast address");
  if (s === "00:00:00:00:00:00") throw invalid("mac", "must not be all zeros");
  return s;
}

function mtu(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 68 || v > 65535) {
    throw invalid("mtu", "must be an integer 68..65535");
  }
  return v;
}

function args(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const o = objectOf(v, "args");
  const keys = Object.keys(o);
  if (keys.length > MAX_ARGS) throw invalid("args", `more than ${MAX_ARGS} entries`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (!ARG_KEY_RE.test(k)) throw invalid(`args.${k}`, "key must match [A-Za-z_][A-Za-z0-9_]{0,63}");
    const value = o[k];
    if (typeof value !== "string") throw invalid(`args.${k}`, "must be a string");
    if (value.length > 1024) throw invalid(`args.${k}`, "longer than 1024 characters");
    out[k] = value;
  }
  return out;
}

function identity(o: Record<string, unknown>, ifname: string) {
  const pod = podName(o.pod);
  const workload = o.workload === undefined ? undefined : containerId(o.workload, "workload");
  if (pod !== undefined && workload !== undefined) {
    throw invalid("workload", "give pod or workload, not both");
  }
  return {
    namespace: k8sNamespace(o.namespace),
    pod,
    workload,
    endpoint: o.endpoint === undefined ? ifname : ifName(o.endpoint, "endpoint", 63),
  };
}

const ADD_FIELDS = [
  "containerId",
  "ifName",
  "netns",
  "namespace",
  "pod",
  "workload",
  "endpoint",
  "labels",
  "ips",
  "pools",
  "mac",
  "mtu",
  "args",
  "externalIps",
] as const satisfies readonly (keyof WorkloadAddRequest)[];

const DEL_FIELDS = [
  "containerId",
  "ifName",
  "netns",
  "namespace",
  "pod",
  "workload",
  "endpoint",
  "args",
] as const satisfies readonly (keyof WorkloadDelRequest)[];

/** Validates the body of add (and check). */
export function parseAddRequest(body: unknown): ValidAddRequest {
  const o = objectOf(body, "");
  onlyKnown(o, ADD_FIELDS);
  const cid = containerId(required(o, "containerId"));
  const ifname = ifName(required(o, "ifName"), "ifName");
  const ns = netns(required(o, "netns"));
  return {
    containerId: cid,
    ifName: ifname,
    netns: ns,
    ...identity(o, ifname),
    labels: labels(o.labels),
    ips: ips(o.ips),
    pools: pools(o.pools),
    mac: mac(o.mac),
    mtu: mtu(o.mtu),
    args: args(o.args),
    externalIps: externalIps(o),
  };
}

function externalIps(o: Record<string, unknown>): string[] | undefined {
  if (o.externalIps === undefined) return undefined;
  const out = ips(o.externalIps, "externalIps");
  if (out.length === 0) throw invalid("externalIps", "must list at least one address");
  for (const other of ["ips", "pools"] as const)
    if (o[other] !== undefined)
      throw invalid("externalIps", `not together with ${other}: the agent allocates nothing`);
  return out;
}

/** Validates the body of del. An empty `netns` means the runtime has none any more. */
export function parseDelRequest(body: unknown): ValidDelRequest {
  const o = objectOf(body, "");
  onlyKnown(o, DEL_FIELDS);
  const cid = containerId(required(o, "containerId"));
  const ifname = ifName(required(o, "ifName"), "ifName");
  return {
    containerId: cid,
    ifName: ifname,
    netns: o.netns === undefined || o.netns === "" ? undefined : netns(o.netns),
    ...identity(o, ifname),
    args: args(o.args),
  };
}

/** Validates the body of gc. */
export function parseGcRequest(body: unknown): WorkloadGcRequest {
  const o = objectOf(body, "");
  onlyKnown(o, ["validAttachments"]);
  const list = required(o, "validAttachments");
  if (!Array.isArray(list)) throw invalid("validAttachments", "must be an array");
  if (list.length > MAX_ATTACHMENTS)
    throw invalid("validAttachments", `more than ${MAX_ATTACHMENTS} entries`);
  const out: WorkloadAttachment[] = list.map((a, i) => {
    const field = `validAttachments[${i}]`;
    const e = objectOf(a, field);
    onlyKnown(e, ["containerId", "ifName"], `${field}.`);
    if (e.containerId === undefined || e.ifName === undefined) {
      throw new WorkloadApiError(WorkloadErrorCode.MissingField, `missing field in ${field}`, {
        details: { field: `${field}.${e.containerId === undefined ? "containerId" : "ifName"}` },
      });
    }
    return {
      containerId: containerId(e.containerId, `${field}.containerId`),
      ifName: ifName(e.ifName, `${field}.ifName`),
    };
  });
  return { validAttachments: out };
}
