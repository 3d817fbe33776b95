import { CniError } from "@margay/cni";
import { describe, expect, it } from "vitest";
import { MargayIpamErrorCode, toCniError } from "./plugin.js";

/** An IPAM error as @margay/ipam throws it: a code, a message with the numbers, details. */
const ipamError = (code: string, message: string) =>
  Object.assign(new Error(message), { code, retryable: false, details: {} });

describe("toCniError: no address for this host", () => {
  it.each([
    ["pool-exhausted", "pool v4: 0 of 1024 free"],
    ["host-block-limit", "host node-a has 4 of 4 IPv4 blocks; pool v4: 767 of 1024 free"],
  ])("%s is the plugin's pool-exhausted code with the numbers in details", (code, message) => {
    const out = toCniError(ipamError(code, message));
    expect(out).toBeInstanceOf(CniError);
    expect((out as CniError).cniCode).toBe(MargayIpamErrorCode.PoolExhausted);
    expect((out as CniError).details).toContain(message);
  });
});
