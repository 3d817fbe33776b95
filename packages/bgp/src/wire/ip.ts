/**
 * Address text <-> bytes, without dependencies: the wire layer must stay importable on its own. The one
 * address parser of this package (the RIB, its policies and the speaker's options use it too); it
 * accepts exactly the strings of the repository's shared table `testdata/ip-vectors.json`: Go's
 * `net.ParseIP` grammar (no leading-zero octets, `::` standing for at least one zero group, an IPv4 tail
 * only at the end, no zone).
 *
 * @packageDocumentation
 */
import { BgpEncodeError } from "./errors.js";

/** Dotted quad of 4 bytes at `off`. */
export function ipv4ToString(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Dotted quad of an unsigned 32-bit number. */
export function u32ToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted quad to an unsigned 32-bit number; `undefined` when it is not one. */
export function parseIpv4(s: string): number | undefined {
  if (typeof s !== "string") return undefined;
  const m = V4.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i]!.length > 1 && m[i]![0] === "0")) return undefined;
    n = n * 256 + o;
  }
  return n;
}

/** Writes a dotted quad into `out` at `off`; throws {@link BgpEncodeError} when `s` is not one. */
export function writeIpv4(out: Uint8Array, off: number, s: string): void {
  const n = parseIpv4(s);
  if (n === undefined)
    throw new BgpEncodeError("encode-invalid", `not an IPv4 address: ${s}`, { reason: "ipv4", value: s });
  out[off] = n >>> 24;
  out[off + 1] = (n >>> 16) & 255;
  out[off + 2] = (n >>> 8) & 255;
  out[off + 3] = n & 255;
}

/** RFC 5952 text of 16 bytes at `off` (lower case, longest zero run compressed, embedded IPv4 not used). */
export function ipv6ToString(b: Uint8Array, off = 0): string {
  const w: number[] = new Array(8);
  for (let i = 0; i < 8; i++) w[i] = (b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += i === 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    s += w[i]!.toString(16);
    if (i < 7) s += ":";
  }
  return s;
}

const HEX = /^[0-9a-fA-F]{1,4}$/;

/** Parses IPv6 text (with optional embedded IPv4 tail) into 16 bytes; `undefined` when invalid. */
export function parseIpv6(s: string): Uint8Array | undefined {
  if (typeof s !== "string") return undefined;
  const out = new Uint8Array(16);
  const dbl = s.indexOf("::");
  if (dbl !== s.lastIndexOf("::")) return undefined;
  // An IPv4 tail ends the text: it cannot stand before `::`.
  const parseSide = (part: string, v4TailAllowed: boolean): number[] | undefined => {
    if (part === "") return [];
    const groups = part.split(":");
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (v4TailAllowed && i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        words.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!HEX.test(g)) return undefined;
        words.push(Number.parseInt(g, 16));
      }
    }
    return words;
  };
  let words: number[];
  if (dbl >= 0) {
    const head = parseSide(s.slice(0, dbl), false);
    const tail = parseSide(s.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseSide(s, true);
    if (all?.length !== 8) return undefined;
    words = all;
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >>> 8;
    out[2 * i + 1] = words[i]! & 255;
  }
  return out;
}

/** Writes IPv6 text as 16 bytes into `out` at `off`; throws {@link BgpEncodeError} when invalid. */
export function writeIpv6(out: Uint8Array, off: number, s: string): void {
  const b = parseIpv6(s);
  if (!b)
    throw new BgpEncodeError("encode-invalid", `not an IPv6 address: ${s}`, { reason: "ipv6", value: s });
  out.set(b, off);
}

/** True for an IPv6 link-local unicast address (fe80::/10). */
export function isIpv6LinkLocal(b: Uint8Array, off = 0): boolean {
  return b[off] === 0xfe && (b[off + 1]! & 0xc0) === 0x80;
}

/** The family of an address text: 4, 6, or 0 when it is not an address (`node:net`'s `isIP`, minus zones). */
export function ipFamily(s: string): 0 | 4 | 6 {
  if (parseIpv4(s) !== undefined) return 4;
  return parseIpv6(s) !== undefined ? 6 : 0;
}

/** A prefix length `0..max` in decimal without sign or leading zero; `undefined` otherwise. */
export function parsePrefixLength(s: string, max: number): number | undefined {
  if (!/^(0|[1-9]\d{0,2})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= max ? n : undefined;
}
