/**
 * The route calculator: pools, nodes, IPAM blocks and affinities, local endpoints and BGP-learned routes
 * in; the route side of the dataplane update stream out, as diffs. Pure: no I/O, no clock.
 *
 * Semantics follow Calico's Felix (`l3_route_resolver.go`, `route_generator`, `vxlan_resolver`) and its
 * BIRD templates:
 * - a block affine to a node routes to that node; a block affine to this node is a blackhole;
 * - an allocation in a block whose `secondary.node` is not the block's node ("non-affine", a borrowed
 *   address) is a host route to the node it was allocated to (none for this node: its endpoint route
 *   covers it);
 * - a pool's `vxlanMode` / `ipipMode` picks the encapsulation; `CrossSubnet` encapsulates only when the
 *   remote address is outside every subnet of this node's underlay addresses; IPIP is IPv4 only;
 * - routes learned over BGP carry IP next hops: a next hop that is a node's underlay address is treated
 *   as that node; otherwise the containing pool's IPIP mode still applies (BIRD's `krt_tunnel`).
 *
 * When several inputs name one destination the most specific knowledge wins: a local endpoint, then a
 * local block, then a borrowed address, then a remote block, then block affinities (only while no block
 * object exists for the CIDR), then learned routes (several sources of one prefix form ECMP).
 *
 * @packageDocumentation
 */
import {
  type IpCidr,
  type IpVersion,
  cidrContains,
  cidrContainsCidr,
  cidrSize,
  ipAt,
  isValidInterfaceName,
  parseCidr,
  parseIp,
} from "@margay/api";
import type {
  Encapsulation,
  HostUpdate,
  PoolUpdate,
  RouteNextHop,
  RouteSideUpdate,
  RouteUpdate,
  VtepUpdate,
} from "@margay/dataplane-contract";
import { RoutingError, RoutingErrorCode } from "./errors.js";
import type {
  AffinityInput,
  BlockInput,
  EndpointInput,
  NatOutgoing,
  NodeInput,
  PoolInput,
  RoutingChange,
  UnresolvedReason,
  UnresolvedRoute,
} from "./types.js";

/** The route-side updates the calculator emits (everything of the route side but `in-sync`). */
export type RoutingUpdate = Exclude<RouteSideUpdate, { readonly kind: "in-sync" }>;

/** Options of {@link createRouteCalculator}. */
export interface RouteCalculatorOptions {
  /** This host's node name: its blocks are blackholes, its endpoints get device routes. */
  readonly nodeName: string;
}

/** Incremental route calculation for one host. */
export interface RouteCalculator {
  /**
   * Applies one change and returns what changed in the output, in the stream's order: pool, host and
   * VTEP updates, route updates, then route, VTEP, host and pool removals; by key within each. A change
   * that changes no output returns `[]`.
   *
   * @throws {@link RoutingError} `invalid-change` for a malformed change; the calculator is unchanged.
   */
  apply(change: RoutingChange): RoutingUpdate[];
  /**
   * Applies several changes and returns one coalesced diff (each key at most once). All changes are
   * validated first: if one is malformed, none is applied.
   *
   * @throws {@link RoutingError} `invalid-change`.
   */
  applyAll(changes: Iterable<RoutingChange>): RoutingUpdate[];
  /** The whole output as updates, in the order of {@link RouteCalculator.apply}. */
  snapshot(): RoutingUpdate[];
  /** Destinations or next hops the inputs name but that cannot be routed yet, and why; sorted by dst. */
  unresolved(): UnresolvedRoute[];
  /** The masquerade data of the pools (`natOutgoing`). */
  natOutgoing(): NatOutgoing;
}

// ---- normalised inputs ----

interface Address {
  readonly ip: string;
  /** The address with its prefix (the subnet CrossSubnet compares with). */
  readonly subnet: IpCidr;
}

interface NodeState {
  readonly v4: Address | undefined;
  readonly v6: Address | undefined;
  readonly vtep: { readonly address: string; readonly mac: string } | undefined;
}

interface PoolState {
  readonly cidr: IpCidr;
  readonly encapsulation: Encapsulation;
  readonly crossSubnet: boolean;
  readonly natOutgoing: boolean;
}

/** What one input says about one destination. Lower rank wins. */
type Candidate =
  | { readonly rank: 0; readonly type: "local-workload"; readonly ifname: string }
  | { readonly rank: 1 | 4; readonly type: "local-block" }
  | { readonly rank: 2 | 3 | 5; readonly type: "remote"; readonly node: string }
  | { readonly rank: 6; readonly type: "learned"; readonly hops: readonly string[] };

type Normalized =
  | { readonly kind: "pool"; readonly name: string; readonly pool: PoolState | null }
  | { readonly kind: "node"; readonly name: string; readonly node: NodeState | null }
  | { readonly kind: "block"; readonly cidr: string; readonly dsts: Map<string, Candidate> | null }
  | {
      readonly kind: "affinity";
      readonly name: string;
      readonly affinity: { readonly cidr: string; readonly candidate: Candidate | undefined } | null;
    }
  | { readonly kind: "endpoint"; readonly key: string; readonly dsts: Map<string, Candidate> | null }
  | {
      readonly kind: "learned";
      readonly key: string;
      readonly prefix: string;
      readonly hops: string[] | null;
    };

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const MODES: ReadonlySet<unknown> = new Set([undefined, "Never", "Always", "CrossSubnet"]);

function invalid(
  kind: string,
  field: string,
  value: unknown,
  message: string,
  cause?: unknown,
): RoutingError {
  return new RoutingError(
    RoutingErrorCode.InvalidChange,
    `${kind} change: ${message}`,
    { kind, field, value },
    cause === undefined ? undefined : { cause },
  );
}

function name(kind: string, field: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0)
    throw invalid(kind, field, v, `${field} must be a non-empty string`);
  return v;
}

function cidrOf(kind: string, field: string, v: unknown): IpCidr {
  try {
    return parseCidr(v as string);
  } catch (e) {
    throw invalid(kind, field, v, `${field} is not a CIDR`, e);
  }
}

function ipOf(kind: string, field: string, v: unknown): string {
  try {
    return parseIp(v as string).text;
  } catch (e) {
    throw invalid(kind, field, v, `${field} is not an IP address`, e);
  }
}

function normalizePool(p: PoolInput): PoolState {
  const cidr = cidrOf("pool", "pool.cidr", p.cidr);
  if (!MODES.has(p.vxlanMode)) throw invalid("pool", "pool.vxlanMode", p.vxlanMode, "unknown vxlanMode");
  if (!MODES.has(p.ipipMode)) throw invalid("pool", "pool.ipipMode", p.ipipMode, "unknown ipipMode");
  const on = (m: string | undefined) => m === "Always" || m === "CrossSubnet";
  // VXLAN first when both are set (the api rejects that; a vendor's datastore may not). IPIP is IPv4 only.
  const [encapsulation, mode]: [Encapsulation, string | undefined] = on(p.vxlanMode)
    ? ["vxlan", p.vxlanMode]
    : on(p.ipipMode) && cidr.version === 4
      ? ["ipip", p.ipipMode]
      : ["none", undefined];
  return { cidr, encapsulation, crossSubnet: mode === "CrossSubnet", natOutgoing: p.natOutgoing === true };
}

function nodeAddress(n: NodeInput, version: IpVersion): Address | undefined {
  const bgp = version === 4 ? n.bgp?.ipv4Address : n.bgp?.ipv6Address;
  const field = version === 4 ? "node.bgp.ipv4Address" : "node.bgp.ipv6Address";
  const pick = (text: string, f: string): Address | undefined => {
    const c = cidrOf("node", f, text);
    return c.version === version ? { ip: c.addressText, subnet: c } : undefined;
  };
  if (bgp !== undefined) {
    const a = pick(bgp, field);
    if (a === undefined) throw invalid("node", field, bgp, `${field} is not an IPv${version} address`);
    return a;
  }
  const list = n.addresses ?? [];
  if (!Array.isArray(list)) throw invalid("node", "node.addresses", list, "addresses must be a list");
  for (const type of ["CalicoNodeIP", "InternalIP"]) {
    for (const [i, a] of list.entries()) {
      if (a?.type !== type) continue;
      const found = pick(a.address, `node.addresses[${i}].address`);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function normalizeNode(n: NodeInput): NodeState {
  const v4 = nodeAddress(n, 4);
  const v6 = nodeAddress(n, 6);
  let vtep: NodeState["vtep"];
  if (n.ipv4VXLANTunnelAddr !== undefined || n.vxlanTunnelMACAddr !== undefined) {
    const address = ipOf("node", "node.ipv4VXLANTunnelAddr", n.ipv4VXLANTunnelAddr);
    if (!address.includes(".")) {
      throw invalid("node", "node.ipv4VXLANTunnelAddr", n.ipv4VXLANTunnelAddr, "must be IPv4");
    }
    const mac = typeof n.vxlanTunnelMACAddr === "string" ? n.vxlanTunnelMACAddr.toLowerCase() : "";
    if (!MAC_RE.test(mac))
      throw invalid("node", "node.vxlanTunnelMACAddr", n.vxlanTunnelMACAddr, "not a MAC");
    vtep = { address, mac };
  }
  return { v4, v6, vtep };
}

function normalizeBlock(cidrText: string, b: BlockInput, self: string): Map<string, Candidate> {
  const cidr = cidrOf("block", "cidr", cidrText);
  if (cidr.hostBitsSet) throw invalid("block", "cidr", cidrText, "block CIDR has host bits set");
  if (b.affinity !== null && typeof b.affinity !== "string") {
    throw invalid("block", "block.affinity", b.affinity, "affinity must be a string or null");
  }
  if (!Array.isArray(b.allocations) || BigInt(b.allocations.length) > cidrSize(cidr)) {
    throw invalid("block", "block.allocations", b.allocations?.length, "allocations must fit the block");
  }
  if (!Array.isArray(b.attributes))
    throw invalid("block", "block.attributes", b.attributes, "must be a list");
  const host = b.affinity?.startsWith("host:") === true ? b.affinity.slice(5) : "";
  const out = new Map<string, Candidate>();
  b.allocations.forEach((a, ordinal) => {
    if (a === null) return;
    const attr = Number.isInteger(a) ? b.attributes[a] : undefined;
    if (attr === undefined) {
      throw invalid("block", `block.allocations[${ordinal}]`, a, "allocation names no attribute entry");
    }
    const node = attr.secondary?.node;
    // Calico's NonAffineAllocations: an address held by the block's own node needs no host route; one
    // without a node cannot be routed; one held by this node is covered by its endpoint's route.
    if (node === undefined || node === "" || (host !== "" && node === host) || node === self) return;
    const ip = ipAt(cidr, BigInt(ordinal));
    if (ip !== undefined)
      out.set(`${ip.text}/${ip.version === 4 ? 32 : 128}`, { rank: 2, type: "remote", node });
  });
  if (host !== "") {
    out.set(
      cidr.text,
      host === self ? { rank: 1, type: "local-block" } : { rank: 3, type: "remote", node: host },
    );
  }
  return out;
}

function normalizeEndpoint(e: EndpointInput, self: string): Map<string, Candidate> {
  const out = new Map<string, Candidate>();
  if (e.node !== undefined && e.node !== self) return out;
  if (!isValidInterfaceName(e.interfaceName)) {
    throw invalid("endpoint", "endpoint.interfaceName", e.interfaceName, "not a valid interface name");
  }
  const nets = e.ipNetworks ?? [];
  if (!Array.isArray(nets)) throw invalid("endpoint", "endpoint.ipNetworks", nets, "must be a list");
  for (const [i, n] of nets.entries()) {
    const c = cidrOf("endpoint", `endpoint.ipNetworks[${i}]`, n);
    if (c.prefixLength !== (c.version === 4 ? 32 : 128)) {
      throw invalid("endpoint", `endpoint.ipNetworks[${i}]`, n, "an endpoint address must be a /32 or /128");
    }
    out.set(c.text, { rank: 0, type: "local-workload", ifname: e.interfaceName });
  }
  return out;
}

function normalize(change: RoutingChange, self: string): Normalized {
  if (typeof change !== "object" || change === null)
    throw invalid("unknown", "kind", change, "not an object");
  switch (change.kind) {
    case "pool":
      return {
        kind: "pool",
        name: name("pool", "name", change.name),
        pool: change.pool === null ? null : normalizePool(change.pool),
      };
    case "node":
      return {
        kind: "node",
        name: name("node", "name", change.name),
        node: change.node === null ? null : normalizeNode(change.node),
      };
    case "block": {
      const cidr = cidrOf("block", "cidr", change.cidr).text;
      return {
        kind: "block",
        cidr,
        dsts: change.block === null ? null : normalizeBlock(change.cidr, change.block, self),
      };
    }
    case "affinity": {
      const n = name("affinity", "name", change.name);
      const a: AffinityInput | null = change.affinity;
      if (a === null) return { kind: "affinity", name: n, affinity: null };
      const node = name("affinity", "affinity.node", a.node);
      const cidr = cidrOf("affinity", "affinity.cidr", a.cidr).text;
      const counts = a.state === "confirmed" && a.deleted !== true;
      const candidate: Candidate | undefined = !counts
        ? undefined
        : node === self
          ? { rank: 4, type: "local-block" }
          : { rank: 5, type: "remote", node };
      return { kind: "affinity", name: n, affinity: { cidr, candidate } };
    }
    case "endpoint":
      return {
        kind: "endpoint",
        key: name("endpoint", "key", change.key),
        dsts: change.endpoint === null ? null : normalizeEndpoint(change.endpoint, self),
      };
    case "learned": {
      const source = name("learned", "source", change.source);
      const prefix = cidrOf("learned", "prefix", change.prefix).text;
      let hops: string[] | null = null;
      if (change.nextHops !== null) {
        if (!Array.isArray(change.nextHops) || change.nextHops.length === 0) {
          throw invalid("learned", "nextHops", change.nextHops, "a learned route needs next hops (or null)");
        }
        hops = [...new Set(change.nextHops.map((h, i) => ipOf("learned", `nextHops[${i}]`, h)))].sort();
      }
      return { kind: "learned", key: `${source}\u0000${prefix}`, prefix, hops };
    }
    default:
      throw invalid(
        String((change as { kind?: unknown }).kind),
        "kind",
        (change as { kind?: unknown }).kind,
        "unknown kind",
      );
  }
}

// ---- output ordering ----

const PHASE: Readonly<Record<string, number>> = {
  "pool-update": 0,
  "host-update": 1,
  "vtep-update": 2,
  "route-update": 3,
  "route-remove": 4,
  "vtep-remove": 5,
  "host-remove": 6,
  "pool-remove": 7,
};

function outKey(u: RoutingUpdate): string {
  switch (u.kind) {
    case "route-update":
    case "route-remove":
      return `route\u0000${u.dst}`;
    case "pool-update":
    case "pool-remove":
      return `pool\u0000${u.cidr}`;
    case "host-update":
    case "host-remove":
      return `host\u0000${u.node}`;
    case "vtep-update":
    case "vtep-remove":
      return `vtep\u0000${u.node}`;
  }
}

function removal(key: string): RoutingUpdate {
  const [family, id = ""] = key.split("\u0000");
  switch (family) {
    case "route":
      return { kind: "route-remove", dst: id };
    case "pool":
      return { kind: "pool-remove", cidr: id };
    case "host":
      return { kind: "host-remove", node: id };
    default:
      return { kind: "vtep-remove", node: id };
  }
}

function sortUpdates(updates: RoutingUpdate[]): RoutingUpdate[] {
  const keyed = updates.map((u) => ({ u, p: PHASE[u.kind] ?? 9, k: outKey(u) }));
  keyed.sort((a, b) => a.p - b.p || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.u);
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Creates a route calculator for the host `nodeName`.
 *
 * @throws {@link RoutingError} `invalid-options` when `nodeName` is empty.
 */
export function createRouteCalculator(options: RouteCalculatorOptions): RouteCalculator {
  const self = options?.nodeName;
  if (typeof self !== "string" || self.length === 0) {
    throw new RoutingError(RoutingErrorCode.InvalidOptions, "nodeName must be a non-empty string", {
      field: "nodeName",
      value: self,
    });
  }

  const pools = new Map<string, PoolState>();
  /** `pools` in name order; dropped when a pool changes (every route resolution reads it). */
  let poolList: PoolState[] | undefined;
  const nodes = new Map<string, NodeState>();
  /** Underlay address → nodes claiming it (a learned next hop equal to one is that node). */
  const nodeByIp = new Map<string, Set<string>>();
  const blockDsts = new Map<string, ReadonlySet<string>>();
  /** CIDRs with a block object (even one that yields no route): affinities of those CIDRs do not count. */
  const blocks = new Set<string>();
  const affinities = new Map<string, string>();
  const endpointDsts = new Map<string, ReadonlySet<string>>();
  /** dst → source key → candidate. */
  const candidates = new Map<string, Map<string, Candidate>>();
  /** node → dsts with a candidate naming that node (invalidated when the node changes). */
  const dstsByNode = new Map<string, Set<string>>();
  /**
   * Learned next hop → dst → how many of the dst's learned candidates name it. A node change re-resolves
   * the dsts whose next hops are among its old or new addresses (a next hop equal to one is that node).
   */
  const learnedByHop = new Map<string, Map<string, number>>();
  const output = new Map<string, RoutingUpdate>();
  const outputJson = new Map<string, string>();
  const unresolvedByDst = new Map<string, UnresolvedRoute[]>();

  function setCandidate(dst: string, source: string, c: Candidate | undefined, dirty: Set<string>) {
    dirty.add(dst);
    let m = candidates.get(dst);
    const old = m?.get(source);
    if (old?.type === "remote") dstsByNode.get(old.node)?.delete(dst);
    countHops(dst, old, -1);
    countHops(dst, c, 1);
    if (c === undefined) {
      m?.delete(source);
      if (m?.size === 0) candidates.delete(dst);
    } else {
      if (m === undefined) candidates.set(dst, (m = new Map()));
      m.set(source, c);
      if (c.type === "remote") {
        let s = dstsByNode.get(c.node);
        if (s === undefined) dstsByNode.set(c.node, (s = new Set()));
        s.add(dst);
      }
    }
  }

  function countHops(dst: string, c: Candidate | undefined, delta: 1 | -1) {
    if (c?.type !== "learned") return;
    for (const ip of c.hops) {
      let m = learnedByHop.get(ip);
      if (m === undefined) learnedByHop.set(ip, (m = new Map()));
      const count = (m.get(dst) ?? 0) + delta;
      if (count > 0) m.set(dst, count);
      else if (m.delete(dst) && m.size === 0) learnedByHop.delete(ip);
    }
  }

  function replaceSource(
    source: string,
    index: Map<string, ReadonlySet<string>>,
    key: string,
    next: Map<string, Candidate> | null,
    dirty: Set<string>,
  ) {
    for (const dst of index.get(key) ?? []) if (!next?.has(dst)) setCandidate(dst, source, undefined, dirty);
    for (const [dst, c] of next ?? []) setCandidate(dst, source, c, dirty);
    if (next === null || next.size === 0) index.delete(key);
    else index.set(key, new Set(next.keys()));
  }

  function indexNodeIps(nodeName: string, n: NodeState | undefined, add: boolean) {
    for (const a of [n?.v4, n?.v6]) {
      if (a === undefined) continue;
      let s = nodeByIp.get(a.ip);
      if (add) {
        if (s === undefined) nodeByIp.set(a.ip, (s = new Set()));
        s.add(nodeName);
      } else {
        s?.delete(nodeName);
        if (s?.size === 0) nodeByIp.delete(a.ip);
      }
    }
  }

  /** Mutates the inputs; returns the output keys to recompute. */
  function mutate(n: Normalized, dirtyDsts: Set<string>, dirtyKeys: Set<string>, all: { v: boolean }) {
    switch (n.kind) {
      case "pool": {
        const old = pools.get(n.name);
        if (old !== undefined) dirtyKeys.add(`pool\u0000${old.cidr.text}`);
        if (n.pool === null) pools.delete(n.name);
        else {
          pools.set(n.name, n.pool);
          dirtyKeys.add(`pool\u0000${n.pool.cidr.text}`);
        }
        poolList = undefined;
        all.v = true;
        return;
      }
      case "node": {
        const old = nodes.get(n.name);
        for (const a of [old?.v4, old?.v6, n.node?.v4, n.node?.v6]) {
          for (const d of (a === undefined ? undefined : learnedByHop.get(a.ip))?.keys() ?? [])
            dirtyDsts.add(d);
        }
        indexNodeIps(n.name, old, false);
        if (n.node === null) nodes.delete(n.name);
        else {
          nodes.set(n.name, n.node);
          indexNodeIps(n.name, n.node, true);
        }
        dirtyKeys.add(`host\u0000${n.name}`);
        dirtyKeys.add(`vtep\u0000${n.name}`);
        if (n.name === self) all.v = true;
        for (const d of dstsByNode.get(n.name) ?? []) dirtyDsts.add(d);
        return;
      }
      case "block":
        replaceSource(`block\u0000${n.cidr}`, blockDsts, n.cidr, n.dsts, dirtyDsts);
        if (n.dsts === null) blocks.delete(n.cidr);
        else blocks.add(n.cidr);
        // Affinity candidates for this CIDR count only while no block exists.
        dirtyDsts.add(n.cidr);
        return;
      case "affinity": {
        const source = `affinity\u0000${n.name}`;
        const oldCidr = affinities.get(n.name);
        if (oldCidr !== undefined) setCandidate(oldCidr, source, undefined, dirtyDsts);
        if (n.affinity === null) affinities.delete(n.name);
        else {
          affinities.set(n.name, n.affinity.cidr);
          setCandidate(n.affinity.cidr, source, n.affinity.candidate, dirtyDsts);
        }
        return;
      }
      case "endpoint":
        replaceSource(`endpoint\u0000${n.key}`, endpointDsts, n.key, n.dsts, dirtyDsts);
        return;
      case "learned": {
        const source = `learned\u0000${n.key}`;
        if (n.hops === null) {
          setCandidate(n.prefix, source, undefined, dirtyDsts);
        } else {
          setCandidate(n.prefix, source, { rank: 6, type: "learned", hops: n.hops }, dirtyDsts);
        }
        return;
      }
    }
  }

  // ---- resolution ----

  function poolFor(dst: IpCidr): PoolState | undefined {
    let best: PoolState | undefined;
    for (const p of poolsByName()) {
      if (
        cidrContainsCidr(p.cidr, dst) &&
        (best === undefined || p.cidr.prefixLength > best.cidr.prefixLength)
      ) {
        best = p;
      }
    }
    return best;
  }

  /** Pools in name order, so duplicates of one CIDR resolve the same way every time. */
  function poolsByName(): readonly PoolState[] {
    poolList ??= [...pools.entries()].sort(([a], [b]) => byText(a, b)).map(([, p]) => p);
    return poolList;
  }

  function sameSubnet(ip: string): boolean {
    const me = nodes.get(self);
    const addr = parseIp(ip);
    return [me?.v4, me?.v6].some((a) => a !== undefined && cidrContains(a.subnet, addr));
  }

  function encapTo(pool: PoolState | undefined, remoteIp: string | undefined): Encapsulation {
    const e = pool?.encapsulation ?? "none";
    if (e !== "none" && pool?.crossSubnet === true && remoteIp !== undefined && sameSubnet(remoteIp))
      return "none";
    return e;
  }

  function hopToNode(
    dst: IpCidr,
    node: string,
    miss: (r: UnresolvedReason) => void,
  ): RouteNextHop | undefined {
    const n = nodes.get(node);
    if (n === undefined) return void miss("unknown-node");
    const addr = dst.version === 4 ? n.v4 : n.v6;
    const encap = encapTo(poolFor(dst), addr?.ip);
    if (encap === "vxlan") {
      if (dst.version === 6) return void miss("ipv6-vxlan-unsupported");
      if (n.vtep === undefined || n.v4 === undefined) return void miss("no-vtep");
      // Without our own VTEP the dataplane has no VXLAN device to send through (Felix waits for it too).
      const me = nodes.get(self);
      if (me?.vtep === undefined || me.v4 === undefined) return void miss("no-local-vtep");
      return { via: n.vtep.address, encapsulation: "vxlan", node };
    }
    if (addr === undefined) return void miss("no-node-address");
    return { via: addr.ip, encapsulation: encap, node };
  }

  function resolve(dst: string): { route: RouteUpdate | undefined; misses: UnresolvedRoute[] } {
    const misses: UnresolvedRoute[] = [];
    const all = candidates.get(dst);
    const hasBlock = blocks.has(dst);
    const cands = [...(all ?? [])]
      .filter(([src]) => !(hasBlock && src.startsWith("affinity\u0000")))
      .sort(([a], [b]) => byText(a, b))
      .map(([, c]) => c);
    if (cands.length === 0) return { route: undefined, misses };
    const rank = Math.min(...cands.map((c) => c.rank));
    const best = cands.filter((c) => c.rank === rank);
    const first = best[0]!;
    if (first.type === "local-workload") {
      return { route: { kind: "route-update", dst, type: "local-workload", ifname: first.ifname }, misses };
    }
    if (first.type === "local-block")
      return { route: { kind: "route-update", dst, type: "local-block" }, misses };
    const parsed = parseCidr(dst);
    const hops = new Map<string, RouteNextHop>();
    const add = (h: RouteNextHop | undefined) => {
      if (h !== undefined) hops.set(`${h.via}\u0000${h.encapsulation}`, h);
    };
    if (first.type === "remote") {
      for (const node of new Set(best.map((c) => (c.type === "remote" ? c.node : "")))) {
        add(hopToNode(parsed, node, (reason) => misses.push({ dst, node, reason })));
      }
    } else {
      const me = nodes.get(self);
      const own = new Set([me?.v4?.ip, me?.v6?.ip]);
      const nextHops = new Set(best.flatMap((c) => (c.type === "learned" ? c.hops : [])));
      for (const ip of [...nextHops].sort(byText)) {
        // Our own announcement reflected back to us: routing it would loop.
        if (own.has(ip)) continue;
        if ((ip.includes(":") ? 6 : 4) !== parsed.version) {
          misses.push({ dst, nextHop: ip, reason: "learned-next-hop-family" });
          continue;
        }
        const owners = [...(nodeByIp.get(ip) ?? [])].sort(byText);
        if (owners[0] !== undefined) {
          const node = owners[0];
          add(hopToNode(parsed, node, (reason) => misses.push({ dst, node, nextHop: ip, reason })));
          continue;
        }
        const encap = encapTo(poolFor(parsed), ip);
        if (encap === "vxlan") misses.push({ dst, nextHop: ip, reason: "learned-vxlan-without-node" });
        else add({ via: ip, encapsulation: encap });
      }
    }
    if (hops.size === 0) return { route: undefined, misses };
    const sorted = [...hops.values()].sort(
      (a, b) => byText(a.via, b.via) || byText(a.encapsulation, b.encapsulation),
    );
    const routeNodes = [...new Set(sorted.flatMap((h) => (h.node === undefined ? [] : [h.node])))].sort(
      byText,
    );
    const route: RouteUpdate = {
      kind: "route-update",
      dst,
      type: "remote-block",
      ...(routeNodes.length > 0 ? { nodes: routeNodes } : {}),
      nextHops: sorted,
    };
    return { route, misses };
  }

  function computeKey(key: string): RoutingUpdate | undefined {
    const [family, id = ""] = key.split("\u0000");
    if (family === "route") {
      const { route, misses } = resolve(id);
      if (misses.length > 0) unresolvedByDst.set(id, misses);
      else unresolvedByDst.delete(id);
      return route;
    }
    if (family === "pool") {
      const p = poolsByName().find((x) => x.cidr.text === id);
      if (p === undefined) return undefined;
      const u: PoolUpdate = {
        kind: "pool-update",
        cidr: id,
        encapsulation: p.encapsulation,
        crossSubnet: p.crossSubnet,
        natOutgoing: p.natOutgoing,
      };
      return u;
    }
    const n = nodes.get(id);
    if (n === undefined) return undefined;
    if (family === "host") {
      const addresses = [n.v4, n.v6].flatMap((a) =>
        a === undefined ? [] : [`${a.ip}/${a.subnet.prefixLength}`],
      );
      if (addresses.length === 0) return undefined;
      const u: HostUpdate = { kind: "host-update", node: id, addresses };
      return u;
    }
    if (n.vtep === undefined || n.v4 === undefined) return undefined;
    const u: VtepUpdate = {
      kind: "vtep-update",
      node: id,
      tunnelAddress: n.vtep.address,
      mac: n.vtep.mac,
      underlayAddress: n.v4.ip,
    };
    return u;
  }

  function recompute(keys: Iterable<string>): RoutingUpdate[] {
    const diff: RoutingUpdate[] = [];
    for (const key of keys) {
      const next = computeKey(key);
      if (next === undefined) {
        if (output.has(key)) {
          output.delete(key);
          outputJson.delete(key);
          diff.push(removal(key));
        }
        continue;
      }
      const json = JSON.stringify(next);
      if (outputJson.get(key) === json) continue;
      output.set(key, next);
      outputJson.set(key, json);
      diff.push(next);
    }
    return sortUpdates(diff);
  }

  function applyAll(changes: Iterable<RoutingChange>): RoutingUpdate[] {
    const normalized = [...changes].map((c) => normalize(c, self));
    const dirtyDsts = new Set<string>();
    const dirtyKeys = new Set<string>();
    const all = { v: false };
    for (const n of normalized) mutate(n, dirtyDsts, dirtyKeys, all);
    // Every routed dst has a candidate (removing the last one marks the dst dirty, which drops its route).
    if (all.v) for (const dst of candidates.keys()) dirtyDsts.add(dst);
    for (const dst of dirtyDsts) dirtyKeys.add(`route\u0000${dst}`);
    return recompute(dirtyKeys);
  }

  return {
    apply: (change) => applyAll([change]),
    applyAll,
    snapshot: () => sortUpdates([...output.values()]),
    unresolved: () =>
      [...unresolvedByDst.entries()]
        .sort(([a], [b]) => byText(a, b))
        .flatMap(([, m]) => m)
        .map((m) => ({ ...m })),
    natOutgoing() {
      // One pool per CIDR, the first by name, as in the pool updates.
      const byCidr = new Map<string, PoolState>();
      for (const p of poolsByName()) if (!byCidr.has(p.cidr.text)) byCidr.set(p.cidr.text, p);
      const allPools = [...byCidr.keys()].sort(byText);
      return { masqueradePools: allPools.filter((c) => byCidr.get(c)?.natOutgoing === true), allPools };
    },
  };
}
