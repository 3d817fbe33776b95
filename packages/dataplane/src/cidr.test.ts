import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalIp, cidrContains, networkOf, parseCidr } from "./cidr.js";
import { isDataplaneError } from "./errors.js";

describe("parseCidr", () => {
  it("canonicalises IPv4 and IPv6 (RFC 5952)", () => {
    expect(parseCidr("10.0.0.0/26").text).toBe("10.0.0.0/26");
    expect(parseCidr("10.0.0.7").text).toBe("10.0.0.7/32");
    expect(parseCidr("FD00:0:0:0:0:0:0:0/64").text).toBe("fd00::/64");
    expect(parseCidr("2001:db8:0:0:1:0:0:1/128").text).toBe("2001:db8::1:0:0:1/128");
    expect(canonicalIp("::ffff:10.0.0.1")).toBe("::ffff:a00:1");
  });

  it("rejects host bits, bad lengths and garbage with invalid-update", () => {
    for (const bad of ["10.0.0.1/24", "10.0.0.0/33", "10.0.0.300/32", "fd00::/129", "x/8", "10.0.0.0/-1"]) {
      expect(() => parseCidr(bad)).toThrow();
      try {
        parseCidr(bad);
      } catch (e) {
        expect(isDataplaneError(e, "invalid-update")).toBe(true);
      }
    }
    expect(parseCidr("10.0.0.7/24", false).prefix).toBe(24);
  });

  it("containment agrees with the network of an address", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, len) => {
        const net = networkOf(parseCidr(`${ip}/${len}`, false));
        expect(cidrContains(net, parseCidr(ip))).toBe(true);
        expect(parseCidr(net.text).text).toBe(net.text);
      }),
    );
  });

  it("round-trips any IPv6 address through its canonical text", () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const c = canonicalIp(ip);
        expect(canonicalIp(c)).toBe(c);
        expect(parseCidr(c).bits).toBe(parseCidr(ip).bits);
      }),
    );
  });
});
