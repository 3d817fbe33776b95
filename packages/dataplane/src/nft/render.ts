import type {
  DirectionalTiers,
  FailsafePort,
  HostEndpointUpdate,
  PortRange,
  RenderedRule,
  WorkloadEndpointUpdate,
} from "@margay/dataplane-contract";
import { ipVersion } from "@margay/api";
import { cidrOrThrow, interfaceAddressText } from "../net.js";
import type { HeldIpSet, PolicyState } from "../policy-state.js";
import { nftNames } from "./names.js";

/** Packet-mark bits the generated chains use to carry a verdict back to the endpoint chain. */
export interface NftMarks {
  /** Set by a policy's `allow` rule. Default 0x10000. */
  readonly allow: number;
  /** Set by a policy's `pass` rule. Default 0x20000. */
  readonly pass: number;
}

/** Settings of the renderer. */
export interface NftRenderOptions {
  /** Table name (family `inet`). Default `margay`. */
  readonly table: string;
  /** Host-side workload interface prefixes; traffic on `<prefix>*` with no endpoint is dropped. */
  readonly workloadPrefixes: readonly string[];
  /** Mark bits. */
  readonly marks: NftMarks;
  /** What happens to traffic from a workload to the host itself after its egress policy. Default accept. */
  readonly endpointToHost: "accept" | "drop";
  /** Base chain priority (filter = 0). */
  readonly priority: number;
}

/** An nftables set as rendered. */
export interface NftSet {
  /** `type ...; flags ...;` */
  readonly decl: string;
  /** Elements, sorted, in nft syntax. */
  readonly elements: readonly string[];
}

/** The whole ruleset as comparable pieces: what {@link diffRuleset} works on. */
export interface NftRuleset {
  /** Named sets by name. */
  readonly sets: ReadonlyMap<string, NftSet>;
  /** Regular chains by name (rule lines). */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Verdict maps by name: key (quoted ifname) → verdict. */
  readonly maps: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /**
   * How many workload endpoints use each shared endpoint chain (`nftNames.workloadShared`); a chain
   * goes when its count does. Absent in a ruleset that has none.
   */
  readonly endpointChainRefs?: ReadonlyMap<string, number> | undefined;
}

/**
 * Verdict maps of the table (interface name → endpoint chain). Host endpoints have one pair per stage:
 * filter (`hep-in`/`hep-out`), untracked at raw priority (`hep-raw-in`/`hep-raw-out`), pre-DNAT
 * (`hep-prednat`, ingress only) and applyOnForward (`hep-fwd-in`/`hep-fwd-out`).
 */
export const NFT_MAPS = [
  "wl-from",
  "wl-to",
  "hep-in",
  "hep-out",
  "hep-raw-in",
  "hep-raw-out",
  "hep-prednat",
  "hep-fwd-in",
  "hep-fwd-out",
] as const;

/** Each host endpoint map with the dispatch chain that reads it and the direction it matches on. */
const HEP_DISPATCH = [
  { map: "hep-in", chain: "hep-in-dispatch", kw: "iifname" },
  { map: "hep-out", chain: "hep-out-dispatch", kw: "oifname" },
  { map: "hep-raw-in", chain: "hep-raw-in-dispatch", kw: "iifname" },
  { map: "hep-raw-out", chain: "hep-raw-out-dispatch", kw: "oifname" },
  { map: "hep-prednat", chain: "hep-prednat-dispatch", kw: "iifname" },
  { map: "hep-fwd-in", chain: "hep-fwd-in-dispatch", kw: "iifname" },
  { map: "hep-fwd-out", chain: "hep-fwd-out-dispatch", kw: "oifname" },
] as const;
type HepMap = (typeof HEP_DISPATCH)[number]["map"];

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

function portList(ports: readonly PortRange[]): string {
  return `{ ${ports.map((p) => (p.first === p.last ? String(p.first) : `${p.first}-${p.last}`)).join(", ")} }`;
}

function netsOf(list: readonly string[], family: 4 | 6): string[] {
  return list.filter((c) => ipVersion(c.split("/")[0] ?? "") === family);
}

const L4_WITH_PORTS = "meta l4proto { 6, 17, 132, 136 }";

interface Side {
  readonly dir: "s" | "d";
  readonly nets: readonly string[];
  readonly notNets: readonly string[];
  readonly sets: readonly string[];
  readonly notSets: readonly string[];
  readonly ports: readonly PortRange[];
  readonly notPorts: readonly PortRange[];
  readonly named: readonly string[];
  readonly notNamed: readonly string[];
}

/** The name of an `ip`/`net` IP set's nft set in one family (see {@link nftNames}'s `addrSet`). */
export type AddrSetNamer = (id: string, family: 4 | 6) => string;

const intervalSetName: AddrSetNamer = (id, family) => nftNames.addrSet(id, family);

/** Alternatives (OR) for one side; `undefined` if this side cannot match in `family`. */
function sideExprs(s: Side, family: 4 | 6, setName: AddrSetNamer): string[][] | undefined {
  const ipx = family === 4 ? "ip" : "ip6";
  const addr = `${ipx} ${s.dir}addr`;
  const port = `th ${s.dir}port`;
  const common: string[] = [];
  if (s.nets.length > 0) {
    const nets = netsOf(s.nets, family);
    if (nets.length === 0) return undefined;
    common.push(`${addr} { ${nets.join(", ")} }`);
  }
  const notNets = netsOf(s.notNets, family);
  if (notNets.length > 0) common.push(`${addr} != { ${notNets.join(", ")} }`);
  for (const id of s.sets) common.push(`${addr} @${setName(id, family)}`);
  for (const id of s.notSets) common.push(`${addr} != @${setName(id, family)}`);
  if (s.notPorts.length > 0) common.push(`${port} != ${portList(s.notPorts)}`);
  for (const id of s.notNamed)
    common.push(`${addr} . meta l4proto . ${port} != @${nftNames.portSet(id, family)}`);
  if (s.ports.length === 0 && s.named.length === 0) return [common];
  // Ports OR named ports: one alternative each.
  const alts: string[][] = [];
  if (s.ports.length > 0) alts.push([...common, `${port} ${portList(s.ports)}`]);
  for (const id of s.named)
    alts.push([...common, `${addr} . meta l4proto . ${port} @${nftNames.portSet(id, family)}`]);
  return alts;
}

function actionExpr(r: RenderedRule, marks: NftMarks): string {
  switch (r.action) {
    case "allow":
      return `counter meta mark set meta mark | ${hex(marks.allow)} return`;
    case "pass":
      return `counter meta mark set meta mark | ${hex(marks.pass)} return`;
    case "deny":
      return "counter drop";
    case "log":
      return `log prefix "margay ${r.ruleId.replace(/[^A-Za-z0-9_./:-]/g, "_").slice(0, 20)} "`;
  }
}

/**
 * nft rule lines (without `add rule`) for one rendered rule; several when families or OR-ed ports split it.
 * `setName` names the address sets it matches (default: the interval variant, as for a set not held).
 */
export function renderRule(
  r: RenderedRule,
  marks: NftMarks,
  setName: AddrSetNamer = intervalSetName,
): string[] {
  const out: string[] = [];
  const families: (4 | 6)[] = r.ipVersion !== undefined ? [r.ipVersion] : [4, 6];
  const usesPorts =
    r.srcPorts.length +
      r.dstPorts.length +
      r.srcNamedPortIpSetIds.length +
      r.dstNamedPortIpSetIds.length +
      r.notSrcPorts.length +
      r.notDstPorts.length +
      r.notSrcNamedPortIpSetIds.length +
      r.notDstNamedPortIpSetIds.length >
    0;
  for (const family of families) {
    const head: string[] = [`meta nfproto ${family === 4 ? "ipv4" : "ipv6"}`];
    if (r.protocol !== undefined) head.push(`meta l4proto ${r.protocol}`);
    else if (usesPorts) head.push(L4_WITH_PORTS);
    if (r.notProtocol !== undefined) head.push(`meta l4proto != ${r.notProtocol}`);
    const icmpKw = family === 4 ? "icmp" : "icmpv6";
    const icmpProto = family === 4 ? 1 : 58;
    if (r.icmp !== undefined) {
      if (r.protocol !== undefined && r.protocol !== icmpProto) continue;
      head.push(`${icmpKw} type ${r.icmp.type}`);
      if (r.icmp.code !== undefined) head.push(`${icmpKw} code ${r.icmp.code}`);
    }
    if (r.notIcmp !== undefined && (r.protocol === undefined || r.protocol === icmpProto)) {
      head.push(
        r.notIcmp.code === undefined
          ? `${icmpKw} type != ${r.notIcmp.type}`
          : `${icmpKw} type . ${icmpKw} code != ${r.notIcmp.type} . ${r.notIcmp.code}`,
      );
    }
    const src = sideExprs(
      {
        dir: "s",
        nets: r.srcNets,
        notNets: r.notSrcNets,
        sets: r.srcIpSetIds,
        notSets: r.notSrcIpSetIds,
        ports: r.srcPorts,
        notPorts: r.notSrcPorts,
        named: r.srcNamedPortIpSetIds,
        notNamed: r.notSrcNamedPortIpSetIds,
      },
      family,
      setName,
    );
    const dst = sideExprs(
      {
        dir: "d",
        nets: r.dstNets,
        notNets: r.notDstNets,
        sets: r.dstIpSetIds,
        notSets: r.notDstIpSetIds,
        ports: r.dstPorts,
        notPorts: r.notDstPorts,
        named: r.dstNamedPortIpSetIds,
        notNamed: r.notDstNamedPortIpSetIds,
      },
      family,
      setName,
    );
    if (src === undefined || dst === undefined) continue;
    for (const s of src) for (const d of dst) out.push([...head, ...s, ...d, actionExpr(r, marks)].join(" "));
  }
  return out;
}

/**
 * Rendered pieces keyed by the (immutable) update objects, so a batch re-renders only what it replaced.
 * One cache belongs to one set of render options.
 */
export interface NftRenderCache {
  /** Rules by rule list, with the address set names they were rendered with. */
  readonly rules: WeakMap<readonly RenderedRule[], { lines: string[]; deps: SetDep[] }>;
  /** Endpoint chains (rules and shared names) by endpoint update. */
  readonly endpoints: WeakMap<WorkloadEndpointUpdate, WorkloadPieces>;
  /** nft sets by IP set. */
  readonly sets: WeakMap<object, IpSetPieces>;
  /**
   * Per IP set: which members its element counts hold and how many members give each element, so a
   * delta changes the touched members' elements without re-rendering the set (see `ipSetDelta`).
   * Dropped whenever the set is rendered whole.
   */
  readonly counts: WeakMap<object, SetCounts>;
}

/** Members counted and, per family, members per element (two members can give one element). */
interface SetCounts {
  readonly counted: Set<string>;
  readonly elements: { readonly 4: Map<string, number>; readonly 6: Map<string, number> };
}

/** A workload's two chains and their shared names, valid while the state's `refVersion` is. */
interface WorkloadPieces {
  readonly refVersion: number;
  readonly in: readonly string[];
  readonly out: readonly string[];
  readonly inName: string;
  readonly outName: string;
}

/** An address set name a rendered rule used: `[ip set id, family, name]`. */
type SetDep = readonly [string, 4 | 6, string];

/** The nft sets of one IP set at one version, and the names its address sets have in each family. */
interface IpSetPieces {
  readonly version: number;
  readonly sets: [string, NftSet][];
  readonly addrNames: { readonly 4: string; readonly 6: string } | undefined;
}

/** A fresh {@link NftRenderCache}. */
export function createNftRenderCache(): NftRenderCache {
  return { rules: new WeakMap(), endpoints: new WeakMap(), sets: new WeakMap(), counts: new WeakMap() };
}

/** Names the address sets of `state`'s IP sets as they are rendered now (interval or not). */
function setNamer(state: PolicyState, cache: NftRenderCache): AddrSetNamer {
  return (id, family) => {
    const s = state.ipSets.get(id);
    const names = s === undefined ? undefined : ipSetPieces(id, s, cache).addrNames;
    return names === undefined ? nftNames.addrSet(id, family) : names[family];
  };
}

function renderRules(
  rules: readonly RenderedRule[],
  marks: NftMarks,
  cache: NftRenderCache,
  setName: AddrSetNamer,
): string[] {
  const hit = cache.rules.get(rules);
  // A set that changed between interval and plain has another name: its rules are rendered again.
  if (hit?.deps.every(([id, f, name]) => setName(id, f) === name)) return hit.lines;
  const deps: SetDep[] = [];
  const recording: AddrSetNamer = (id, f) => {
    const name = setName(id, f);
    deps.push([id, f, name]);
    return name;
  };
  const lines = rules.flatMap((r) => renderRule(r, marks, recording));
  cache.rules.set(rules, { lines, deps });
  return lines;
}

/** Endpoint direction chain: tiers in order, then profiles, then drop. */
function endpointChain(
  state: PolicyState,
  tierGroups: readonly { tiers: DirectionalTiers; endOfTierDrop: boolean }[],
  profileIds: readonly string[],
  dir: "ingress" | "egress",
  marks: NftMarks,
  head: readonly string[] = [],
  finish: "drop" | "return" = "drop",
): string[] {
  const lines = [...head];
  const clear = `meta mark set meta mark & ${hex(~(marks.allow | marks.pass) >>> 0)}`;
  const allowed = `meta mark & ${hex(marks.allow)} == ${hex(marks.allow)} return`;
  const noPass = `meta mark & ${hex(marks.pass)} == 0x00000000`;
  const pdir = dir === "ingress" ? "in" : "out";
  for (const group of tierGroups) {
    for (const tier of group.tiers[dir]) {
      lines.push(clear);
      tier.policyIds.forEach((id, i) => {
        // A policy the endpoint lists but we do not hold: fail closed.
        if (!state.policies.has(id)) lines.push(i === 0 ? "drop" : `${noPass} drop`);
        else lines.push(`${i === 0 ? "" : `${noPass} `}jump ${nftNames.policy(id, pdir)}`);
        lines.push(allowed);
      });
      if (group.endOfTierDrop && tier.defaultAction === "deny") lines.push(`${noPass} drop`);
    }
  }
  for (const id of profileIds) {
    if (!state.profiles.has(id)) continue;
    lines.push(clear, `jump ${nftNames.profile(id, pdir)}`, allowed);
  }
  // A stage that decides nothing falls through to the next stage (the chain returns unmarked).
  if (finish === "drop") lines.push("drop");
  return lines;
}

/**
 * Failsafe accepts for traffic in direction `dir`. `replies` renders the other direction's failsafe
 * ports as replies instead (source port, remote as seen from this side): the raw stage runs before
 * conntrack, so without them a reply could fall into untracked policy (as Calico's raw failsafe chains).
 */
function failsafeRules(list: readonly FailsafePort[], dir: "in" | "out", replies = false): string[] {
  return list.flatMap((f) => {
    const proto = `meta l4proto ${f.protocol} th ${replies ? "sport" : "dport"} ${f.port}`;
    if (f.net === undefined) return [`${proto} accept`];
    const fam = cidrOrThrow(f.net, "mask").version === 4 ? "ip" : "ip6";
    return [`${fam} ${dir === "in" ? "saddr" : "daddr"} ${f.net} ${proto} accept`];
  });
}

/** Splits IP set members into per-family nft elements with covered prefixes removed (no interval overlap). */
export function addrElements(members: Iterable<string>, family: 4 | 6): string[] {
  return addrPieces(members, family).elements;
}

/** {@link addrElements}, and whether any element is a prefix (the set needs the interval flag). */
function addrPieces(members: Iterable<string>, family: 4 | 6): { elements: string[]; interval: boolean } {
  const width = family === 4 ? 32 : 128;
  const ranges: { start: bigint; end: bigint; text: string }[] = [];
  let interval = false;
  for (const m of members) {
    const addr = m.split("/")[0] ?? "";
    if (ipVersion(addr) !== family) continue;
    const c = cidrOrThrow(m, "mask");
    const start = c.network;
    const end = start + (1n << BigInt(width - c.prefixLength)) - 1n;
    if (c.prefixLength !== width) interval = true;
    ranges.push({ start, end, text: c.prefixLength === width ? c.addressText : interfaceAddressText(c) });
  }
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end > b.end ? -1 : 1));
  const out: string[] = [];
  let end = -1n;
  for (const r of ranges) {
    if (r.start <= end) continue;
    out.push(r.text);
    end = r.end;
  }
  return { elements: out.sort(), interval };
}

/** `10.0.0.1,tcp:8080` members → `10.0.0.1 . tcp . 8080` elements of one family. */
export function portElements(members: Iterable<string>, family: 4 | 6): string[] {
  const out: string[] = [];
  for (const m of members) {
    const match = /^(.+),(tcp|udp|sctp):(\d+)$/.exec(m);
    if (match === null || ipVersion(match[1]!) !== family) continue;
    out.push(`${match[1]} . ${match[2]} . ${match[3]}`);
  }
  return out.sort();
}

/** Renders the regular chains, sets and map elements for the policy state (base chains are static). */
export function renderRuleset(
  state: PolicyState,
  pools: readonly { readonly cidr: string; readonly natOutgoing: boolean }[],
  options: NftRenderOptions,
  cache: NftRenderCache = createNftRenderCache(),
): NftRuleset {
  const { marks } = options;
  const sets = new Map<string, NftSet>();
  const chains = new Map<string, readonly string[]>();
  const maps = new Map<string, Map<string, string>>(NFT_MAPS.map((m) => [m, new Map()]));

  for (const [id, s] of state.ipSets)
    for (const [name, set] of ipSetPieces(id, s, cache).sets) sets.set(name, set);
  const setName = setNamer(state, cache);
  for (const family of [4, 6] as const) {
    const t = `type ${family === 4 ? "ipv4_addr" : "ipv6_addr"}; flags interval;`;
    sets.set(`pools${family}`, {
      decl: t,
      elements: addrElements(
        pools.map((p) => p.cidr),
        family,
      ),
    });
    sets.set(`nat${family}`, {
      decl: t,
      elements: addrElements(
        pools.filter((p) => p.natOutgoing).map((p) => p.cidr),
        family,
      ),
    });
  }
  for (const [id, p] of state.policies) {
    chains.set(nftNames.policy(id, "in"), renderRules(p.inbound, marks, cache, setName));
    chains.set(nftNames.policy(id, "out"), renderRules(p.outbound, marks, cache, setName));
  }
  for (const [id, p] of state.profiles) {
    chains.set(nftNames.profile(id, "in"), renderRules(p.inbound, marks, cache, setName));
    chains.set(nftNames.profile(id, "out"), renderRules(p.outbound, marks, cache, setName));
  }
  const endpointChainRefs = new Map<string, number>();
  for (const w of state.workloads.values()) {
    const hit = workloadPieces(state, w, marks, cache);
    for (const [name, lines] of [
      [hit.inName, hit.in],
      [hit.outName, hit.out],
    ] as const) {
      chains.set(name, lines);
      endpointChainRefs.set(name, (endpointChainRefs.get(name) ?? 0) + 1);
    }
    maps.get("wl-to")!.set(`"${w.ifname}"`, `goto ${hit.inName}`);
    maps.get("wl-from")!.set(`"${w.ifname}"`, `goto ${hit.outName}`);
  }
  // The `*` host endpoint (all of the host's interfaces) is a fallback rule after the map in each
  // dispatch chain; only the first one counts, as a second `*` endpoint could never be reached.
  const star = new Map<HepMap, string>();
  const route = (h: HostEndpointUpdate, map: HepMap, chain: string) => {
    if (h.ifname === "*") {
      if (!star.has(map)) star.set(map, chain);
    } else maps.get(map)!.set(`"${h.ifname}"`, `goto ${chain}`);
  };
  for (const h of state.hosts.values()) {
    const inName = nftNames.host(h.id, "in");
    const outName = nftNames.host(h.id, "out");
    chains.set(inName, hostChain(state, h, "ingress", marks));
    chains.set(outName, hostChain(state, h, "egress", marks));
    route(h, "hep-in", inName);
    route(h, "hep-out", outName);
    for (const r of hostStageChains(state, h, marks)) {
      chains.set(r.chain, r.lines);
      route(h, r.map, r.chain);
    }
  }
  for (const d of HEP_DISPATCH) {
    const notWorkload = options.workloadPrefixes.map((p) => `${d.kw} != "${p}*"`).join(" ");
    const fallback = star.get(d.map);
    chains.set(d.chain, [
      `${d.kw} vmap @${d.map}`,
      ...(fallback === undefined ? [] : [`${d.kw} != "lo" ${notWorkload} goto ${fallback}`]),
    ]);
  }
  return { sets, chains, maps, endpointChainRefs };
}

/**
 * The stage chains of a host endpoint outside the filter hooks, as Calico places them: `doNotTrack`
 * tiers at raw priority (before conntrack, so an allow can `notrack`), `preDNAT` tiers (ingress only)
 * in prerouting before DNAT, `applyOnForward` tiers in the forward hook. Untracked and pre-DNAT stages
 * end without a verdict when nothing matched, so the packet goes on to the next stage; a stage with no
 * tiers is not rendered at all (no per-packet cost).
 */
function hostStageChains(
  state: PolicyState,
  h: HostEndpointUpdate,
  marks: NftMarks,
): { map: HepMap; chain: string; lines: string[] }[] {
  const out: { map: HepMap; chain: string; lines: string[] }[] = [];
  const fIn = h.failsafe.inbound;
  const fOut = h.failsafe.outbound;
  const stage = (tiers: DirectionalTiers, endOfTierDrop: boolean) => [{ tiers, endOfTierDrop }];
  if (h.untrackedTiers.ingress.length > 0) {
    out.push({
      map: "hep-raw-in",
      chain: nftNames.hostStage(h.id, "untracked", "in"),
      lines: endpointChain(
        state,
        stage(h.untrackedTiers, false),
        [],
        "ingress",
        marks,
        [...failsafeRules(fIn, "in"), ...failsafeRules(fOut, "in", true)],
        "return",
      ),
    });
  }
  if (h.untrackedTiers.egress.length > 0) {
    out.push({
      map: "hep-raw-out",
      chain: nftNames.hostStage(h.id, "untracked", "out"),
      lines: endpointChain(
        state,
        stage(h.untrackedTiers, false),
        [],
        "egress",
        marks,
        [...failsafeRules(fOut, "out"), ...failsafeRules(fIn, "out", true)],
        "return",
      ),
    });
  }
  if (h.preDnatTiers.ingress.length > 0) {
    out.push({
      map: "hep-prednat",
      chain: nftNames.hostStage(h.id, "pre-dnat", "in"),
      lines: endpointChain(
        state,
        stage(h.preDnatTiers, false),
        [],
        "ingress",
        marks,
        failsafeRules(fIn, "in"),
        "return",
      ),
    });
  }
  // Forwarded traffic is policed only when applyOnForward policies apply (Calico leaves it alone
  // otherwise); then the tiers decide and nothing passing them all is dropped. Profiles do not apply.
  if (h.forwardTiers.ingress.length > 0) {
    out.push({
      map: "hep-fwd-in",
      chain: nftNames.hostStage(h.id, "forward", "in"),
      lines: endpointChain(state, stage(h.forwardTiers, true), [], "ingress", marks),
    });
  }
  if (h.forwardTiers.egress.length > 0) {
    out.push({
      map: "hep-fwd-out",
      chain: nftNames.hostStage(h.id, "forward", "out"),
      lines: endpointChain(state, stage(h.forwardTiers, true), [], "egress", marks),
    });
  }
  return out;
}

/**
 * The nft sets of one IP set (both families), cached per set object and version. An address set whose
 * members are all single addresses has no interval flag (see {@link nftNames}'s `addrSet`).
 */
function ipSetPieces(id: string, s: HeldIpSet, cache: NftRenderCache): IpSetPieces {
  const hit = cache.sets.get(s);
  if (hit !== undefined && hit.version === s.version) return hit;
  cache.counts.delete(s);
  const rendered: [string, NftSet][] = [];
  const addrNames = { 4: "", 6: "" };
  for (const family of [4, 6] as const) {
    if (s.type === "ip-and-port") {
      const t = family === 4 ? "ipv4_addr" : "ipv6_addr";
      rendered.push([
        nftNames.portSet(id, family),
        { decl: `type ${t} . inet_proto . inet_service;`, elements: portElements(s.members, family) },
      ]);
    } else {
      const { elements, interval } = addrPieces(s.members, family);
      const name = nftNames.addrSet(id, family, interval);
      addrNames[family] = name;
      const t = family === 4 ? "ipv4_addr" : "ipv6_addr";
      rendered.push([name, { decl: interval ? `type ${t}; flags interval;` : `type ${t};`, elements }]);
    }
  }
  const pieces = {
    version: s.version,
    sets: rendered,
    addrNames: s.type === "ip-and-port" ? undefined : addrNames,
  };
  cache.sets.set(s, pieces);
  return pieces;
}

/** A workload's two chains, cached per endpoint object while no policy or profile id comes or goes. */
function workloadPieces(
  state: PolicyState,
  w: WorkloadEndpointUpdate,
  marks: NftMarks,
  cache: NftRenderCache,
): WorkloadPieces {
  let hit = cache.endpoints.get(w);
  if (hit === undefined || hit.refVersion !== state.refVersion) {
    const inLines = workloadChain(state, w, "ingress", marks);
    const outLines = workloadChain(state, w, "egress", marks);
    hit = {
      refVersion: state.refVersion,
      in: inLines,
      out: outLines,
      inName: nftNames.workloadShared("in", inLines),
      outName: nftNames.workloadShared("out", outLines),
    };
    cache.endpoints.set(w, hit);
  }
  return hit;
}

/** Ids a batch touched: what {@link renderRulesetDelta} re-renders. */
export interface NftDirty {
  /** IP set ids updated, changed or removed. */
  readonly ipSets: ReadonlySet<string>;
  /** Policy ids updated (not added or removed: that changes endpoint chains, so render in full). */
  readonly policies: ReadonlySet<string>;
  /** Profile ids updated (same condition). */
  readonly profiles: ReadonlySet<string>;
  /** Workload endpoint ids updated or removed. */
  readonly workloads: ReadonlySet<string>;
  /**
   * Members added or removed by deltas since `prev`, per IP set whose only changes since then were
   * deltas (an IP set in {@link NftDirty.ipSets} and not here is rendered whole). With it, a plain or
   * port set changes only the touched members' elements: the cost of a new pod does not grow with the
   * set.
   */
  readonly ipSetMembers?: ReadonlyMap<string, ReadonlySet<string>> | undefined;
}

/** An element of `member` in `family`'s nft set; `null` for a prefix (the set would need the interval flag). */
function elementOf(type: HeldIpSet["type"], member: string, family: 4 | 6): string | null | undefined {
  if (type === "ip-and-port") return portElements([member], family)[0];
  if (ipVersion(member.split("/")[0] ?? "") !== family) return undefined;
  const c = cidrOrThrow(member, "mask");
  return c.prefixLength === (family === 4 ? 32 : 128) ? c.addressText : null;
}

/** Index of `x` in the sorted `list` (default string order), or `-(insertion point) - 1`. */
function search(list: readonly string[], x: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return list[lo] === x ? lo : -lo - 1;
}

/**
 * The element changes of IP set `id` (a plain or port set, changed only by deltas whose members are
 * `touched`) from `prev` to now: its transaction lines, its new nft sets (what `prev` held with the
 * touched elements added or taken out) and pieces for the render cache. O(touched · log size), not
 * O(size). `undefined` when the set must be rendered whole: `prev` holds another variant (or none), or
 * a prefix joined (the set turns interval).
 */
function ipSetDelta(
  id: string,
  s: HeldIpSet,
  touched: ReadonlySet<string>,
  prev: NftRuleset,
  cache: NftRenderCache,
  t: string,
): { lines: string[]; pieces: IpSetPieces } | undefined {
  const names = {
    4: s.type === "ip-and-port" ? nftNames.portSet(id, 4) : nftNames.addrSet(id, 4, false),
    6: s.type === "ip-and-port" ? nftNames.portSet(id, 6) : nftNames.addrSet(id, 6, false),
  };
  const old = { 4: prev.sets.get(names[4]), 6: prev.sets.get(names[6]) };
  if (old[4] === undefined || old[6] === undefined) return undefined;
  let counts = cache.counts.get(s);
  if (counts === undefined) {
    // Counted once from the members as they are now (the touched members then need no update).
    counts = { counted: new Set(), elements: { 4: new Map(), 6: new Map() } };
    for (const m of s.members) {
      for (const f of [4, 6] as const) {
        const e = elementOf(s.type, m, f);
        if (e === null) return undefined;
        if (e !== undefined) counts.elements[f].set(e, (counts.elements[f].get(e) ?? 0) + 1);
      }
      counts.counted.add(m);
    }
    cache.counts.set(s, counts);
  }
  const changed = { 4: new Set<string>(), 6: new Set<string>() };
  for (const m of touched) {
    const was = counts.counted.has(m);
    const now = s.members.has(m);
    for (const f of [4, 6] as const) {
      const e = elementOf(s.type, m, f);
      if (e === undefined) continue;
      if (e === null) {
        if (!now) continue;
        cache.counts.delete(s);
        return undefined;
      }
      changed[f].add(e);
      if (was === now) continue;
      const n = (counts.elements[f].get(e) ?? 0) + (now ? 1 : -1);
      if (n > 0) counts.elements[f].set(e, n);
      else counts.elements[f].delete(e);
    }
    if (now) counts.counted.add(m);
    else counts.counted.delete(m);
  }
  const lines: string[] = [];
  const sets: [string, NftSet][] = [];
  for (const f of [4, 6] as const) {
    const before = old[f]!;
    const add: string[] = [];
    const del: string[] = [];
    for (const e of changed[f]) {
      const want = counts.elements[f].has(e);
      if (want !== search(before.elements, e) >= 0) (want ? add : del).push(e);
    }
    let elements = before.elements;
    if (add.length + del.length > 0) {
      const next = [...before.elements];
      for (const e of del) next.splice(search(next, e), 1);
      for (const e of add) next.splice(-search(next, e) - 1, 0, e);
      elements = next;
      if (del.length > 0) lines.push(`delete element ${t} ${names[f]} ${elems(del.sort())}`);
      if (add.length > 0) lines.push(addElements(t, names[f], before.decl, add.sort()));
    }
    sets.push([names[f], elements === before.elements ? before : { decl: before.decl, elements }]);
  }
  const pieces: IpSetPieces = {
    version: s.version,
    sets,
    addrNames: s.type === "ip-and-port" ? undefined : names,
  };
  cache.sets.set(s, pieces);
  return { lines, pieces };
}

/** A delta from {@link renderRulesetDelta}. */
export interface NftRulesetDelta {
  /** The new whole ruleset. */
  readonly next: NftRuleset;
  /** The transaction turning `prev` into `next`. */
  readonly text: string;
  /**
   * With `inPlace`: puts `prev`'s maps back as they were (call it when the kernel refused `text`, so
   * `prev` stays what the kernel holds). A no-op otherwise.
   */
  readonly undo: () => void;
}

/** Options of {@link renderRulesetDelta}. */
export interface NftDeltaOptions {
  /**
   * Change `prev`'s maps in place instead of copying them (`next` then shares them, and `prev` is only
   * valid again after `undo`): the delta costs what it touches, not a copy of every chain, set and map
   * element. Default `false`.
   */
  readonly inPlace?: boolean | undefined;
}

/**
 * Renders only what `dirty` names, on top of `prev` (the ruleset the kernel holds, rendered from the
 * same options): returns the new whole ruleset (unchanged pieces shared with `prev`) and the
 * transaction text, as {@link diffRuleset} would give for the whole but at the cost of the touched
 * pieces. `prevIfname` gives a workload's interface in `prev` (its map keys). Valid only while the set
 * of policy and profile ids, host endpoints and pools are those `prev` was rendered with. Returns
 * `undefined` when an IP set changed between interval and plain: the rules matching it are renamed, so
 * render the whole ruleset ({@link renderRuleset}) and diff it instead (`prev` is then unchanged).
 */
export function renderRulesetDelta(
  prev: NftRuleset,
  prevIfname: (workloadId: string) => string | undefined,
  state: PolicyState,
  options: NftRenderOptions,
  cache: NftRenderCache,
  dirty: NftDirty,
  deltaOptions: NftDeltaOptions = {},
): NftRulesetDelta | undefined {
  const inPlace = deltaOptions.inPlace === true;
  const own = <K, V>(m: ReadonlyMap<K, V> | undefined): Map<K, V> =>
    inPlace && m !== undefined ? (m as Map<K, V>) : new Map(m);
  const sets = own(prev.sets);
  const chains = own(prev.chains);
  const maps = own(prev.maps) as Map<string, ReadonlyMap<string, string>>;
  // Shared endpoint chains: counted per endpoint; added with their first user, deleted with their last.
  const refs = own(prev.endpointChainRefs);
  // What each changed key held in `prev`: read back for the transaction's "before" side and by `undo`.
  const origs = new Map<Map<unknown, unknown>, Map<unknown, unknown>>();
  const was = <K, V>(m: Map<K, V>, k: K): V | undefined => {
    const o = origs.get(m as Map<unknown, unknown>);
    return o?.has(k) ? (o.get(k) as V | undefined) : m.get(k);
  };
  const put = <K, V>(m: Map<K, V>, k: K, v: V | undefined) => {
    let o = origs.get(m as Map<unknown, unknown>);
    if (o === undefined) origs.set(m as Map<unknown, unknown>, (o = new Map()));
    if (!o.has(k)) o.set(k, m.get(k));
    if (v === undefined) m.delete(k);
    else m.set(k, v);
  };
  const undo = () => {
    if (!inPlace) return;
    for (const [m, o] of origs) {
      for (const [k, v] of o) {
        if (v === undefined) m.delete(k);
        else m.set(k, v);
      }
    }
    origs.clear();
  };
  // The verdict maps' working copies: `prev`'s own in place, else copied when first touched.
  const mapOf = (name: "wl-to" | "wl-from"): Map<string, string> => {
    const m = maps.get(name) as Map<string, string> | undefined;
    if (m !== undefined && (inPlace || m !== prev.maps.get(name))) return m;
    const copy = new Map(m);
    if (inPlace) put(maps, name, copy);
    else maps.set(name, copy);
    return copy;
  };
  try {
    return deltaOnto(prev, prevIfname, state, options, cache, dirty, {
      sets,
      chains,
      maps,
      refs,
      was,
      put,
      mapOf,
      undo,
    });
  } catch (e) {
    // Half a delta must not stay in `prev`: it is what the kernel holds.
    undo();
    throw e;
  }
}

/** The working state of one {@link renderRulesetDelta}. */
interface DeltaWork {
  readonly sets: Map<string, NftSet>;
  readonly chains: Map<string, readonly string[]>;
  readonly maps: Map<string, ReadonlyMap<string, string>>;
  readonly refs: Map<string, number>;
  /** What a key held in `prev` (before this delta changed it). */
  was<K, V>(m: Map<K, V>, k: K): V | undefined;
  /** Sets (or with `undefined` deletes) a key, remembering what it held for `was` and `undo`. */
  put<K, V>(m: Map<K, V>, k: K, v: V | undefined): void;
  /** The working copy of a workload verdict map. */
  mapOf(name: "wl-to" | "wl-from"): Map<string, string>;
  readonly undo: () => void;
}

function deltaOnto(
  prev: NftRuleset,
  prevIfname: (workloadId: string) => string | undefined,
  state: PolicyState,
  options: NftRenderOptions,
  cache: NftRenderCache,
  dirty: NftDirty,
  work: DeltaWork,
): NftRulesetDelta | undefined {
  const { marks } = options;
  const { sets, chains, maps, refs, was, put, mapOf, undo } = work;
  const before: {
    sets: Map<string, NftSet>;
    chains: Map<string, readonly string[]>;
    maps: Map<string, Map<string, string>>;
  } = { sets: new Map(), chains: new Map(), maps: new Map(NFT_MAPS.map((m) => [m, new Map()])) };
  const after: typeof before = {
    sets: new Map(),
    chains: new Map(),
    maps: new Map(NFT_MAPS.map((m) => [m, new Map()])),
  };
  const setChain = (name: string, lines: readonly string[] | undefined) => {
    const old = was(chains, name);
    if (old !== undefined) before.chains.set(name, old);
    put(chains, name, lines);
    if (lines === undefined) after.chains.delete(name);
    else after.chains.set(name, lines);
  };
  const t = `inet ${options.table}`;
  // Element changes of sets changed by deltas alone; they come first, as diffRuleset puts sets first.
  const setLines: string[] = [];
  for (const id of dirty.ipSets) {
    const s = state.ipSets.get(id);
    const touched = dirty.ipSetMembers?.get(id);
    if (s !== undefined && touched !== undefined) {
      const d = ipSetDelta(id, s, touched, prev, cache, t);
      if (d !== undefined) {
        setLines.push(...d.lines);
        for (const [name, set] of d.pieces.sets) put(sets, name, set);
        continue;
      }
    }
    const pieces = s && ipSetPieces(id, s, cache);
    // Held before under the other variant's name: the rules matching it change too.
    for (const f of [4, 6] as const) {
      const name = pieces?.addrNames?.[f];
      if (name === undefined) continue;
      const plain = nftNames.addrSet(id, f, false);
      if (was(sets, name === plain ? nftNames.addrSet(id, f, true) : plain) !== undefined) {
        undo();
        return undefined;
      }
    }
    for (const name of [
      nftNames.addrSet(id, 4),
      nftNames.addrSet(id, 6),
      nftNames.addrSet(id, 4, false),
      nftNames.addrSet(id, 6, false),
      nftNames.portSet(id, 4),
      nftNames.portSet(id, 6),
    ]) {
      const old = was(sets, name);
      if (old !== undefined) before.sets.set(name, old);
      if (sets.has(name)) put(sets, name, undefined);
    }
    if (pieces !== undefined) {
      for (const [name, set] of pieces.sets) {
        put(sets, name, set);
        after.sets.set(name, set);
      }
    }
  }
  const setName = setNamer(state, cache);
  for (const id of dirty.policies) {
    const p = state.policies.get(id);
    setChain(nftNames.policy(id, "in"), p && renderRules(p.inbound, marks, cache, setName));
    setChain(nftNames.policy(id, "out"), p && renderRules(p.outbound, marks, cache, setName));
  }
  for (const id of dirty.profiles) {
    const p = state.profiles.get(id);
    setChain(nftNames.profile(id, "in"), p && renderRules(p.inbound, marks, cache, setName));
    setChain(nftNames.profile(id, "out"), p && renderRules(p.outbound, marks, cache, setName));
  }
  const touchMap = (name: "wl-to" | "wl-from", key: string, value: string | undefined) => {
    const m = mapOf(name);
    const old = was(m, key);
    if (old !== undefined) before.maps.get(name)!.set(key, old);
    put(m, key, value);
    if (value === undefined) after.maps.get(name)!.delete(key);
    else after.maps.get(name)!.set(key, value);
  };
  const release = (verdict: string | undefined) => {
    const name = verdict?.startsWith("goto ") ? verdict.slice(5) : undefined;
    const n = name === undefined ? undefined : refs.get(name);
    if (name === undefined || n === undefined) return;
    if (n > 1) put(refs, name, n - 1);
    else {
      put(refs, name, undefined);
      setChain(name, undefined);
    }
  };
  const use = (name: string, lines: readonly string[]) => {
    const n = refs.get(name) ?? 0;
    put(refs, name, n + 1);
    if (n === 0) setChain(name, lines);
  };
  for (const id of dirty.workloads) {
    const w = state.workloads.get(id);
    const hit = w && workloadPieces(state, w, marks, cache);
    const old = prevIfname(id);
    if (old !== undefined) {
      release(was(mapOf("wl-to"), `"${old}"`));
      release(was(mapOf("wl-from"), `"${old}"`));
      if (old !== w?.ifname) {
        touchMap("wl-to", `"${old}"`, undefined);
        touchMap("wl-from", `"${old}"`, undefined);
      }
    }
    if (w !== undefined && hit !== undefined) {
      use(hit.inName, hit.in);
      use(hit.outName, hit.out);
      touchMap("wl-to", `"${w.ifname}"`, `goto ${hit.inName}`);
      touchMap("wl-from", `"${w.ifname}"`, `goto ${hit.outName}`);
    }
  }
  const rest = diffRuleset(before, after, options);
  return {
    next: { sets, chains, maps, endpointChainRefs: refs },
    text: setLines.length === 0 ? rest : `${setLines.join("\n")}\n${rest}`,
    undo,
  };
}

function workloadChain(
  state: PolicyState,
  w: WorkloadEndpointUpdate,
  dir: "ingress" | "egress",
  marks: NftMarks,
) {
  return endpointChain(state, [{ tiers: w.tiers, endOfTierDrop: true }], w.profileIds, dir, marks);
}

function hostChain(state: PolicyState, h: HostEndpointUpdate, dir: "ingress" | "egress", marks: NftMarks) {
  const failsafe = failsafeRules(
    dir === "ingress" ? h.failsafe.inbound : h.failsafe.outbound,
    dir === "ingress" ? "in" : "out",
  );
  // Untracked and pre-DNAT tiers run in their own hooks (see hostStageChains); what they allowed is
  // accepted by the base chains before this chain is reached.
  return endpointChain(state, [{ tiers: h.tiers, endOfTierDrop: true }], h.profileIds, dir, marks, failsafe);
}

/** The static part of the table: base chains hooked into netfilter, dispatch chains, verdict maps. */
export function renderBase(options: NftRenderOptions): string {
  const wl = (kw: "iifname" | "oifname", target: string) =>
    options.workloadPrefixes.map((p) => `    ${kw} "${p}*" jump ${target}`).join("\n");
  const clear = `    meta mark set meta mark & ${hex(~(options.marks.allow | options.marks.pass) >>> 0)}`;
  const nd =
    "    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept";
  const p = options.priority;
  const allow = hex(options.marks.allow);
  // Set by an untracked or pre-DNAT allow in an earlier hook: later hooks accept without re-evaluating.
  const accepted = `    meta mark & ${allow} == ${allow} accept`;
  const notAccepted = `meta mark & ${allow} == 0x00000000`;
  return [
    `  chain wl-from-dispatch {\n    iifname vmap @wl-from\n    drop\n  }`,
    `  chain wl-to-dispatch {\n    oifname vmap @wl-to\n    drop\n  }`,
    // Untracked (doNotTrack) host endpoint policy: before conntrack, so an allowed packet is not tracked.
    `  chain raw-prerouting {\n    type filter hook prerouting priority raw; policy accept;\n${clear}\n    jump hep-raw-in-dispatch\n    meta mark & ${allow} == ${allow} notrack accept\n${clear}\n  }`,
    `  chain raw-output {\n    type filter hook output priority raw; policy accept;\n${clear}\n    jump hep-raw-out-dispatch\n    meta mark & ${allow} == ${allow} notrack accept\n${clear}\n  }`,
    // Pre-DNAT host endpoint policy sees the destination before any DNAT (dstnat priority is -100).
    `  chain prednat {\n    type filter hook prerouting priority dstnat - 10; policy accept;\n${accepted}\n    ct state established,related accept\n${clear}\n    jump hep-prednat-dispatch\n${accepted}\n${clear}\n  }`,
    `  chain forward {\n    type filter hook forward priority ${p}; policy accept;\n    ct state established,related accept\n    ct state invalid drop\n    ${notAccepted} jump hep-fwd-in-dispatch\n${wl("iifname", "wl-from-dispatch")}\n${wl("oifname", "wl-to-dispatch")}\n    jump hep-fwd-out-dispatch\n${clear}\n  }`,
    `  chain input {\n    type filter hook input priority ${p}; policy accept;\n    ct state established,related accept\n${nd}\n${wl("iifname", "wl-from-dispatch")}\n${options.workloadPrefixes.map((x) => `    iifname "${x}*" ${options.endpointToHost === "accept" ? `${clear.trim()} accept` : "drop"}`).join("\n")}\n${accepted}\n${clear}\n    jump hep-in-dispatch\n${clear}\n  }`,
    `  chain output {\n    type filter hook output priority ${p}; policy accept;\n    ct state established,related accept\n${nd}\n${accepted}\n${clear}\n    jump hep-out-dispatch\n${clear}\n  }`,
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr @nat4 ip daddr != @pools4 masquerade\n    ip6 saddr @nat6 ip6 daddr != @pools6 masquerade\n  }`,
  ].join("\n");
}

function elems(list: readonly string[]): string {
  return `{ ${list.join(", ")} }`;
}

/**
 * Adds `list` to the existing set `name` declared `decl`. nft drops its cache whenever the ruleset
 * generation moved, which every commit of ours does, so each transaction refills it; `add element`
 * makes it dump every set of the namespace first (every chain too when a verdict names one, and the
 * elements of every interval set): a one-pod change would cost O(ruleset). Re-declaring the set with
 * the elements (`add set` of an existing set with the same type adds them) needs only the table list.
 * An interval set keeps `add element`, through which nft merges the new ranges with those it holds.
 */
function addElements(t: string, name: string, decl: string, list: readonly string[]): string {
  return decl.includes("interval")
    ? `add element ${t} ${name} ${elems(list)}`
    : `add set ${t} ${name} { ${decl} elements = ${elems(list)} }`;
}

/** The declaration of every verdict map ({@link NFT_MAPS}). */
const MAP_DECL = "type ifname : verdict;";

const DISPATCH_CHAINS: ReadonlySet<string> = new Set(HEP_DISPATCH.map((d) => d.chain));

/**
 * The whole table as one `nft -f` transaction that atomically replaces any previous version. Objects are
 * declared before anything references them: sets, policy and profile chains, endpoint chains, the verdict
 * maps (whose elements jump to endpoint chains), then the dispatch and base chains.
 */
export function renderFull(rs: NftRuleset, options: NftRenderOptions): string {
  const t = `inet ${options.table}`;
  const out: string[] = [`add table ${t}`, `delete table ${t}`, `table ${t} {`];
  for (const [name, s] of rs.sets) {
    out.push(
      `  set ${name} {\n    ${s.decl}${s.elements.length > 0 ? `\n    elements = ${elems(s.elements)}` : ""}\n  }`,
    );
  }
  const chain = (name: string, rules: readonly string[]) =>
    out.push(
      rules.length === 0 ? `  chain ${name} {\n  }` : `  chain ${name} {\n    ${rules.join("\n    ")}\n  }`,
    );
  for (const [name, rules] of rs.chains) if (!DISPATCH_CHAINS.has(name)) chain(name, rules);
  for (const name of NFT_MAPS) {
    const m = rs.maps.get(name) ?? new Map<string, string>();
    const e = m.size > 0 ? `\n    elements = ${elems([...m].map(([k, v]) => `${k} : ${v}`))}` : "";
    out.push(`  map ${name} {\n    ${MAP_DECL}${e}\n  }`);
  }
  for (const [name, rules] of rs.chains) if (DISPATCH_CHAINS.has(name)) chain(name, rules);
  out.push(renderBase(options));
  out.push("}");
  return `${out.join("\n")}\n`;
}

/** An incremental transaction turning `prev` into `next` (both rendered with the same options). */
export function diffRuleset(prev: NftRuleset, next: NftRuleset, options: NftRenderOptions): string {
  const t = `inet ${options.table}`;
  const out: string[] = [];
  for (const [name, s] of next.sets) {
    const old = prev.sets.get(name);
    if (old === s || old?.elements === s.elements) continue;
    if (old === undefined) {
      if (s.elements.length > 0 && !s.decl.includes("interval"))
        out.push(`add set ${t} ${name} { ${s.decl} elements = ${elems(s.elements)} }`);
      else {
        out.push(`add set ${t} ${name} { ${s.decl} }`);
        if (s.elements.length > 0) out.push(`add element ${t} ${name} ${elems(s.elements)}`);
      }
      continue;
    }
    const have = new Set(old.elements);
    const want = new Set(s.elements);
    const del = old.elements.filter((e) => !want.has(e));
    const add = s.elements.filter((e) => !have.has(e));
    if (del.length > 0) out.push(`delete element ${t} ${name} ${elems(del)}`);
    if (add.length > 0) out.push(addElements(t, name, s.decl, add));
  }
  for (const name of next.chains.keys()) if (!prev.chains.has(name)) out.push(`add chain ${t} ${name}`);
  for (const [name, rules] of next.chains) {
    const old = prev.chains.get(name);
    if (old !== undefined && sameLines(old, rules)) continue;
    if (old !== undefined) out.push(`flush chain ${t} ${name}`);
    for (const r of rules) out.push(`add rule ${t} ${name} ${r}`);
  }
  for (const [name, m] of next.maps) {
    const old = prev.maps.get(name) ?? new Map<string, string>();
    const del = [...old].filter(([k, v]) => m.get(k) !== v).map(([k]) => k);
    const add = [...m].filter(([k, v]) => old.get(k) !== v).map(([k, v]) => `${k} : ${v}`);
    if (del.length > 0) out.push(`delete element ${t} ${name} ${elems(del)}`);
    if (add.length > 0) out.push(`add map ${t} ${name} { ${MAP_DECL} elements = ${elems(add)} }`);
  }
  const gone = [...prev.chains.keys()].filter((c) => !next.chains.has(c));
  for (const c of gone) out.push(`flush chain ${t} ${c}`);
  for (const c of gone) out.push(`delete chain ${t} ${c}`);
  for (const s of prev.sets.keys()) if (!next.sets.has(s)) out.push(`delete set ${t} ${s}`);
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
