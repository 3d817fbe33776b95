import { describe, expect, it } from "vitest";
import { cidrContains, tryParseIp } from "@margay/api";
import { cidrOrThrow as parseCidr, ipOrThrow as parseIp } from "./net.js";
import { parsePorts } from "./ports.js";
import { protocolName, protocolNumber } from "./protocol.js";

describe("addresses, ports and protocols", () => {
  it("parses and masks CIDRs, bare addresses becoming host routes", () => {
    expect(parseCidr("10.1.2.3/16").text).toBe("10.1.0.0/16");
    expect(parseCidr("10.1.2.3").text).toBe("10.1.2.3/32");
    expect(parseCidr("fd00:0:0:0:0:0:0:1/64").text).toBe("fd00::/64");
    expect(parseCidr("2001:db8::1").text).toBe("2001:db8::1/128");
    expect(parseCidr("::ffff:10.0.0.1/128").text).toBe("::ffff:a00:1/128");
    expect(parseCidr("0.0.0.0/0").text).toBe("0.0.0.0/0");
  });

  it("formats IPv6 per RFC 5952 (longest zero run, first on ties)", () => {
    expect(parseIp("2001:db8:0:0:1:0:0:1").text).toBe("2001:db8::1:0:0:1");
    expect(parseIp("0:0:0:0:0:0:0:0").text).toBe("::");
    expect(parseIp("1:0:2:3:4:5:6:7").text).toBe("1:0:2:3:4:5:6:7");
  });

  it("checks containment within one family", () => {
    expect(cidrContains(parseCidr("10.0.0.0/8"), parseIp("10.200.1.1"))).toBe(true);
    expect(cidrContains(parseCidr("10.0.0.0/8"), parseIp("11.0.0.1"))).toBe(false);
    expect(cidrContains(parseCidr("::/0"), parseIp("10.0.0.1"))).toBe(false);
  });

  it("rejects malformed input", () => {
    for (const bad of ["10.0.0.256", "10.0.0.0/33", "1::2::3", "fd00::/129", "x", "10.0.0/8"]) {
      expect(() => parseCidr(bad)).toThrow(expect.objectContaining({ code: "invalid-input" }));
    }
    expect(() => parseIp("10.0.0.1/8")).toThrow(expect.objectContaining({ code: "invalid-input" }));
    expect(tryParseIp("1.2.3")).toBeUndefined();
  });

  it("parses port specs into ranges and names", () => {
    expect(parsePorts([80, "443", "8000:8080", "http"])).toEqual({
      ranges: [
        { first: 80, last: 80 },
        { first: 443, last: 443 },
        { first: 8000, last: 8080 },
      ],
      names: ["http"],
    });
    expect(() => parsePorts(["90:80"])).toThrow(expect.objectContaining({ code: "invalid-input" }));
    expect(() => parsePorts([70000])).toThrow(expect.objectContaining({ code: "invalid-input" }));
  });

  it("maps protocol names (any case) and numbers", () => {
    expect(protocolNumber("TCP")).toBe(6);
    expect(protocolNumber("icmpv6")).toBe(58);
    expect(protocolNumber("UDPLite")).toBe(136);
    expect(protocolNumber("47")).toBe(47);
    expect(protocolName(132)).toBe("sctp");
    expect(() => protocolNumber("bogus")).toThrow(expect.objectContaining({ code: "invalid-input" }));
    expect(() => protocolNumber(256)).toThrow(expect.objectContaining({ code: "invalid-input" }));
  });
});
