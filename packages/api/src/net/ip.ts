/**
 * The one IP/CIDR module of Margay: parse, canonicalise, mask, compare and walk IPv4 and IPv6
 * addresses and prefixes. ipam, policy and dataplane build on it; bgp and cni keep their own copies
 * (they import nothing of ours) but agree with it on the shared table `testdata/ip-vectors.json`.
 *
 * Accepted text is Go's `net.ParseIP` / `net.ParseCIDR` grammar, which Calico, libcni and the reference
 * plugins use: dotted-decimal IPv4 with exactly four octets and no leading zeros (`010.0.0.1` is
 * ambiguous, octal to some tools), RFC 4291 IPv6 with at most one `::` standing for at least one zero
 * group and an optional dotted IPv4 tail, no zone (`%eth0`), and a decimal prefix length without
 * leading zeros. Canonical text is dotted decimal, or RFC 5952 for IPv6 (lower case, the longest run of
 * two or more zero groups compressed, the first on a tie, no embedded IPv4).
 *
 * The parser is hand-written rather than ip-address: one scan of the text, no regular expressions, so
 * the policy and route planners can parse on their hot paths; parsed prefixes are memoised (they are
 * immutable), which the policy calculation relies on.
 *
 * @packageDocumentation
 */
import { API_ERROR_BRAND, ApiErrorCode, isApiError } from "../errors.js";

/** IP version: 4 or 6. */
export type IpVersion = 4 | 6;

/** A parsed IP address. */
export interface IpAddress {
  /** 4 or 6. */
  readonly version: IpVersion;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
  /** Canonical text (dotted decimal, or RFC 5952). */
  readonly text: string;
}

/** A parsed IP prefix (`addr/len`; a bare address is a host prefix). */
export interface IpCidr {
  /** 4 or 6. */
  readonly version: IpVersion;
  /** Prefix length. */
  readonly prefixLength: number;
  /** The address as written, host bits included, as an unsigned integer. */
  readonly address: bigint;
  /** Canonical text of the address as written, host bits included, without the prefix length. */
  readonly addressText: string;
  /** Network address (host bits cleared) as an unsigned integer. */
  readonly network: bigint;
  /** True if the address as written has host bits set (`address !== network`). */
  readonly hostBitsSet: boolean;
  /** Canonical `network/prefixLength` text, e.g. `10.0.0.0/26`, `fd00::40/122`. */
  readonly text: string;
}

/**
 * What a CIDR parse does with host bits: `"mask"` (default) accepts them and clears them in `network`
 * and `text`; `"reject"` fails, as Calico's strictly-masked `net` fields and kernel route destinations do.
 */
export type HostBits = "reject" | "mask";

/** Options of {@link parseCidr} and {@link tryParseCidr}. */
export interface ParseCidrOptions {
  /** See {@link HostBits}. Default `"mask"`. */
  readonly hostBits?: HostBits;
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** Codes of {@link IpParseError}. */
export type IpParseErrorCode = typeof ApiErrorCode.InvalidIpAddress | typeof ApiErrorCode.InvalidCidr;

/** Structured details of an {@link IpParseError}. */
export interface IpParseErrorDetails {
  /** The rejected text (or a description of a non-string value). */
  readonly value: string;
  /** Why: `"syntax"`, `"prefix-length"`, `"host-bits-set"` or `"not-a-string"`. */
  readonly reason: "syntax" | "prefix-length" | "host-bits-set" | "not-a-string";
}

/** Thrown by {@link parseIp}, {@link parseCidr} and the other throwing forms. Never retryable. */
export class IpParseError extends Error {
  /** `"invalid-ip-address"` or `"invalid-cidr"`. */
  readonly code: IpParseErrorCode;
  /** The same text fails the same way. */
  readonly retryable = false;
  /** What was rejected and why. */
  readonly details: IpParseErrorDetails;
  /** Brand checked by {@link isIpParseError}. */
  readonly [API_ERROR_BRAND] = true;

  /**
   * @param code - which kind of text was rejected.
   * @param message - what went wrong.
   * @param details - the rejected text and the reason.
   */
  constructor(code: IpParseErrorCode, message: string, details: IpParseErrorDetails) {
    super(message);
    this.name = "IpParseError";
    this.code = code;
    this.details = details;
  }
}

/** True if `e` is an {@link IpParseError} (by brand and code, so two module copies agree), optionally of one of `codes`. */
export function isIpParseError(e: unknown, ...codes: IpParseErrorCode[]): e is IpParseError {
  return isApiError(e, ...(codes.length > 0 ? codes : IP_PARSE_ERROR_CODES));
}

const IP_PARSE_ERROR_CODES: readonly IpParseErrorCode[] = [
  ApiErrorCode.InvalidIpAddress,
  ApiErrorCode.InvalidCidr,
];

function describe(v: unknown): string {
  return typeof v === "string" ? v : `${typeof v}`;
}

// ---------------------------------------------------------------------------------------------------
// Scanning

/** IPv4 octets at s[start, end) as a number, or -1. */
function scanV4(s: string, start: number, end: number): number {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return -1;
    // A leading zero (`01`) is rejected: some tools read it as octal.
    if (digits === 1 && octet === 0) return -1;
    if (++digits > 3) return -1;
    octet = octet * 10 + (c - 48);
    if (octet > 255) return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return n * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Scans IPv6 text at s[start, end) into 8 16-bit words; false when malformed. */
function scanV6(s: string, start: number, end: number, words: number[]): boolean {
  let n = 0;
  let gap = -1;
  let i = start;
  if (end - start < 2) return false;
  if (s.charCodeAt(i) === 58) {
    if (s.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    let j = i;
    let v = 0;
    let dotted = false;
    for (; j < end; j++) {
      const c = s.charCodeAt(j);
      if (c === 58) break;
      if (c === 46) dotted = true;
      else if (hexValue(c) < 0) return false;
    }
    if (j === i) return false;
    if (dotted) {
      // An IPv4 tail is only allowed as the last part, and stands for two words.
      if (j !== end || n > 6) return false;
      const v4 = scanV4(s, i, j);
      if (v4 < 0) return false;
      words[n++] = Math.floor(v4 / 65536);
      words[n++] = v4 & 0xffff;
      break;
    }
    if (j - i > 4 || n === 8) return false;
    for (let k = i; k < j; k++) v = v * 16 + hexValue(s.charCodeAt(k));
    words[n++] = v;
    if (j === end) break;
    if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  if (gap < 0) return n === 8;
  // `::` stands for at least one zero group.
  if (n > 7) return false;
  const tail = n - gap;
  for (let k = 0; k < tail; k++) words[7 - k] = words[n - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) words[k] = 0;
  return true;
}

function wordsToBigInt(w: readonly number[]): bigint {
  return (
    (BigInt(w[0]! * 65536 + w[1]!) << 96n) |
    (BigInt(w[2]! * 65536 + w[3]!) << 64n) |
    (BigInt(w[4]! * 65536 + w[5]!) << 32n) |
    BigInt(w[6]! * 65536 + w[7]!)
  );
}

function bigIntToWords(v: bigint, w: number[]): void {
  for (let k = 0; k < 4; k++) {
    const x = Number((v >> BigInt(96 - 32 * k)) & 0xffffffffn);
    w[2 * k] = Math.floor(x / 65536);
    w[2 * k + 1] = x & 0xffff;
  }
}

function formatWords(w: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += i === 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    out += w[i]!.toString(16);
    if (i < 7) out += ":";
  }
  return out;
}

function formatV4Number(n: number): string {
  return `${Math.floor(n / 16777216)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const scratch: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

/** Parses s[start, end) as an address; the version is decided by the presence of `:`. */
function scanAddress(s: string, start: number, end: number): IpAddress | undefined {
  let colon = false;
  for (let i = start; i < end; i++) {
    if (s.charCodeAt(i) === 58) {
      colon = true;
      break;
    }
  }
  if (!colon) {
    const n = scanV4(s, start, end);
    return n < 0 ? undefined : { version: 4, value: BigInt(n), text: formatV4Number(n) };
  }
  if (!scanV6(s, start, end, scratch)) return undefined;
  return { version: 6, value: wordsToBigInt(scratch), text: formatWords(scratch) };
}

// ---------------------------------------------------------------------------------------------------
// Addresses

/** Number of address bits of a version: 32 or 128. */
export function addressBits(version: IpVersion): 32 | 128 {
  return version === 4 ? 32 : 128;
}

/** Parses an IPv4 or IPv6 address (no prefix length); `undefined` when it is not one. Never throws. */
export function tryParseIp(text: string): IpAddress | undefined {
  if (typeof text !== "string") return undefined;
  return scanAddress(text, 0, text.length);
}

/**
 * Parses an IPv4 or IPv6 address (no prefix length).
 *
 * @throws {@link IpParseError} `invalid-ip-address` when it is not one.
 */
export function parseIp(text: string): IpAddress {
  const a = tryParseIp(text);
  if (a === undefined) {
    const reason = typeof text === "string" ? "syntax" : "not-a-string";
    throw new IpParseError(
      ApiErrorCode.InvalidIpAddress,
      `invalid IP address ${JSON.stringify(describe(text))}`,
      {
        value: describe(text),
        reason,
      },
    );
  }
  return a;
}

/** The version of an address text, or `undefined` when it is not an address. */
export function ipVersion(text: string): IpVersion | undefined {
  return tryParseIp(text)?.version;
}

/** Canonical text of the address `value` of `version`. */
export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return formatV4Number(Number(value & 0xffffffffn));
  const w: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  bigIntToWords(value, w);
  return formatWords(w);
}

/** The {@link IpAddress} of an integer value. */
export function ipFromValue(version: IpVersion, value: bigint): IpAddress {
  return { version, value, text: formatIp(version, value) };
}

// ---------------------------------------------------------------------------------------------------
// Prefixes

const memo = new Map<string, IpCidr>();
const MEMO_LIMIT = 100_000;

function scanCidr(s: string): IpCidr | "prefix-length" | undefined {
  const slash = s.indexOf("/");
  const end = slash < 0 ? s.length : slash;
  const a = scanAddress(s, 0, end);
  if (a === undefined) return undefined;
  const bits = a.version === 4 ? 32 : 128;
  let len = bits;
  if (slash >= 0) {
    const digits = s.length - slash - 1;
    if (digits < 1 || digits > 3) return "prefix-length";
    len = 0;
    for (let i = slash + 1; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return "prefix-length";
      len = len * 10 + (c - 48);
    }
    if ((digits > 1 && s.charCodeAt(slash + 1) === 48) || len > bits) return "prefix-length";
  }
  return new Cidr(a.version, a.value, a.text, len);
}

/**
 * The one {@link IpCidr} implementation. The texts are computed on first read: IPAM walks pools block by
 * block (`cidrFromValue` per block) and reads a block's text only for the blocks it touches.
 */
class Cidr implements IpCidr {
  readonly version: IpVersion;
  readonly prefixLength: number;
  readonly address: bigint;
  readonly network: bigint;
  readonly hostBitsSet: boolean;
  #addressText: string | undefined;
  #text: string | undefined;

  constructor(version: IpVersion, address: bigint, addressText: string | undefined, prefixLength: number) {
    this.version = version;
    this.prefixLength = prefixLength;
    this.address = address;
    this.network = address & prefixMask(version, prefixLength);
    this.hostBitsSet = this.network !== address;
    this.#addressText = addressText;
  }

  get addressText(): string {
    if (this.#addressText === undefined) this.#addressText = formatIp(this.version, this.address);
    return this.#addressText;
  }

  get text(): string {
    if (this.#text === undefined) {
      const networkText = this.hostBitsSet ? formatIp(this.version, this.network) : this.addressText;
      this.#text = `${networkText}/${this.prefixLength}`;
    }
    return this.#text;
  }

  toJSON(): string {
    return this.text;
  }
}

/**
 * Parses `addr/len` (a bare address is a host prefix: /32 or /128); `undefined` when malformed, or when
 * host bits are set and `hostBits` is `"reject"`. Never throws. Results are memoised and frozen.
 */
export function tryParseCidr(text: string, options?: ParseCidrOptions): IpCidr | undefined {
  if (typeof text !== "string") return undefined;
  let c = memo.get(text);
  if (c === undefined) {
    const r = scanCidr(text);
    if (typeof r !== "object") return undefined;
    if (memo.size >= MEMO_LIMIT) memo.clear();
    // Memoised values are shared by every caller: frozen, so no caller can change another's.
    Object.freeze(r);
    memo.set(text, r);
    c = r;
  }
  return c.hostBitsSet && options?.hostBits === "reject" ? undefined : c;
}

/**
 * Parses `addr/len` (a bare address is a host prefix: /32 or /128). Results are memoised and frozen.
 *
 * @throws {@link IpParseError} `invalid-cidr` when malformed, or when host bits are set and `hostBits`
 *   is `"reject"`; `details.reason` says which.
 */
export function parseCidr(text: string, options?: ParseCidrOptions): IpCidr {
  const c = tryParseCidr(text);
  if (c !== undefined && !(c.hostBitsSet && options?.hostBits === "reject")) return c;
  const value = describe(text);
  const reason =
    typeof text !== "string"
      ? "not-a-string"
      : c !== undefined
        ? "host-bits-set"
        : scanCidr(text) === "prefix-length"
          ? "prefix-length"
          : "syntax";
  const why = reason === "host-bits-set" ? ` (host bits set; network is ${c?.text})` : "";
  throw new IpParseError(ApiErrorCode.InvalidCidr, `invalid CIDR ${JSON.stringify(value)}${why}`, {
    value,
    reason,
  });
}

/** The prefix of `prefixLength` bits containing the address `value` (host bits are cleared). */
export function cidrFromValue(version: IpVersion, value: bigint, prefixLength: number): IpCidr {
  return new Cidr(version, value & prefixMask(version, prefixLength), undefined, prefixLength);
}

/** The prefix of `prefixLength` bits containing `ip`. */
export function enclosingCidr(ip: IpAddress, prefixLength: number): IpCidr {
  return cidrFromValue(ip.version, ip.value, prefixLength);
}

function masks(bits: number): readonly bigint[] {
  const all = (1n << BigInt(bits)) - 1n;
  return Array.from({ length: bits + 1 }, (_, len) => all ^ ((1n << BigInt(bits - len)) - 1n));
}
// Containment runs per packet and per rule in the policy evaluators: no BigInt arithmetic to build a mask.
const MASKS4 = masks(32);
const MASKS6 = masks(128);

/** The network mask of a prefix length as an integer (all ones for an out-of-range length). */
export function prefixMask(version: IpVersion, prefixLength: number): bigint {
  const m = (version === 4 ? MASKS4 : MASKS6)[prefixLength];
  return m ?? (version === 4 ? MASKS4[32]! : MASKS6[128]!);
}

/** Number of addresses in a prefix. */
export function cidrSize(c: Pick<IpCidr, "version" | "prefixLength">): bigint {
  return 1n << BigInt(addressBits(c.version) - c.prefixLength);
}

/** The last address (inclusive) of a prefix, as an integer. */
export function cidrLast(c: Pick<IpCidr, "version" | "prefixLength" | "network">): bigint {
  return c.network + cidrSize(c) - 1n;
}

/** True if the address `ip` lies inside `c` (same version). */
export function cidrContains(c: IpCidr, ip: Pick<IpAddress, "version" | "value">): boolean {
  return c.version === ip.version && (ip.value & prefixMask(c.version, c.prefixLength)) === c.network;
}

/** True if `inner` lies entirely inside `outer` (same version, at least as long a prefix). */
export function cidrContainsCidr(outer: IpCidr, inner: IpCidr): boolean {
  return (
    outer.version === inner.version &&
    inner.prefixLength >= outer.prefixLength &&
    (inner.network & prefixMask(outer.version, outer.prefixLength)) === outer.network
  );
}

/** True if two prefixes share any address. */
export function cidrsOverlap(a: IpCidr, b: IpCidr): boolean {
  return (
    a.version === b.version &&
    (a.prefixLength <= b.prefixLength ? cidrContainsCidr(a, b) : cidrContainsCidr(b, a))
  );
}

/** The address at `offset` from the network address of `c`; `undefined` when the offset is outside `c`. */
export function ipAt(c: IpCidr, offset: bigint): IpAddress | undefined {
  if (offset < 0n || offset >= cidrSize(c)) return undefined;
  return ipFromValue(c.version, c.network + offset);
}
