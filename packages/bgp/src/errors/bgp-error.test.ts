import { describe, expect, it } from "vitest";
import { createSpeaker, isBgpError } from "../index.js";
import { DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { decodeMessage, encodeMessage } from "../wire/message.js";
import { BgpConfigError, isBgpConfigError } from "./config-error.js";
import { isBgpEncodeError, isBgpWireError } from "../wire/errors.js";

const KEBAB = /^[a-z]+(-[a-z0-9]+)*$/;

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("bgp errors", () => {
  const wire = thrown(() => decodeMessage(new Uint8Array(19), DEFAULT_CODEC_CONTEXT));
  const encode = thrown(() =>
    encodeMessage(
      { type: 2, withdrawn: [], attributes: { nextHop: "300.1.1.1" }, nlri: [] },
      DEFAULT_CODEC_CONTEXT,
    ),
  );

  it("every kind has a kebab-case code, retryable and details", async () => {
    const config = await createSpeaker({ asn: 0, routerId: "10.0.0.1" }).catch((e: unknown) => e);
    for (const e of [config, wire, encode]) {
      expect(isBgpError(e)).toBe(true);
      const x = e as { code: string; retryable: boolean; details: object };
      expect(x.code).toMatch(KEBAB);
      expect(x.retryable).toBe(false);
      expect(typeof x.details).toBe("object");
      expect(x.details).not.toBeNull();
    }
    expect(isBgpError(config, "config-invalid")).toBe(true);
    expect(isBgpError(wire, "wire-header")).toBe(true);
    expect(isBgpError(encode, "encode-invalid")).toBe(true);
  });

  it("isBgpError and the per-kind guards filter by code", () => {
    const e = new BgpConfigError("config-unknown-peer", "no such peer");
    expect(isBgpError(e, "config-invalid", "config-unknown-peer")).toBe(true);
    expect(isBgpError(e, "config-invalid")).toBe(false);
    expect(isBgpConfigError(e, "config-unknown-peer")).toBe(true);
    expect(isBgpWireError(wire, "wire-header")).toBe(true);
    expect(isBgpWireError(wire, "wire-open")).toBe(false);
    expect(isBgpEncodeError(encode, "encode-invalid")).toBe(true);
    expect(isBgpEncodeError(encode, "encode-too-large")).toBe(false);
    expect(e.details).toEqual({});
  });

  it("is false for anything else", () => {
    for (const v of [undefined, null, 1, "config-invalid", new Error("x"), { code: "config-invalid" }]) {
      expect(isBgpError(v)).toBe(false);
    }
  });
});
