import { isIPv4, isIPv6 } from "node:net";
import { DataplaneError, DataplaneErrorCode } from "./errors.js";

/** A parsed CIDR: canonical text, family, address bytes as a bigint, prefix length. */
export interface Cidr {
  /** Canonical text (`10.0.0.0/26`, `fd00::/64`). */
  readonly text: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Network address as an integer. */
  readonly bits: bigint;
  /** Prefix length. */
  readonly prefix: number;
}

// IPv4 stays in doubles until the end: BigInt arithmetic per octet dominated planning at 10k routes.
function v4ToBig(a: string): bigint {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  return BigInt(n * 256 + octet);
}

function v6ToBig(a: string): bigint {
  let addr = a;
  // Embedded IPv4 tail (::ffff:1.2.3.4).
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4?.[1] !== undefined) {
    const n = v4ToBig(v4[1]);
    addr = `${addr.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = addr.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function bigToV4(n: bigint): string {
  const v = Number(n);
  return `${Math.floor(v / 16777216) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function bigToV6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt((7 - i) * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** Canonical text of an IP address (RFC 5952 for IPv6); throws `invalid-update` if it is not one. */
export function canonicalIp(address: string): string {
  if (isIPv4(address)) return bigToV4(v4ToBig(address));
  if (isIPv6(address)) return bigToV6(v6ToBig(address));
  throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "invalid IP address", { details: { address } });
}

/** Family of an IP address, or `undefined`. */
export function ipFamily(address: string): 4 | 6 | undefined {
  return isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
}

/**
 * Parses `addr/len` (a bare address means a host route). With `strict` (default), host bits must be zero,
 * as the kernel requires of route destinations; otherwise they are kept (interface addresses).
 */
export function parseCidr(text: string, strict = true): Cidr {
  // Route planning parses the same few thousand strings again and again; parsed values are immutable.
  const memo = strict ? strictMemo : looseMemo;
  const hit = memo.get(text);
  if (hit !== undefined) return hit;
  const parsed = parseCidrUncached(text, strict);
  if (memo.size > 100_000) memo.clear();
  memo.set(text, parsed);
  return parsed;
}

const strictMemo = new Map<string, Cidr>();
const looseMemo = new Map<string, Cidr>();

function parseCidrUncached(text: string, strict: boolean): Cidr {
  const fail = (why: string) =>
    new DataplaneError(DataplaneErrorCode.InvalidUpdate, `invalid CIDR: ${why}`, { details: { cidr: text } });
  if (typeof text !== "string") throw fail("not a string");
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = ipFamily(addr);
  if (family === undefined) throw fail("bad address");
  const width = family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(width) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw fail("bad prefix length");
  const prefix = Number(lenText);
  if (prefix > width) throw fail("prefix length too long");
  const bits = family === 4 ? v4ToBig(addr) : v6ToBig(addr);
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  if (strict && (bits & hostMask) !== 0n) throw fail("host bits set");
  const shown = family === 4 ? bigToV4(bits) : bigToV6(bits);
  return Object.freeze({ text: `${shown}/${prefix}`, family, bits, prefix });
}

/** True if `inner` lies within `outer` (same family, longer or equal prefix, same leading bits). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const width = outer.family === 4 ? 32 : 128;
  const shift = BigInt(width - outer.prefix);
  return outer.bits >> shift === inner.bits >> shift;
}

/** Network (host bits cleared) of an interface-style CIDR such as `10.0.0.7/24`. */
export function networkOf(c: Cidr): Cidr {
  const width = c.family === 4 ? 32 : 128;
  const shift = BigInt(width - c.prefix);
  const bits = (c.bits >> shift) << shift;
  const shown = c.family === 4 ? bigToV4(bits) : bigToV6(bits);
  return { text: `${shown}/${c.prefix}`, family: c.family, bits, prefix: c.prefix };
}
