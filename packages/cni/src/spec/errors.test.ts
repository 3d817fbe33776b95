import { describe, expect, it } from "vitest";
import { CniExecError, CniExecErrorCode, isCniExecError } from "../runtime/exec-error.js";
import { CNI_ERROR_BRAND, CniError, CniErrorCode, isCniError } from "./errors.js";

describe("isCniError(e, ...codes)", () => {
  const err = new CniError(CniErrorCode.TryAgainLater, "busy");

  it("matches by string name or by the spec's number, any of several", () => {
    expect(isCniError(err)).toBe(true);
    expect(isCniError(err, "try-again-later")).toBe(true);
    expect(isCniError(err, 11)).toBe(true);
    expect(isCniError(err, "unknown-container", 11)).toBe(true);
    expect(isCniError(err, "unknown-container", 7)).toBe(false);
    expect(isCniError(err, 7)).toBe(false);
  });

  it("keeps the former optional-code form: an undefined code means any code", () => {
    expect(isCniError(err, undefined as unknown as number)).toBe(true);
  });

  it("checks the brand, not the class", () => {
    expect(isCniError(new Error("x"))).toBe(false);
    expect(isCniError({ cniCode: 11, code: "try-again-later" }, 11)).toBe(false);
    expect(isCniError({ [CNI_ERROR_BRAND]: true, cniCode: 3, code: "unknown-container" }, 3)).toBe(true);
  });

  it("always carries kebab-case code, retryable and (structured) context", () => {
    const bare = new CniError(CniErrorCode.InvalidNetworkConfig, "bad");
    expect(bare.code).toBe("invalid-network-config");
    expect(bare.retryable).toBe(false);
    expect(bare.context).toEqual({});
    expect(err.retryable).toBe(true);
  });
});

describe("isCniExecError(e, ...codes)", () => {
  const err = new CniExecError(CniExecErrorCode.Timeout, "slow", { plugin: "bridge" });

  it("matches any code when none is given, one of several when some are", () => {
    expect(isCniExecError(err)).toBe(true);
    expect(isCniExecError(err, "timeout")).toBe(true);
    expect(isCniExecError(err, "aborted", "timeout")).toBe(true);
    expect(isCniExecError(err, "aborted", "exec-failed")).toBe(false);
    expect(isCniExecError(err, undefined as unknown as CniExecErrorCode)).toBe(true);
    expect(isCniExecError(new CniError(11, "x"))).toBe(false);
  });

  it("always carries kebab-case code, retryable and details", () => {
    const bare = new CniExecError(CniExecErrorCode.InvalidOutput, "junk");
    expect(bare.retryable).toBe(false);
    expect(bare.details).toEqual({});
    for (const code of Object.values(CniExecErrorCode)) expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });
});
