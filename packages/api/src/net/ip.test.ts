import { readFileSync } from "node:fs";
import fc from "fast-check";
import { Address4, Address6 } from "ip-address";
import { describe, expect, it } from "vitest";
import {
  cidrContains,
  cidrContainsCidr,
  cidrFromValue,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  enclosingCidr,
  formatIp,
  ipAt,
  ipVersion,
  isIpParseError,
  parseCidr,
  parseIp,
  prefixMask,
  tryParseCidr,
  tryParseIp,
} from "../index.js";

/** The table every parser of the repo agrees on (bgp's and cni's tests read it too). */
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

describe("shared vectors (testdata/ip-vectors.json)", () => {
  it.each(vectors.addresses.valid)("accepts address $text", (v) => {
    const a = parseIp(v.text);
    expect(a.version).toBe(v.version);
    expect(a.text).toBe(v.canonical);
    expect(ipVersion(v.text)).toBe(v.version);
    // Canonical text is a fixed point with the same value.
    expect(parseIp(v.canonical)).toEqual(a);
    expect(formatIp(a.version, a.value)).toBe(v.canonical);
  });

  it.each(vectors.addresses.invalid)("rejects address $text ($why)", (v) => {
    expect(tryParseIp(v.text)).toBeUndefined();
    expect(ipVersion(v.text)).toBeUndefined();
    expect(() => parseIp(v.text)).toThrow(
      expect.objectContaining({ code: "invalid-ip-address", retryable: false }),
    );
  });

  it.each(vectors.cidrs.valid)("accepts CIDR $text", (v) => {
    const c = parseCidr(v.text);
    expect(c.version).toBe(v.version);
    expect(c.text).toBe(v.canonical);
    expect(c.hostBitsSet).toBe(v.hostBitsSet);
    expect(tryParseCidr(v.text, { hostBits: "reject" }) === undefined).toBe(v.hostBitsSet);
  });

  it.each(vectors.cidrs.invalid)("rejects CIDR $text ($why)", (v) => {
    expect(tryParseCidr(v.text)).toBeUndefined();
    expect(() => parseCidr(v.text)).toThrow(
      expect.objectContaining({ code: "invalid-cidr", retryable: false }),
    );
  });

  it("rejects every invalid address inside a CIDR too", () => {
    for (const v of vectors.addresses.invalid) {
      if (v.text.includes("/")) continue;
      expect(tryParseCidr(`${v.text}/8`), v.text).toBeUndefined();
    }
  });
});

describe("parseCidr", () => {
  it("takes a bare address as a host prefix", () => {
    expect(parseCidr("10.1.2.3")).toMatchObject({ version: 4, prefixLength: 32, text: "10.1.2.3/32" });
    expect(parseCidr("fd00::1")).toMatchObject({ version: 6, prefixLength: 128, text: "fd00::1/128" });
  });

  it("keeps the address as written beside the network", () => {
    const c = parseCidr("10.0.0.7/24");
    expect(c).toMatchObject({
      address: 0x0a000007n,
      addressText: "10.0.0.7",
      network: 0x0a000000n,
      hostBitsSet: true,
    });
    expect(c.text).toBe("10.0.0.0/24");
  });

  it("rejects host bits only when asked, with the reason and the network in the error", () => {
    expect(parseCidr("10.0.0.1/8").text).toBe("10.0.0.0/8");
    let caught: unknown;
    try {
      parseCidr("10.0.0.1/8", { hostBits: "reject" });
    } catch (e) {
      caught = e;
    }
    expect(isIpParseError(caught, "invalid-cidr")).toBe(true);
    expect(isIpParseError(caught, "invalid-ip-address")).toBe(false);
    expect(caught).toMatchObject({ details: { value: "10.0.0.1/8", reason: "host-bits-set" } });
    expect((caught as Error).message).toContain("10.0.0.0/8");
  });

  it("says which part was wrong", () => {
    const reason = (s: string) => {
      try {
        parseCidr(s);
      } catch (e) {
        return isIpParseError(e) ? e.details.reason : "other";
      }
      return "none";
    };
    expect(reason("10.0.0.0/33")).toBe("prefix-length");
    expect(reason("10.0.0/8")).toBe("syntax");
    expect(reason(42 as unknown as string)).toBe("not-a-string");
  });

  it("never throws anything but its typed error on non-strings", () => {
    for (const v of [undefined, null, 1, {}, []]) {
      expect(tryParseIp(v as unknown as string)).toBeUndefined();
      expect(tryParseCidr(v as unknown as string)).toBeUndefined();
      expect(() => parseIp(v as unknown as string)).toThrow(
        expect.objectContaining({ code: "invalid-ip-address" }),
      );
    }
  });

  it("returns frozen, memoised values", () => {
    const a = parseCidr("10.9.0.0/16");
    expect(Object.isFrozen(a)).toBe(true);
    expect(parseCidr("10.9.0.0/16")).toBe(a);
  });

  it("keeps its memo bounded: 100,000 other texts later, a text is parsed afresh", () => {
    const a = parseCidr("10.8.0.0/16");
    for (let i = 0; i < 100_000; i++) tryParseCidr(`11.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`);
    const b = parseCidr("10.8.0.0/16");
    expect(b).not.toBe(a);
    expect(b).toEqual(a);
  });
});

describe("prefix arithmetic", () => {
  const c = (s: string) => parseCidr(s);
  const ip = (s: string) => parseIp(s);

  it("contains, containsCidr, overlap", () => {
    expect(cidrContains(c("10.0.0.0/24"), ip("10.0.0.255"))).toBe(true);
    expect(cidrContains(c("10.0.0.0/24"), ip("10.0.1.0"))).toBe(false);
    expect(cidrContains(c("::/0"), ip("10.0.0.1"))).toBe(false);
    expect(cidrContains(c("0.0.0.0/0"), ip("255.255.255.255"))).toBe(true);
    expect(cidrContainsCidr(c("10.0.0.0/8"), c("10.1.0.0/16"))).toBe(true);
    expect(cidrContainsCidr(c("10.1.0.0/16"), c("10.0.0.0/8"))).toBe(false);
    expect(cidrContainsCidr(c("fd00::/64"), c("fd00::40/122"))).toBe(true);
    expect(cidrsOverlap(c("10.0.0.0/8"), c("10.1.0.0/16"))).toBe(true);
    expect(cidrsOverlap(c("10.1.0.0/16"), c("10.0.0.0/8"))).toBe(true);
    expect(cidrsOverlap(c("10.0.0.0/25"), c("10.0.0.128/25"))).toBe(false);
    expect(cidrsOverlap(c("10.0.0.0/8"), c("::/0"))).toBe(false);
  });

  it("size, last, mask, enclosing prefix", () => {
    expect(cidrSize(c("10.0.0.0/26"))).toBe(64n);
    expect(cidrSize(c("fd00::/64"))).toBe(1n << 64n);
    expect(formatIp(4, cidrLast(c("10.0.0.0/26")))).toBe("10.0.0.63");
    expect(prefixMask(4, 24)).toBe(0xffffff00n);
    expect(prefixMask(6, 0)).toBe(0n);
    expect(enclosingCidr(ip("10.0.0.77"), 26).text).toBe("10.0.0.64/26");
    expect(enclosingCidr(ip("fd00::1:2"), 112).text).toBe("fd00::1:0/112");
    expect(cidrFromValue(6, 0xfd00n << 112n, 122)).toMatchObject({ text: "fd00::/122", hostBitsSet: false });
  });

  it("address at an offset", () => {
    const block = c("10.0.0.64/30");
    expect(ipAt(block, 3n)?.text).toBe("10.0.0.67");
    expect(ipAt(block, 4n)).toBeUndefined();
    expect(ipAt(block, -1n)).toBeUndefined();
  });
});

describe("against ip-address (an independent implementation)", () => {
  const v4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
  // Words drawn mostly from 0 so that '::' compression and its tie-breaking are exercised.
  const v6 = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  });

  it("IPv4: same value and canonical text", () => {
    fc.assert(
      fc.property(v4, (o) => {
        const s = o.join(".");
        const a = parseIp(s);
        expect(a.text).toBe(new Address4(s).correctForm());
        expect(a.value).toBe(new Address4(s).bigInt());
      }),
    );
  });

  it("IPv6: same value and canonical text, from full and from compressed text", () => {
    fc.assert(
      fc.property(v6, fc.boolean(), (w, upper) => {
        let s = w.map((x) => x.toString(16)).join(":");
        if (upper) s = s.toUpperCase();
        const a = parseIp(s);
        const ref = new Address6(s);
        expect(a.text).toBe(ref.correctForm());
        expect(a.value).toBe(ref.bigInt());
        expect(parseIp(a.text).value).toBe(a.value);
      }),
    );
  });

  it("prefixes: same network as ip-address", () => {
    fc.assert(
      fc.property(v6, fc.integer({ min: 0, max: 128 }), (w, len) => {
        const s = `${w.map((x) => x.toString(16)).join(":")}/${len}`;
        expect(parseCidr(s).text).toBe(`${new Address6(s).startAddress().correctForm()}/${len}`);
      }),
    );
  });
});
