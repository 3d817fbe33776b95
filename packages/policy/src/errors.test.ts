import { describe, expect, it } from "vitest";
import { isPolicyError, POLICY_ERROR_BRAND, PolicyError, PolicyErrorCode } from "./errors.js";

describe("isPolicyError(e, ...codes)", () => {
  const err = new PolicyError(PolicyErrorCode.InvalidInput, "bad port", { path: "spec.ingress[0]" });

  it("matches any code when none is given, one of several when some are", () => {
    expect(isPolicyError(err)).toBe(true);
    expect(isPolicyError(err, "invalid-input")).toBe(true);
    expect(isPolicyError(err, "unsupported", "invalid-input")).toBe(true);
    expect(isPolicyError(err, "unsupported", "stream-violation")).toBe(false);
  });

  it("keeps the former optional-code form: an undefined code means any code", () => {
    const code: PolicyErrorCode | undefined = undefined;
    expect(isPolicyError(err, code as unknown as PolicyErrorCode)).toBe(true);
  });

  it("checks the brand, not the class, and rejects look-alikes", () => {
    expect(isPolicyError(new Error("x"))).toBe(false);
    expect(isPolicyError({ code: "invalid-input" }, "invalid-input")).toBe(false);
    expect(isPolicyError({ [POLICY_ERROR_BRAND]: true, code: "unsupported" }, "unsupported")).toBe(true);
  });

  it("always carries kebab-case code, retryable and details", () => {
    const bare = new PolicyError(PolicyErrorCode.Unsupported, "no");
    expect(bare.retryable).toBe(false);
    expect(bare.details).toEqual({});
    for (const code of Object.values(PolicyErrorCode)) expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});
