/**
 * NLRI prefix encoding (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3): `[path id (4)] length (1) prefix bytes`.
 * The `forEach*` functions walk the packed bytes without allocating per prefix: the fast path for
 * full tables.
 *
 * @packageDocumentation
 */
import { UpdateErrorSubcode } from "./constants.js";
import { BgpEncodeError, updateError } from "./errors.js";
import { ipv4ToString, ipv6ToString, parseIpv4, parseIpv6, parsePrefixLength } from "./ip.js";
import { Afi, ErrorAction, type Prefix } from "./types.js";

/** Callback of {@link forEachIPv4Prefix}: address as an unsigned 32-bit number (host bits zero). */
export type IPv4PrefixCallback = (addr: number, len: number, pathId: number) => void;

/**
 * Callback of {@link forEachPrefix}: the prefix occupies `ceil(len / 8)` bytes of `bytes` at `addrOffset`
 * (host bits of the last byte as sent, possibly non-zero). `pathId` is 0 without ADD-PATH.
 */
export type PrefixCallback = (bytes: Uint8Array, addrOffset: number, len: number, pathId: number) => void;

/** Bits of an address of `afi` (32 for IPv4, 128 for IPv6; 0 for other families). */
export function afiBits(afi: number): number {
  return afi === Afi.IPv4 ? 32 : afi === Afi.IPv6 ? 128 : 0;
}

/**
 * Checks that `[start, end)` is a well-formed sequence of prefixes of `afi`.
 * Returns the prefix count, or a negative value at the first malformation (`-1 - offset`).
 */
export function scanPrefixes(
  bytes: Uint8Array,
  start: number,
  end: number,
  afi: number,
  addPath: boolean,
): number {
  const max = afiBits(afi);
  let off = start;
  let n = 0;
  while (off < end) {
    const at = off;
    if (addPath) off += 4;
    if (off >= end) return -1 - at;
    const len = bytes[off++]!;
    if (len > max) return -1 - at;
    off += (len + 7) >> 3;
    if (off > end) return -1 - at;
    n++;
  }
  return n;
}

function invalidNlri(offset: number) {
  return updateError(
    UpdateErrorSubcode.InvalidNetworkField,
    ErrorAction.SessionReset,
    { reason: "invalid-nlri", offset },
    `malformed NLRI at offset ${offset}`,
  );
}

/**
 * Calls `cb` for every IPv4 prefix in `[start, end)` of `bytes`, without allocating.
 * Throws a {@link BgpWireError} (Invalid Network Field, session reset) on malformed input.
 * Returns the prefix count.
 */
export function forEachIPv4Prefix(
  bytes: Uint8Array,
  start: number,
  end: number,
  addPath: boolean,
  cb: IPv4PrefixCallback,
): number {
  let off = start;
  let n = 0;
  while (off < end) {
    const at = off;
    let pathId = 0;
    if (addPath) {
      if (off + 4 > end) throw invalidNlri(at);
      pathId =
        ((bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8) | bytes[off + 3]!) >>> 0;
      off += 4;
    }
    if (off >= end) throw invalidNlri(at);
    const len = bytes[off++]!;
    const nb = (len + 7) >> 3;
    if (len > 32 || off + nb > end) throw invalidNlri(at);
    let a = 0;
    switch (nb) {
      case 4:
        a = (bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8) | bytes[off + 3]!;
        break;
      case 3:
        a = (bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8);
        break;
      case 2:
        a = (bytes[off]! << 24) | (bytes[off + 1]! << 16);
        break;
      case 1:
        a = bytes[off]! << 24;
        break;
    }
    off += nb;
    // Host bits a peer left set are cleared so equal prefixes compare equal.
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    cb((a & mask) >>> 0, len, pathId);
    n++;
  }
  return n;
}

/**
 * Calls `cb` for every prefix of `afi` in `[start, end)` of `bytes`, without allocating.
 * Throws a {@link BgpWireError} (Invalid Network Field, session reset) on malformed input.
 * Returns the prefix count.
 */
export function forEachPrefix(
  bytes: Uint8Array,
  start: number,
  end: number,
  afi: number,
  addPath: boolean,
  cb: PrefixCallback,
): number {
  const max = afiBits(afi);
  let off = start;
  let n = 0;
  while (off < end) {
    const at = off;
    let pathId = 0;
    if (addPath) {
      if (off + 4 > end) throw invalidNlri(at);
      pathId =
        ((bytes[off]! << 24) | (bytes[off + 1]! << 16) | (bytes[off + 2]! << 8) | bytes[off + 3]!) >>> 0;
      off += 4;
    }
    if (off >= end) throw invalidNlri(at);
    const len = bytes[off++]!;
    const nb = (len + 7) >> 3;
    if (len > max || off + nb > end) throw invalidNlri(at);
    cb(bytes, off, len, pathId);
    off += nb;
    n++;
  }
  return n;
}

/** Copies a packed prefix into a full-width address with host bits cleared. */
export function prefixFromBytes(
  afi: Afi,
  bytes: Uint8Array,
  addrOffset: number,
  len: number,
  pathId?: number,
): Prefix {
  const addr = new Uint8Array(afi === Afi.IPv4 ? 4 : 16);
  const nb = (len + 7) >> 3;
  for (let i = 0; i < nb; i++) addr[i] = bytes[addrOffset + i]!;
  if (len & 7) addr[nb - 1]! &= (0xff << (8 - (len & 7))) & 0xff;
  return pathId === undefined ? { afi, len, addr } : { afi, len, addr, pathId };
}

/** Decodes `[start, end)` into {@link Prefix} objects (allocates; prefer the `forEach*` functions in hot paths). */
export function decodePrefixes(
  bytes: Uint8Array,
  start: number,
  end: number,
  afi: Afi,
  addPath: boolean,
): Prefix[] {
  const out: Prefix[] = [];
  forEachPrefix(bytes, start, end, afi, addPath, (b, o, len, pathId) => {
    out.push(prefixFromBytes(afi, b, o, len, addPath ? pathId : undefined));
  });
  return out;
}

/** Encoded size of one prefix. */
export function prefixWireLength(p: Prefix, addPath: boolean): number {
  return (addPath ? 5 : 1) + ((p.len + 7) >> 3);
}

/** Writes one prefix at `off`; returns the offset after it. Host bits are written as zero. */
export function writePrefix(out: Uint8Array, off: number, p: Prefix, addPath: boolean): number {
  if (addPath) {
    const id = p.pathId ?? 0;
    out[off++] = id >>> 24;
    out[off++] = (id >>> 16) & 255;
    out[off++] = (id >>> 8) & 255;
    out[off++] = id & 255;
  }
  out[off++] = p.len;
  const nb = (p.len + 7) >> 3;
  for (let i = 0; i < nb; i++) out[off + i] = p.addr[i]!;
  if (p.len & 7) out[off + nb - 1]! &= (0xff << (8 - (p.len & 7))) & 0xff;
  return off + nb;
}

/** An IPv4 {@link Prefix} from an unsigned 32-bit address and a length. */
export function ipv4Prefix(addr: number, len: number, pathId?: number): Prefix {
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const a = (addr & mask) >>> 0;
  const bytes = new Uint8Array([a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255]);
  return pathId === undefined
    ? { afi: Afi.IPv4, len, addr: bytes }
    : { afi: Afi.IPv4, len, addr: bytes, pathId };
}

/** Text of a prefix, e.g. `10.0.0.0/8` or `2001:db8::/32` (path id not included). */
export function formatPrefix(p: Prefix): string {
  return `${p.afi === Afi.IPv4 ? ipv4ToString(p.addr) : ipv6ToString(p.addr)}/${p.len}`;
}

/**
 * Parses `addr/len` text into a {@link Prefix} (host bits cleared). Throws {@link BgpEncodeError} when
 * the text is not a prefix.
 */
export function parsePrefix(text: string, pathId?: number): Prefix {
  const slash = text.lastIndexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const isV6 = addrText.includes(":");
  const max = isV6 ? 128 : 32;
  const len = slash < 0 ? max : parsePrefixLength(text.slice(slash + 1), max);
  const bad = () =>
    new BgpEncodeError("encode-invalid", `not a prefix: ${text}`, { reason: "prefix", value: text });
  if (len === undefined) throw bad();
  let addr: Uint8Array;
  if (isV6) {
    const b = parseIpv6(addrText);
    if (!b) throw bad();
    addr = b;
  } else {
    const n = parseIpv4(addrText);
    if (n === undefined) throw bad();
    addr = new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }
  const nb = (len + 7) >> 3;
  addr.fill(0, nb);
  if (len & 7) addr[nb - 1]! &= (0xff << (8 - (len & 7))) & 0xff;
  const afi = isV6 ? Afi.IPv6 : Afi.IPv4;
  return pathId === undefined ? { afi, len, addr } : { afi, len, addr, pathId };
}
