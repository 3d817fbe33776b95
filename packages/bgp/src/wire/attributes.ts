/**
 * Path attribute decoding and encoding (RFC 4271 §4.3 and §5, RFC 1997, RFC 4360, RFC 4456, RFC 4760,
 * RFC 6793, RFC 8092, RFC 8950). Decoding collects RFC 7606 errors instead of throwing, except for
 * those that reset the session.
 *
 * @packageDocumentation
 */
import { ATTRIBUTE_RULES, flagsMatch } from "./attribute-rules.js";
import { AS_TRANS, AttrFlag, AttrType, UpdateErrorSubcode } from "./constants.js";
import { familyKey } from "./context.js";
import { BgpEncodeError, type BgpWireError, updateError, worstAction } from "./errors.js";
import { ipv4ToString, ipv6ToString, writeIpv4, writeIpv6 } from "./ip.js";
import { afiBits, decodePrefixes, prefixWireLength, scanPrefixes, writePrefix } from "./prefix.js";
import {
  Afi,
  type AsPathSegment,
  type CodecContext,
  ErrorAction,
  type PathAttributes,
  type Prefix,
  Safi,
} from "./types.js";
import { Writer } from "./writer.js";

/** Where the NLRI of an MP_REACH_NLRI / MP_UNREACH_NLRI attribute lies in the message bytes. */
export interface MpNlriSection {
  afi: number;
  safi: number;
  start: number;
  end: number;
  /** Path identifiers precede each prefix (ADD-PATH negotiated for receiving this family). */
  addPath: boolean;
}

/** @internal Result of {@link decodeAttributes}. */
export interface AttributesDecodeOutput {
  attributes: PathAttributes;
  errors: BgpWireError[];
  action: ErrorAction | undefined;
  mpReach: MpNlriSection | undefined;
  mpUnreach: MpNlriSection | undefined;
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** Counts ASes as RFC 4271 §9.1.2.2 does: a set counts 1, confederation segments 0. */
export function asPathLength(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of path) n += s.type === 2 ? s.asns.length : s.type === 1 ? 1 : 0;
  return n;
}

/** Parses AS_PATH / AS4_PATH segments; `undefined` when malformed (RFC 7606 §7.2). */
function parseAsPath(b: Uint8Array, off: number, end: number, asSize: 2 | 4): AsPathSegment[] | undefined {
  const segs: AsPathSegment[] = [];
  while (off < end) {
    if (off + 2 > end) return undefined;
    const type = b[off]!;
    const count = b[off + 1]!;
    off += 2;
    if (type < 1 || type > 4 || count === 0 || off + count * asSize > end) return undefined;
    const asns = new Array<number>(count);
    if (asSize === 4) for (let i = 0; i < count; i++, off += 4) asns[i] = u32(b, off);
    else for (let i = 0; i < count; i++, off += 2) asns[i] = u16(b, off);
    segs.push({ type: type as 1 | 2 | 3 | 4, asns });
  }
  return segs;
}

/**
 * RFC 6793 §4.2.3: rebuild the 4-octet path from a 2-octet AS_PATH and an AS4_PATH. When AS_PATH holds
 * fewer ASes than AS4_PATH, AS4_PATH is ignored.
 */
export function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[],
): AsPathSegment[] {
  const as4 = as4Path.filter((s) => s.type === 1 || s.type === 2);
  const n2 = asPathLength(asPath);
  const n4 = asPathLength(as4);
  if (n2 < n4) return asPath.map((s) => ({ type: s.type, asns: [...s.asns] }));
  let keep = n2 - n4;
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (s.type === 3 || s.type === 4) {
      out.push({ type: s.type, asns: [...s.asns] });
      continue;
    }
    if (keep === 0) break;
    if (s.type === 1) {
      out.push({ type: 1, asns: [...s.asns] });
      keep--;
    } else {
      const take = Math.min(keep, s.asns.length);
      out.push({ type: 2, asns: s.asns.slice(0, take) });
      keep -= take;
    }
  }
  for (const s of as4) {
    const last = out[out.length - 1];
    if (last && last.type === 2 && s.type === 2 && last.asns.length + s.asns.length <= 255)
      last.asns.push(...s.asns);
    else out.push({ type: s.type, asns: [...s.asns] });
  }
  return out;
}

/**
 * Decodes the path attributes in `[start, end)`. Errors that reset the session are thrown; all others
 * are collected with their RFC 7606 action and the offending attribute is dropped or kept as the rule says.
 */
export function decodeAttributes(
  b: Uint8Array,
  start: number,
  end: number,
  ctx: CodecContext,
  materializeMp: boolean,
): AttributesDecodeOutput {
  const attrs: PathAttributes = {};
  const errors: BgpWireError[] = [];
  let action: ErrorAction | undefined;
  let mpReach: MpNlriSection | undefined;
  let mpUnreach: MpNlriSection | undefined;
  const seen = new Uint8Array(256);
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: { asn: number; address: string } | undefined;

  const fail = (e: BgpWireError): void => {
    if (e.action === ErrorAction.SessionReset) throw e;
    errors.push(e);
    action = worstAction(action, e.action);
  };

  let off = start;
  while (off < end) {
    const at = off;
    // RFC 7606 §4: too few bytes for an attribute header, or an attribute overrunning the total length.
    if (end - off < 3 || (b[off]! & AttrFlag.ExtendedLength && end - off < 4)) {
      fail(
        updateError(
          UpdateErrorSubcode.MalformedAttributeList,
          ErrorAction.TreatAsWithdraw,
          { reason: "attribute-header-truncated", offset: at },
          "path attributes end inside an attribute header",
        ),
      );
      break;
    }
    const flags = b[off]!;
    const type = b[off + 1]!;
    const ext = (flags & AttrFlag.ExtendedLength) !== 0;
    const len = ext ? u16(b, off + 2) : b[off + 2]!;
    const v = off + (ext ? 4 : 3);
    const vend = v + len;
    if (vend > end) {
      fail(
        updateError(
          UpdateErrorSubcode.AttributeLengthError,
          ErrorAction.TreatAsWithdraw,
          { reason: "attribute-overrun", attribute: type, offset: at },
          `attribute ${type} overruns the path attributes`,
        ),
      );
      break;
    }
    off = vend;
    const raw = () => b.slice(at, vend);
    const rule = ATTRIBUTE_RULES.get(type);

    if (seen[type]) {
      // RFC 7606 §3.g: a repeated MP attribute resets the session; other repeats are discarded.
      const mp = type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri;
      fail(
        updateError(
          UpdateErrorSubcode.MalformedAttributeList,
          mp ? ErrorAction.SessionReset : ErrorAction.AttributeDiscard,
          { reason: "duplicate-attribute", attribute: type, offset: at },
          `attribute ${type} appears more than once`,
        ),
      );
      continue;
    }
    seen[type] = 1;

    if (!rule) {
      if (!(flags & AttrFlag.Optional)) {
        fail(
          updateError(
            UpdateErrorSubcode.UnrecognizedWellKnownAttribute,
            ErrorAction.SessionReset,
            { reason: "unrecognized-well-known", attribute: type, offset: at },
            `unrecognized well-known attribute ${type}`,
            raw(),
          ),
        );
      }
      // Unknown optional non-transitive attributes are quietly ignored (RFC 4271 §5).
      if (flags & AttrFlag.Transitive) {
        (attrs.unknown ??= []).push({ flags, typeCode: type, data: b.slice(v, vend) });
      }
      continue;
    }

    const malformed = (reason: string, subcode = rule.subcode, act = rule.action): void => {
      fail(
        updateError(
          subcode,
          act,
          { reason, attribute: type, offset: at },
          `malformed ${rule.name}: ${reason}`,
          raw(),
        ),
      );
    };

    if (!flagsMatch(rule, flags)) {
      const mp = type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri;
      // Without a parsable AFI/SAFI an MP attribute error can only reset the session (RFC 7606 §7.11).
      malformed(
        "attribute-flags",
        UpdateErrorSubcode.AttributeFlagsError,
        mp && len < 3 ? ErrorAction.SessionReset : rule.action,
      );
      continue;
    }

    switch (type) {
      case AttrType.Origin:
        if (len !== 1) malformed("length", UpdateErrorSubcode.AttributeLengthError);
        else if (b[v]! > 2) malformed("value");
        else attrs.origin = b[v] as 0 | 1 | 2;
        break;
      case AttrType.AsPath: {
        const p = parseAsPath(b, v, vend, ctx.asn4 ? 4 : 2);
        if (!p) malformed("segments");
        else attrs.asPath = p;
        break;
      }
      case AttrType.NextHop:
        if (len !== 4) malformed("length");
        else attrs.nextHop = ipv4ToString(b, v);
        break;
      case AttrType.MultiExitDisc:
        if (len !== 4) malformed("length");
        else attrs.med = u32(b, v);
        break;
      case AttrType.LocalPref:
        if (len !== 4) malformed("length");
        else attrs.localPref = u32(b, v);
        break;
      case AttrType.AtomicAggregate:
        if (len !== 0) malformed("length");
        else attrs.atomicAggregate = true;
        break;
      case AttrType.Aggregator: {
        const want = ctx.asn4 ? 8 : 6;
        if (len !== want) malformed("length");
        else if (ctx.asn4) attrs.aggregator = { asn: u32(b, v), address: ipv4ToString(b, v + 4) };
        else attrs.aggregator = { asn: u16(b, v), address: ipv4ToString(b, v + 2) };
        break;
      }
      case AttrType.Communities:
        if (len === 0 || len % 4 !== 0) malformed("length", UpdateErrorSubcode.AttributeLengthError);
        else {
          const c = new Array<number>(len / 4);
          for (let i = 0; i < c.length; i++) c[i] = u32(b, v + 4 * i);
          attrs.communities = c;
        }
        break;
      case AttrType.OriginatorId:
        if (len !== 4) malformed("length");
        else attrs.originatorId = ipv4ToString(b, v);
        break;
      case AttrType.ClusterList:
        if (len === 0 || len % 4 !== 0) malformed("length");
        else {
          const c = new Array<string>(len / 4);
          for (let i = 0; i < c.length; i++) c[i] = ipv4ToString(b, v + 4 * i);
          attrs.clusterList = c;
        }
        break;
      case AttrType.ExtendedCommunities:
        if (len === 0 || len % 8 !== 0) malformed("length", UpdateErrorSubcode.AttributeLengthError);
        else {
          const c = new Array<Uint8Array>(len / 8);
          for (let i = 0; i < c.length; i++) c[i] = b.slice(v + 8 * i, v + 8 * i + 8);
          attrs.extendedCommunities = c;
        }
        break;
      case AttrType.LargeCommunities:
        if (len === 0 || len % 12 !== 0) malformed("length", UpdateErrorSubcode.AttributeLengthError);
        else {
          const c = new Array<[number, number, number]>(len / 12);
          for (let i = 0; i < c.length; i++)
            c[i] = [u32(b, v + 12 * i), u32(b, v + 12 * i + 4), u32(b, v + 12 * i + 8)];
          attrs.largeCommunities = c;
        }
        break;
      case AttrType.As4Path: {
        // A NEW speaker ignores AS4_PATH from a NEW speaker (RFC 6793 §4.2.1).
        if (ctx.asn4) break;
        const p = parseAsPath(b, v, vend, 4);
        if (!p) malformed("segments");
        else as4Path = p;
        break;
      }
      case AttrType.As4Aggregator:
        if (ctx.asn4) break;
        if (len !== 8) malformed("length");
        else as4Aggregator = { asn: u32(b, v), address: ipv4ToString(b, v + 4) };
        break;
      case AttrType.MpReachNlri: {
        if (len < 5) {
          malformed(
            "length",
            UpdateErrorSubcode.OptionalAttributeError,
            len < 3 ? ErrorAction.SessionReset : rule.action,
          );
          break;
        }
        const afi = u16(b, v);
        const safi = b[v + 2]!;
        const nhLen = b[v + 3]!;
        const disable = (reason: string) =>
          fail(
            updateError(
              UpdateErrorSubcode.OptionalAttributeError,
              ErrorAction.AfiSafiDisable,
              { reason, attribute: type, afi, safi, offset: at },
              `malformed MP_REACH_NLRI for ${afi}/${safi}: ${reason}`,
              raw(),
            ),
          );
        if (safi !== Safi.Unicast || (afi !== Afi.IPv4 && afi !== Afi.IPv6)) {
          fail(
            updateError(
              UpdateErrorSubcode.OptionalAttributeError,
              ErrorAction.AttributeDiscard,
              { reason: "unsupported-family", attribute: type, afi, safi, offset: at },
              `MP_REACH_NLRI for unsupported family ${afi}/${safi} ignored`,
            ),
          );
          break;
        }
        const nlriStart = v + 4 + nhLen + 1;
        if (nlriStart > vend) {
          disable("next-hop-overrun");
          break;
        }
        const nh = v + 4;
        const nextHops: string[] = [];
        const v6nh = afi === Afi.IPv6 || ctx.extendedNextHop.has(familyKey(afi, safi));
        if (afi === Afi.IPv4 && nhLen === 4) nextHops.push(ipv4ToString(b, nh));
        else if (v6nh && nhLen === 16) nextHops.push(ipv6ToString(b, nh));
        else if (v6nh && nhLen === 32) nextHops.push(ipv6ToString(b, nh), ipv6ToString(b, nh + 16));
        else {
          disable("next-hop-length");
          break;
        }
        const addPath = ctx.addPathReceive.has(familyKey(afi, safi));
        if (scanPrefixes(b, nlriStart, vend, afi, addPath) < 0) {
          disable("nlri");
          break;
        }
        mpReach = { afi, safi, start: nlriStart, end: vend, addPath };
        attrs.mpReach = {
          afi,
          safi,
          nextHops,
          nlri: materializeMp ? decodePrefixes(b, nlriStart, vend, afi as Afi, addPath) : [],
        };
        break;
      }
      case AttrType.MpUnreachNlri: {
        if (len < 3) {
          malformed("length", UpdateErrorSubcode.OptionalAttributeError, ErrorAction.SessionReset);
          break;
        }
        const afi = u16(b, v);
        const safi = b[v + 2]!;
        if (safi !== Safi.Unicast || (afi !== Afi.IPv4 && afi !== Afi.IPv6)) {
          fail(
            updateError(
              UpdateErrorSubcode.OptionalAttributeError,
              ErrorAction.AttributeDiscard,
              { reason: "unsupported-family", attribute: type, afi, safi, offset: at },
              `MP_UNREACH_NLRI for unsupported family ${afi}/${safi} ignored`,
            ),
          );
          break;
        }
        const addPath = ctx.addPathReceive.has(familyKey(afi, safi));
        if (scanPrefixes(b, v + 3, vend, afi, addPath) < 0) {
          fail(
            updateError(
              UpdateErrorSubcode.OptionalAttributeError,
              ErrorAction.AfiSafiDisable,
              { reason: "nlri", attribute: type, afi, safi, offset: at },
              `malformed MP_UNREACH_NLRI for ${afi}/${safi}`,
              raw(),
            ),
          );
          break;
        }
        mpUnreach = { afi, safi, start: v + 3, end: vend, addPath };
        attrs.mpUnreach = {
          afi,
          safi,
          withdrawn: materializeMp ? decodePrefixes(b, v + 3, vend, afi as Afi, addPath) : [],
        };
        break;
      }
    }
  }

  // RFC 6793 §4.2.3: an AGGREGATOR that is not AS_TRANS means AS4_AGGREGATOR and AS4_PATH are stale.
  if (!ctx.asn4) {
    const aggIsTrans = attrs.aggregator?.asn === AS_TRANS;
    if (attrs.aggregator && !aggIsTrans) {
      as4Path = undefined;
      as4Aggregator = undefined;
    }
    if (as4Aggregator && attrs.aggregator) attrs.aggregator = as4Aggregator;
    if (as4Path && attrs.asPath) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);
  }
  return { attributes: attrs, errors, action, mpReach, mpUnreach };
}

// ---------------------------------------------------------------------------------------------------
// Encoding

function range(v: number, bits: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits)
    throw new BgpEncodeError("encode-invalid", `${what} out of range: ${v}`, {
      reason: "range",
      field: what,
    });
  return v;
}

/** Writes one attribute header + value; uses the extended length only when the value needs it. */
function attr(w: Writer, flags: number, type: number, body: (w: Writer) => void): void {
  const at = w.reserve(4);
  const start = w.len;
  body(w);
  const len = w.len - start;
  if (len > 255) {
    w.set8(at, flags | AttrFlag.ExtendedLength);
    w.set8(at + 1, type);
    w.set16(at + 2, len);
    return;
  }
  // Short form: shift the value down one byte over the unused length byte.
  w.buf.copyWithin(at + 3, start, w.len);
  w.len--;
  w.set8(at, flags & ~AttrFlag.ExtendedLength);
  w.set8(at + 1, type);
  w.set8(at + 2, len);
}

/**
 * Writes a dotted quad. Reserve first, then take `w.buf`: reserving may reallocate the buffer, and
 * `writeIpv4(w.buf, w.reserve(4), …)` would evaluate the old buffer before the call grows it.
 */
function putIpv4(w: Writer, s: string): void {
  const at = w.reserve(4);
  writeIpv4(w.buf, at, s);
}

function writeSegments(w: Writer, segs: readonly AsPathSegment[], asSize: 2 | 4, transOver16: boolean): void {
  for (const s of segs) {
    for (let i = 0; i < s.asns.length || i === 0; i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      if (s.type !== 2 && s.type !== 3 && i > 0)
        throw new BgpEncodeError("encode-invalid", "AS_SET segment longer than 255 ASes", {
          reason: "as-set-too-long",
        });
      w.u8(s.type).u8(chunk.length);
      for (const a of chunk) {
        range(a, 32, "asn");
        if (asSize === 4) w.u32(a);
        else w.u16(a > 0xffff ? (transOver16 ? AS_TRANS : a) : a);
      }
    }
  }
}

/** Options of {@link encodeAttributes}. */
export interface EncodeAttributesOptions {
  /** Leave out NEXT_HOP (an UPDATE that carries only MP_REACH_NLRI, RFC 4760 §3). Default false. */
  omitNextHop?: boolean;
  /** Leave out MP_REACH_NLRI / MP_UNREACH_NLRI (the packer appends its own per message). Default false. */
  omitMp?: boolean;
  /** Only attributes with type codes in `[minType, maxType]`. Default all. */
  minType?: number;
  maxType?: number;
}

/**
 * Encodes path attributes in type-code order. With a 2-octet session (`ctx.asn4` false) ASNs above 65535
 * become AS_TRANS and AS4_PATH / AS4_AGGREGATOR are added (RFC 6793 §4.2.2). Unknown transitive attributes
 * are sent with the Partial bit set (RFC 4271 §5).
 */
export function encodeAttributes(
  a: PathAttributes,
  ctx: CodecContext,
  opts: EncodeAttributesOptions = {},
): Uint8Array {
  const w = new Writer(256);
  writeAttributes(w, a, ctx, opts);
  return w.finish();
}

/** @internal */
export function writeAttributes(
  w: Writer,
  a: PathAttributes,
  ctx: CodecContext,
  opts: EncodeAttributesOptions,
): void {
  const O = AttrFlag.Optional;
  const T = AttrFlag.Transitive;
  type Item = [number, () => void];
  const items: Item[] = [];
  const needAs4Path =
    !ctx.asn4 && a.asPath?.some((s) => (s.type === 1 || s.type === 2) && s.asns.some((x) => x > 0xffff));
  const needAs4Agg = !ctx.asn4 && a.aggregator !== undefined && a.aggregator.asn > 0xffff;

  if (a.origin !== undefined)
    items.push([1, () => attr(w, T, 1, (w) => w.u8(range(a.origin!, 2, "origin")))]);
  if (a.asPath) {
    const p = a.asPath;
    items.push([2, () => attr(w, T, 2, (w) => writeSegments(w, p, ctx.asn4 ? 4 : 2, true))]);
  }
  if (a.nextHop !== undefined && !opts.omitNextHop) {
    const nh = a.nextHop;
    items.push([3, () => attr(w, T, 3, (w) => putIpv4(w, nh))]);
  }
  if (a.med !== undefined) items.push([4, () => attr(w, O, 4, (w) => w.u32(range(a.med!, 32, "med")))]);
  if (a.localPref !== undefined)
    items.push([5, () => attr(w, T, 5, (w) => w.u32(range(a.localPref!, 32, "localPref")))]);
  if (a.atomicAggregate) items.push([6, () => attr(w, T, 6, () => {})]);
  if (a.aggregator) {
    const g = a.aggregator;
    items.push([
      7,
      () =>
        attr(w, O | T, 7, (w) => {
          range(g.asn, 32, "aggregator asn");
          if (ctx.asn4) w.u32(g.asn);
          else w.u16(g.asn > 0xffff ? AS_TRANS : g.asn);
          putIpv4(w, g.address);
        }),
    ]);
  }
  if (a.communities && a.communities.length > 0) {
    const c = a.communities;
    items.push([
      8,
      () =>
        attr(w, O | T, 8, (w) => {
          for (const x of c) w.u32(range(x, 32, "community"));
        }),
    ]);
  }
  if (a.originatorId !== undefined) {
    const id = a.originatorId;
    items.push([9, () => attr(w, O, 9, (w) => putIpv4(w, id))]);
  }
  if (a.clusterList && a.clusterList.length > 0) {
    const c = a.clusterList;
    items.push([
      10,
      () =>
        attr(w, O, 10, (w) => {
          for (const x of c) putIpv4(w, x);
        }),
    ]);
  }
  if (a.mpReach && !opts.omitMp) {
    const m = a.mpReach;
    items.push([
      14,
      () => attr(w, O, 14, (w) => writeMpReachBody(w, m.afi, m.safi, m.nextHops, m.nlri, ctx)),
    ]);
  }
  if (a.mpUnreach && !opts.omitMp) {
    const m = a.mpUnreach;
    items.push([15, () => attr(w, O, 15, (w) => writeMpUnreachBody(w, m.afi, m.safi, m.withdrawn, ctx))]);
  }
  if (a.extendedCommunities && a.extendedCommunities.length > 0) {
    const c = a.extendedCommunities;
    items.push([
      16,
      () =>
        attr(w, O | T, 16, (w) => {
          for (const x of c) {
            if (x.length !== 8)
              throw new BgpEncodeError("encode-invalid", "extended community must be 8 bytes", {
                reason: "extended-community",
              });
            w.bytes(x);
          }
        }),
    ]);
  }
  if (needAs4Path) {
    const p = a.asPath!.filter((s) => s.type === 1 || s.type === 2);
    items.push([17, () => attr(w, O | T, 17, (w) => writeSegments(w, p, 4, false))]);
  }
  if (needAs4Agg) {
    const g = a.aggregator!;
    items.push([
      18,
      () =>
        attr(w, O | T, 18, (w) => {
          w.u32(g.asn);
          putIpv4(w, g.address);
        }),
    ]);
  }
  if (a.largeCommunities && a.largeCommunities.length > 0) {
    const c = a.largeCommunities;
    items.push([
      32,
      () =>
        attr(w, O | T, 32, (w) => {
          for (const [g, l1, l2] of c)
            w.u32(range(g, 32, "lc"))
              .u32(range(l1, 32, "lc"))
              .u32(range(l2, 32, "lc"));
        }),
    ]);
  }
  for (const u of a.unknown ?? []) {
    if (ATTRIBUTE_RULES.has(u.typeCode))
      throw new BgpEncodeError("encode-invalid", `attribute ${u.typeCode} must use its typed field`, {
        reason: "unknown-shadows-known",
      });
    const f = u.flags & 0xe0;
    // An unrecognized optional transitive attribute is propagated with Partial set (RFC 4271 §5).
    const flags = f & O && f & T ? f | AttrFlag.Partial : f;
    items.push([
      u.typeCode,
      () => attr(w, flags, range(u.typeCode, 8, "attribute type"), (w) => w.bytes(u.data)),
    ]);
  }
  items.sort((x, y) => x[0] - y[0]);
  const lo = opts.minType ?? 0;
  const hi = opts.maxType ?? 255;
  for (const [t, write] of items) if (t >= lo && t <= hi) write();
}

/** @internal */
export function nextHopBytes(
  afi: number,
  safi: number,
  nextHops: readonly string[],
  ctx: CodecContext,
): Uint8Array {
  const v6 =
    afi === Afi.IPv6 || (ctx.extendedNextHop.has(familyKey(afi, safi)) && nextHops[0]?.includes(":"));
  if (nextHops.length < 1 || nextHops.length > (v6 ? 2 : 1))
    throw new BgpEncodeError(
      "encode-invalid",
      `MP_REACH_NLRI for ${afi}/${safi} needs ${v6 ? "1 or 2" : "1"} next hops`,
      {
        reason: "next-hop-count",
      },
    );
  const out = new Uint8Array(v6 ? 16 * nextHops.length : 4);
  if (v6) for (let i = 0; i < nextHops.length; i++) writeIpv6(out, 16 * i, nextHops[i]!);
  else writeIpv4(out, 0, nextHops[0]!);
  return out;
}

function writeMpReachBody(
  w: Writer,
  afi: number,
  safi: number,
  nextHops: readonly string[],
  nlri: readonly Prefix[],
  ctx: CodecContext,
): void {
  const nh = nextHopBytes(afi, safi, nextHops, ctx);
  w.u16(range(afi, 16, "afi"))
    .u8(range(safi, 8, "safi"))
    .u8(nh.length)
    .bytes(nh)
    .u8(0);
  writePrefixList(w, nlri, afi, ctx.addPathSend.has(familyKey(afi, safi)));
}

function writeMpUnreachBody(
  w: Writer,
  afi: number,
  safi: number,
  withdrawn: readonly Prefix[],
  ctx: CodecContext,
): void {
  w.u16(range(afi, 16, "afi")).u8(range(safi, 8, "safi"));
  writePrefixList(w, withdrawn, afi, ctx.addPathSend.has(familyKey(afi, safi)));
}

/** @internal */
export function writePrefixList(w: Writer, list: readonly Prefix[], afi: number, addPath: boolean): void {
  const max = afiBits(afi);
  for (const p of list) {
    if (p.afi !== afi || !Number.isInteger(p.len) || p.len < 0 || p.len > max)
      throw new BgpEncodeError("encode-invalid", `prefix does not belong to AFI ${afi}`, {
        reason: "prefix",
      });
    const at = w.reserve(prefixWireLength(p, addPath));
    writePrefix(w.buf, at, p, addPath);
  }
}
