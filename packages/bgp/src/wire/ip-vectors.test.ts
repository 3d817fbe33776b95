/**
 * The repository's shared table of address and prefix text (`testdata/ip-vectors.json`): this package's
 * one parser must accept and reject the same strings as `@margay/api` and `@margay/cni`, with the same
 * canonical text. The file is read by path: bgp imports nothing of ours.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseRibPrefix } from "../rib/policy.js";
import { ipFamily, ipv6ToString, parseIpv4, parseIpv6, u32ToIpv4 } from "./ip.js";
import { formatPrefix, parsePrefix } from "./prefix.js";
import { Afi } from "./types.js";

interface Vectors {
  addresses: {
    valid: { text: string; version: 4 | 6; canonical: string }[];
    invalid: { text: string; why: string }[];
  };
  cidrs: {
    valid: { text: string; version: 4 | 6; canonical: string; hostBitsSet: boolean }[];
    invalid: { text: string; why: string }[];
  };
}
const vectors = JSON.parse(
  readFileSync(new URL("../../../../testdata/ip-vectors.json", import.meta.url), "utf8"),
) as Vectors;

function canonical(text: string): string | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return u32ToIpv4(v4);
  const v6 = parseIpv6(text);
  return v6 === undefined ? undefined : ipv6ToString(v6);
}

describe("shared IP vectors", () => {
  it.each(vectors.addresses.valid)("accepts address $text", (v) => {
    expect(ipFamily(v.text)).toBe(v.version);
    expect(canonical(v.text)).toBe(v.canonical);
  });

  it.each(vectors.addresses.invalid)("rejects address $text ($why)", (v) => {
    expect(ipFamily(v.text)).toBe(0);
    expect(parseIpv4(v.text)).toBeUndefined();
    expect(parseIpv6(v.text)).toBeUndefined();
    if (!v.text.includes("/")) expect(() => parsePrefix(`${v.text}/8`)).toThrow();
  });

  it.each(vectors.cidrs.valid)("accepts prefix $text (wire and RIB policy parsers)", (v) => {
    expect(formatPrefix(parsePrefix(v.text))).toBe(v.canonical);
    expect(parseRibPrefix(v.text).afi).toBe(v.version === 4 ? Afi.IPv4 : Afi.IPv6);
    expect(parseRibPrefix(v.text).len).toBe(Number(v.canonical.split("/")[1]));
  });

  it.each(vectors.cidrs.invalid)("rejects prefix $text ($why)", (v) => {
    expect(() => parsePrefix(v.text)).toThrow(expect.objectContaining({ code: "encode-invalid" }));
    expect(() => parseRibPrefix(v.text)).toThrow(expect.objectContaining({ code: "config-invalid" }));
  });
});
