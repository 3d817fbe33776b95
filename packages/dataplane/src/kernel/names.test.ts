import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { isValidInterfaceName, MAX_INTERFACE_NAME_BYTES } from "@margay/api";
import {
  isValidIfName,
  MAX_IFNAME_BYTES,
  validateIfName,
  validateInterfaceName,
  validateNetnsName,
  validateNetnsPath,
} from "./names.js";
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

  it("spells interface names one way: validateInterfaceName, the old names are aliases for one release", () => {
    expect(validateInterfaceName("eth0")).toBe("eth0");
    let caught: unknown;
    try {
      validateInterfaceName("eth 0");
    } catch (e) {
      caught = e;
    }
    expect(isDataplaneError(caught, "invalid-name")).toBe(true);
    expect(validateIfName).toBe(validateInterfaceName);
    expect(MAX_IFNAME_BYTES).toBe(MAX_INTERFACE_NAME_BYTES);
    for (const n of ["eth0", "", "a234567890abcdef", "."])
      expect(isValidIfName(n)).toBe(isValidInterfaceName(n));
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
