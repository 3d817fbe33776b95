import { isIP } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expectCidr, expectIp } from "./json-path.js";
import { ipFamily } from "./ip-text.js";

// ipFamily replaces node:net's isIP in the skeleton's start path; node:net is the oracle here, except
// for zone suffixes, which Go's net.ParseIP (and so libcni) rejects and so do we.

const alphabet = fc.constantFrom(..."0123456789abcdefABCDEFg:.%/ ".split(""));

describe("ipFamily", () => {
  it("agrees with node:net isIP on well-formed addresses", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (s) => {
        expect(ipFamily(s)).toBe(isIP(s));
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees with node:net isIP on arbitrary address-like text without a zone", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: alphabet, maxLength: 45 }),
          fc.ipV4Extended(),
          fc.tuple(fc.ipV6(), fc.string({ unit: alphabet, maxLength: 6 })).map(([a, b]) => a + b),
          fc.tuple(fc.string({ unit: alphabet, maxLength: 6 }), fc.ipV6()).map(([a, b]) => a + b),
        ),
        (s) => {
          fc.pre(!s.includes("%"));
          expect(ipFamily(s)).toBe(isIP(s));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it.each([
    ["10.0.0.1", 4],
    ["255.255.255.255", 4],
    ["0.0.0.0", 4],
    ["::", 6],
    ["::1", 6],
    ["1::", 6],
    ["1:2:3:4:5:6:7::", 6],
    ["::2:3:4:5:6:7:8", 6],
    ["1:2:3:4:5:6:7:8", 6],
    ["::ffff:10.1.2.3", 6],
    ["64:ff9b::192.0.2.33", 6],
    ["FD00::A", 6],
    ["010.0.0.1", 0],
    ["10.0.0", 0],
    ["10.0.0.256", 0],
    ["10.0.0.1 ", 0],
    ["1:2:3:4:5:6:7:8::", 0],
    ["1::2::3", 0],
    [":1::", 0],
    ["1:2:3:4:5:6:7", 0],
    ["12345::", 0],
    ["::1.2.3.4.5", 0],
    ["1.2.3.4::", 0],
    ["fe80::1%eth0", 0],
    ["", 0],
  ] as const)("%s → %i", (s, fam) => {
    expect(ipFamily(s)).toBe(fam);
  });

  it("backs expectIp and expectCidr", () => {
    expect(expectIp("fd00::1", "$.gw")).toBe("fd00::1");
    expect(() => expectIp("fe80::1%eth0", "$.gw")).toThrow(/^\$\.gw: must be an IP address/);
    expect(expectCidr("10.1.0.0/16", "$.dst")).toBe("10.1.0.0/16");
    expect(() => expectCidr("10.1.0.0/33", "$.dst")).toThrow(/^\$\.dst:/);
    expect(() => expectCidr("01.1.0.0/8", "$.dst")).toThrow(/^\$\.dst:/);
  });
});
