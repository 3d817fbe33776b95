import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { isValidIfName, validateNetnsName, validateNetnsPath } from "./names.js";
import { inNetns, ipArgv, namedNetns, pathNetns } from "./netns.js";

describe("interface and namespace names", () => {
  it("accepts kernel-safe interface names of at most 15 bytes", () => {
    expect(isValidIfName("eth0")).toBe(true);
    expect(isValidIfName("vxlan.margay")).toBe(true);
    expect(isValidIfName("a234567890abcde")).toBe(true);
    for (const bad of ["", "a234567890abcdef", "eth 0", "eth0;rm", "a/b", ".", "..", "-x", "é"]) {
      expect(isValidIfName(bad)).toBe(false);
    }
  });

  it("validates namespace handles before any argv is built", () => {
    for (const bad of ["", "../etc", "a b", "x;y"]) {
      try {
        validateNetnsName(bad);
        expect.unreachable();
      } catch (e) {
        expect(isDataplaneError(e, "invalid-name")).toBe(true);
      }
    }
    expect(() => validateNetnsPath("relative/path")).toThrow();
    expect(() => validateNetnsPath("/proc/1/../ns")).toThrow();
    expect(ipArgv(namedNetns("mg-1"), ["route"])).toEqual(["ip", "-n", "mg-1", "route"]);
    expect(ipArgv(pathNetns("/proc/42/ns/net"), ["route"])).toEqual([
      "nsenter",
      "--net=/proc/42/ns/net",
      "--",
      "ip",
      "route",
    ]);
    expect(inNetns(namedNetns("mg-1"), ["nft", "-f", "-"])).toEqual([
      "nsenter",
      "--net=/run/netns/mg-1",
      "--",
      "nft",
      "-f",
      "-",
    ]);
  });
});
