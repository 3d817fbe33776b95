import { describe, expect, it } from "vitest";
import { IpamError, IpamErrorCode, isIpamError } from "./errors.js";

describe("isIpamError(e, ...codes)", () => {
  const err = new IpamError(IpamErrorCode.PoolExhausted, "no room", { details: { pools: ["p"] } });

  it("matches any code when none is given, one of several when some are", () => {
    expect(isIpamError(err)).toBe(true);
    expect(isIpamError(err, "pool-exhausted")).toBe(true);
    expect(isIpamError(err, "no-pools", "pool-exhausted")).toBe(true);
    expect(isIpamError(err, "no-pools", "host-block-limit")).toBe(false);
  });

  it("keeps the former optional-code form: an undefined code means any code", () => {
    const code: IpamErrorCode | undefined = undefined;
    expect(isIpamError(err, code as unknown as IpamErrorCode)).toBe(true);
  });

  it("checks the brand, not the class, and rejects look-alikes", () => {
    expect(isIpamError(new Error("x"))).toBe(false);
    expect(isIpamError({ code: "pool-exhausted" }, "pool-exhausted")).toBe(false);
    expect(isIpamError(null)).toBe(false);
    const copy = { [Symbol.for("@margay/ipam.IpamError")]: true, code: "invalid" };
    expect(isIpamError(copy, "invalid")).toBe(true);
  });

  it("always carries kebab-case code, retryable and details", () => {
    const bare = new IpamError(IpamErrorCode.Invalid, "bad");
    expect(bare.retryable).toBe(false);
    expect(bare.details).toEqual({});
    expect(new IpamError(IpamErrorCode.Datastore, "down").retryable).toBe(true);
    for (const code of Object.values(IpamErrorCode)) expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});
