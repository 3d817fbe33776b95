import { describe, expect, it } from "vitest";
import { DATAPLANE_ERROR_BRAND, DataplaneError, DataplaneErrorCode, isDataplaneError } from "./errors.js";

describe("isDataplaneError(e, ...codes)", () => {
  const err = new DataplaneError(DataplaneErrorCode.CommandFailed, "ip failed", {
    retryable: true,
    details: { argv: ["ip", "link"] },
  });

  it("matches any code when none is given, one of several when some are", () => {
    expect(isDataplaneError(err)).toBe(true);
    expect(isDataplaneError(err, "command-failed")).toBe(true);
    expect(isDataplaneError(err, "nftables-rejected", "command-failed")).toBe(true);
    expect(isDataplaneError(err, "nftables-rejected", "closed")).toBe(false);
  });

  it("keeps the former optional-code form: an undefined code means any code", () => {
    const code: DataplaneErrorCode | undefined = undefined;
    expect(isDataplaneError(err, code as unknown as DataplaneErrorCode)).toBe(true);
  });

  it("checks the brand, not the class, and rejects look-alikes", () => {
    expect(isDataplaneError(new Error("x"))).toBe(false);
    expect(isDataplaneError({ code: "closed" }, "closed")).toBe(false);
    expect(isDataplaneError({ [DATAPLANE_ERROR_BRAND]: true, code: "closed" }, "closed")).toBe(true);
  });

  it("always carries kebab-case code, retryable and details, even when the options leave them out", () => {
    const bare = new DataplaneError(DataplaneErrorCode.InvalidUpdate, "bad");
    expect(bare.retryable).toBe(false);
    expect(bare.details).toEqual({});
    expect(Object.keys(bare)).toEqual(expect.arrayContaining(["code", "retryable", "details"]));
    for (const code of Object.values(DataplaneErrorCode)) expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});
