import { cidrContainsCidr, parseCidr } from "@margay/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "./errors.js";
import { canonicalIpOrThrow, cidrOrThrow, interfaceAddressText } from "./net.js";

describe("cidrOrThrow", () => {
  it("canonicalises IPv4 and IPv6 (RFC 5952)", () => {
    expect(cidrOrThrow("10.0.0.0/26").text).toBe("10.0.0.0/26");
    expect(cidrOrThrow("10.0.0.7").text).toBe("10.0.0.7/32");
    expect(cidrOrThrow("FD00:0:0:0:0:0:0:0/64").text).toBe("fd00::/64");
    expect(cidrOrThrow("2001:db8:0:0:1:0:0:1/128").text).toBe("2001:db8::1:0:0:1/128");
    expect(canonicalIpOrThrow("::ffff:10.0.0.1")).toBe("::ffff:a00:1");
  });

  it("rejects host bits (unless asked to keep them), bad lengths and garbage with invalid-update", () => {
    for (const bad of [
      "10.0.0.1/24",
      "10.0.0.0/33",
      "10.0.0.300/32",
      "fd00::/129",
      "x/8",
      "10.0.0.0/-1",
      "010.0.0.0/8",
    ]) {
      let caught: unknown;
      try {
        cidrOrThrow(bad);
      } catch (e) {
        caught = e;
      }
      expect(isDataplaneError(caught, "invalid-update"), bad).toBe(true);
      expect(caught).toMatchObject({ details: { cidr: bad } });
    }
    const c = cidrOrThrow("10.0.0.7/24", "mask");
    expect(c.prefixLength).toBe(24);
    expect(interfaceAddressText(c)).toBe("10.0.0.7/24");
    expect(interfaceAddressText(cidrOrThrow("FD00::7/64", "mask"))).toBe("fd00::7/64");
  });

  it("rejects a zoned or malformed address with invalid-update", () => {
    for (const bad of ["fe80::1%eth0", "1.2.3", ""]) {
      expect(() => canonicalIpOrThrow(bad)).toThrow(expect.objectContaining({ code: "invalid-update" }));
    }
  });

  it("containment agrees with the network of an address", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, len) => {
        const net = parseCidr(cidrOrThrow(`${ip}/${len}`, "mask").text);
        expect(cidrContainsCidr(net, cidrOrThrow(ip))).toBe(true);
        expect(cidrOrThrow(net.text).text).toBe(net.text);
      }),
    );
  });

  it("round-trips any IPv6 address through its canonical text", () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const c = canonicalIpOrThrow(ip);
        expect(canonicalIpOrThrow(c)).toBe(c);
        expect(cidrOrThrow(c).address).toBe(cidrOrThrow(ip).address);
      }),
    );
  });
});
