/**
 * Address and prefix arithmetic on bigints. Both families use the same code path; nothing here ever
 * enumerates a prefix, so a /64 is as cheap as a /30. Parsing and formatting are `@margay/api`'s (one
 * grammar for the whole repository, see `testdata/ip-vectors.json`); this module wraps them in
 * {@link IpamError} `invalid`.
 */
import { formatIp as apiFormatIp, prefixMask as apiPrefixMask, tryParseCidr, tryParseIp } from "@margay/api";
import { IpamError, IpamErrorCode } from "./errors.js";

/** Address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** A parsed address. */
export interface IpAddr {
  family: IpFamily;
  /** The address as an unsigned integer (32 or 128 bits). */
  value: bigint;
}

/** A parsed, canonical prefix: `base` has all host bits zero. */
export interface Cidr {
  family: IpFamily;
  /** The network address as an unsigned integer. */
  base: bigint;
  /** Prefix length. */
  prefix: number;
}

/** Number of address bits of a family. */
export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

function invalid(message: string, details: Record<string, unknown>): IpamError {
  return new IpamError(IpamErrorCode.Invalid, message, { details });
}

/** Parses an IPv4 or IPv6 address (no prefix). Throws `invalid`. */
export function parseIp(text: string): IpAddr {
  const a = tryParseIp(text);
  if (a === undefined) throw invalid("not an IP address", { ip: text });
  return { family: a.version, value: a.value };
}

/**
 * Parses `a.b.c.d/n` or `x::y/n` (a bare address is a host prefix). Host bits must be zero unless
 * `mask` is set, in which case they are cleared. Throws `invalid`.
 */
export function parseCidr(text: string, options: { mask?: boolean } = {}): Cidr {
  if (typeof text !== "string") throw invalid("not a CIDR", { cidr: text });
  const c = tryParseCidr(text);
  if (c === undefined) {
    const slash = text.indexOf("/");
    const addrText = slash < 0 ? text : text.slice(0, slash);
    if (tryParseIp(addrText) === undefined) throw invalid("not an IP address", { ip: addrText });
    throw invalid("bad prefix length", { cidr: text });
  }
  if (c.hostBitsSet && !options.mask) throw invalid("host bits set in CIDR", { cidr: text });
  return { family: c.version, base: c.network, prefix: c.prefixLength };
}

/** The network mask of a prefix as an integer. */
export function prefixMask(family: IpFamily, prefix: number): bigint {
  return apiPrefixMask(family, prefix);
}

/** Number of addresses in a prefix. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix);
}

/** Last address (inclusive) of a prefix. */
export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

/** Formats an address in its canonical text form (RFC 5952 for IPv6). */
export function formatIp(family: IpFamily, value: bigint): string {
  return apiFormatIp(family, value);
}

/** Formats a prefix canonically, e.g. `10.0.0.0/26` or `fd00::40/122`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.base)}/${c.prefix}`;
}

/** Canonical text of a CIDR given as text (throws `invalid`). */
export function canonicalCidr(text: string, options: { mask?: boolean } = {}): string {
  return formatCidr(parseCidr(text, options));
}

/** True if `addr` lies inside `c`. */
export function cidrContains(c: Cidr, addr: IpAddr): boolean {
  return c.family === addr.family && addr.value >= c.base && addr.value <= cidrLast(c);
}

/** True if `inner` lies entirely inside `outer`. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefix >= outer.prefix &&
    inner.base >= outer.base &&
    cidrLast(inner) <= cidrLast(outer)
  );
}

/** True if two prefixes share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
}

/** The prefix of length `prefix` containing `addr`. */
export function enclosingCidr(addr: IpAddr, prefix: number): Cidr {
  return { family: addr.family, base: addr.value & prefixMask(addr.family, prefix), prefix };
}

/**
 * A datastore-safe name for a prefix, as Calico derives it: dots, colons and the slash become dashes
 * (`10.0.0.0/26` → `10-0-0-0-26`, `fd00::40/122` → `fd00--40-122`).
 */
export function cidrName(c: Cidr): string {
  return formatCidr(c).replace(/[.:/]/g, "-");
}
