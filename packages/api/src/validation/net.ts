import { Address4, Address6 } from "ip-address";
import { type Ctx, show, typeName } from "./context.js";

/** A parsed IP network. */
export interface ParsedCidr {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** Canonical address part (dotted quad, or RFC 5952 compressed lower-case IPv6). */
  readonly address: string;
  /** Canonical network address (host bits cleared). */
  readonly network: string;
  /** Prefix length. */
  readonly prefixLength: number;
  /** True if the address has host bits set (i.e. `address !== network`). */
  readonly hostBitsSet: boolean;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(0|[1-9]\d?\d?))?$/;
const V6 = /^[0-9a-fA-F:.]+(\/(0|[1-9]\d?\d?))?$/;

/**
 * Parses an IPv4/IPv6 address or CIDR (a bare address is a /32 or /128), canonicalising it.
 * Returns undefined for anything else. Never throws.
 */
export function parseCidr(s: string): ParsedCidr | undefined {
  try {
    if (V4.test(s)) {
      const a = new Address4(s);
      const address = new Address4(a.addressMinusSuffix ?? s).correctForm();
      const network = a.startAddress().correctForm();
      return { version: 4, address, network, prefixLength: a.subnetMask, hostBitsSet: address !== network };
    }
    if (s.includes(":") && V6.test(s) && s.length <= 64) {
      const a = new Address6(s);
      const address = a.correctForm();
      const network = a.startAddress().correctForm();
      return { version: 6, address, network, prefixLength: a.subnetMask, hostBitsSet: address !== network };
    }
  } catch {
    // ip-address throws AddressError for malformed input; to the caller that is just "invalid".
  }
  return undefined;
}

/** A parsed IP address. */
export interface ParsedIp {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** Canonical text. */
  readonly address: string;
}

/** Parses a bare IP address (no prefix), canonicalised. */
export function parseIp(s: string): ParsedIp | undefined {
  if (s.includes("/")) return undefined;
  const c = parseCidr(s);
  return c === undefined ? undefined : { version: c.version, address: c.address };
}

/** How a CIDR field treats host bits. */
export type HostBits = "reject" | "mask";

/**
 * A CIDR (or bare IP, taken as /32 or /128). `hostBits: "reject"` follows Calico's strictly-masked
 * `net` rule; `"mask"` clears host bits. Returns the canonical `network/len` string.
 */
export function cidr(
  v: unknown,
  path: string,
  ctx: Ctx,
  opts: { hostBits?: HostBits; version?: 4 | 6 } = {},
): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a CIDR string, got ${typeName(v)}`);
  const c = parseCidr(v);
  if (c === undefined) return ctx.fail(path, `invalid CIDR ${show(v)}`);
  if (opts.version !== undefined && c.version !== opts.version) {
    return ctx.fail(path, `must be an IPv${opts.version} CIDR, got ${show(v)}`);
  }
  if (c.hostBitsSet && (opts.hostBits ?? "reject") === "reject") {
    return ctx.fail(
      path,
      `CIDR ${show(v)} is not strictly masked (network address is ${c.network}/${c.prefixLength})`,
    );
  }
  return `${c.network}/${c.prefixLength}`;
}

/** An address with a prefix length where host bits are meaningful (e.g. a node's `ipv4Address`). */
export function addressWithPrefix(v: unknown, path: string, ctx: Ctx, version?: 4 | 6): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  const c = parseCidr(v);
  if (c === undefined) return ctx.fail(path, `invalid address ${show(v)}`);
  if (version !== undefined && c.version !== version)
    return ctx.fail(path, `must be an IPv${version} address`);
  return v.includes("/") ? `${c.address}/${c.prefixLength}` : c.address;
}

/** A bare IP address (optionally of one version), canonicalised. */
export function ip(v: unknown, path: string, ctx: Ctx, version?: 4 | 6): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected an IP address string, got ${typeName(v)}`);
  const a = parseIp(v);
  if (a === undefined) return ctx.fail(path, `invalid IP address ${show(v)}`);
  if (version !== undefined && a.version !== version)
    return ctx.fail(path, `must be an IPv${version} address`);
  return a.address;
}

/** A MAC address (`aa:bb:cc:dd:ee:ff`, also `-` separated), canonicalised to lower case with `:`. */
export function mac(v: unknown, path: string, ctx: Ctx): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a MAC address string, got ${typeName(v)}`);
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(v))
    return ctx.fail(path, `invalid MAC address ${show(v)}`);
  return v.toLowerCase().replaceAll("-", ":");
}
