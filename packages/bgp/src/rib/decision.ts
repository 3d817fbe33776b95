/**
 * The BGP decision process: RFC 4271 §9.1.2.2 with the RFC 4456 §9 tie-breaks and a multipath (ECMP)
 * set. Runs as successive elimination over the candidate paths of one destination (pairwise sorting is
 * wrong because MED only compares paths from the same neighbouring AS).
 *
 * @packageDocumentation
 */

import type { AttrSet } from "./attrs.js";

/** The peer a path came from, as far as the decision process needs it. */
export interface DecisionPeer {
  /** 0 for routes we originate. */
  readonly index: number;
  readonly ibgp: boolean;
  /** BGP identifier as an unsigned number (0 until the session is up). */
  readonly routerIdNum: number;
  /** Peer address as 32 hex digits (IPv4 mapped), compared as text. */
  readonly addressRank: string;
}

/** One candidate path: interned and shared by every prefix it was announced for. */
export interface Path {
  readonly peer: DecisionPeer;
  /** The peer's session epoch when learned (graceful restart: older epochs are stale). */
  readonly epoch: number;
  readonly pathId: number;
  readonly attrs: AttrSet;
  refs: number;
}

/** Options of the decision process. */
export interface DecisionOptions {
  /** Compare MED across neighbouring ASes (BIRD `med metric`, GoBGP `always-compare-med`). */
  readonly alwaysCompareMed: boolean;
  /** Maximum size of the multipath set (1: no ECMP). */
  readonly maxPaths: number;
  /**
   * IGP cost to a next hop: a number (lower wins), `undefined` (unknown: cost 0) or `null` (unreachable:
   * the path is not a candidate).
   */
  readonly igpCost: ((nextHop: string) => number | null | undefined) | undefined;
}

/** Result of {@link decide}. */
export interface Decision {
  /** Best path, or null when no candidate is usable. */
  readonly best: Path | null;
  /** Best path first, then the paths equal to it through the IGP-cost step (at most `maxPaths`). */
  readonly multipath: Path[];
}

function keepMin(paths: Path[], f: (p: Path) => number): Path[] {
  let m = Number.POSITIVE_INFINITY;
  for (const p of paths) m = Math.min(m, f(p));
  return paths.filter((p) => f(p) === m);
}

function keepMax(paths: Path[], f: (p: Path) => number): Path[] {
  let m = Number.NEGATIVE_INFINITY;
  for (const p of paths) m = Math.max(m, f(p));
  return paths.filter((p) => f(p) === m);
}

function cost(o: DecisionOptions, p: Path): number {
  if (!o.igpCost) return 0;
  const nh = p.attrs.nextHops[0];
  if (nh === undefined) return 0;
  const c = o.igpCost(nh);
  return c === null ? Number.POSITIVE_INFINITY : (c ?? 0);
}

function routerId(p: Path): number {
  // RFC 4456 §9: a reflected route's ORIGINATOR_ID stands in for the BGP identifier.
  return p.attrs.originatorId >= 0 ? p.attrs.originatorId : p.peer.routerIdNum;
}

/** Runs the decision process over the candidates of one destination. */
export function decide(candidates: readonly Path[], o: DecisionOptions): Decision {
  let c = o.igpCost ? candidates.filter((p) => cost(o, p) !== Number.POSITIVE_INFINITY) : [...candidates];
  if (c.length === 0) return { best: null, multipath: [] };
  if (c.length === 1) return { best: c[0]!, multipath: [c[0]!] };
  // Our own routes first (like Cisco's weight for locally originated routes).
  if (c.some((p) => p.peer.index === 0)) c = c.filter((p) => p.peer.index === 0);
  c = keepMax(c, (p) => p.attrs.localPref); // §9.1.2.1 degree of preference
  c = keepMin(c, (p) => p.attrs.asPathLength); // §9.1.2.2 a
  c = keepMin(c, (p) => p.attrs.origin); // b
  if (o.alwaysCompareMed) c = keepMin(c, (p) => p.attrs.med);
  else {
    // c: remove a path when another path from the same neighbouring AS has a lower MED.
    c = c.filter(
      (p) => !c.some((q) => q.attrs.neighborAs === p.attrs.neighborAs && q.attrs.med < p.attrs.med),
    );
  }
  if (c.some((p) => !p.peer.ibgp)) c = c.filter((p) => !p.peer.ibgp); // d
  if (o.igpCost) c = keepMin(c, (p) => cost(o, p)); // e
  const equalCost = c;
  c = keepMin(c, (p) => p.attrs.clusterListLength); // RFC 4456 §9
  c = keepMin(c, routerId); // f
  if (c.length > 1) {
    // g: lowest peer address, then (ADD-PATH) lowest path id for a deterministic choice.
    let best = c[0]!;
    for (const p of c) {
      if (
        p.peer.addressRank < best.peer.addressRank ||
        (p.peer.addressRank === best.peer.addressRank && p.pathId < best.pathId)
      ) {
        best = p;
      }
    }
    c = [best];
  }
  const best = c[0]!;
  const multipath = [best];
  if (o.maxPaths > 1) {
    const seen = new Set(best.attrs.nextHops[0] === undefined ? [] : [best.attrs.nextHops[0]]);
    for (const p of equalCost) {
      if (multipath.length >= o.maxPaths) break;
      if (p === best) continue;
      // eBGP multipath needs the same neighbouring AS; every member must add a distinct next hop.
      if (!best.peer.ibgp && p.attrs.neighborAs !== best.attrs.neighborAs) continue;
      const nh = p.attrs.nextHops[0];
      if (nh === undefined || seen.has(nh)) continue;
      seen.add(nh);
      multipath.push(p);
    }
  }
  return { best, multipath };
}
