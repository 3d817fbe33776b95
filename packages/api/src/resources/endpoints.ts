/**
 * Endpoints: WorkloadEndpoint (a pod/container interface) and HostEndpoint (a host interface).
 *
 * @packageDocumentation
 */
import { type Ctx, field, joinPath, object } from "../validation/context.js";
import { containerId, endpointPortName, interfaceName, resourceName } from "../validation/names.js";
import { parseCidr, parseIp } from "../net/ip.js";
import { cidr, ip, mac } from "../validation/net.js";
import { array, integer, noDuplicates, opt, req } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ResourceOf } from "./meta.js";
import { nodeNameRef } from "./node.js";
import { validatePortProtocol } from "./rule-validation.js";
import type { EndpointPort } from "./rules.js";

/** A named (and optionally host-mapped) port of a workload. */
export interface WorkloadEndpointPort extends EndpointPort {
  /** Host port mapped to `port` (0 or absent: none). */
  hostPort?: number;
  /** Host IP of the mapping. */
  hostIP?: string;
}

/** A 1:1 NAT of an external address onto one of the endpoint's addresses. */
export interface IPNAT {
  /** One of the endpoint's own addresses. */
  internalIP: string;
  /** The address mapped onto it. */
  externalIP: string;
}

/** Spec of a {@link WorkloadEndpoint}. */
export interface WorkloadEndpointSpec {
  /** Orchestrator name (e.g. `k8s`, `cni`). */
  orchestrator?: string;
  /** Workload name (orchestrator-specific). */
  workload?: string;
  /** The node hosting the workload. */
  node?: string;
  /** Container id of the workload. */
  containerID?: string;
  /** Pod name (Kubernetes). */
  pod?: string;
  /** Endpoint name within the workload (e.g. `eth0`). */
  endpoint?: string;
  /** Kubernetes service account of the pod (matched by `serviceAccounts` in rules). */
  serviceAccountName?: string;
  /** Addresses of the endpoint: single-address CIDRs (/32, /128), canonical. */
  ipNetworks?: string[];
  /** 1:1 NAT mappings onto the endpoint's addresses. */
  ipNATs?: IPNAT[];
  /** IPv4 default gateway of the workload. */
  ipv4Gateway?: string;
  /** IPv6 default gateway of the workload. */
  ipv6Gateway?: string;
  /** Profiles applied after policy, in order. */
  profiles?: string[];
  /** Host-side interface name (e.g. `cali12345678901`). */
  interfaceName: string;
  /** MAC address of the workload side of the interface. */
  mac?: string;
  /** Named ports, referenced by rules' named ports. */
  ports?: WorkloadEndpointPort[];
  /** Source prefixes the endpoint may send from despite RPF. */
  allowSpoofedSourcePrefixes?: string[];
}
/** A workload's network interface. Namespaced. */
export type WorkloadEndpoint = ResourceOf<"WorkloadEndpoint", WorkloadEndpointSpec>;

/** Spec of a {@link HostEndpoint}. */
export interface HostEndpointSpec {
  /** The node the interface belongs to. Required. */
  node: string;
  /** Interface name, or `*` for all of the host's interfaces. */
  interfaceName?: string;
  /** The interface's addresses (used to match it when `interfaceName` is absent, and for selectors). */
  expectedIPs?: string[];
  /** Profiles applied after policy, in order. */
  profiles?: string[];
  /** Named ports, referenced by rules' named ports. */
  ports?: EndpointPort[];
}
/** A host interface protected by policy. Cluster-scoped. */
export type HostEndpoint = ResourceOf<"HostEndpoint", HostEndpointSpec>;

function endpointPort(
  v: unknown,
  path: string,
  ctx: Ctx,
  workload: boolean,
): WorkloadEndpointPort | undefined {
  const o = object(
    v,
    path,
    ctx,
    workload ? ["name", "protocol", "port", "hostPort", "hostIP"] : ["name", "protocol", "port"],
  );
  if (o === undefined) return undefined;
  const out: Partial<WorkloadEndpointPort> = {};
  const name = req(o, out, "name", path, ctx, endpointPortName);
  const protocol = req(o, out, "protocol", path, ctx, validatePortProtocol);
  const port = req(o, out, "port", path, ctx, (x, p, c) => integer(x, p, c, 1, 65535));
  if (workload) {
    opt(o, out, "hostPort", path, ctx, (x, p, c) => integer(x, p, c, 0, 65535));
    // Calico always prints hostIP (as "" when unset); treat "" as absent.
    opt(o, out, "hostIP", path, ctx, (x, p, c) => (x === "" ? undefined : ip(x, p, c)));
  }
  return name === undefined || protocol === undefined || port === undefined
    ? undefined
    : (out as WorkloadEndpointPort);
}

const names = (x: unknown, p: string, c: Ctx) => array(x, p, c, (n, np, nc) => resourceName(n, np, nc));

/** Kind definition of {@link WorkloadEndpoint}. */
export const workloadEndpointDef: KindDef<"WorkloadEndpoint", WorkloadEndpointSpec> = {
  kind: "WorkloadEndpoint",
  plural: "workloadendpoints",
  namespaced: true,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "orchestrator",
      "workload",
      "node",
      "containerID",
      "pod",
      "endpoint",
      "serviceAccountName",
      "ipNetworks",
      "ipNATs",
      "ipv4Gateway",
      "ipv6Gateway",
      "profiles",
      "interfaceName",
      "mac",
      "ports",
      "allowSpoofedSourcePrefixes",
    ]);
    if (o === undefined) return undefined;
    const out: Partial<WorkloadEndpointSpec> = {};
    for (const key of ["orchestrator", "workload", "pod", "endpoint", "serviceAccountName"] as const) {
      opt(o, out, key, path, ctx, (x, p, c) => resourceName(x, p, c));
    }
    opt(o, out, "node", path, ctx, nodeNameRef);
    opt(o, out, "containerID", path, ctx, containerId);
    opt(o, out, "ipNetworks", path, ctx, (x, p, c) =>
      array(x, p, c, (n, np, nc) => {
        const got = cidr(n, np, nc, { hostBits: "mask" });
        if (got === undefined) return undefined;
        const parsed = parseCidr(got);
        if (parsed.prefixLength !== (parsed.version === 4 ? 32 : 128)) {
          return nc.fail(np, "endpoint networks must be single addresses (/32 or /128)");
        }
        return got;
      }),
    );
    opt(o, out, "ipNATs", path, ctx, (x, p, c) =>
      array(x, p, c, (n, np, nc): IPNAT | undefined => {
        const no = object(n, np, nc, ["internalIP", "externalIP"]);
        if (no === undefined) return undefined;
        const nat: Partial<IPNAT> = {};
        const i = req(no, nat, "internalIP", np, nc, ip);
        const e = req(no, nat, "externalIP", np, nc, ip);
        if (i !== undefined && e !== undefined && parseIp(i).version !== parseIp(e).version) {
          nc.fail(joinPath(np, "externalIP"), "internal and external IP versions differ");
        }
        return i === undefined || e === undefined ? undefined : (nat as IPNAT);
      }),
    );
    opt(o, out, "ipv4Gateway", path, ctx, (x, p, c) => ip(x, p, c, 4));
    opt(o, out, "ipv6Gateway", path, ctx, (x, p, c) => ip(x, p, c, 6));
    opt(o, out, "profiles", path, ctx, names);
    const iface = req(o, out, "interfaceName", path, ctx, (x, p, c) => interfaceName(x, p, c));
    opt(o, out, "mac", path, ctx, mac);
    opt(o, out, "ports", path, ctx, (x, p, c) => {
      const ports = array(x, p, c, (e, ep, ec) => endpointPort(e, ep, ec, true));
      if (ports !== undefined) noDuplicates(ports, p, c, (q) => `${q.name}/${q.protocol}`);
      return ports;
    });
    opt(o, out, "allowSpoofedSourcePrefixes", path, ctx, (x, p, c) =>
      array(x, p, c, (n, np, nc) => cidr(n, np, nc, { hostBits: "mask" })),
    );
    // Each NAT's internal address must be one of the endpoint's own addresses.
    out.ipNATs?.forEach((nat, i) => {
      const own = (out.ipNetworks ?? []).some((n) => n.split("/")[0] === nat.internalIP);
      if (!own)
        ctx.fail(joinPath(joinPath(path, "ipNATs"), i), "internalIP is not one of the endpoint's ipNetworks");
    });
    return iface === undefined ? undefined : (out as WorkloadEndpointSpec);
  },
  defaults(spec) {
    return { ...spec };
  },
};

/** Kind definition of {@link HostEndpoint}. */
export const hostEndpointDef: KindDef<"HostEndpoint", HostEndpointSpec> = {
  kind: "HostEndpoint",
  plural: "hostendpoints",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, ["node", "interfaceName", "expectedIPs", "profiles", "ports"]);
    if (o === undefined) return undefined;
    const out: Partial<HostEndpointSpec> = {};
    const node = req(o, out, "node", path, ctx, nodeNameRef);
    opt(o, out, "interfaceName", path, ctx, (x, p, c) =>
      x === "" ? undefined : interfaceName(x, p, c, true),
    );
    opt(o, out, "expectedIPs", path, ctx, (x, p, c) => array(x, p, c, (n, np, nc) => ip(n, np, nc)));
    opt(o, out, "profiles", path, ctx, names);
    opt(o, out, "ports", path, ctx, (x, p, c) => {
      const ports = array(x, p, c, (e, ep, ec) => endpointPort(e, ep, ec, false));
      if (ports !== undefined) noDuplicates(ports, p, c, (q) => `${q.name}/${q.protocol}`);
      return ports;
    });
    const rawIface = field(o, "interfaceName");
    const rawIps = field(o, "expectedIPs");
    if (
      (rawIface === undefined || rawIface === "") &&
      (rawIps === undefined || (Array.isArray(rawIps) && rawIps.length === 0))
    ) {
      ctx.fail(path, "at least one of interfaceName or expectedIPs must be specified");
    }
    return node === undefined ? undefined : (out as HostEndpointSpec);
  },
  defaults(spec) {
    return { ...spec };
  },
};
