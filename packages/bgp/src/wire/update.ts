/**
 * UPDATE messages (RFC 4271 §4.3): lenient RFC 7606 decoding, single-message encoding, a packer that
 * spreads many prefixes sharing one attribute set over as few messages as fit, and End-of-RIB
 * (RFC 4724 §2).
 *
 * @packageDocumentation
 */
import { type MpNlriSection, decodeAttributes, nextHopBytes, writeAttributes } from "./attributes.js";
import { AttrFlag, AttrType, HEADER_LENGTH, UpdateErrorSubcode } from "./constants.js";
import { familyKey } from "./context.js";
import { BgpEncodeError, type BgpWireError, updateError, worstAction } from "./errors.js";
import { decodePrefixes, prefixWireLength, scanPrefixes, writePrefix } from "./prefix.js";
import { checkHeader } from "./header.js";
import {
  Afi,
  type CodecContext,
  ErrorAction,
  MessageType,
  MessageType as MT,
  type PathAttributes,
  type Prefix,
  Safi,
  type UpdateMessage,
} from "./types.js";
import { Writer } from "./writer.js";

/** Byte ranges of the prefix sections of an UPDATE, as offsets into the decoded bytes. */
export interface UpdateSections {
  /** Withdrawn Routes field (IPv4 unicast). */
  withdrawn: { start: number; end: number; addPath: boolean };
  /** NLRI field (IPv4 unicast). */
  nlri: { start: number; end: number; addPath: boolean };
  /** NLRI of MP_REACH_NLRI, when present and well-formed. */
  mpReach?: MpNlriSection;
  /** Withdrawn routes of MP_UNREACH_NLRI, when present and well-formed. */
  mpUnreach?: MpNlriSection;
}

/**
 * Result of {@link decodeUpdate}. When `action` is `treat-as-withdraw`, every prefix of `update.nlri` and
 * `update.attributes.mpReach.nlri` must be handled as withdrawn (RFC 7606 §2); `attribute-discard` means the
 * offending attributes are already left out of `update.attributes`; `afi-safi-disable` names the family in
 * the error's `details`.
 */
export interface UpdateDecodeResult {
  update: UpdateMessage;
  /** The non-fatal problems found, in message order. */
  errors: BgpWireError[];
  /** The most severe RFC 7606 action of `errors`, `undefined` when the UPDATE is clean. */
  action: ErrorAction | undefined;
  /** Where the prefixes are in the input, for {@link forEachIPv4Prefix} / {@link forEachPrefix}. */
  sections: UpdateSections;
  /** The family this UPDATE is the End-of-RIB marker of (RFC 4724 §2), whatever the `prefixes` option. */
  endOfRib: { afi: number; safi: number } | undefined;
}

/** Options of {@link decodeUpdate}. */
export interface DecodeUpdateOptions {
  /**
   * `"objects"` (default) fills `withdrawn`, `nlri` and the MP prefix lists with {@link Prefix} objects;
   * `"sections"` leaves them empty and only checks them, for callers that walk `sections` with the
   * allocation-free `forEach*` functions.
   */
  prefixes?: "objects" | "sections";
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

/**
 * Decodes one complete UPDATE message (header included), applying RFC 7606: attribute errors are
 * returned in `errors` with their action instead of being thrown. Throws {@link BgpWireError} only for
 * errors whose action is `session-reset` (bad header, inconsistent lengths, malformed IPv4 NLRI, a repeated
 * MP attribute, an unrecognized well-known attribute).
 */
export function decodeUpdate(
  bytes: Uint8Array,
  ctx: CodecContext,
  options: DecodeUpdateOptions = {},
): UpdateDecodeResult {
  checkHeader(bytes, ctx.maxMessageSize, MT.Update);
  const objects = options.prefixes !== "sections";
  const end = bytes.length;
  let off = HEADER_LENGTH;
  const lengthError = (reason: string) =>
    updateError(
      UpdateErrorSubcode.MalformedAttributeList,
      ErrorAction.SessionReset,
      { reason, offset: off },
      `UPDATE ${reason}`,
    );
  if (off + 2 > end) throw lengthError("withdrawn-length-truncated");
  const wlen = u16(bytes, off);
  off += 2;
  const wStart = off;
  const wEnd = off + wlen;
  if (wEnd + 2 > end) throw lengthError("withdrawn-length-overrun");
  const alen = u16(bytes, wEnd);
  const aStart = wEnd + 2;
  const aEnd = aStart + alen;
  if (aEnd > end) throw lengthError("attribute-length-overrun");
  const v4AddPath = ctx.addPathReceive.has("1/1");
  const invalid = (where: number) =>
    updateError(
      UpdateErrorSubcode.InvalidNetworkField,
      ErrorAction.SessionReset,
      { reason: "invalid-nlri", offset: where },
      "malformed prefix in UPDATE",
    );
  let r = scanPrefixes(bytes, wStart, wEnd, Afi.IPv4, v4AddPath);
  if (r < 0) throw invalid(-1 - r);
  r = scanPrefixes(bytes, aEnd, end, Afi.IPv4, v4AddPath);
  if (r < 0) throw invalid(-1 - r);
  const hasNlri = aEnd < end;

  const dec = decodeAttributes(bytes, aStart, aEnd, ctx, objects);
  const errors = dec.errors;
  let action = dec.action;
  const a = dec.attributes;

  // RFC 7606 §3.d: well-known mandatory attributes missing while NLRI is present → treat-as-withdraw.
  // A malformed attribute already counted is not reported again as missing.
  const reported = new Set(errors.map((e) => e.details.attribute));
  const missing: number[] = [];
  const mpHasNlri = dec.mpReach !== undefined && dec.mpReach.end > dec.mpReach.start;
  if (hasNlri || mpHasNlri) {
    if (a.origin === undefined && !reported.has(AttrType.Origin)) missing.push(AttrType.Origin);
    if (a.asPath === undefined && !reported.has(AttrType.AsPath)) missing.push(AttrType.AsPath);
  }
  if (hasNlri && a.nextHop === undefined && !reported.has(AttrType.NextHop)) missing.push(AttrType.NextHop);
  for (const t of missing) {
    const e = updateError(
      UpdateErrorSubcode.MissingWellKnownAttribute,
      ErrorAction.TreatAsWithdraw,
      { reason: "missing-well-known", attribute: t },
      `missing well-known attribute ${t}`,
      new Uint8Array([t]),
    );
    errors.push(e);
    action = worstAction(action, e.action);
  }

  const sections: UpdateSections = {
    withdrawn: { start: wStart, end: wEnd, addPath: v4AddPath },
    nlri: { start: aEnd, end, addPath: v4AddPath },
  };
  if (dec.mpReach) sections.mpReach = dec.mpReach;
  if (dec.mpUnreach) sections.mpUnreach = dec.mpUnreach;
  const update: UpdateMessage = {
    type: MessageType.Update,
    withdrawn: objects ? decodePrefixes(bytes, wStart, wEnd, Afi.IPv4, v4AddPath) : [],
    attributes: a,
    nlri: objects ? decodePrefixes(bytes, aEnd, end, Afi.IPv4, v4AddPath) : [],
  };
  return { update, errors, action, sections, endOfRib: endOfRibFamily(bytes) };
}

// ---------------------------------------------------------------------------------------------------
// End-of-RIB

/** The family an UPDATE marks the End-of-RIB of (RFC 4724 §2), or `undefined` when it is not one. */
export function isEndOfRib(u: UpdateMessage): { afi: number; safi: number } | undefined {
  const a = u.attributes;
  const keys = Object.keys(a).filter((k) => a[k as keyof PathAttributes] !== undefined);
  if (u.withdrawn.length === 0 && u.nlri.length === 0 && keys.length === 0)
    return { afi: Afi.IPv4, safi: Safi.Unicast };
  if (
    u.withdrawn.length === 0 &&
    u.nlri.length === 0 &&
    keys.length === 1 &&
    a.mpUnreach !== undefined &&
    a.mpUnreach.withdrawn.length === 0
  )
    return { afi: a.mpUnreach.afi, safi: a.mpUnreach.safi };
  return undefined;
}

/**
 * End-of-RIB check on raw bytes of a complete UPDATE, without decoding: IPv4 unicast is the 23-byte empty
 * UPDATE; other families an UPDATE holding only an empty MP_UNREACH_NLRI.
 */
export function endOfRibFamily(bytes: Uint8Array): { afi: number; safi: number } | undefined {
  if (bytes.length === 23 && bytes[18] === MT.Update && u16(bytes, 19) === 0 && u16(bytes, 21) === 0)
    return { afi: Afi.IPv4, safi: Safi.Unicast };
  if (bytes.length < 29 || bytes[18] !== MT.Update || u16(bytes, 19) !== 0) return undefined;
  const alen = u16(bytes, 21);
  if (23 + alen !== bytes.length) return undefined;
  const flags = bytes[23]!;
  const ext = (flags & AttrFlag.ExtendedLength) !== 0;
  if (bytes[24] !== AttrType.MpUnreachNlri) return undefined;
  const len = ext ? u16(bytes, 25) : bytes[25]!;
  const v = ext ? 27 : 26;
  if (len !== 3 || v + 3 !== bytes.length) return undefined;
  return { afi: u16(bytes, v), safi: bytes[v + 2]! };
}

/** The End-of-RIB marker UPDATE for a family (RFC 4724 §2). */
export function endOfRib(afi: number = Afi.IPv4, safi: number = Safi.Unicast): UpdateMessage {
  if (afi === Afi.IPv4 && safi === Safi.Unicast)
    return { type: MessageType.Update, withdrawn: [], attributes: {}, nlri: [] };
  return {
    type: MessageType.Update,
    withdrawn: [],
    attributes: { mpUnreach: { afi, safi, withdrawn: [] } },
    nlri: [],
  };
}

// ---------------------------------------------------------------------------------------------------
// Encoding

function tooLarge(size: number, max: number): BgpEncodeError {
  return new BgpEncodeError("encode-too-large", `message of ${size} bytes exceeds ${max}`, {
    reason: "message-too-large",
    size,
    max,
  });
}

function writeHeader(out: Uint8Array, len: number, type: number): void {
  out.fill(0xff, 0, 16);
  out[16] = len >>> 8;
  out[17] = len & 255;
  out[18] = type;
}

/** Encodes one UPDATE exactly as given. Throws {@link BgpEncodeError} when it exceeds `ctx.maxMessageSize`. */
export function encodeUpdate(u: UpdateMessage, ctx: CodecContext): Uint8Array {
  const w = new Writer(512);
  w.reserve(HEADER_LENGTH);
  const v4AddPath = ctx.addPathSend.has("1/1");
  const wl = w.reserve(2);
  for (const p of u.withdrawn) writeV4(w, p, v4AddPath);
  w.set16(wl, w.len - wl - 2);
  const al = w.reserve(2);
  writeAttributes(w, u.attributes, ctx, {});
  const attrLen = w.len - al - 2;
  if (attrLen > 0xffff) throw tooLarge(w.len, ctx.maxMessageSize);
  w.set16(al, attrLen);
  for (const p of u.nlri) writeV4(w, p, v4AddPath);
  if (w.len > ctx.maxMessageSize) throw tooLarge(w.len, ctx.maxMessageSize);
  const out = w.finish();
  writeHeader(out, out.length, MT.Update);
  return out;
}

function writeV4(w: Writer, p: Prefix, addPath: boolean): void {
  if (p.afi !== Afi.IPv4 || p.len > 32 || p.len < 0)
    throw new BgpEncodeError("encode-invalid", "classic UPDATE fields carry only IPv4 prefixes", {
      reason: "prefix",
    });
  const at = w.reserve(prefixWireLength(p, addPath));
  writePrefix(w.buf, at, p, addPath);
}

/** Input of {@link encodeUpdates}: one attribute set and the prefixes that share it. */
export interface UpdateBatch {
  /**
   * Attributes shared by every prefix of `nlri`. For IPv6 (or RFC 8950 IPv4-over-IPv6) NLRI give
   * `mpReach` with `afi`, `safi` and `nextHops`; its own `nlri` are sent too. `mpUnreach` withdrawals are
   * sent too.
   */
  attributes?: PathAttributes;
  /** Prefixes to announce: IPv4 in the NLRI field (unless `attributes.mpReach.afi` is IPv4), IPv6 in MP_REACH_NLRI. */
  nlri?: readonly Prefix[];
  /** Prefixes to withdraw: IPv4 in Withdrawn Routes, IPv6 in MP_UNREACH_NLRI. */
  withdrawn?: readonly Prefix[];
  /**
   * Fast path for full tables: IPv4 prefixes to announce as flat pairs `[addr0, len0, addr1, len1, …]`
   * (address as an unsigned 32-bit number), sent after `nlri` in the NLRI field. Path identifier 0 when
   * ADD-PATH is negotiated for sending.
   */
  ipv4Nlri?: ArrayLike<number>;
  /** Fast path: IPv4 prefixes to withdraw as flat `[addr, len]` pairs, sent after `withdrawn`. */
  ipv4Withdrawn?: ArrayLike<number>;
}

/**
 * Packs a batch into as few UPDATE messages as fit in `ctx.maxMessageSize`: withdrawals first (messages
 * without attributes), then announcements. The attribute set is encoded once and copied into each
 * message. Throws {@link BgpEncodeError} when the attributes alone do not fit.
 */
export function encodeUpdates(batch: UpdateBatch, ctx: CodecContext): Uint8Array[] {
  const max = ctx.maxMessageSize;
  const attrs = batch.attributes ?? {};
  const out: Uint8Array[] = [];
  const wIn = batch.withdrawn ?? [];
  const wMp = attrs.mpUnreach?.withdrawn ?? [];
  let v4w: readonly Prefix[] = wIn;
  const v6w: Prefix[] = [];
  // Full tables arrive as one big all-IPv4 list: use it as is rather than copying a million entries.
  if (wMp.length > 0 || !wIn.every(isV4)) {
    const list: Prefix[] = [];
    for (const p of wIn) (p.afi === Afi.IPv4 ? list : v6w).push(p);
    for (const p of wMp) (p.afi === Afi.IPv4 && attrs.mpUnreach!.afi === Afi.IPv4 ? list : v6w).push(p);
    v4w = list;
  }
  const mpFamily = attrs.mpReach;
  const v4ViaMp = mpFamily?.afi === Afi.IPv4;
  const nIn = batch.nlri ?? [];
  const nMp = mpFamily?.nlri ?? [];
  let v4n: readonly Prefix[] = nIn;
  let mpn: Prefix[] = [];
  if (v4ViaMp || nMp.length > 0 || !nIn.every(isV4)) {
    const list: Prefix[] = [];
    mpn = [];
    for (const p of nIn) (p.afi === Afi.IPv4 && !v4ViaMp ? list : mpn).push(p);
    for (const p of nMp) (p.afi === Afi.IPv4 && !v4ViaMp ? list : mpn).push(p);
    v4n = list;
  }

  // Withdrawals: classic Withdrawn Routes for IPv4.
  if (v4w.length > 0) {
    const ap = ctx.addPathSend.has("1/1");
    packPrefixes(v4w, ap, max - HEADER_LENGTH - 4, (first, last, size) => {
      const m = new Uint8Array(HEADER_LENGTH + 4 + size);
      writeHeader(m, m.length, MT.Update);
      m[19] = size >>> 8;
      m[20] = size & 255;
      let o = 21;
      for (let i = first; i < last; i++) o = writePrefix(m, o, checkAfi(v4w[i]!, Afi.IPv4), ap);
      out.push(m);
    });
  }
  const w4 = batch.ipv4Withdrawn;
  if (w4 && w4.length > 0) {
    const ap = ctx.addPathSend.has("1/1");
    packPairs(w4, ap, max - HEADER_LENGTH - 4, (first, last, size) => {
      const m = new Uint8Array(HEADER_LENGTH + 4 + size);
      writeHeader(m, m.length, MT.Update);
      m[19] = size >>> 8;
      m[20] = size & 255;
      let o = 21;
      for (let i = first; i < last; i += 2) o = writePair(m, o, w4[i]!, w4[i + 1]!, ap);
      out.push(m);
    });
  }
  if (v6w.length > 0) {
    const byFam = new Map<number, Prefix[]>();
    for (const p of v6w) {
      const l = byFam.get(p.afi) ?? [];
      l.push(p);
      byFam.set(p.afi, l);
    }
    for (const [afi, list] of byFam) {
      const safi = Safi.Unicast;
      const ap = ctx.addPathSend.has(familyKey(afi, safi));
      const head = new Uint8Array([afi >>> 8, afi & 255, safi]);
      // header + withdrawn length + attribute length + MP_UNREACH_NLRI header (4 when extended) + AFI/SAFI
      const fixed = HEADER_LENGTH + 4 + 4 + head.length;
      packPrefixes(list, ap, max - fixed, (first, last, size) => {
        out.push(mpMessage(EMPTY, AttrType.MpUnreachNlri, head, list, first, last, size, afi, ap, EMPTY));
      });
    }
  }

  // Announcements.
  const n4 = batch.ipv4Nlri;
  if (v4n.length > 0 || (n4 && n4.length > 0)) {
    const base = new Writer(256);
    writeAttributes(base, attrs, ctx, { omitMp: true });
    const ab = base.buf.subarray(0, base.len);
    const ap = ctx.addPathSend.has("1/1");
    const fixed = HEADER_LENGTH + 4 + ab.length;
    if (fixed >= max) throw tooLarge(fixed, max);
    packPrefixes(v4n, ap, max - fixed, (first, last, size) => {
      const m = new Uint8Array(fixed + size);
      writeHeader(m, m.length, MT.Update);
      m[21] = ab.length >>> 8;
      m[22] = ab.length & 255;
      m.set(ab, 23);
      let o = fixed;
      for (let i = first; i < last; i++) o = writePrefix(m, o, checkAfi(v4n[i]!, Afi.IPv4), ap);
      out.push(m);
    });
    if (n4 && n4.length > 0)
      packPairs(n4, ap, max - fixed, (first, last, size) => {
        const m = new Uint8Array(fixed + size);
        writeHeader(m, m.length, MT.Update);
        m[21] = ab.length >>> 8;
        m[22] = ab.length & 255;
        m.set(ab, 23);
        let o = fixed;
        for (let i = first; i < last; i += 2) o = writePair(m, o, n4[i]!, n4[i + 1]!, ap);
        out.push(m);
      });
  }
  if (mpn.length > 0) {
    if (!mpFamily)
      throw new BgpEncodeError("encode-invalid", "IPv6 NLRI need attributes.mpReach with next hops", {
        reason: "mp-next-hop-missing",
      });
    const { afi, safi } = mpFamily;
    // Attributes in type-code order around MP_REACH_NLRI, the same bytes encodeUpdate would produce.
    const pre = new Writer(256);
    writeAttributes(pre, attrs, ctx, { omitMp: true, omitNextHop: true, maxType: AttrType.MpReachNlri - 1 });
    const post = new Writer(64);
    writeAttributes(post, attrs, ctx, { omitMp: true, minType: AttrType.MpUnreachNlri + 1 });
    const nh = nextHopBytes(afi, safi, mpFamily.nextHops, ctx);
    const head = new Uint8Array(5 + nh.length);
    head[0] = afi >>> 8;
    head[1] = afi & 255;
    head[2] = safi;
    head[3] = nh.length;
    head.set(nh, 4);
    const ap = ctx.addPathSend.has(familyKey(afi, safi));
    const fixed = HEADER_LENGTH + 4 + pre.len + 4 + head.length + post.len;
    if (fixed >= max) throw tooLarge(fixed, max);
    const preB = pre.buf.subarray(0, pre.len);
    const postB = post.buf.subarray(0, post.len);
    packPrefixes(mpn, ap, max - fixed, (first, last, size) => {
      out.push(mpMessage(preB, AttrType.MpReachNlri, head, mpn, first, last, size, afi, ap, postB));
    });
  }
  return out;
}

const EMPTY = new Uint8Array(0);

const isV4 = (p: Prefix) => p.afi === Afi.IPv4;

/** One UPDATE whose attributes are `pre`, an MP attribute (`head` then prefixes `[first, last)`), `post`. */
function mpMessage(
  pre: Uint8Array,
  type: number,
  head: Uint8Array,
  list: readonly Prefix[],
  first: number,
  last: number,
  size: number,
  afi: number,
  addPath: boolean,
  post: Uint8Array,
): Uint8Array {
  const mpLen = head.length + size;
  const ext = mpLen > 255;
  const attrLen = pre.length + (ext ? 4 : 3) + mpLen + post.length;
  const m = new Uint8Array(HEADER_LENGTH + 4 + attrLen);
  writeHeader(m, m.length, MT.Update);
  m[21] = attrLen >>> 8;
  m[22] = attrLen & 255;
  m.set(pre, 23);
  let o = 23 + pre.length;
  m[o++] = AttrFlag.Optional | (ext ? AttrFlag.ExtendedLength : 0);
  m[o++] = type;
  if (ext) m[o++] = mpLen >>> 8;
  m[o++] = mpLen & 255;
  m.set(head, o);
  o += head.length;
  for (let i = first; i < last; i++) o = writePrefix(m, o, checkAfi(list[i]!, afi), addPath);
  m.set(post, o);
  return m;
}

function checkAfi(p: Prefix, afi: number): Prefix {
  if (p.afi !== afi || p.len < 0 || p.len > (afi === Afi.IPv4 ? 32 : 128))
    throw new BgpEncodeError("encode-invalid", `prefix does not belong to AFI ${afi}`, {
      reason: "prefix",
    });
  return p;
}

function badPair(i: number): BgpEncodeError {
  return new BgpEncodeError("encode-invalid", `invalid IPv4 prefix pair at index ${i}`, {
    reason: "prefix",
    index: i,
  });
}

/** Like {@link packPrefixes} over flat `[addr, len]` pairs; indexes step by 2. */
function packPairs(
  pairs: ArrayLike<number>,
  addPath: boolean,
  room: number,
  emit: (first: number, last: number, size: number) => void,
): void {
  if (pairs.length % 2 !== 0) throw badPair(pairs.length - 1);
  const per = addPath ? 5 : 1;
  let first = 0;
  let size = 0;
  for (let i = 0; i < pairs.length; i += 2) {
    const len = pairs[i + 1]!;
    if (!(len >= 0 && len <= 32 && (len | 0) === len)) throw badPair(i);
    const s = per + ((len + 7) >> 3);
    if (size + s > room) {
      if (i === first) throw tooLarge(size + s, room);
      emit(first, i, size);
      first = i;
      size = 0;
    }
    size += s;
  }
  if (pairs.length > first) emit(first, pairs.length, size);
}

/** Writes one IPv4 prefix given as a number; host bits are cleared. */
function writePair(m: Uint8Array, o: number, addr: number, len: number, addPath: boolean): number {
  if (addPath) {
    m[o] = m[o + 1] = m[o + 2] = m[o + 3] = 0;
    o += 4;
  }
  m[o++] = len;
  const a = len === 0 ? 0 : (addr & (0xffffffff << (32 - len))) >>> 0;
  const nb = (len + 7) >> 3;
  if (nb > 0) m[o] = a >>> 24;
  if (nb > 1) m[o + 1] = (a >>> 16) & 255;
  if (nb > 2) m[o + 2] = (a >>> 8) & 255;
  if (nb > 3) m[o + 3] = a & 255;
  return o + nb;
}

/** Splits `list` into runs whose encoded size fits `room`, calling `emit(first, last, size)` per run. */
function packPrefixes(
  list: readonly Prefix[],
  addPath: boolean,
  room: number,
  emit: (first: number, last: number, size: number) => void,
): void {
  const per = addPath ? 5 : 1;
  let first = 0;
  let size = 0;
  for (let i = 0; i < list.length; i++) {
    const s = per + ((list[i]!.len + 7) >> 3);
    if (size + s > room) {
      if (i === first) throw tooLarge(size + s, room);
      emit(first, i, size);
      first = i;
      size = 0;
    }
    size += s;
  }
  if (list.length > first) emit(first, list.length, size);
}
