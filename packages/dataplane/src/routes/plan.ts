import { cidrContainsCidr, type IpCidr, ipVersion } from "@margay/api";
import { canonicalIpOrThrow, cidrOrThrow, interfaceAddressText } from "../net.js";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { isValidInterfaceName } from "@margay/api";
import type {
  Encapsulation,
  HostUpdate,
  PoolUpdate,
  RouteNextHop,
  RouteSideUpdate,
  RouteUpdate,
  VtepUpdate,
} from "../updates.js";

/** One next hop of a programmed route. */
export interface NextHop {
  /** Gateway address; absent for a device route (local workload). */
  readonly via?: string | undefined;
  /** Output device; reported for tunnel and workload routes, left to the kernel for flat routes. */
  readonly dev?: string | undefined;
  /** The gateway is reachable over `dev` without a connected route (tunnels). */
  readonly onlink: boolean;
}

/** A route as programmed: the normalised form both the planner and the kernel reader produce. */
export interface ProgrammedRoute {
  /** Canonical destination CIDR. */
  readonly dst: string;
  /** `blackhole` for local blocks, otherwise `unicast`. */
  readonly type: "unicast" | "blackhole";
  /** Next hops sorted by (via, dev); empty for blackholes; more than one is ECMP. */
  readonly nextHops: readonly NextHop[];
}

/** A permanent neighbour entry on the VXLAN device (remote VTEP address → MAC). */
export interface VtepNeighbor {
  /** Remote tunnel address. */
  readonly address: string;
  /** Remote VTEP MAC. */
  readonly mac: string;
}

/** A permanent FDB entry on the VXLAN device (remote VTEP MAC → underlay address). */
export interface VtepFdb {
  /** Remote VTEP MAC. */
  readonly mac: string;
  /** Remote underlay address. */
  readonly dst: string;
}

/** Desired configuration of this host's VXLAN device. */
export interface VxlanDeviceSpec {
  /** Device name. */
  readonly name: string;
  /** VXLAN network identifier. */
  readonly vni: number;
  /** UDP destination port. */
  readonly port: number;
  /** Device MTU. */
  readonly mtu: number;
  /** This host's tunnel address (installed as a /32). */
  readonly address: string;
  /** This host's VTEP MAC. */
  readonly mac: string;
  /** This host's underlay address (VXLAN source). */
  readonly local: string;
}

/** What the route side of the dataplane should look like. */
export interface RoutePlan {
  /** Routes keyed by canonical dst. */
  readonly routes: ReadonlyMap<string, ProgrammedRoute>;
  /** VXLAN device, if this host has a VTEP. */
  readonly vxlan: VxlanDeviceSpec | undefined;
  /** Neighbour entries for remote VTEPs. */
  readonly neighbors: readonly VtepNeighbor[];
  /** FDB entries for remote VTEPs. */
  readonly fdb: readonly VtepFdb[];
  /** Why some routes or next hops could not be resolved (missing host, VTEP, unsupported mode). */
  readonly warnings: readonly string[];
  /** Flat next hops with no route to them: route dst → why (a subset of what `warnings` says). */
  readonly unresolved?: ReadonlyMap<string, string> | undefined;
}

/** Settings of the planner. */
export interface RoutePlanOptions {
  /** This host's node name. */
  readonly nodeName: string;
  /** VXLAN device name. */
  readonly vxlanDevice: string;
  /** VXLAN VNI. */
  readonly vxlanVni: number;
  /** VXLAN UDP port. */
  readonly vxlanPort: number;
  /** VXLAN device MTU. */
  readonly vxlanMtu: number;
  /** IPIP device name (the kernel's fallback device is `tunl0`). */
  readonly ipipDevice: string;
  /** Whether the kernel can do IPIP; if not, IPIP next hops are dropped with a warning. */
  readonly ipipSupported: boolean;
  /**
   * How the host reaches each flat (unencapsulated) next hop, as the kernel's `ip route get` says. A
   * node behind a router is not a valid gateway itself: its routes go via that router, as BIRD's
   * `gateway recursive` installs iBGP routes. An address absent from the map is programmed as given.
   */
  readonly underlay?: ReadonlyMap<string, UnderlayPath> | undefined;
}

/** How the host reaches a flat next hop (the answer of `ip route get <address>`). */
export type UnderlayPath =
  /** On a connected subnet: the address is itself the gateway. */
  | { readonly kind: "connected" }
  /** Behind a router: routes to it go via `via`. */
  | { readonly kind: "gateway"; readonly via: string }
  /** No route to it: routes through it cannot be programmed. */
  | { readonly kind: "unresolved"; readonly reason: string };

/** The route-side model: the last value of every keyed update. Mutated only by {@link applyRouteSideUpdate}. */
export interface RouteState {
  /** Routes by canonical dst. */
  readonly routes: Map<string, RouteUpdate>;
  /** VTEPs by node. */
  readonly vteps: Map<string, VtepUpdate>;
  /** Pools by canonical CIDR. */
  readonly pools: Map<string, PoolUpdate & { readonly parsed: IpCidr }>;
  /** Hosts by node. */
  readonly hosts: Map<string, HostUpdate>;
}

/** An empty {@link RouteState}. */
export function createRouteState(): RouteState {
  return { routes: new Map(), vteps: new Map(), pools: new Map(), hosts: new Map() };
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function invalid(message: string, details: Record<string, unknown>): DataplaneError {
  return new DataplaneError(DataplaneErrorCode.InvalidUpdate, message, { details });
}

function requireNode(node: unknown, u: RouteSideUpdate): string {
  if (typeof node !== "string" || node.length === 0 || node.length > 253) {
    throw invalid("update needs a node name", { kind: u.kind });
  }
  return node;
}

/**
 * Validates one route-side update and returns its normalised form (canonical CIDRs and addresses,
 * lower-case MACs). Throws `invalid-update` with the offending field in `details`.
 */
export function normalizeRouteSideUpdate(u: RouteSideUpdate): RouteSideUpdate {
  switch (u.kind) {
    case "route-update": {
      const dst = cidrOrThrow(u.dst).text;
      if (u.type === "remote-block") {
        const nodes = u.nodes ?? [];
        const nextHops = normalizeNextHops(u.nextHops, dst);
        if (nodes.length === 0 && nextHops.length === 0) {
          throw invalid("remote-block route needs nodes or next hops", { dst });
        }
        for (const n of nodes) requireNode(n, u);
        return {
          kind: u.kind,
          dst,
          type: u.type,
          ...(nodes.length > 0 ? { nodes: [...nodes] } : {}),
          ...(nextHops.length > 0 ? { nextHops } : {}),
        };
      }
      if (u.type === "local-block") return { kind: u.kind, dst, type: u.type };
      if (u.type === "local-workload") {
        if (u.ifname === undefined || !isValidInterfaceName(u.ifname)) {
          throw invalid("local-workload route needs a valid ifname", { dst, ifname: u.ifname });
        }
        return { kind: u.kind, dst, type: u.type, ifname: u.ifname };
      }
      throw invalid("unknown route type", { dst, type: (u as { type?: unknown }).type });
    }
    case "route-remove":
      return { kind: u.kind, dst: cidrOrThrow(u.dst).text };
    case "vtep-update": {
      const mac = typeof u.mac === "string" ? u.mac.toLowerCase() : "";
      if (!MAC_RE.test(mac)) throw invalid("invalid VTEP MAC", { node: u.node, mac: u.mac });
      if (ipVersion(u.tunnelAddress) !== 4 || ipVersion(u.underlayAddress) !== 4) {
        throw invalid("VTEP addresses must be IPv4", { node: u.node });
      }
      return {
        kind: u.kind,
        node: requireNode(u.node, u),
        mac,
        tunnelAddress: canonicalIpOrThrow(u.tunnelAddress),
        underlayAddress: canonicalIpOrThrow(u.underlayAddress),
      };
    }
    case "vtep-remove":
    case "host-remove":
      return { kind: u.kind, node: requireNode(u.node, u) };
    case "pool-update": {
      if (!["none", "vxlan", "ipip"].includes(u.encapsulation)) {
        throw invalid("unknown encapsulation", { cidr: u.cidr, encapsulation: u.encapsulation });
      }
      return {
        kind: u.kind,
        cidr: cidrOrThrow(u.cidr).text,
        encapsulation: u.encapsulation,
        crossSubnet: u.crossSubnet === true,
        natOutgoing: u.natOutgoing === true,
      };
    }
    case "pool-remove":
      return { kind: u.kind, cidr: cidrOrThrow(u.cidr).text };
    case "host-update": {
      if (!Array.isArray(u.addresses)) throw invalid("host addresses must be a list", { node: u.node });
      const addresses = u.addresses.map((a) => interfaceAddressText(cidrOrThrow(a, "mask")));
      return { kind: u.kind, node: requireNode(u.node, u), addresses };
    }
    case "in-sync":
      return { kind: "in-sync" };
    default:
      throw invalid("unknown update kind", { kind: (u as { kind?: unknown }).kind });
  }
}

/** Validates resolved next hops (canonical `via`, a known encapsulation, an optional node name). */
function normalizeNextHops(hops: unknown, dst: string): RouteNextHop[] {
  if (hops === undefined) return [];
  if (!Array.isArray(hops)) throw invalid("next hops must be a list", { dst });
  return hops.map((h: Partial<RouteNextHop> | null, i) => {
    const encapsulation = h?.encapsulation;
    if (encapsulation !== "none" && encapsulation !== "vxlan" && encapsulation !== "ipip") {
      throw invalid("unknown next hop encapsulation", { dst, hop: i, encapsulation });
    }
    if (h?.node !== undefined && (typeof h.node !== "string" || h.node.length === 0 || h.node.length > 253)) {
      throw invalid("next hop node must be a node name", { dst, hop: i, node: h.node });
    }
    const via = canonicalIpOrThrow(h?.via as string);
    return { via, encapsulation, ...(h?.node === undefined ? {} : { node: h.node }) };
  });
}

/** Applies one normalised update to `state`. */
export function applyRouteSideUpdate(state: RouteState, u: RouteSideUpdate): void {
  switch (u.kind) {
    case "route-update":
      state.routes.set(u.dst, u);
      return;
    case "route-remove":
      state.routes.delete(u.dst);
      return;
    case "vtep-update":
      state.vteps.set(u.node, u);
      return;
    case "vtep-remove":
      state.vteps.delete(u.node);
      return;
    case "pool-update":
      state.pools.set(u.cidr, { ...u, parsed: cidrOrThrow(u.cidr) });
      return;
    case "pool-remove":
      state.pools.delete(u.cidr);
      return;
    case "host-update":
      state.hosts.set(u.node, u);
      return;
    case "host-remove":
      state.hosts.delete(u.node);
      return;
    case "in-sync":
      return;
  }
}

function compareHop(a: NextHop, b: NextHop): number {
  const ka = `${a.via ?? ""}|${a.dev ?? ""}`;
  const kb = `${b.via ?? ""}|${b.dev ?? ""}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Sorts next hops into the canonical order used by {@link ProgrammedRoute}. */
export function sortNextHops(hops: readonly NextHop[]): NextHop[] {
  return [...hops].sort(compareHop);
}

/** Stable comparison key of a {@link ProgrammedRoute}. */
export function routeKey(r: ProgrammedRoute): string {
  const hops = r.nextHops.map((h) => `${h.via ?? "-"}@${h.dev ?? "-"}${h.onlink ? "!" : ""}`).join(",");
  return `${r.type} ${r.dst} ${hops}`;
}

function firstAddress(host: HostUpdate | undefined, family: 4 | 6): string | undefined {
  const a = host?.addresses.find((x) => ipVersion(x.split("/")[0] ?? "") === family);
  return a?.split("/")[0];
}

function sameSubnet(local: HostUpdate | undefined, remoteIp: string): boolean {
  if (local === undefined) return false;
  const remote = cidrOrThrow(remoteIp);
  return local.addresses.some((a) => cidrContainsCidr(cidrOrThrow(a, "mask"), remote));
}

function poolFor(state: RouteState, dst: IpCidr): (PoolUpdate & { parsed: IpCidr }) | undefined {
  let best: (PoolUpdate & { parsed: IpCidr }) | undefined;
  for (const p of state.pools.values()) {
    if (
      cidrContainsCidr(p.parsed, dst) &&
      (best === undefined || p.parsed.prefixLength > best.parsed.prefixLength)
    )
      best = p;
  }
  return best;
}

/**
 * Computes the desired routes, VXLAN device, neighbours and FDB entries from `state`. Pure: the same
 * state always gives the same plan, which is what lets reconciliation compare it with the kernel.
 */
export function planRoutes(
  state: RouteState,
  options: RoutePlanOptions,
  incremental?: { readonly prev: RoutePlan; readonly dsts: Iterable<string> },
): RoutePlan {
  // (With `incremental`, `prev` is consumed: its route map becomes the new plan's.)
  if (incremental !== undefined) {
    // Only routes changed: hosts, VTEPs and pools (which every route depends on) are as in `prev`, whose
    // route map is taken over (not copied: 10k entries per batch would dominate a one-endpoint change).
    const routes = incremental.prev.routes as Map<string, ProgrammedRoute>;
    const warnings: string[] = [];
    const unresolved = new Map(incremental.prev.unresolved ?? []);
    for (const dst of incremental.dsts) {
      routes.delete(dst);
      unresolved.delete(dst);
      const r = state.routes.get(dst);
      if (r === undefined) continue;
      const planned = planOne(state, options, r, warnings, unresolved);
      if (planned !== undefined) routes.set(dst, planned);
    }
    return { ...incremental.prev, routes, warnings, unresolved };
  }
  const warnings: string[] = [];
  const unresolved = new Map<string, string>();
  const routes = new Map<string, ProgrammedRoute>();
  for (const r of state.routes.values()) {
    const planned = planOne(state, options, r, warnings, unresolved);
    if (planned !== undefined) routes.set(r.dst, planned);
  }
  const own = state.vteps.get(options.nodeName);
  const vxlan: VxlanDeviceSpec | undefined =
    own === undefined
      ? undefined
      : {
          name: options.vxlanDevice,
          vni: options.vxlanVni,
          port: options.vxlanPort,
          mtu: options.vxlanMtu,
          address: own.tunnelAddress,
          mac: own.mac,
          local: own.underlayAddress,
        };
  const neighbors: VtepNeighbor[] = [];
  const fdb: VtepFdb[] = [];
  if (vxlan !== undefined) {
    for (const v of [...state.vteps.values()].sort((a, b) => (a.node < b.node ? -1 : 1))) {
      if (v.node === options.nodeName) continue;
      neighbors.push({ address: v.tunnelAddress, mac: v.mac });
      fdb.push({ mac: v.mac, dst: v.underlayAddress });
    }
  }
  return { routes, vxlan, neighbors, fdb, warnings, unresolved };
}

/**
 * The flat next-hop addresses the routes `dsts` (default: all) would be programmed through, before
 * underlay resolution: what a driver asks the kernel about (`ip route get`) to fill
 * {@link RoutePlanOptions.underlay}.
 */
export function flatNextHopAddresses(
  state: RouteState,
  options: RoutePlanOptions,
  dsts?: Iterable<string>,
): Set<string> {
  const out = new Set<string>();
  const ignored: string[] = [];
  const visit = (r: RouteUpdate | undefined) => {
    if (r === undefined || r.type !== "remote-block") return;
    const dst = cidrOrThrow(r.dst);
    const hops =
      r.nextHops !== undefined && r.nextHops.length > 0
        ? r.nextHops
        : nodeHops(state, options, r, dst, ignored);
    for (const h of hops) {
      if (h.encapsulation === "none" && ipVersion(h.via) === dst.version) out.add(h.via);
    }
  };
  if (dsts === undefined) for (const r of state.routes.values()) visit(r);
  else for (const d of dsts) visit(state.routes.get(d));
  return out;
}

function planOne(
  state: RouteState,
  options: RoutePlanOptions,
  r: RouteUpdate,
  warnings: string[],
  unresolved: Map<string, string>,
): ProgrammedRoute | undefined {
  if (r.type === "local-block") {
    return { dst: r.dst, type: "blackhole", nextHops: [] };
  }
  if (r.type === "local-workload") {
    return { dst: r.dst, type: "unicast", nextHops: [{ dev: r.ifname, onlink: false }] };
  }
  const dst = cidrOrThrow(r.dst);
  // Hops resolved upstream (e.g. by @margay/routing) are programmed as given; otherwise the nodes are
  // resolved here. Either way only the devices are ours.
  const resolved =
    r.nextHops !== undefined && r.nextHops.length > 0
      ? r.nextHops
      : nodeHops(state, options, r, dst, warnings);
  const hops: NextHop[] = [];
  for (const h of resolved) {
    if (ipVersion(h.via) !== dst.version) {
      warnings.push(`route ${r.dst}: next hop ${h.via} is not IPv${dst.version}`);
    } else if (h.encapsulation === "none") {
      const path = options.underlay?.get(h.via);
      if (path?.kind === "unresolved") {
        const why = `next hop ${h.via}${h.node === undefined ? "" : ` (node ${h.node})`} is unreachable: ${path.reason}`;
        warnings.push(`route ${r.dst}: ${why}`);
        unresolved.set(r.dst, why);
      } else {
        const via = path?.kind === "gateway" ? path.via : h.via;
        // Two nodes behind one router are one next hop, not two identical ones.
        if (!hops.some((x) => x.via === via && x.dev === undefined)) hops.push({ via, onlink: false });
      }
    } else if (dst.version !== 4) {
      warnings.push(`route ${r.dst}: ${h.encapsulation === "vxlan" ? "VXLAN" : "IPIP"} is IPv4 only here`);
    } else if (h.encapsulation === "vxlan") {
      hops.push({ via: h.via, dev: options.vxlanDevice, onlink: true });
    } else if (!options.ipipSupported) {
      warnings.push(`route ${r.dst}: IPIP is not supported by this kernel (no ipip module)`);
    } else {
      hops.push({ via: h.via, dev: options.ipipDevice, onlink: true });
    }
  }
  return hops.length > 0 ? { dst: r.dst, type: "unicast", nextHops: sortNextHops(hops) } : undefined;
}

/** The next hops of a route naming nodes: each node's address (VTEP for VXLAN), the pool's encapsulation. */
function nodeHops(
  state: RouteState,
  options: RoutePlanOptions,
  r: RouteUpdate,
  dst: IpCidr,
  warnings: string[],
): RouteNextHop[] {
  const local = state.hosts.get(options.nodeName);
  const pool = poolFor(state, dst);
  const out: RouteNextHop[] = [];
  for (const node of r.nodes ?? []) {
    const nodeIp = firstAddress(state.hosts.get(node), dst.version);
    if (nodeIp === undefined) {
      warnings.push(`route ${r.dst}: no IPv${dst.version} address known for node ${node}`);
      continue;
    }
    let encapsulation: Encapsulation = pool?.encapsulation ?? "none";
    if (encapsulation !== "none" && pool?.crossSubnet === true && sameSubnet(local, nodeIp))
      encapsulation = "none";
    let via = nodeIp;
    // IPv6 VXLAN is refused by the caller; only an IPv4 route needs the node's VTEP.
    if (encapsulation === "vxlan" && dst.version === 4) {
      const vtep = state.vteps.get(node);
      if (vtep === undefined) {
        warnings.push(`route ${r.dst}: no VTEP known for node ${node}`);
        continue;
      }
      via = vtep.tunnelAddress;
    }
    out.push({ via, encapsulation, node });
  }
  return out;
}
