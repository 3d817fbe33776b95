/**
 * Interned, shared, refcounted attribute sets (hash-consing). A full table has about a million routes
 * but a few hundred thousand distinct attribute sets at most (BIRD's static generator: one), so routes
 * point at one shared {@link AttrSet} and the values the decision process needs are computed once.
 *
 * @packageDocumentation
 */

import { parseIpv4 } from "../wire/ip.js";
import type { AsPathSegment, PathAttributes } from "../wire/types.js";

/**
 * One interned attribute set. Immutable apart from `refs`; `attrs` never carries MP_REACH/MP_UNREACH
 * (the next hops live in `nextHops`).
 */
export interface AttrSet {
  /** Small integer id, unique among live sets of one store. */
  readonly id: number;
  readonly key: string;
  readonly attrs: Readonly<PathAttributes>;
  /** Next hop(s): the NEXT_HOP attribute or the MP_REACH next hops (IPv6 global first). */
  readonly nextHops: readonly string[];
  /** Derived once for the decision process. */
  readonly localPref: number;
  readonly asPathLength: number;
  /** Leftmost AS of AS_PATH, or 0 when the path is empty (a route from inside our AS). */
  readonly neighborAs: number;
  readonly origin: number;
  readonly med: number;
  /** ORIGINATOR_ID as a number, or -1. */
  readonly originatorId: number;
  readonly clusterListLength: number;
  refs: number;
}

/** Default LOCAL_PREF (RFC 4271 leaves it to the operator; BIRD, GoBGP and Cisco use 100). */
export const DEFAULT_LOCAL_PREF = 100;

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? "0" : "") + b[i]!.toString(16);
  return s;
}

function pathText(p: readonly AsPathSegment[] | undefined): string {
  if (!p) return "";
  let s = "";
  for (const seg of p) s += `${seg.type}:${seg.asns.join(",")};`;
  return s;
}

/** Canonical text of an attribute set: equal text ⇔ equal attributes (the intern key). */
export function attrKey(a: Readonly<PathAttributes>, nextHops: readonly string[]): string {
  let k = `${a.origin ?? ""}|${pathText(a.asPath)}|${nextHops.join(",")}|${a.med ?? ""}|${a.localPref ?? ""}|`;
  k += `${a.atomicAggregate ? 1 : 0}|${a.aggregator ? `${a.aggregator.asn}@${a.aggregator.address}` : ""}|`;
  k += `${a.communities ? a.communities.join(",") : ""}|`;
  k += `${a.extendedCommunities ? a.extendedCommunities.map(hex).join(",") : ""}|`;
  k += `${a.largeCommunities ? a.largeCommunities.map((l) => l.join(":")).join(",") : ""}|`;
  k += `${a.originatorId ?? ""}|${a.clusterList ? a.clusterList.join(",") : ""}|`;
  if (a.unknown) for (const u of a.unknown) k += `${u.typeCode}/${u.flags}/${hex(u.data)};`;
  return k;
}

function asPathLength(p: readonly AsPathSegment[] | undefined): number {
  if (!p) return 0;
  let n = 0;
  // RFC 4271 §9.1.2.2 a: an AS_SET counts as 1; confederation segments do not count (RFC 5065 §5.3).
  for (const seg of p) n += seg.type === 2 ? seg.asns.length : seg.type === 1 ? 1 : 0;
  return n;
}

function neighborAs(p: readonly AsPathSegment[] | undefined): number {
  if (!p) return 0;
  for (const seg of p) {
    if (seg.type === 2 && seg.asns.length > 0) return seg.asns[0]!;
    if (seg.type === 1) return 0;
  }
  return 0;
}

function ipv4Number(s: string | undefined): number {
  return s === undefined ? -1 : (parseIpv4(s) ?? -1);
}

/** Interning store of {@link AttrSet}s. */
export class AttrStore {
  private readonly byKey = new Map<string, AttrSet>();
  private readonly freeIds: number[] = [];
  private nextId = 1;

  /** Number of live (referenced or cached) sets. */
  get size(): number {
    return this.byKey.size;
  }

  /**
   * The shared set for `attrs` with `nextHops` (MP_REACH/MP_UNREACH of `attrs` are ignored). The caller
   * takes no reference: call {@link ref} for each route that keeps it.
   */
  intern(attrs: Readonly<PathAttributes>, nextHops: readonly string[]): AttrSet {
    const key = attrKey(attrs, nextHops);
    const hit = this.byKey.get(key);
    if (hit) return hit;
    const { mpReach: _r, mpUnreach: _u, ...plain } = attrs;
    const frozen = Object.freeze(plain);
    const set: AttrSet = {
      id: this.freeIds.pop() ?? this.nextId++,
      key,
      attrs: frozen,
      nextHops: Object.freeze([...nextHops]),
      localPref: attrs.localPref ?? DEFAULT_LOCAL_PREF,
      asPathLength: asPathLength(attrs.asPath),
      neighborAs: neighborAs(attrs.asPath),
      origin: attrs.origin ?? 2,
      // RFC 4271 §9.1.2.2 c: a missing MED counts as the lowest value.
      med: attrs.med ?? 0,
      originatorId: ipv4Number(attrs.originatorId),
      clusterListLength: attrs.clusterList?.length ?? 0,
      refs: 0,
    };
    this.byKey.set(key, set);
    return set;
  }

  /** Takes one reference. */
  ref(set: AttrSet): void {
    set.refs++;
  }

  /** Forgets a set that {@link intern} returned but nothing referenced (e.g. a rejected route). */
  dropIfUnused(set: AttrSet): void {
    if (set.refs <= 0 && this.byKey.get(set.key) === set) {
      this.byKey.delete(set.key);
      this.freeIds.push(set.id);
    }
  }

  /** Drops one reference; the set is forgotten when none remain. */
  unref(set: AttrSet): void {
    if (--set.refs <= 0 && this.byKey.get(set.key) === set) {
      this.byKey.delete(set.key);
      this.freeIds.push(set.id);
    }
  }
}
