/**
 * The repository's shared table of address and prefix text (`testdata/ip-vectors.json`): CNI's address
 * checks must accept and reject the same strings as `@margay/api` and `@margay/bgp`. The file is read by
 * path: cni imports nothing of ours.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ipFamily } from "./ip-text.js";
import { cidrFamily } from "./json-path.js";

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

describe("shared IP vectors", () => {
  it.each(vectors.addresses.valid)("accepts address $text", (v) => {
    expect(ipFamily(v.text)).toBe(v.version);
    expect(ipFamily(v.canonical)).toBe(v.version);
  });

  it.each(vectors.addresses.invalid)("rejects address $text ($why)", (v) => {
    expect(ipFamily(v.text)).toBe(0);
    if (!v.text.includes("/")) expect(cidrFamily(`${v.text}/8`)).toBe(0);
  });

  it.each(vectors.cidrs.valid)("accepts prefix $text", (v) => {
    expect(cidrFamily(v.text)).toBe(v.version);
    expect(cidrFamily(v.canonical)).toBe(v.version);
  });

  it.each(vectors.cidrs.invalid)("rejects prefix $text ($why)", (v) => {
    expect(cidrFamily(v.text)).toBe(0);
  });
});
