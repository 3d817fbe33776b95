import { PolicyError, PolicyErrorCode } from "../errors.js";

/** A parsed CIDR: family, prefix length and the masked network address. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly prefix: number;
  /** Network address (host bits cleared) as an unsigned integer. */
  readonly network: bigint;
  /** Canonical text: masked address in RFC 5952 form plus `/prefix`. */
  readonly text: string;
}

/** A parsed address. */
export interface IpAddr {
  readonly family: 4 | 6;
  readonly value: bigint;
  /** Canonical text (RFC 5952 for IPv6). */
  readonly text: string;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  let head = s;
  let tailV4: bigint | undefined;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".") && lastColon >= 0) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.indexOf("::");
  if (dbl !== head.lastIndexOf("::")) return undefined;
  let groups: string[];
  if (dbl >= 0) {
    const left = head.slice(0, dbl) === "" ? [] : head.slice(0, dbl).split(":");
    const right = head.slice(dbl + 2) === "" ? [] : head.slice(dbl + 2).split(":");
    const fill = 8 - left.length - right.length;
    if (fill < 1) return undefined;
    groups = [...left, ...Array<string>(fill).fill("0"), ...right];
  } else {
    groups = head.split(":");
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
}

function formatV6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (first on ties) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Parses an IPv4 or IPv6 address; `undefined` when it is not one. */
export function tryParseIp(s: string): IpAddr | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4, text: formatV4(v4) };
  if (!s.includes(":")) return undefined;
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  return { family: 6, value: v6, text: formatV6(v6) };
}

/**
 * Parses an address.
 *
 * @throws {@link PolicyError} `invalid-input` when it is not one.
 */
export function parseIp(s: string, path = "ip"): IpAddr {
  const ip = tryParseIp(s);
  if (ip === undefined) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid IP address ${JSON.stringify(s)}`, {
      path,
      value: s,
    });
  }
  return ip;
}

const cidrCache = new Map<string, Cidr>();

/**
 * Parses a CIDR (or a bare address, as a host route) and masks the host bits, as Calico does.
 *
 * @throws {@link PolicyError} `invalid-input` when malformed.
 */
export function parseCidr(s: string, path = "cidr"): Cidr {
  const cached = cidrCache.get(s);
  if (cached !== undefined) return cached;
  const slash = s.indexOf("/");
  const ip = tryParseIp(slash < 0 ? s : s.slice(0, slash));
  const bits = ip?.family === 6 ? 128 : 32;
  const prefixText = slash < 0 ? String(bits) : s.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (ip === undefined || !(prefix >= 0 && prefix <= bits)) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid CIDR ${JSON.stringify(s)}`, {
      path,
      value: s,
    });
  }
  const hostBits = BigInt(bits - prefix);
  const network = (ip.value >> hostBits) << hostBits;
  const text = `${ip.family === 4 ? formatV4(network) : formatV6(network)}/${prefix}`;
  const out: Cidr = { family: ip.family, prefix, network, text };
  if (cidrCache.size > 100_000) cidrCache.clear();
  cidrCache.set(s, out);
  return out;
}

/** True if `ip` is inside `cidr` (same family). */
export function cidrContains(cidr: Cidr, ip: IpAddr): boolean {
  if (cidr.family !== ip.family) return false;
  const hostBits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  return (ip.value >> hostBits) << hostBits === cidr.network;
}

/** True if `ip` is in any of `cidrs`. */
export function anyCidrContains(cidrs: readonly Cidr[], ip: IpAddr): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true;
  return false;
}

/** True if `inner` lies entirely inside `outer` (same family, at least as long a prefix). */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const hostBits = BigInt((outer.family === 4 ? 32 : 128) - outer.prefix);
  return (inner.network >> hostBits) << hostBits === outer.network;
}
