import { describe, expect, it } from "vitest";
import { API_ERROR_BRAND, ApiErrorCode, isApiError } from "./errors.js";
import { InterfaceNameError } from "./interface-name.js";
import { ManifestError } from "./io/errors.js";
import { IpParseError, parseCidr } from "./net/ip.js";
import { SelectorParseError } from "./selector/errors.js";
import { ValidationError } from "./validation/errors.js";

const samples = () => [
  new SelectorParseError({ selector: "a ==", position: 4, reason: "value expected" }),
  new ValidationError({ issues: [{ path: "spec", message: "required" }] }),
  new ManifestError("bad yaml", { reason: "syntax", documentIndex: 0 }),
  new IpParseError(ApiErrorCode.InvalidCidr, "bad cidr", { value: "x", reason: "syntax" }),
  new InterfaceNameError("too long", { ifname: "x".repeat(20) }),
];

describe("isApiError(e, ...codes)", () => {
  it("recognises every error class of the package, by any or one of several codes", () => {
    for (const e of samples()) {
      expect(isApiError(e)).toBe(true);
      expect(isApiError(e, e.code)).toBe(true);
      expect(isApiError(e, ApiErrorCode.InvalidSelector, e.code)).toBe(true);
    }
    let thrown: unknown;
    try {
      parseCidr("10.0.0.0/33");
    } catch (e) {
      thrown = e;
    }
    expect(isApiError(thrown, "invalid-cidr")).toBe(true);
    expect(isApiError(thrown, "invalid-ip-address", "invalid-selector")).toBe(false);
  });

  it("checks the brand, not the class, and rejects look-alikes", () => {
    expect(isApiError(new Error("x"))).toBe(false);
    expect(isApiError({ code: "invalid-cidr" }, "invalid-cidr")).toBe(false);
    expect(isApiError({ [API_ERROR_BRAND]: true, code: "invalid-cidr" }, "invalid-cidr")).toBe(true);
    expect(isApiError(undefined)).toBe(false);
  });

  it("every error has a kebab-case code, retryable false and structured details", () => {
    for (const e of samples()) {
      expect(e.code).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(e.retryable).toBe(false);
      expect(typeof e.details).toBe("object");
    }
    for (const code of Object.values(ApiErrorCode)) expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});
