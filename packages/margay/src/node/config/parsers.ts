/**
 * Parsers of the node agent's settings as text (flags and environment variables). Each returns the typed
 * value or throws a {@link ParseFailure} saying what was expected; the resolver adds the setting, its
 * origin and the value to make an `AgentConfigError`.
 *
 * @packageDocumentation
 */
import {
  isValidInterfaceName,
  isValidWorkloadInterfacePrefix,
  parseAsNumber,
  parseGoDuration,
  tryParseCidr,
  tryParseIp,
  tryParseSelector,
} from "@margay/api";
import type { FailsafePort } from "@margay/dataplane-contract";
import type { AddressConfig, AutodetectMethod, EncapsulationMode } from "./types.js";

/** A value that does not parse; `message` says what was expected. Internal to the config module. */
export class ParseFailure extends Error {
  override readonly name = "ParseFailure";
}

const fail = (message: string): never => {
  throw new ParseFailure(message);
};

/** A non-empty string. */
export function parseString(raw: string): string {
  if (raw.trim() === "") fail("must not be empty");
  return raw;
}

/** An absolute path. */
export function parsePath(raw: string): string {
  if (!raw.startsWith("/")) fail("must be an absolute path");
  return raw;
}

/**
 * A `:`-separated list of absolute paths, as `KUBECONFIG` (kubectl merges the files); empty entries are
 * dropped as kubectl drops them. Returns the list joined by `:`.
 */
export function parsePathList(raw: string): string {
  const paths = raw.split(":").filter((p) => p !== "");
  if (paths.length === 0) fail("must list at least one absolute path");
  for (const p of paths)
    if (!p.startsWith("/")) fail(`must be absolute paths separated by ":" (${p} is not)`);
  return paths.join(":");
}

/** Go's and Felix's boolean spellings (`true`/`false`, `1`/`0`, `yes`/`no`), case-insensitive. */
export function parseBoolean(raw: string): boolean {
  const s = raw.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(s)) return true;
  if (["false", "0", "no", "off"].includes(s)) return false;
  return fail("must be true or false");
}

/** A decimal integer in `[min, max]`. */
export function integerParser(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const s = raw.trim();
    if (!/^\d+$/.test(s)) fail(`must be an integer in [${min}, ${max}]`);
    const n = Number(s);
    if (n < min || n > max) fail(`must be an integer in [${min}, ${max}]`);
    return n;
  };
}

/** One of `values`, case-insensitive, returned in the schema's spelling. */
export function enumParser<T extends string>(values: readonly T[]): (raw: string) => T {
  return (raw) => {
    const s = raw.trim().toLowerCase();
    const hit = values.find((v) => v.toLowerCase() === s);
    return hit ?? fail(`must be one of ${values.join(", ")}`);
  };
}

/** A Go duration (`90s`, `1m30s`, `250ms`) in milliseconds; a bare integer means seconds, as Felix's env. */
export function parseDurationMs(raw: string): number {
  const s = raw.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const ms = parseGoDuration(s);
  if (ms === undefined) fail('must be a duration such as "90s", "2m" or "1m30s"');
  return ms as number;
}

/** A duration of at least `minMs`. */
export function durationParser(minMs: number): (raw: string) => number {
  return (raw) => {
    const ms = parseDurationMs(raw);
    if (ms < minMs) fail(`must be at least ${minMs} ms`);
    return ms;
  };
}

/** A comma-separated list of non-empty items. */
export function parseList(raw: string): string[] {
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) fail("must list at least one item (comma-separated)");
  return items;
}

/** Workload interface prefixes, comma-separated, each 1-8 of `[a-z0-9]`, a letter first. */
export function parseInterfacePrefixes(raw: string): string[] {
  const items = parseList(raw);
  for (const p of items)
    if (!isValidWorkloadInterfacePrefix(p))
      fail(`interface prefix ${JSON.stringify(p)} must be 1-8 of [a-z0-9], a letter first`);
  return items;
}

/** A Linux interface name. */
export function parseInterfaceName(raw: string): string {
  if (!isValidInterfaceName(raw)) fail("must be a Linux interface name (1-15 bytes, no '/', ':' or space)");
  return raw;
}

/** An AS number, plain (`64512`) or asdot (`1.10`). */
export function parseAs(raw: string): number {
  const n = parseAsNumber(raw.trim());
  if (n === undefined || n === 0) fail("must be an AS number in [1, 4294967295] (plain or asdot)");
  return n as number;
}

/** A node name: a DNS subdomain (Calico lowercases the host name the same way). */
export function parseNodeName(raw: string): string {
  const s = raw.trim();
  if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s))
    fail("must be a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters");
  return s;
}

/** A CIDR of one family, host bits not allowed (`10.0.0.0/16`). */
export function cidrParser(version: 4 | 6): (raw: string) => string {
  return (raw) => {
    const c = tryParseCidr(raw.trim());
    if (c === undefined || c.version !== version)
      fail(`must be an IPv${version} CIDR such as ${example(version)}`);
    if (c?.hostBitsSet) fail(`has host bits set (did you mean ${c.text}?)`);
    return (c as NonNullable<typeof c>).text;
  };
}

const example = (v: 4 | 6) => (v === 4 ? "192.168.0.0/16" : "fd00:10:244::/48");

/** A pool block size of one family (Calico's ranges: 20-32, 116-128). */
export function blockSizeParser(version: 4 | 6): (raw: string) => number {
  return version === 4 ? integerParser(20, 32) : integerParser(116, 128);
}

/** An encapsulation mode (`Never`, `Always`, `CrossSubnet`), case-insensitive as Calico's env. */
export const parseEncapsulationMode: (raw: string) => EncapsulationMode = enumParser<EncapsulationMode>([
  "Never",
  "Always",
  "CrossSubnet",
]);

/** A label selector (`all()`, `zone == "a"`). */
export function parseSelectorText(raw: string): string {
  const r = tryParseSelector(raw);
  if (!r.ok) fail(`must be a label selector: ${r.error.message}`);
  return raw;
}

/**
 * `IP` / `IP6`: `autodetect`, `none`, or an address of the family, optionally with its prefix length
 * (`10.0.0.5/24`). A bare address gets the prefix of the interface holding it at autodetection.
 */
export function addressModeParser(version: 4 | 6): (raw: string) => AddressConfig["mode"] {
  return (raw) => {
    const s = raw.trim();
    const lower = s.toLowerCase();
    if (lower === "autodetect" || lower === "none") return lower;
    if (s.includes("/")) {
      const c = tryParseCidr(s);
      if (c === undefined || c.version !== version)
        fail(`must be autodetect, none or an IPv${version} address (optionally with /prefix)`);
      const cc = c as NonNullable<typeof c>;
      if (!cc.hostBitsSet && cc.prefixLength < (version === 4 ? 32 : 128))
        fail(`${s} is a network, not a host address`);
      return { address: `${cc.addressText}/${cc.prefixLength}` };
    }
    const ip = tryParseIp(s);
    if (ip === undefined || ip.version !== version)
      fail(`must be autodetect, none or an IPv${version} address (optionally with /prefix)`);
    return { address: (ip as NonNullable<typeof ip>).text };
  };
}

function regexes(list: string, what: string): string[] {
  const items = parseList(list);
  for (const r of items) {
    try {
      new RegExp(r);
    } catch {
      fail(`${what}: ${JSON.stringify(r)} is not a valid regular expression`);
    }
  }
  return items;
}

/**
 * Calico's `IP_AUTODETECTION_METHOD`: `first-found`, `interface=REGEX[,REGEX]`,
 * `skip-interface=REGEX[,REGEX]`, `can-reach=DESTINATION`, `cidr=CIDR[,CIDR]`.
 */
export function autodetectMethodParser(version: 4 | 6): (raw: string) => AutodetectMethod {
  return (raw) => {
    const s = raw.trim();
    if (s === "first-found") return { kind: "first-found" };
    const eq = s.indexOf("=");
    const key = eq < 0 ? s : s.slice(0, eq);
    const arg = eq < 0 ? "" : s.slice(eq + 1);
    switch (key) {
      case "interface":
        return { kind: "interface", patterns: regexes(arg, "interface=") };
      case "skip-interface":
        return { kind: "skip-interface", patterns: regexes(arg, "skip-interface=") };
      case "can-reach": {
        const d = arg.trim();
        if (d === "") fail("can-reach= needs a destination address or host name");
        const ip = tryParseIp(d);
        if (ip !== undefined && ip.version !== version)
          fail(`can-reach=${d} is not an IPv${version} address`);
        if (ip === undefined && !/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(d))
          fail(`can-reach=${d} is neither an address nor a host name`);
        return { kind: "can-reach", destination: d };
      }
      case "cidr": {
        const cidrs = parseList(arg).map((c) => {
          const p = tryParseCidr(c);
          if (p === undefined || p.version !== version) fail(`cidr=${c} is not an IPv${version} CIDR`);
          return (p as NonNullable<typeof p>).text;
        });
        return { kind: "cidr", cidrs };
      }
      default:
        return fail(
          "must be first-found, interface=REGEX[,REGEX], skip-interface=REGEX[,REGEX], can-reach=DESTINATION or cidr=CIDR[,CIDR]",
        );
    }
  };
}

/** Felix's failsafe port list: `tcp:22,udp:68,tcp:10.0.0.0/8:179` (`none` for an empty list). */
export function parseFailsafePorts(raw: string): FailsafePort[] {
  if (raw.trim().toLowerCase() === "none") return [];
  return parseList(raw).map((item) => {
    const first = item.indexOf(":");
    const last = item.lastIndexOf(":");
    if (first < 0) fail(`${JSON.stringify(item)} must be PROTOCOL:PORT or PROTOCOL:CIDR:PORT`);
    const proto = item.slice(0, first).toLowerCase();
    if (proto !== "tcp" && proto !== "udp" && proto !== "sctp")
      fail(`${JSON.stringify(item)}: protocol must be tcp, udp or sctp`);
    const portText = item.slice(last + 1);
    if (!/^\d+$/.test(portText) || Number(portText) > 65535)
      fail(`${JSON.stringify(item)}: port must be an integer in [0, 65535]`);
    const out: { protocol: FailsafePort["protocol"]; port: number; net?: string } = {
      protocol: proto as FailsafePort["protocol"],
      port: Number(portText),
    };
    if (last > first) {
      const net = tryParseCidr(item.slice(first + 1, last));
      if (net === undefined) fail(`${JSON.stringify(item)}: ${item.slice(first + 1, last)} is not a CIDR`);
      out.net = (net as NonNullable<typeof net>).text;
    }
    return out;
  });
}

/** A JSON array of strings (an argv): `["/usr/bin/driver","--flag"]`. */
export function parseArgv(raw: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return fail('must be a JSON array of strings, e.g. ["/usr/libexec/margay-driver","--verbose"]');
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string" && x !== ""))
    fail("must be a non-empty JSON array of non-empty strings");
  if (!(v as string[])[0]!.startsWith("/")) fail("the program (first element) must be an absolute path");
  return v as string[];
}
