/**
 * The Node resource: a host running the Margay agent, with its BGP identity and addresses.
 *
 * @packageDocumentation
 */
import { type Ctx, object } from "../validation/context.js";
import { asNumber } from "../validation/fields.js";
import { resourceName } from "../validation/names.js";
import { addressWithPrefix, ip, mac } from "../validation/net.js";
import { array, nonEmptyString, oneOf, opt, req, string } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ResourceOf } from "./meta.js";

/** BGP identity of a node. */
export interface NodeBGPSpec {
  /** The node's AS number; the BGPConfiguration default applies when unset. */
  asNumber?: number;
  /** IPv4 address with prefix length (e.g. `10.0.0.5/24`): the BGP peering address and its subnet. */
  ipv4Address?: string;
  /** IPv6 address with prefix length. */
  ipv6Address?: string;
  /** IPv4 address of the node's IP-in-IP tunnel device. */
  ipv4IPIPTunnelAddr?: string;
  /** If set (an IPv4-formatted id), the node is a route reflector of this cluster id. */
  routeReflectorClusterID?: string;
}

/** Kinds of node address. */
export const NodeAddressType = {
  /** The address the agent detected and uses. */
  CalicoNodeIP: "CalicoNodeIP",
  /** Cluster-internal address. */
  InternalIP: "InternalIP",
  /** Externally reachable address. */
  ExternalIP: "ExternalIP",
} as const;
/** Union of {@link NodeAddressType} values. */
export type NodeAddressType = (typeof NodeAddressType)[keyof typeof NodeAddressType];

/** An address a node can be reached at. */
export interface NodeAddress {
  /** An IP address or CIDR. */
  address: string;
  /** What kind of address it is. */
  type?: NodeAddressType;
}

/** Correlates the node with its name in an orchestrator. */
export interface OrchRef {
  /** Orchestrator name, e.g. `k8s`. */
  orchestrator: string;
  /** The node's name in that orchestrator. */
  nodeName?: string;
}

/** Spec of a {@link Node}. */
export interface NodeSpec {
  /** BGP identity; absent when the node does not run BGP. */
  bgp?: NodeBGPSpec;
  /** IPv4 address of the node's VXLAN tunnel device. */
  ipv4VXLANTunnelAddr?: string;
  /** MAC address of the IPv4 VXLAN tunnel device. */
  vxlanTunnelMACAddr?: string;
  /** IPv6 address of the node's VXLAN tunnel device. */
  ipv6VXLANTunnelAddr?: string;
  /** MAC address of the IPv6 VXLAN tunnel device. */
  vxlanTunnelMACAddrV6?: string;
  /** Names of the node in orchestrators. */
  orchRefs?: OrchRef[];
  /** Addresses the node can be reached at. */
  addresses?: NodeAddress[];
}
/** A host running the agent. Cluster-scoped. */
export type Node = ResourceOf<"Node", NodeSpec>;

function validateBgp(v: unknown, path: string, ctx: Ctx): NodeBGPSpec | undefined {
  const o = object(v, path, ctx, [
    "asNumber",
    "ipv4Address",
    "ipv6Address",
    "ipv4IPIPTunnelAddr",
    "routeReflectorClusterID",
  ]);
  if (o === undefined) return undefined;
  const out: NodeBGPSpec = {};
  opt(o, out, "asNumber", path, ctx, asNumber);
  opt(o, out, "ipv4Address", path, ctx, (x, p, c) => addressWithPrefix(x, p, c, 4));
  opt(o, out, "ipv6Address", path, ctx, (x, p, c) => addressWithPrefix(x, p, c, 6));
  opt(o, out, "ipv4IPIPTunnelAddr", path, ctx, (x, p, c) => ip(x, p, c, 4));
  opt(o, out, "routeReflectorClusterID", path, ctx, (x, p, c) => ip(x, p, c, 4));
  if (Object.keys(o).length === 0) ctx.fail(path, "bgp must not be empty when present");
  return out;
}

/** Kind definition of {@link Node}. */
export const nodeDef: KindDef<"Node", NodeSpec> = {
  kind: "Node",
  plural: "nodes",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx) {
    const o = object(v, path, ctx, [
      "bgp",
      "ipv4VXLANTunnelAddr",
      "vxlanTunnelMACAddr",
      "ipv6VXLANTunnelAddr",
      "vxlanTunnelMACAddrV6",
      "orchRefs",
      "addresses",
    ]);
    if (o === undefined) return undefined;
    const out: NodeSpec = {};
    opt(o, out, "bgp", path, ctx, validateBgp);
    opt(o, out, "ipv4VXLANTunnelAddr", path, ctx, (x, p, c) => ip(x, p, c, 4));
    opt(o, out, "vxlanTunnelMACAddr", path, ctx, mac);
    opt(o, out, "ipv6VXLANTunnelAddr", path, ctx, (x, p, c) => ip(x, p, c, 6));
    opt(o, out, "vxlanTunnelMACAddrV6", path, ctx, mac);
    opt(o, out, "orchRefs", path, ctx, (x, p, c) =>
      array(x, p, c, (r, rp, rc): OrchRef | undefined => {
        const ro = object(r, rp, rc, ["orchestrator", "nodeName"]);
        if (ro === undefined) return undefined;
        const ref: Partial<OrchRef> = {};
        const orch = req(ro, ref, "orchestrator", rp, rc, nonEmptyString);
        opt(ro, ref, "nodeName", rp, rc, string);
        return orch === undefined ? undefined : (ref as OrchRef);
      }),
    );
    opt(o, out, "addresses", path, ctx, (x, p, c) =>
      array(x, p, c, (a, ap, ac): NodeAddress | undefined => {
        const ao = object(a, ap, ac, ["address", "type"]);
        if (ao === undefined) return undefined;
        const addr: Partial<NodeAddress> = {};
        const got = req(ao, addr, "address", ap, ac, (y, yp, yc) => addressWithPrefix(y, yp, yc));
        opt(ao, addr, "type", ap, ac, (y, yp, yc) => oneOf(y, yp, yc, Object.values(NodeAddressType)));
        return got === undefined ? undefined : (addr as NodeAddress);
      }),
    );
    return out;
  },
  defaults(spec) {
    return { ...spec };
  },
};

/** Validates a node name reference (e.g. `spec.node` of endpoints and BGP peers). */
export function nodeNameRef(v: unknown, path: string, ctx: Ctx): string | undefined {
  return resourceName(v, path, ctx, "subdomain");
}
