import { type HostBits, tryParseCidr, tryParseIp } from "../net/ip.js";
import { type Ctx, show, typeName } from "./context.js";

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
  const c = tryParseCidr(v);
  if (c === undefined) return ctx.fail(path, `invalid CIDR ${show(v)}`);
  if (opts.version !== undefined && c.version !== opts.version) {
    return ctx.fail(path, `must be an IPv${opts.version} CIDR, got ${show(v)}`);
  }
  if (c.hostBitsSet && (opts.hostBits ?? "reject") === "reject") {
    return ctx.fail(path, `CIDR ${show(v)} is not strictly masked (network address is ${c.text})`);
  }
  return c.text;
}

/** An address with a prefix length where host bits are meaningful (e.g. a node's `ipv4Address`). */
export function addressWithPrefix(v: unknown, path: string, ctx: Ctx, version?: 4 | 6): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  const c = tryParseCidr(v);
  if (c === undefined) return ctx.fail(path, `invalid address ${show(v)}`);
  if (version !== undefined && c.version !== version)
    return ctx.fail(path, `must be an IPv${version} address`);
  return v.includes("/") ? `${c.addressText}/${c.prefixLength}` : c.addressText;
}

/** A bare IP address (optionally of one version), canonicalised. */
export function ip(v: unknown, path: string, ctx: Ctx, version?: 4 | 6): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected an IP address string, got ${typeName(v)}`);
  const a = tryParseIp(v);
  if (a === undefined) return ctx.fail(path, `invalid IP address ${show(v)}`);
  if (version !== undefined && a.version !== version)
    return ctx.fail(path, `must be an IPv${version} address`);
  return a.text;
}

/** A MAC address (`aa:bb:cc:dd:ee:ff`, also `-` separated), canonicalised to lower case with `:`. */
export function mac(v: unknown, path: string, ctx: Ctx): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a MAC address string, got ${typeName(v)}`);
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(v))
    return ctx.fail(path, `invalid MAC address ${show(v)}`);
  return v.toLowerCase().replaceAll("-", ":");
}
