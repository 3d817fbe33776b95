/**
 * The dataplane's view of `@margay/api`'s IP/CIDR module: the same parsers, throwing
 * {@link DataplaneError} `invalid-update` (an update that names a malformed address is rejected as a
 * whole). Parsed CIDRs are memoised by the api module; route planning parses the same few thousand
 * strings again and again.
 *
 * @packageDocumentation
 */
import { type HostBits, type IpCidr, tryParseCidr, tryParseIp } from "@margay/api";
import { DataplaneError, DataplaneErrorCode } from "./errors.js";

/**
 * Parses `addr/len` (a bare address is a host route). With `hostBits: "reject"` (default) host bits must
 * be zero, as the kernel requires of route destinations; `"mask"` accepts them (interface addresses):
 * `addressText` keeps them, `network` and `text` clear them.
 *
 * @throws {@link DataplaneError} `invalid-update` when malformed.
 */
export function cidrOrThrow(text: string, hostBits: HostBits = "reject"): IpCidr {
  const c = tryParseCidr(text);
  if (c !== undefined && !(c.hostBitsSet && hostBits === "reject")) return c;
  const why = typeof text !== "string" ? "not a string" : c !== undefined ? "host bits set" : "malformed";
  throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, `invalid CIDR: ${why}`, {
    details: { cidr: text },
  });
}

/** `addr/len` as written (host bits kept), canonical: `10.0.0.7/24`, `fd00::7/64`. */
export function interfaceAddressText(c: IpCidr): string {
  return `${c.addressText}/${c.prefixLength}`;
}

/**
 * Canonical text of an IP address (RFC 5952 for IPv6).
 *
 * @throws {@link DataplaneError} `invalid-update` if it is not one.
 */
export function canonicalIpOrThrow(address: string): string {
  const a = tryParseIp(address);
  if (a === undefined) {
    throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "invalid IP address", {
      details: { address },
    });
  }
  return a.text;
}
