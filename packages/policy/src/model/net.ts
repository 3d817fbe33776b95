/**
 * Policy's view of `@margay/api`'s IP/CIDR module: the same parsers, throwing {@link PolicyError}
 * `invalid-input` with the path of the offending field, as the rest of policy's input checks do.
 * Parsed CIDRs are memoised by the api module, which the calculation graph and the evaluators rely on.
 *
 * @packageDocumentation
 */
import { cidrContains, type IpAddress, type IpCidr, tryParseCidr, tryParseIp } from "@margay/api";
import { PolicyError, PolicyErrorCode } from "../errors.js";

/**
 * Parses an address (canonical text in `text`).
 *
 * @throws {@link PolicyError} `invalid-input` when it is not one.
 */
export function ipOrThrow(s: string, path = "ip"): IpAddress {
  const ip = tryParseIp(s);
  if (ip === undefined) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid IP address ${JSON.stringify(s)}`, {
      path,
      value: s,
    });
  }
  return ip;
}

/**
 * Parses a CIDR (or a bare address, as a host route); host bits are masked, as Calico does.
 *
 * @throws {@link PolicyError} `invalid-input` when malformed.
 */
export function cidrOrThrow(s: string, path = "cidr"): IpCidr {
  const c = tryParseCidr(s);
  if (c === undefined) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid CIDR ${JSON.stringify(s)}`, {
      path,
      value: s,
    });
  }
  return c;
}

/** True if `ip` is in any of `cidrs`. */
export function anyCidrContains(cidrs: readonly IpCidr[], ip: IpAddress): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true;
  return false;
}
