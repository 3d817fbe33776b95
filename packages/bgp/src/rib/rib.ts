/**
 * The routing information bases of one speaker: Adj-RIB-In (per peer, after import policy), Loc-RIB
 * (the decision process over all candidates) and Adj-RIB-Out (after export rules and policy; per peer,
 * or shared by the peers of an update group, see {@link Rib.addUpdateGroup}).
 *
 * Layout for a full table: one {@link PrefixTable} holds, per destination, either a single
 * {@link Path} or a small `Dest` with several; a path is interned per (peer, epoch, path id, attribute
 * set) and shared by every prefix it was announced for, so a route costs one map slot. A peer's
 * Adj-RIB-In is the subset of candidates from that peer (walked, not stored twice). Every mutation
 * returns the resulting best-path change (a diff), or null when the best path did not change.
 *
 * @packageDocumentation
 */

import { invalid } from "../errors/config-error.js";
import { parseIpv4, parseIpv6 } from "../wire/ip.js";
import { Afi, type PathAttributes } from "../wire/types.js";
import { type AttrSet, AttrStore, DEFAULT_LOCAL_PREF } from "./attrs.js";
import { type DecisionOptions, decide, type Path } from "./decision.js";
import {
  ACCEPT_ALL,
  accepts,
  applyActions,
  type CompiledPolicy,
  compilePolicy,
  evaluatePolicy,
  type Policy,
  wantsNextHopSelf,
} from "./policy.js";
import { type RibPrefix, PrefixTable } from "./table.js";

/** A best-path change of one destination. */
export interface RouteChange extends RibPrefix {
  /** New best path, or null when the destination became unreachable (withdrawn). */
  readonly best: Path | null;
  /** Best path before the change, or null when the destination is new. */
  readonly previous: Path | null;
  /** New multipath (ECMP) set, best first; empty when withdrawn. */
  readonly multipath: readonly Path[];
}

/** Options of {@link Rib}. */
export interface RibOptions {
  /** Our ASN. */
  localAsn: number;
  /** Our BGP identifier (dotted quad). */
  routerId: string;
  /** Route-reflector cluster id (default: the router id). */
  clusterId?: string | undefined;
  /** Compare MED across neighbouring ASes (default false). */
  alwaysCompareMed?: boolean | undefined;
  /** Multipath set size (default 1: no ECMP). */
  maxPaths?: number | undefined;
  /** IGP cost to a next hop (see {@link DecisionOptions.igpCost}); default: every next hop costs 0. */
  igpCost?: ((nextHop: string) => number | null | undefined) | undefined;
}

/** Per-peer options of the RIB. */
export interface RibPeerOptions {
  /** Peer address (IPv4 or IPv6 text). */
  address: string;
  asn: number;
  /** Route-reflector client (RFC 4456): reflect iBGP routes to and from it. */
  routeReflectorClient?: boolean | undefined;
  /** Advertise our address as next hop on iBGP too (eBGP always uses ours). */
  nextHopSelf?: boolean | undefined;
  importPolicy?: Policy | undefined;
  exportPolicy?: Policy | undefined;
  /** Families ("afi/safi") exchanged with this peer (default `["1/1"]`). */
  families?: readonly string[] | undefined;
}

/** A peer as the RIB knows it. Created by {@link Rib.addPeer}; mutable session fields are set by the speaker. */
export interface RibPeer {
  readonly index: number;
  readonly address: string;
  readonly addressRank: string;
  readonly asn: number;
  readonly ibgp: boolean;
  routeReflectorClient: boolean;
  nextHopSelf: boolean;
  importPolicy: CompiledPolicy;
  exportPolicy: CompiledPolicy;
  families: ReadonlySet<string>;
  /** BGP identifier of the current session (0 when down). */
  routerIdNum: number;
  routerId: string;
  /** Session epoch; bumped when a graceful restart begins, so older paths are stale. */
  epoch: number;
  /** Our addresses on the session, used as next hop for IPv4 / IPv6 routes. */
  localAddress4: string | null;
  localAddress6: string | null;
  /** Paths from this peer in the RIB (accepted prefixes, including stale ones). */
  accepted: number;
  /** Paths from this peer rejected by loop checks or import policy. */
  rejected: number;
  /** Adj-RIB-Out, or null while we do not advertise to this peer. */
  out: PrefixTable<AttrSet> | null;
  /**
   * import cache: attribute set id → resulting path (prefix-independent policies only). Each entry
   * holds a reference on the set its key names, so that id is not recycled for another set (which
   * would inherit a stale verdict) while the entry lives.
   */
  importCache: Map<number, ImportCacheEntry>;
  /** export cache: best attribute set id × source peer × family → exported set; holds a reference on both. */
  exportCache: Map<number, ExportCacheEntry>;
  /** The export group last computed for this peer, with what it was computed from (see `Rib.exportGroup`). */
  exportGroup: ExportGroupKey | null;
}

/**
 * What an export result depends on besides the route: peers equal in all of these export every route
 * alike (except a route back to the peer it came from), so a best-path change is exported once per
 * group, not once per peer (a route reflector with hundreds of clients has one group).
 */
interface ExportGroupKey {
  readonly id: number;
  readonly policy: CompiledPolicy;
  readonly ibgp: boolean;
  readonly routeReflectorClient: boolean;
  readonly nextHopSelf: boolean;
  readonly localAddress4: string | null;
  readonly localAddress6: string | null;
  readonly families: ReadonlySet<string>;
}

/** An import-cache entry: the set the key names (referenced) and the verdict, a path or null (rejected). */
export interface ImportCacheEntry {
  readonly set: AttrSet;
  readonly path: Path | null;
}

/** An export-cache entry: the best path's set the key names and the exported set (both referenced). */
export interface ExportCacheEntry {
  readonly set: AttrSet;
  readonly out: AttrSet | null;
}

/**
 * Entries a peer's import or export cache may hold before it is emptied: each entry keeps its
 * attribute set alive, so an unbounded cache would let a peer that sends ever-new attribute sets
 * (even rejected ones) grow memory until its session ends.
 */
const CACHE_MAX = 1 << 18;

/** A destination with more than one candidate path; `paths[0]` is best, then the rest of the multipath set. */
class Dest {
  constructor(
    public paths: Path[],
    public multi: number,
  ) {}
}

type Slot = Path | Dest;

const NO_EXPORT = 0xffffff01;
const NO_ADVERTISE = 0xffffff02;
const NO_EXPORT_SUBCONFED = 0xffffff03;

/** Address as 32 hex digits (IPv4 as ::ffff:a.b.c.d) so text comparison orders addresses. */
export function addressRank(address: string): string {
  const v4 = parseIpv4(address);
  if (v4 !== undefined) return `00000000000000000000ffff${v4.toString(16).padStart(8, "0")}`;
  const b = parseIpv6(address);
  // Peer addresses are validated before they get here; anything else sorts by its own text.
  if (b === undefined) return address.toLowerCase();
  let hex = "";
  for (const x of b) hex += x.toString(16).padStart(2, "0");
  return hex;
}

function validAsn(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 0xffffffff;
}

/** Adj-RIB-In / Loc-RIB / Adj-RIB-Out of one speaker. */
export class Rib {
  readonly localAsn: number;
  readonly routerId: string;
  readonly clusterId: string;
  /** The pseudo-peer of routes we originate (index 0). */
  readonly local: RibPeer;
  readonly attrs = new AttrStore();
  /** Export groups by their key text; see {@link Rib.beginExportBatch}. */
  private readonly exportGroups = new Map<string, number>();
  private nextGroup = 0;
  private exportBatch = 0;
  private readonly memoBatch: number[] = [];
  private readonly memoOut: (AttrSet | null)[] = [];
  private readonly table = new PrefixTable<Slot>();
  private readonly paths = new Map<string, Path>();
  private readonly peers = new Map<number, RibPeer>();
  private readonly decision: DecisionOptions;
  private nextPeer = 1;

  constructor(o: RibOptions) {
    if (!validAsn(o.localAsn)) throw invalid("asn", o.localAsn, "must be 1..4294967295");
    const routerIdNum = parseIpv4(o.routerId);
    if (!routerIdNum) throw invalid("routerId", o.routerId, "must be a non-zero dotted quad");
    const clusterId = o.clusterId ?? o.routerId;
    if (parseIpv4(clusterId) === undefined) throw invalid("clusterId", clusterId, "must be a dotted quad");
    const maxPaths = o.maxPaths ?? 1;
    if (!Number.isInteger(maxPaths) || maxPaths < 1) throw invalid("maxPaths", maxPaths, "must be >= 1");
    this.localAsn = o.localAsn;
    this.routerId = o.routerId;
    this.clusterId = clusterId;
    this.decision = { alwaysCompareMed: o.alwaysCompareMed ?? false, maxPaths, igpCost: o.igpCost };
    this.local = this.makePeer(0, { address: "0.0.0.0", asn: o.localAsn, families: ["1/1", "2/1"] });
    this.local.routerId = o.routerId;
    this.local.routerIdNum = routerIdNum;
  }

  /** Number of destinations in the Loc-RIB. */
  get size(): number {
    return this.table.size;
  }

  private makePeer(index: number, o: RibPeerOptions): RibPeer {
    return {
      index,
      address: o.address,
      addressRank: addressRank(o.address),
      asn: o.asn,
      ibgp: index !== 0 && o.asn === this.localAsn,
      routeReflectorClient: o.routeReflectorClient ?? false,
      nextHopSelf: o.nextHopSelf ?? false,
      importPolicy: compilePolicy(o.importPolicy, "importPolicy"),
      exportPolicy: compilePolicy(o.exportPolicy, "exportPolicy"),
      families: new Set(o.families ?? ["1/1"]),
      routerIdNum: 0,
      routerId: "0.0.0.0",
      epoch: 0,
      localAddress4: null,
      localAddress6: null,
      accepted: 0,
      rejected: 0,
      out: null,
      importCache: new Map(),
      exportCache: new Map(),
      exportGroup: null,
    };
  }

  /** Registers a peer. Throws {@link BgpConfigError} for an invalid ASN or policy. */
  addPeer(o: RibPeerOptions): RibPeer {
    if (!validAsn(o.asn)) throw invalid("peer.asn", o.asn, "must be 1..4294967295");
    const p = this.makePeer(this.nextPeer++, o);
    this.peers.set(p.index, p);
    return p;
  }

  /** Changes policies or flags of a peer. Returns true when routes must be re-evaluated. */
  updatePeer(p: RibPeer, o: Partial<RibPeerOptions>): void {
    if (o.importPolicy !== undefined) p.importPolicy = compilePolicy(o.importPolicy, "importPolicy");
    if (o.exportPolicy !== undefined) p.exportPolicy = compilePolicy(o.exportPolicy, "exportPolicy");
    if (o.routeReflectorClient !== undefined) p.routeReflectorClient = o.routeReflectorClient;
    if (o.nextHopSelf !== undefined) p.nextHopSelf = o.nextHopSelf;
    if (o.families !== undefined) p.families = new Set(o.families);
    this.clearImportCache(p);
    this.clearExportCache(p);
  }

  /** Forgets a peer; its paths must have been dropped ({@link dropPeer}) first. */
  removePeer(p: RibPeer): void {
    this.clearImportCache(p);
    this.clearOut(p);
    this.peers.delete(p.index);
  }

  /** Last import-cache hit (peer, set → path); reset with any import cache. */
  private memoPeer: RibPeer | null = null;
  private memoSet: AttrSet | null = null;
  private memoPath: Path | null | undefined = undefined;

  private clearImportCache(p: RibPeer): void {
    this.memoPeer = null;
    this.memoSet = null;
    this.memoPath = undefined;
    for (const e of p.importCache.values()) {
      if (e.path) this.unrefPath(e.path);
      this.attrs.unref(e.set);
    }
    p.importCache.clear();
  }

  /** Interns the attributes a peer sent, normalised for the decision process (eBGP: default LOCAL_PREF). */
  internFromPeer(p: RibPeer, attrs: Readonly<PathAttributes>, nextHops: readonly string[]): AttrSet {
    let a = attrs;
    // LOCAL_PREF is not accepted from eBGP peers (RFC 4271 §5.1.5); the import policy may set one.
    if (!p.ibgp && p.index !== 0) a = { ...attrs, localPref: DEFAULT_LOCAL_PREF };
    else if (a.localPref === undefined) a = { ...attrs, localPref: DEFAULT_LOCAL_PREF };
    return this.attrs.intern(a, nextHops);
  }

  /** The shared path for (peer, current epoch, path id, set). Takes no reference. */
  path(p: RibPeer, pathId: number, set: AttrSet): Path {
    const key = `${p.index}:${p.epoch}:${pathId}:${set.id}`;
    let path = this.paths.get(key);
    if (!path) {
      path = { peer: p, epoch: p.epoch, pathId, attrs: set, refs: 0 };
      this.paths.set(key, path);
      this.attrs.ref(set);
    }
    return path;
  }

  private refPath(path: Path): void {
    path.refs++;
  }

  private unrefPath(path: Path): void {
    if (--path.refs > 0) return;
    const key = `${path.peer.index}:${path.epoch}:${path.pathId}:${path.attrs.id}`;
    if (this.paths.get(key) === path) {
      this.paths.delete(key);
      this.attrs.unref(path.attrs);
    }
  }

  /** Loop checks of RFC 4271 §9.1.2 (our AS in the path) and RFC 4456 §8 (originator, cluster list). */
  private looped(p: RibPeer, a: Readonly<PathAttributes>): boolean {
    if (!p.ibgp && a.asPath?.some((s) => s.asns.includes(this.localAsn))) return true;
    if (a.originatorId === this.routerId) return true;
    if (a.clusterList?.includes(this.clusterId)) return true;
    return false;
  }

  /**
   * The path to store for an announcement after loop checks and import policy, or null when rejected.
   * The result carries one reference for the caller.
   */
  private importPath(
    p: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    pathId: number,
    set: AttrSet,
  ): Path | null {
    const pol = p.importPolicy;
    const cacheable = pathId === 0 && pol.prefixIndependent;
    if (cacheable) {
      // The prefixes of one UPDATE share a set: remember the last lookup, one Map probe per UPDATE.
      const hit =
        this.memoPeer === p && this.memoSet === set ? this.memoPath : p.importCache.get(set.id)?.path;
      if (hit !== undefined) {
        this.memoPeer = p;
        this.memoSet = set;
        this.memoPath = hit;
        if (hit) this.refPath(hit);
        return hit;
      }
      // Emptied before the verdict is computed: the fresh result takes no reference until cached.
      if (p.importCache.size >= CACHE_MAX) this.clearImportCache(p);
    }
    let result: Path | null = null;
    if (!this.looped(p, set.attrs)) {
      const verdict = pol === ACCEPT_ALL ? -1 : evaluatePolicy(pol, afi, len, v4, v6, set);
      if (accepts(pol, verdict)) {
        const out = applyActions(pol, verdict, set.attrs, this.localAsn);
        const outSet = out === set.attrs ? set : this.attrs.intern(out, set.nextHops);
        result = this.path(p, pathId, outSet);
        if (outSet.refs === 0) this.attrs.dropIfUnused(outSet);
      }
    }
    if (cacheable) {
      p.importCache.set(set.id, { set, path: result });
      this.attrs.ref(set);
      if (result) this.refPath(result);
    }
    if (result) this.refPath(result);
    return result;
  }

  /**
   * A peer announced `len`/`v4|v6` (with ADD-PATH id `pathId`, else 0) with attribute set `set`
   * (from {@link internFromPeer}). Applies loop checks and import policy; a rejected announcement
   * withdraws the peer's previous path (RFC 4271 §9.1.2: an UPDATE replaces the earlier route).
   */
  announce(
    p: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    pathId: number,
    set: AttrSet,
  ): RouteChange | null {
    const path = this.importPath(p, afi, len, v4, v6, pathId, set);
    if (!path) {
      p.rejected++;
      return this.remove(p, afi, len, v4, v6, pathId, false);
    }
    return this.insert(afi, len, v4, v6, path);
  }

  /** {@link announce} for an IPv4 prefix given as a number (a shorthand; it takes the same path). */
  announceV4(p: RibPeer, addr: number, len: number, pathId: number, set: AttrSet): RouteChange | null {
    return this.announce(p, Afi.IPv4, len, addr, null, pathId, set);
  }

  /** A peer withdrew a prefix (path id 0 without ADD-PATH). */
  withdraw(p: RibPeer, afi: Afi, len: number, v4: number, v6: Uint8Array | null, pathId: number) {
    return this.remove(p, afi, len, v4, v6, pathId, false);
  }

  /** Originates a route from this speaker (replacing an earlier one for the same prefix). */
  originate(
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    attrs: Readonly<PathAttributes>,
    nextHops: readonly string[],
  ) {
    const set = this.attrs.intern(
      { origin: 0, ...attrs, localPref: attrs.localPref ?? DEFAULT_LOCAL_PREF },
      nextHops,
    );
    const path = this.path(this.local, 0, set);
    this.refPath(path);
    return this.insert(afi, len, v4, v6, path);
  }

  /** Withdraws a route this speaker originated. */
  withdrawLocal(afi: Afi, len: number, v4: number, v6: Uint8Array | null): RouteChange | null {
    return this.remove(this.local, afi, len, v4, v6, 0, false);
  }

  private getSlot(afi: Afi, len: number, v4: number, v6: Uint8Array | null): Slot | undefined {
    return afi === Afi.IPv4 ? this.table.getV4(v4, len) : this.table.getV6(v6!, len);
  }

  private setSlot(afi: Afi, len: number, v4: number, v6: Uint8Array | null, s: Slot): void {
    if (afi === Afi.IPv4) this.table.setV4(v4, len, s);
    else this.table.setV6(v6!, len, s);
  }

  private deleteSlot(afi: Afi, len: number, v4: number, v6: Uint8Array | null): void {
    if (afi === Afi.IPv4) this.table.deleteV4(v4, len);
    else this.table.deleteV6(v6!, len);
  }

  /** Inserts `path` (carrying one reference), replacing the same peer's path with the same id. */
  private insert(afi: Afi, len: number, v4: number, v6: Uint8Array | null, path: Path): RouteChange | null {
    // A new IPv4 destination (the bulk of a full-table load) is stored by the same probe that finds it
    // absent.
    const slot = afi === Afi.IPv4 ? this.table.setV4IfAbsent(v4, len, path) : this.getSlot(afi, len, v4, v6);
    const peer = path.peer as RibPeer;
    if (slot === undefined) {
      if (afi !== Afi.IPv4) this.setSlot(afi, len, v4, v6, path);
      peer.accepted++;
      if (this.decision.igpCost) return this.rechoose(afi, len, v4, v6, [path], null, []);
      return { afi, len, v4, v6, best: path, previous: null, multipath: [path] };
    }
    if (!(slot instanceof Dest)) {
      if (slot.peer === path.peer && slot.pathId === path.pathId) {
        this.setSlot(afi, len, v4, v6, path);
        this.unrefPath(slot);
        if (slot === path) return null;
        return this.rechoose(afi, len, v4, v6, [path], slot, [slot]);
      }
      peer.accepted++;
      return this.rechoose(afi, len, v4, v6, [slot, path], slot, [slot]);
    }
    const paths = slot.paths;
    const prevBest = paths[0]!;
    const prevMulti = paths.slice(0, slot.multi);
    const i = paths.findIndex((q) => q.peer === path.peer && q.pathId === path.pathId);
    if (i >= 0) {
      const old = paths[i]!;
      paths[i] = path;
      this.unrefPath(old);
      if (old === path) return null;
    } else {
      paths.push(path);
      peer.accepted++;
    }
    return this.rechoose(afi, len, v4, v6, paths, prevBest, prevMulti);
  }

  /** Removes a peer's path; `staleOnly` removes it only when it is from an older epoch. */
  private remove(
    p: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    pathId: number,
    staleOnly: boolean,
  ): RouteChange | null {
    const slot = this.getSlot(afi, len, v4, v6);
    if (slot === undefined) return null;
    if (!(slot instanceof Dest)) {
      if (slot.peer !== p || slot.pathId !== pathId || (staleOnly && slot.epoch === p.epoch)) return null;
      this.deleteSlot(afi, len, v4, v6);
      p.accepted--;
      this.unrefPath(slot);
      return { afi, len, v4, v6, best: null, previous: slot, multipath: [] };
    }
    const paths = slot.paths;
    const i = paths.findIndex(
      (q) => q.peer === p && q.pathId === pathId && !(staleOnly && q.epoch === p.epoch),
    );
    if (i < 0) return null;
    const prevBest = paths[0]!;
    const prevMulti = paths.slice(0, slot.multi);
    const [old] = paths.splice(i, 1);
    p.accepted--;
    this.unrefPath(old!);
    return this.rechoose(afi, len, v4, v6, paths, prevBest, prevMulti);
  }

  /** Runs the decision process for a destination and stores the result; returns the change, if any. */
  private rechoose(
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    paths: Path[],
    prevBest: Path | null,
    prevMulti: readonly Path[],
  ): RouteChange | null {
    if (paths.length === 0) {
      this.deleteSlot(afi, len, v4, v6);
      return prevBest ? { afi, len, v4, v6, best: null, previous: prevBest, multipath: [] } : null;
    }
    const d = decide(paths, this.decision);
    if (paths.length === 1) this.setSlot(afi, len, v4, v6, paths[0]!);
    else {
      const order = [...d.multipath, ...paths.filter((q) => !d.multipath.includes(q))];
      this.setSlot(afi, len, v4, v6, new Dest(order, d.multipath.length));
    }
    const same =
      d.best === prevBest &&
      d.multipath.length === prevMulti.length &&
      d.multipath.every((q, i) => q === prevMulti[i]);
    if (same) return null;
    return { afi, len, v4, v6, best: d.best, previous: prevBest, multipath: d.multipath };
  }

  /** The best path of a destination, or undefined. */
  best(afi: Afi, len: number, v4: number, v6: Uint8Array | null): Path | undefined {
    const s = this.getSlot(afi, len, v4, v6);
    if (s === undefined) return undefined;
    return s instanceof Dest ? s.paths[0] : s;
  }

  /** All candidate paths of a destination, best (and multipath set) first. */
  candidates(afi: Afi, len: number, v4: number, v6: Uint8Array | null): readonly Path[] {
    const s = this.getSlot(afi, len, v4, v6);
    if (s === undefined) return [];
    return s instanceof Dest ? s.paths : [s];
  }

  /** The multipath set of a destination, best first. */
  multipath(afi: Afi, len: number, v4: number, v6: Uint8Array | null): readonly Path[] {
    const s = this.getSlot(afi, len, v4, v6);
    if (s === undefined) return [];
    return s instanceof Dest ? s.paths.slice(0, s.multi) : [s];
  }

  /** Walks the Loc-RIB: every destination with its best path and multipath set. */
  forEachBest(
    cb: (
      afi: Afi,
      len: number,
      v4: number,
      v6: Uint8Array | null,
      best: Path,
      multi: readonly Path[],
    ) => void,
  ) {
    this.table.forEach((afi, len, v4, v6, s) => {
      if (s instanceof Dest) cb(afi, len, v4, v6, s.paths[0]!, s.paths.slice(0, s.multi));
      else cb(afi, len, v4, v6, s, [s]);
    });
  }

  /** Walks the Adj-RIB-In of one peer (the candidates it contributed). */
  forEachFromPeer(
    p: RibPeer,
    cb: (afi: Afi, len: number, v4: number, v6: Uint8Array | null, path: Path) => void,
  ) {
    this.table.forEach((afi, len, v4, v6, s) => {
      if (s instanceof Dest) {
        for (const q of s.paths) if (q.peer === p) cb(afi, len, v4, v6, q);
      } else if (s.peer === p) cb(afi, len, v4, v6, s);
    });
  }

  /**
   * Removes every path of `p` (session down without graceful restart, or peer removed), or only those
   * of family `afi` (RFC 7606 AFI/SAFI disable), reporting each best-path change to `onChange`.
   */
  dropPeer(p: RibPeer, onChange: (c: RouteChange) => void, afi?: Afi | undefined): void {
    this.sweep(p, false, onChange, afi);
    if (afi === undefined) this.clearImportCache(p);
  }

  /**
   * Graceful restart (RFC 4724 §4.2), receiving side: the peer's session went down; keep its paths but
   * mark them stale (a new epoch starts, so re-announced paths are fresh).
   */
  markStale(p: RibPeer): void {
    p.epoch++;
    this.clearImportCache(p);
  }

  /** Number of stale paths of a peer. */
  countStale(p: RibPeer): number {
    let n = 0;
    this.forEachFromPeer(p, (_a, _l, _v4, _v6, q) => {
      if (q.epoch !== p.epoch) n++;
    });
    return n;
  }

  /** Removes the peer's stale paths (End-of-RIB received, or the restart/stale timer expired). */
  sweepStale(p: RibPeer, onChange: (c: RouteChange) => void, afi?: Afi | undefined): void {
    this.sweep(p, true, onChange, afi);
  }

  private sweep(p: RibPeer, staleOnly: boolean, onChange: (c: RouteChange) => void, afi?: Afi | undefined) {
    const victims: [Afi, number, number, Uint8Array | null, number][] = [];
    this.forEachFromPeer(p, (a, len, v4, v6, q) => {
      if (afi !== undefined && a !== afi) return;
      if (staleOnly && q.epoch === p.epoch) return;
      victims.push([a, len, v4, v6, q.pathId]);
    });
    for (const [a, len, v4, v6, pathId] of victims) {
      const c = this.remove(p, a, len, v4, v6, pathId, staleOnly);
      if (c) onChange(c);
    }
  }

  // ---- Adj-RIB-Out ----

  /**
   * An update group's export view (FRR's update-group, BIRD's and GoBGP's shared export): a pseudo-peer
   * with `like`'s export settings (everything {@link Rib.exportGroupId} is made of) and its own, empty,
   * Adj-RIB-Out and export cache, for peers that export alike to share one export computation and one
   * Adj-RIB-Out. It is never a route's source (so {@link Rib.exportAttrs} never applies split horizon to
   * it: what differs per member, a route not going back to its source, is the caller's) and is not in
   * the peer table. Free it with {@link Rib.clearOut}.
   */
  addUpdateGroup(like: RibPeer): RibPeer {
    const g = this.makePeer(-++this.nextGroup, { address: like.address, asn: like.asn });
    g.routeReflectorClient = like.routeReflectorClient;
    g.nextHopSelf = like.nextHopSelf;
    g.exportPolicy = like.exportPolicy;
    g.families = like.families;
    g.localAddress4 = like.localAddress4;
    g.localAddress6 = like.localAddress6;
    g.out = new PrefixTable<AttrSet>();
    return g;
  }

  /** Starts advertising to a peer: an empty Adj-RIB-Out. */
  openOut(p: RibPeer): void {
    this.clearOut(p);
    p.out = new PrefixTable<AttrSet>();
  }

  /** Stops advertising to a peer and forgets its Adj-RIB-Out. */
  clearOut(p: RibPeer): void {
    if (p.out) {
      p.out.forEach((_a, _l, _v4, _v6, set) => {
        this.attrs.unref(set);
      });
      p.out = null;
    }
    this.clearExportCache(p);
  }

  private clearExportCache(p: RibPeer): void {
    for (const e of p.exportCache.values()) {
      if (e.out) this.attrs.unref(e.out);
      this.attrs.unref(e.set);
    }
    p.exportCache.clear();
  }

  /**
   * The attribute set to advertise to `to` for a destination whose best path is `best`, or null when
   * it must not be advertised: split horizon, iBGP rules with route reflection (RFC 4456 §6),
   * NO_EXPORT/NO_ADVERTISE, eBGP attribute rewriting, next hop, then the export policy.
   */
  /**
   * Starts exporting one best-path change to many peers: until the next call, {@link Rib.exportChange}
   * with the returned batch number computes each export group's result once and reuses it for the
   * group's other peers. Valid for ONE destination and best path.
   */
  beginExportBatch(): number {
    return ++this.exportBatch;
  }

  /**
   * `to`'s export group id, recomputed when anything it is made of changed: peers with the same id
   * export every route alike, except that a route is never exported to the peer it came from.
   */
  exportGroupId(to: RibPeer): number {
    const g = to.exportGroup;
    if (
      g !== null &&
      g.policy === to.exportPolicy &&
      g.ibgp === to.ibgp &&
      g.routeReflectorClient === to.routeReflectorClient &&
      g.nextHopSelf === to.nextHopSelf &&
      g.localAddress4 === to.localAddress4 &&
      g.localAddress6 === to.localAddress6 &&
      g.families === to.families
    )
      return g.id;
    const text = `${to.exportPolicy.key}|${to.ibgp}|${to.routeReflectorClient}|${to.nextHopSelf}|${to.localAddress4}|${to.localAddress6}|${[...to.families].sort().join(",")}`;
    let id = this.exportGroups.get(text);
    if (id === undefined) {
      id = this.exportGroups.size;
      this.exportGroups.set(text, id);
    }
    to.exportGroup = {
      id,
      policy: to.exportPolicy,
      ibgp: to.ibgp,
      routeReflectorClient: to.routeReflectorClient,
      nextHopSelf: to.nextHopSelf,
      localAddress4: to.localAddress4,
      localAddress6: to.localAddress6,
      families: to.families,
    };
    return id;
  }

  exportAttrs(
    to: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    best: Path | null,
    batch?: number,
  ) {
    if (!best) return null;
    const from = best.peer as RibPeer;
    if (from === to) return null;
    if (!to.families.has(`${afi}/1`)) return null;
    const reflect = from.ibgp && to.ibgp;
    if (reflect) {
      // RFC 4456 §6: client routes go to everyone; non-client routes to clients only; no RR: nobody.
      if (!from.routeReflectorClient && !to.routeReflectorClient) return null;
    }
    if (batch === undefined) return this.exportFor(to, from, afi, len, v4, v6, best, reflect);
    // Everything below depends on `to` only through its export group.
    const g = this.exportGroupId(to);
    if (this.memoBatch[g] === batch) return this.memoOut[g]!;
    const out = this.exportFor(to, from, afi, len, v4, v6, best, reflect);
    this.memoBatch[g] = batch;
    this.memoOut[g] = out;
    return out;
  }

  private exportFor(
    to: RibPeer,
    from: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    best: Path,
    reflect: boolean,
  ): AttrSet | null {
    const pol = to.exportPolicy;
    const cacheable = pol.prefixIndependent;
    // The family is part of the key: one attribute set (e.g. our own routes, which carry no next hop)
    // can be exported as IPv4 and as IPv6, with a different next hop each.
    const cacheKey = (best.attrs.id * 65536 + from.index) * 2 + (afi === Afi.IPv6 ? 1 : 0);
    if (cacheable) {
      const hit = to.exportCache.get(cacheKey);
      if (hit !== undefined) return hit.out;
      if (to.exportCache.size >= CACHE_MAX) this.clearExportCache(to);
    }
    const result = this.computeExport(to, from, afi, len, v4, v6, best.attrs, reflect);
    if (cacheable) {
      to.exportCache.set(cacheKey, { set: best.attrs, out: result });
      this.attrs.ref(best.attrs);
      if (result) this.attrs.ref(result);
    }
    return result;
  }

  private computeExport(
    to: RibPeer,
    from: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    set: AttrSet,
    reflect: boolean,
  ): AttrSet | null {
    const a = set.attrs;
    const comms = a.communities;
    if (comms) {
      if (comms.includes(NO_ADVERTISE)) return null;
      if (!to.ibgp && (comms.includes(NO_EXPORT) || comms.includes(NO_EXPORT_SUBCONFED))) return null;
    }
    const pol = to.exportPolicy;
    const verdict = pol === ACCEPT_ALL ? -1 : evaluatePolicy(pol, afi, len, v4, v6, set);
    if (!accepts(pol, verdict)) return null;
    let out: PathAttributes = { ...a };
    let nextHopSelf = to.nextHopSelf || wantsNextHopSelf(pol, verdict) || set.nextHops.length === 0;
    if (!to.ibgp) {
      const path = a.asPath ?? [];
      const first = path[0];
      out.asPath =
        first && first.type === 2 && first.asns.length < 255
          ? [{ type: 2, asns: [this.localAsn, ...first.asns] }, ...path.slice(1)]
          : [{ type: 2, asns: [this.localAsn] }, ...path];
      delete out.localPref;
      delete out.originatorId;
      delete out.clusterList;
      // RFC 4271 §5.1.4: a MED learned from one AS is not passed to another.
      if (from.index !== 0 && !from.ibgp) delete out.med;
      nextHopSelf = true;
    } else {
      if (out.localPref === undefined) out.localPref = DEFAULT_LOCAL_PREF;
      if (!out.asPath) out.asPath = [];
      if (reflect) {
        out.originatorId = a.originatorId ?? from.routerId;
        out.clusterList = [this.clusterId, ...(a.clusterList ?? [])];
      }
    }
    out = applyActions(pol, verdict, out, this.localAsn);
    let nextHops = set.nextHops;
    // An IPv4 route learned with an IPv6 next hop (RFC 8950) cannot be passed on in NEXT_HOP.
    if (afi === Afi.IPv4 && nextHops[0]?.includes(":")) nextHopSelf = true;
    if (nextHopSelf) {
      const self = afi === Afi.IPv4 ? to.localAddress4 : to.localAddress6;
      if (self === null) return null;
      nextHops = [self];
    }
    if (afi === Afi.IPv4 && nextHops.length > 0) out.nextHop = nextHops[0]!;
    else delete out.nextHop;
    return this.attrs.intern(out, nextHops);
  }

  /**
   * Forgets `to`'s Adj-RIB-Out entry for a destination if it still holds `set`: the speaker could not
   * send that announcement (RFC 8654 §4: too large for the peer), so the Adj-RIB-Out must not claim it.
   * Returns true when the entry was removed (the destination is then withdrawn from the peer).
   */
  unadvertise(to: RibPeer, afi: Afi, len: number, v4: number, v6: Uint8Array | null, set: AttrSet): boolean {
    const out = to.out;
    if (!out) return false;
    const cur = afi === Afi.IPv4 ? out.getV4(v4, len) : out.getV6(v6!, len);
    if (cur !== set) return false;
    if (afi === Afi.IPv4) out.deleteV4(v4, len);
    else out.deleteV6(v6!, len);
    this.attrs.unref(set);
    return true;
  }

  /**
   * Updates `to`'s Adj-RIB-Out for one destination after a best-path change. Returns the set to
   * advertise, null to withdraw, or undefined when nothing changes for this peer.
   */
  exportChange(
    to: RibPeer,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    best: Path | null,
    batch?: number,
  ): AttrSet | null | undefined {
    const out = to.out;
    if (!out) return undefined;
    const next = this.exportAttrs(to, afi, len, v4, v6, best, batch);
    const prev = afi === Afi.IPv4 ? out.getV4(v4, len) : out.getV6(v6!, len);
    if (next === prev || (next === null && prev === undefined)) {
      if (next && next.refs === 0) this.attrs.dropIfUnused(next);
      return undefined;
    }
    if (next) {
      this.attrs.ref(next);
      if (afi === Afi.IPv4) out.setV4(v4, len, next);
      else out.setV6(v6!, len, next);
    } else if (afi === Afi.IPv4) out.deleteV4(v4, len);
    else out.deleteV6(v6!, len);
    if (prev) this.attrs.unref(prev);
    return next;
  }
}
