/**
 * NodeStatus: what a node agent reports about itself (modelled on Calico's `CalicoNodeStatus`), so an
 * operator can read a node's BGP sessions, addresses, MTU and dataplane state from anywhere, not only as
 * root on the host. Written by the agent; `spec` only names the node, `status` is the observed state.
 *
 * @packageDocumentation
 */
import { type Ctx, object } from "../validation/context.js";
import { asNumber } from "../validation/fields.js";
import { resourceName } from "../validation/names.js";
import { addressWithPrefix, ip } from "../validation/net.js";
import {
  array,
  boolean,
  integer,
  nonEmptyString,
  oneOf,
  opt,
  req,
  string,
} from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ObjectMeta, ResourceOf } from "./meta.js";

/** BGP session states, with RFC 4271's names (section 8.2.2). */
export const BGPSessionState = {
  /** Idle */
  Idle: "Idle",
  /** Connect */
  Connect: "Connect",
  /** Active */
  Active: "Active",
  /** OpenSent */
  OpenSent: "OpenSent",
  /** OpenConfirm */
  OpenConfirm: "OpenConfirm",
  /** Established */
  Established: "Established",
} as const;
/** Union of {@link BGPSessionState} values. */
export type BGPSessionState = (typeof BGPSessionState)[keyof typeof BGPSessionState];

/** Why a peer is configured (Calico's `CalicoNodeStatus` peer types). */
export const BGPPeerType = {
  /** A node of the full mesh. */
  NodeMesh: "NodeMesh",
  /** A `BGPPeer` selecting this node (`node` / `nodeSelector`). */
  NodePeer: "NodePeer",
  /** A global `BGPPeer`. */
  GlobalPeer: "GlobalPeer",
} as const;
/** Union of {@link BGPPeerType} values. */
export type BGPPeerType = (typeof BGPPeerType)[keyof typeof BGPPeerType];

/** One BGP session of the node. */
export interface NodeStatusBGPPeer {
  /** The peer's address. */
  address: string;
  /** The peer's AS number. */
  asNumber?: number;
  /** Why the peer is configured. */
  type: BGPPeerType;
  /** RFC 4271 session state. */
  state: BGPSessionState;
  /** RFC 3339 time the session entered `state`. */
  since?: string;
  /** The last error of the session, in operator words (e.g. `TCP 179 refused`). */
  lastError?: string;
  /** Routes accepted from the peer. */
  routesImported: number;
  /** Routes advertised to the peer. */
  routesExported: number;
}

/** Health of one part of the agent. */
export interface NodeStatusComponent {
  /** The part: `datastore`, `dataplane`, `bgp`, `workload-api`, ... */
  name: string;
  live: boolean;
  ready: boolean;
  /** Why it is not live or not ready. */
  reason?: string;
}

/** The agent process. */
export interface NodeStatusAgent {
  /** Agent version. */
  version: string;
  /** RFC 3339 start time of the agent process. */
  startedAt: string;
  /** True when every component is ready. */
  ready: boolean;
  /** Each component's health. */
  components: NodeStatusComponent[];
}

/** The addresses the agent chose. */
export interface NodeStatusAddresses {
  /** IPv4 underlay address with prefix length. */
  ipv4?: string;
  /** IPv6 underlay address with prefix length. */
  ipv6?: string;
  /** The underlay interface. */
  interface?: string;
}

/** A remote route the dataplane could not program (e.g. a VXLAN route to a node without a VTEP). */
export interface NodeStatusUnresolvedRoute {
  /** Destination CIDR. */
  dst: string;
  /** Why, in short words (`no-vtep`, `no-node-address`, the kernel's answer for a flat next hop). */
  reason: string;
  /** The node the route leads to, when known. */
  node?: string;
}

/**
 * A foreign nftables (or iptables-legacy) base chain that can drop traffic before the agent's own table
 * sees it: reported, never worked around.
 */
export interface NodeStatusForeignRule {
  /** Table family (`inet`, `ip`, `ip6`). */
  family: string;
  /** Foreign table name. */
  table: string;
  /** Foreign base chain name. */
  chain: string;
  /** Netfilter hook it shares with one of ours. */
  hook: string;
  /** Its priority (lower runs first). */
  priority: number;
  /** Why it can drop (`policy drop`, `2 rules that drop`). */
  why: string;
  /** Who made it, when the table name is a known one (kube-proxy, iptables). */
  owner?: string;
}

/** The dataplane's sync state. */
export interface NodeStatusDataplane {
  /** True once the first full state has been programmed and no later batch failed. */
  inSync: boolean;
  /** RFC 3339 time of the last successful apply. */
  lastApply?: string;
  /** The last apply error, in operator words. */
  lastError?: string;
  /** Remote routes left unprogrammed: how many, and the first few. Absent when there are none. */
  unresolvedRoutes?: { count: number; routes: NodeStatusUnresolvedRoute[] };
  /** Foreign chains that can drop before ours: how many, and the first few. Absent when there are none. */
  foreignRules?: { count: number; chains: NodeStatusForeignRule[] };
}

/** The observed state a node agent reports. */
export interface NodeStatusReport {
  agent?: NodeStatusAgent;
  addresses?: NodeStatusAddresses;
  /** MTU of workload veths and tunnel devices. */
  mtu?: number;
  dataplane?: NodeStatusDataplane;
  bgp?: { peers: NodeStatusBGPPeer[] };
  /** RFC 3339 time of this report. */
  updatedAt?: string;
}

/** Spec of a {@link NodeStatus}: the node it describes (equal to `metadata.name`). */
export interface NodeStatusSpec {
  /** The node's name. */
  node: string;
}

/** A node agent's status report. Cluster-scoped; named after its node. */
export type NodeStatus = ResourceOf<"NodeStatus", NodeStatusSpec> & {
  /** The observed state; absent until the agent first reports. */
  status?: NodeStatusReport;
};

// RFC 3339 date-time (what `Date.prototype.toISOString` writes, and offsets).
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function timestamp(v: unknown, path: string, ctx: Ctx): string | undefined {
  const s = string(v, path, ctx);
  if (s === undefined) return undefined;
  return RFC3339.test(s) && !Number.isNaN(Date.parse(s))
    ? s
    : ctx.fail(path, `expected an RFC 3339 time such as 2026-01-02T03:04:05Z, got ${JSON.stringify(s)}`);
}

const count = (v: unknown, p: string, c: Ctx) => integer(v, p, c, 0, Number.MAX_SAFE_INTEGER);

function component(v: unknown, path: string, ctx: Ctx): NodeStatusComponent | undefined {
  const o = object(v, path, ctx, ["name", "live", "ready", "reason"]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusComponent> = {};
  const before = ctx.count;
  req(o, out, "name", path, ctx, nonEmptyString);
  req(o, out, "live", path, ctx, boolean);
  req(o, out, "ready", path, ctx, boolean);
  opt(o, out, "reason", path, ctx, string);
  return ctx.count === before ? (out as NodeStatusComponent) : undefined;
}

function peer(v: unknown, path: string, ctx: Ctx): NodeStatusBGPPeer | undefined {
  const o = object(v, path, ctx, [
    "address",
    "asNumber",
    "type",
    "state",
    "since",
    "lastError",
    "routesImported",
    "routesExported",
  ]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusBGPPeer> = {};
  const before = ctx.count;
  req(o, out, "address", path, ctx, (x, p, c) => ip(x, p, c));
  opt(o, out, "asNumber", path, ctx, asNumber);
  req(o, out, "type", path, ctx, (x, p, c) => oneOf(x, p, c, Object.values(BGPPeerType)));
  req(o, out, "state", path, ctx, (x, p, c) => oneOf(x, p, c, Object.values(BGPSessionState)));
  opt(o, out, "since", path, ctx, timestamp);
  opt(o, out, "lastError", path, ctx, string);
  req(o, out, "routesImported", path, ctx, count);
  req(o, out, "routesExported", path, ctx, count);
  return ctx.count === before ? (out as NodeStatusBGPPeer) : undefined;
}

function agent(v: unknown, path: string, ctx: Ctx): NodeStatusAgent | undefined {
  const o = object(v, path, ctx, ["version", "startedAt", "ready", "components"]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusAgent> = {};
  const before = ctx.count;
  req(o, out, "version", path, ctx, nonEmptyString);
  req(o, out, "startedAt", path, ctx, timestamp);
  req(o, out, "ready", path, ctx, boolean);
  req(o, out, "components", path, ctx, (x, p, c) => array(x, p, c, component));
  return ctx.count === before ? (out as NodeStatusAgent) : undefined;
}

function addresses(v: unknown, path: string, ctx: Ctx): NodeStatusAddresses | undefined {
  const o = object(v, path, ctx, ["ipv4", "ipv6", "interface"]);
  if (o === undefined) return undefined;
  const out: NodeStatusAddresses = {};
  opt(o, out, "ipv4", path, ctx, (x, p, c) => addressWithPrefix(x, p, c, 4));
  opt(o, out, "ipv6", path, ctx, (x, p, c) => addressWithPrefix(x, p, c, 6));
  opt(o, out, "interface", path, ctx, nonEmptyString);
  return out;
}

function unresolvedRoute(v: unknown, path: string, ctx: Ctx): NodeStatusUnresolvedRoute | undefined {
  const o = object(v, path, ctx, ["dst", "reason", "node"]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusUnresolvedRoute> = {};
  const before = ctx.count;
  req(o, out, "dst", path, ctx, nonEmptyString);
  req(o, out, "reason", path, ctx, nonEmptyString);
  opt(o, out, "node", path, ctx, nonEmptyString);
  return ctx.count === before ? (out as NodeStatusUnresolvedRoute) : undefined;
}

function unresolvedRoutes(v: unknown, path: string, ctx: Ctx): NodeStatusDataplane["unresolvedRoutes"] {
  const o = object(v, path, ctx, ["count", "routes"]);
  if (o === undefined) return undefined;
  const out: Partial<NonNullable<NodeStatusDataplane["unresolvedRoutes"]>> = {};
  const before = ctx.count;
  req(o, out, "count", path, ctx, count);
  req(o, out, "routes", path, ctx, (x, p, c) => array(x, p, c, unresolvedRoute));
  return ctx.count === before ? (out as NonNullable<NodeStatusDataplane["unresolvedRoutes"]>) : undefined;
}

function foreignRule(v: unknown, path: string, ctx: Ctx): NodeStatusForeignRule | undefined {
  const o = object(v, path, ctx, ["family", "table", "chain", "hook", "priority", "why", "owner"]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusForeignRule> = {};
  const before = ctx.count;
  req(o, out, "family", path, ctx, nonEmptyString);
  req(o, out, "table", path, ctx, nonEmptyString);
  req(o, out, "chain", path, ctx, nonEmptyString);
  req(o, out, "hook", path, ctx, nonEmptyString);
  // nftables priorities are signed 32-bit.
  req(o, out, "priority", path, ctx, (x, p, c) => integer(x, p, c, -(2 ** 31), 2 ** 31 - 1));
  req(o, out, "why", path, ctx, nonEmptyString);
  opt(o, out, "owner", path, ctx, nonEmptyString);
  return ctx.count === before ? (out as NodeStatusForeignRule) : undefined;
}

function foreignRules(v: unknown, path: string, ctx: Ctx): NodeStatusDataplane["foreignRules"] {
  const o = object(v, path, ctx, ["count", "chains"]);
  if (o === undefined) return undefined;
  const out: Partial<NonNullable<NodeStatusDataplane["foreignRules"]>> = {};
  const before = ctx.count;
  req(o, out, "count", path, ctx, count);
  req(o, out, "chains", path, ctx, (x, p, c) => array(x, p, c, foreignRule));
  return ctx.count === before ? (out as NonNullable<NodeStatusDataplane["foreignRules"]>) : undefined;
}

function dataplane(v: unknown, path: string, ctx: Ctx): NodeStatusDataplane | undefined {
  const o = object(v, path, ctx, ["inSync", "lastApply", "lastError", "unresolvedRoutes", "foreignRules"]);
  if (o === undefined) return undefined;
  const out: Partial<NodeStatusDataplane> = {};
  const before = ctx.count;
  req(o, out, "inSync", path, ctx, boolean);
  opt(o, out, "lastApply", path, ctx, timestamp);
  opt(o, out, "lastError", path, ctx, string);
  opt(o, out, "unresolvedRoutes", path, ctx, unresolvedRoutes);
  opt(o, out, "foreignRules", path, ctx, foreignRules);
  return ctx.count === before ? (out as NodeStatusDataplane) : undefined;
}

/** Validates the `status` section of a {@link NodeStatus}. */
export function validateNodeStatusReport(v: unknown, path: string, ctx: Ctx): NodeStatusReport | undefined {
  const o = object(v, path, ctx, ["agent", "addresses", "mtu", "dataplane", "bgp", "updatedAt"]);
  if (o === undefined) return undefined;
  const out: NodeStatusReport = {};
  opt(o, out, "agent", path, ctx, agent);
  opt(o, out, "addresses", path, ctx, addresses);
  opt(o, out, "mtu", path, ctx, (x, p, c) => integer(x, p, c, 68, 65535));
  opt(o, out, "dataplane", path, ctx, dataplane);
  opt(o, out, "bgp", path, ctx, (x, p, c) => {
    const b = object(x, p, c, ["peers"]);
    if (b === undefined) return undefined;
    const got: Partial<{ peers: NodeStatusBGPPeer[] }> = {};
    return req(b, got, "peers", p, c, (y, yp, yc) => array(y, yp, yc, peer)) === undefined
      ? undefined
      : (got as { peers: NodeStatusBGPPeer[] });
  });
  opt(o, out, "updatedAt", path, ctx, timestamp);
  return out;
}

/** Kind definition of {@link NodeStatus}. */
export const nodeStatusDef: KindDef<"NodeStatus", NodeStatusSpec> = {
  kind: "NodeStatus",
  plural: "nodestatuses",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec(v, path, ctx, meta: ObjectMeta) {
    const o = object(v, path, ctx, ["node"]);
    if (o === undefined) return undefined;
    const out: Partial<NodeStatusSpec> = {};
    const node = req(o, out, "node", path, ctx, (x, p, c) => resourceName(x, p, c, "subdomain"));
    if (node === undefined) return undefined;
    // One status per node, found by name: a status named after another node would mislead.
    if (meta.name !== "" && node !== meta.name)
      return ctx.fail(`${path}.node`, `must equal metadata.name (${JSON.stringify(meta.name)})`);
    return out as NodeStatusSpec;
  },
  validateStatus: validateNodeStatusReport,
  defaults(spec) {
    return { ...spec };
  },
};
