/**
 * IPAM's view of `@margay/api`'s IP/CIDR module (one grammar and one shape for the whole repository,
 * see `testdata/ip-vectors.json`): the same values, with parse failures as {@link IpamError} `invalid`.
 * Address and prefix arithmetic is on bigints; nothing here ever enumerates a prefix, so a /64 is as
 * cheap as a /30.
 */
import {
  addressBits,
  type IpAddress,
  type IpCidr,
  type IpVersion,
  tryParseCidr,
  tryParseIp,
} from "@margay/api";
import { IpamError, IpamErrorCode } from "./errors.js";

export {
  cidrContains,
  cidrContainsCidr,
  cidrFromValue,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  enclosingCidr,
  formatIp,
  prefixMask,
} from "@margay/api";

/** Address family: 4 or 6 (`@margay/api`'s `IpVersion`). */
export type IpFamily = IpVersion;
/** A parsed address (`@margay/api`'s `IpAddress`). */
export type IpAddr = IpAddress;
/** A parsed prefix (`@margay/api`'s `IpCidr`); IPAM's are always masked. */
export type Cidr = IpCidr;

/** Number of address bits of a family. */
export function familyBits(family: IpFamily): number {
  return addressBits(family);
}

function invalid(message: string, details: Record<string, unknown>): IpamError {
  return new IpamError(IpamErrorCode.Invalid, message, { details });
}

/** Parses an IPv4 or IPv6 address (no prefix). Throws `invalid`. */
export function parseIp(text: string): IpAddr {
  const a = tryParseIp(text);
  if (a === undefined) throw invalid("not an IP address", { ip: text });
  return a;
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
  return c;
}

/** Formats a prefix canonically, e.g. `10.0.0.0/26` or `fd00::40/122`. */
export function formatCidr(c: Cidr): string {
  return c.text;
}

/** Canonical text of a CIDR given as text (throws `invalid`). */
export function canonicalCidr(text: string, options: { mask?: boolean } = {}): string {
  return parseCidr(text, options).text;
}

/**
 * A datastore-safe name for a prefix, as Calico derives it: dots, colons and the slash become dashes
 * (`10.0.0.0/26` → `10-0-0-0-26`, `fd00::40/122` → `fd00--40-122`).
 */
export function cidrName(c: Cidr): string {
  return c.text.replace(/[.:/]/g, "-");
}
