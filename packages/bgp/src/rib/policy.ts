/**
 * Import and export policies: an ordered list of statements, first match wins, each with match
 * conditions (prefix lists with ge/le, communities, large communities, AS path) and actions (reject,
 * set local-pref/MED, add/remove communities, next-hop-self, AS-path prepend). Policies are plain data,
 * compiled once into matchers; evaluation allocates nothing unless attributes change.
 *
 * @packageDocumentation
 */

import { invalid } from "../errors/config-error.js";
import { parseIpv4, parseIpv6, parsePrefixLength } from "../wire/ip.js";
import { Afi, type PathAttributes } from "../wire/types.js";
import type { AttrSet } from "./attrs.js";

/** One prefix-list entry: `prefix` matches itself, or lengths in [ge, le] inside it when given. */
export interface PrefixListEntry {
  /** `addr/len`, e.g. `10.0.0.0/8` or `2001:db8::/32`. */
  prefix: string;
  /** Minimum length (default: the prefix's own length, or `le`'s floor when only `le` is set). */
  ge?: number | undefined;
  /** Maximum length (default: `ge` given → the family maximum; else the prefix's own length). */
  le?: number | undefined;
}

/** Match conditions: all given conditions must hold (AND); each list matches if any member does (OR). */
export interface PolicyMatch {
  /** The route's prefix is in this list. */
  prefixes?: readonly PrefixListEntry[] | undefined;
  /** The route carries any of these RFC 1997 communities (`"65000:100"`, or a well-known name). */
  communities?: readonly string[] | undefined;
  /** The route carries any of these large communities (`"65000:1:2"`). */
  largeCommunities?: readonly string[] | undefined;
  /**
   * Regular expression over the AS path as text (ASNs separated by single spaces, AS_SETs in braces),
   * e.g. `^65001 ` (learned from 65001) or `(^| )64512$` (originated by 64512).
   */
  asPath?: string | undefined;
  /** The AS path contains one of these ASNs. */
  asPathContains?: readonly number[] | undefined;
  /** Only routes of this family. */
  family?: "ipv4" | "ipv6" | undefined;
}

/** Actions of a matching statement. */
export interface PolicyActions {
  /** Drop the route (import: not stored; export: not advertised, withdrawn if it was). */
  reject?: boolean | undefined;
  localPref?: number | undefined;
  med?: number | undefined;
  addCommunities?: readonly string[] | undefined;
  removeCommunities?: readonly string[] | undefined;
  addLargeCommunities?: readonly string[] | undefined;
  removeLargeCommunities?: readonly string[] | undefined;
  /** Export only: advertise our session address as next hop. */
  nextHopSelf?: boolean | undefined;
  /** Export only: prepend our ASN this many extra times. */
  prependAs?: number | undefined;
}

/** One statement. A statement without `match` matches every route. */
export interface PolicyStatement {
  match?: PolicyMatch | undefined;
  actions: PolicyActions;
}

/** A policy: statements in order, then the default verdict (default `accept`). */
export interface Policy {
  statements: readonly PolicyStatement[];
  default?: "accept" | "reject" | undefined;
}

const WELL_KNOWN: Record<string, number> = {
  "no-export": 0xffffff01,
  "no-advertise": 0xffffff02,
  "no-export-subconfed": 0xffffff03,
  "no-peer": 0xffffff04,
  blackhole: 0xffff029a,
  "graceful-shutdown": 0xffff0000,
  "llgr-stale": 0xffff0006,
};

/** Parses `"a:b"` or a well-known community name into its 32-bit value. */
export function parseCommunity(text: string, field = "community"): number {
  const w = WELL_KNOWN[text.toLowerCase()];
  if (w !== undefined) return w;
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[1]) > 0xffff || Number(m[2]) > 0xffff)
    throw invalid(field, text, "expected a:b (16-bit each)");
  return ((Number(m[1]) << 16) | Number(m[2])) >>> 0;
}

/** Parses `"a:b:c"` into a large community. */
export function parseLargeCommunity(text: string, field = "largeCommunity"): [number, number, number] {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text);
  if (!m) throw invalid(field, text, "expected a:b:c (32-bit each)");
  const v: [number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (v.some((x) => x > 0xffffffff)) throw invalid(field, text, "values are 32-bit");
  return v;
}

/** Text of a 32-bit community, `a:b`. */
export function formatCommunity(c: number): string {
  return `${c >>> 16}:${c & 0xffff}`;
}

/** A prefix-list entry compiled for matching: the address as a number (IPv4) or bytes (IPv6), with ge/le. */
export interface CompiledPrefix {
  afi: Afi;
  len: number;
  v4: number;
  v6: Uint8Array | null;
  ge: number;
  le: number;
}

/** A {@link PolicyStatement} compiled once for matching: sets instead of lists, a RegExp for AS paths. */
export interface CompiledStatement {
  prefixes: CompiledPrefix[] | null;
  communities: Set<number> | null;
  large: string[] | null;
  asPath: RegExp | null;
  asPathContains: Set<number> | null;
  afi: Afi | 0;
  actions: PolicyActions;
  addCommunities: number[];
  removeCommunities: Set<number>;
  addLarge: [number, number, number][];
  removeLarge: Set<string>;
  /** The actions change attributes (so results are cached per input set). */
  modifies: boolean;
}

/** A compiled {@link Policy}. */
export interface CompiledPolicy {
  readonly statements: readonly CompiledStatement[];
  readonly defaultAccept: boolean;
  /** True when no statement looks at the prefix: the verdict then depends on the attributes only. */
  readonly prefixIndependent: boolean;
  /**
   * The policy as configured, as text: two policies with equal text act alike, so peers given equal
   * policies (even as separate objects) can share an update group.
   */
  readonly key: string;
}

/** Accepts everything, changes nothing. */
export const ACCEPT_ALL: CompiledPolicy = Object.freeze({
  statements: [],
  defaultAccept: true,
  prefixIndependent: true,
  key: "accept-all",
});

function parseIp(text: string, field: string): { afi: Afi; v4: number; v6: Uint8Array | null } {
  if (text.includes(":")) {
    const b = parseIpv6(text);
    if (b === undefined) throw invalid(field, text, "bad IPv6 address");
    return { afi: Afi.IPv6, v4: 0, v6: b };
  }
  const v4 = parseIpv4(text);
  if (v4 === undefined) throw invalid(field, text, "bad IPv4 address");
  return { afi: Afi.IPv4, v4, v6: null };
}

/** Parses `addr/len` (host bits cleared). Throws {@link BgpConfigError} when malformed. */
export function parseRibPrefix(
  text: string,
  field = "prefix",
): { afi: Afi; len: number; v4: number; v6: Uint8Array | null } {
  const slash = text.indexOf("/");
  if (slash < 0) throw invalid(field, text, "expected addr/len");
  const ip = parseIp(text.slice(0, slash), field);
  const max = ip.afi === Afi.IPv4 ? 32 : 128;
  const len = parsePrefixLength(text.slice(slash + 1), max);
  if (len === undefined) throw invalid(field, text, `length must be 0..${max}`);
  if (ip.afi === Afi.IPv4) {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return { afi: ip.afi, len, v4: (ip.v4 & mask) >>> 0, v6: null };
  }
  const b = ip.v6!;
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    b[i]! &= (0xff << (8 - bits)) & 0xff;
  }
  return { afi: ip.afi, len, v4: 0, v6: b };
}

function compilePrefix(e: PrefixListEntry, field: string): CompiledPrefix {
  const p = parseRibPrefix(e.prefix, `${field}.prefix`);
  const max = p.afi === Afi.IPv4 ? 32 : 128;
  const ge = e.ge ?? p.len;
  const le = e.le ?? (e.ge !== undefined ? max : p.len);
  if (!(Number.isInteger(ge) && Number.isInteger(le) && p.len <= ge && ge <= le && le <= max)) {
    throw invalid(field, `${e.prefix} ge ${e.ge} le ${e.le}`, `need len <= ge <= le <= ${max}`);
  }
  return { ...p, ge, le };
}

/** Compiles and validates a policy. Throws {@link BgpConfigError} for malformed entries. */
export function compilePolicy(policy: Policy | undefined, field = "policy"): CompiledPolicy {
  // An empty accepting policy is the default one: peers given it export as peers given none (one group).
  if (!policy || (policy.statements.length === 0 && (policy.default ?? "accept") === "accept")) {
    return ACCEPT_ALL;
  }
  let prefixIndependent = true;
  const statements = policy.statements.map((s, i): CompiledStatement => {
    const f = `${field}.statements[${i}]`;
    const m = s.match ?? {};
    if (m.prefixes) prefixIndependent = false;
    if (m.family) prefixIndependent = false;
    let asPath: RegExp | null = null;
    if (m.asPath !== undefined) {
      try {
        asPath = new RegExp(m.asPath);
      } catch (e) {
        throw invalid(`${f}.match.asPath`, m.asPath, `bad regular expression: ${(e as Error).message}`);
      }
    }
    const a = s.actions;
    if (
      a.localPref !== undefined &&
      !(Number.isInteger(a.localPref) && a.localPref >= 0 && a.localPref <= 0xffffffff)
    ) {
      throw invalid(`${f}.actions.localPref`, a.localPref, "must be a 32-bit unsigned integer");
    }
    if (a.med !== undefined && !(Number.isInteger(a.med) && a.med >= 0 && a.med <= 0xffffffff)) {
      throw invalid(`${f}.actions.med`, a.med, "must be a 32-bit unsigned integer");
    }
    if (
      a.prependAs !== undefined &&
      !(Number.isInteger(a.prependAs) && a.prependAs >= 0 && a.prependAs <= 16)
    ) {
      throw invalid(`${f}.actions.prependAs`, a.prependAs, "must be 0..16");
    }
    const addCommunities = (a.addCommunities ?? []).map((c) =>
      parseCommunity(c, `${f}.actions.addCommunities`),
    );
    const removeCommunities = new Set(
      (a.removeCommunities ?? []).map((c) => parseCommunity(c, `${f}.actions.removeCommunities`)),
    );
    const addLarge = (a.addLargeCommunities ?? []).map((c) =>
      parseLargeCommunity(c, `${f}.actions.addLargeCommunities`),
    );
    const removeLarge = new Set(
      (a.removeLargeCommunities ?? []).map((c) =>
        parseLargeCommunity(c, `${f}.actions.removeLargeCommunities`).join(":"),
      ),
    );
    return {
      prefixes: m.prefixes ? m.prefixes.map((e, j) => compilePrefix(e, `${f}.match.prefixes[${j}]`)) : null,
      communities: m.communities
        ? new Set(m.communities.map((c) => parseCommunity(c, `${f}.match.communities`)))
        : null,
      large: m.largeCommunities
        ? m.largeCommunities.map((c) => parseLargeCommunity(c, `${f}.match.largeCommunities`).join(":"))
        : null,
      asPath,
      asPathContains: m.asPathContains ? new Set(m.asPathContains) : null,
      afi: m.family === "ipv4" ? Afi.IPv4 : m.family === "ipv6" ? Afi.IPv6 : 0,
      actions: a,
      addCommunities,
      removeCommunities,
      addLarge,
      removeLarge,
      modifies:
        a.localPref !== undefined ||
        a.med !== undefined ||
        addCommunities.length > 0 ||
        removeCommunities.size > 0 ||
        addLarge.length > 0 ||
        removeLarge.size > 0 ||
        (a.prependAs ?? 0) > 0,
    };
  });
  return {
    statements,
    defaultAccept: (policy.default ?? "accept") === "accept",
    prefixIndependent,
    key: JSON.stringify(policy),
  };
}

function prefixMatches(e: CompiledPrefix, afi: Afi, len: number, v4: number, v6: Uint8Array | null): boolean {
  if (e.afi !== afi || len < e.ge || len > e.le) return false;
  if (afi === Afi.IPv4) {
    if (e.len === 0) return true;
    const mask = (0xffffffff << (32 - e.len)) >>> 0;
    return (v4 & mask) >>> 0 === e.v4;
  }
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, e.len - i * 8));
    if (bits === 0) break;
    const mask = (0xff << (8 - bits)) & 0xff;
    if ((v6![i]! & mask) !== e.v6![i]) return false;
  }
  return true;
}

/** The AS path as text for regular-expression matching: `65001 65002 {1 2}`. */
export function asPathText(a: Readonly<PathAttributes>): string {
  if (!a.asPath) return "";
  return a.asPath
    .map((s) => (s.type === 1 || s.type === 4 ? `{${s.asns.join(" ")}}` : s.asns.join(" ")))
    .filter((t) => t.length > 0)
    .join(" ");
}

function statementMatches(
  s: CompiledStatement,
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  set: AttrSet,
): boolean {
  if (s.afi !== 0 && s.afi !== afi) return false;
  if (s.prefixes && !s.prefixes.some((e) => prefixMatches(e, afi, len, v4, v6))) return false;
  const a = set.attrs;
  if (s.communities && !(a.communities ?? []).some((c) => s.communities!.has(c))) return false;
  if (s.large && !(a.largeCommunities ?? []).some((l) => s.large!.includes(l.join(":")))) return false;
  if (s.asPathContains && !(a.asPath ?? []).some((seg) => seg.asns.some((x) => s.asPathContains!.has(x)))) {
    return false;
  }
  if (s.asPath && !s.asPath.test(asPathText(a))) return false;
  return true;
}

/** Verdict of {@link evaluatePolicy}: the index of the matching statement, or -1 for the default. */
export function evaluatePolicy(
  p: CompiledPolicy,
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  set: AttrSet,
): number {
  const st = p.statements;
  for (let i = 0; i < st.length; i++) if (statementMatches(st[i]!, afi, len, v4, v6, set)) return i;
  return -1;
}

/** True if the verdict `i` of {@link evaluatePolicy} accepts the route. */
export function accepts(p: CompiledPolicy, i: number): boolean {
  return i < 0 ? p.defaultAccept : p.statements[i]!.actions.reject !== true;
}

/**
 * Applies the attribute actions of statement `i` to `a` (returns `a` itself when nothing changes).
 * `localAsn` is used for `prependAs`.
 */
export function applyActions(p: CompiledPolicy, i: number, a: Readonly<PathAttributes>, localAsn: number) {
  if (i < 0) return a;
  const s = p.statements[i]!;
  if (!s.modifies) return a;
  const out: PathAttributes = { ...a };
  if (s.actions.localPref !== undefined) out.localPref = s.actions.localPref;
  if (s.actions.med !== undefined) out.med = s.actions.med;
  if (s.removeCommunities.size > 0 || s.addCommunities.length > 0) {
    const set = new Set((a.communities ?? []).filter((c) => !s.removeCommunities.has(c)));
    for (const c of s.addCommunities) set.add(c);
    if (set.size > 0) out.communities = [...set];
    else delete out.communities;
  }
  if (s.removeLarge.size > 0 || s.addLarge.length > 0) {
    const list = (a.largeCommunities ?? []).filter((l) => !s.removeLarge.has(l.join(":")));
    for (const l of s.addLarge) if (!list.some((x) => x.join(":") === l.join(":"))) list.push(l);
    if (list.length > 0) out.largeCommunities = list;
    else delete out.largeCommunities;
  }
  const n = s.actions.prependAs ?? 0;
  if (n > 0) {
    const prepend = Array<number>(n).fill(localAsn);
    const path = a.asPath ?? [];
    const first = path[0];
    out.asPath =
      first && first.type === 2
        ? [{ type: 2, asns: [...prepend, ...first.asns] }, ...path.slice(1)]
        : [{ type: 2, asns: prepend }, ...path];
  }
  return out;
}

/** True if statement `i` asks for next-hop-self. */
export function wantsNextHopSelf(p: CompiledPolicy, i: number): boolean {
  return i >= 0 && p.statements[i]!.actions.nextHopSelf === true;
}
