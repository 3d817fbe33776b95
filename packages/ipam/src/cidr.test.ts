import { describe, expect, it } from "vitest";
import { cidrName, cidrSize, cidrsOverlap, formatCidr, formatIp, parseCidr, parseIp } from "./cidr.js";
import { isIpamError } from "./errors.js";

describe("cidr", () => {
  it("parses and formats both families canonically", () => {
    expect(formatCidr(parseCidr("10.0.0.64/26"))).toBe("10.0.0.64/26");
    expect(formatCidr(parseCidr("fd00:0:0:0::40/122"))).toBe("fd00::40/122");
    expect(formatIp(4, parseIp("192.168.1.255").value)).toBe("192.168.1.255");
    expect(formatIp(6, parseIp("2001:db8::1").value)).toBe("2001:db8::1");
    expect(formatCidr(parseCidr("10.0.0.7"))).toBe("10.0.0.7/32");
  });

  it("rejects host bits unless asked to mask them", () => {
    expect(() => parseCidr("10.0.0.1/24")).toThrow(/host bits/);
    expect(formatCidr(parseCidr("10.0.0.1/24", { mask: true }))).toBe("10.0.0.0/24");
  });

  it("rejects garbage with a typed invalid error", () => {
    for (const bad of ["", "10.0.0", "10.0.0.0/33", "fd00::/129", "hello", "10.0.0.0/-1"]) {
      let caught: unknown;
      try {
        parseCidr(bad);
      } catch (e) {
        caught = e;
      }
      expect(isIpamError(caught, "invalid"), bad).toBe(true);
    }
  });

  it("derives Calico-style datastore names", () => {
    expect(cidrName(parseCidr("10.0.0.0/26"))).toBe("10-0-0-0-26");
    expect(cidrName(parseCidr("fd00::40/122"))).toBe("fd00--40-122");
  });

  it("handles huge IPv6 prefixes arithmetically", () => {
    expect(cidrSize(parseCidr("fd00::/64"))).toBe(2n ** 64n);
    expect(cidrsOverlap(parseCidr("fd00::/64"), parseCidr("fd00::ffff:0/112"))).toBe(true);
    expect(cidrsOverlap(parseCidr("fd00::/64"), parseCidr("fd00:0:0:1::/64"))).toBe(false);
    expect(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("fd00::/8"))).toBe(false);
  });
});
