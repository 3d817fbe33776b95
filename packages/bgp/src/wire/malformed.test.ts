import { describe, expect, it } from "vitest";
import { MALFORMED, type MalformedCase } from "../../testdata/malformed/corpus.js";
import {
  type BgpWireError,
  createCodecContext,
  createFramer,
  decodeMessage,
  decodeUpdate,
  isBgpWireError,
  messageType,
  type OpenMessage,
  validateOpen,
  validateUpdate,
} from "./index.js";

/** Runs one case and returns the errors reported (thrown or collected). */
function run(c: MalformedCase): BgpWireError[] {
  const ctx = createCodecContext(c.ctx ?? {});
  const caught = (f: () => void): BgpWireError[] => {
    try {
      f();
    } catch (e) {
      if (isBgpWireError(e)) return [e];
      throw e;
    }
    return [];
  };
  switch (c.stage) {
    case "framer":
      return caught(() => createFramer({ maxMessageSize: ctx.maxMessageSize }).push(c.bytes));
    case "decode":
      if (c.bytes.length >= 19 && messageType(c.bytes) === 2) {
        let errs: BgpWireError[] = [];
        const thrown = caught(() => {
          errs = decodeUpdate(c.bytes, ctx).errors;
        });
        return thrown.length ? thrown : errs;
      }
      return caught(() => decodeMessage(c.bytes, ctx));
    case "validate-open": {
      const e = validateOpen(decodeMessage(c.bytes, ctx) as OpenMessage, c.openOptions ?? {});
      return e ? [e] : [];
    }
    case "validate-update": {
      const r = decodeUpdate(c.bytes, ctx);
      expect(r.errors).toEqual([]);
      return validateUpdate(r.update, c.updateOptions ?? { ebgp: false }).errors;
    }
  }
}

describe("malformed message corpus", () => {
  it("has at least 40 cases with distinct names", () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(40);
    expect(new Set(MALFORMED.map((c) => c.name)).size).toBe(MALFORMED.length);
  });

  it.each(MALFORMED.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const errors = run(c);
    expect(errors.length, "an error must be reported").toBeGreaterThan(0);
    const worst = errors.find((e) => e.action === c.expect.action);
    expect(
      worst,
      `expected action ${c.expect.action}, got ${errors.map((e) => e.action).join(",")}`,
    ).toBeDefined();
    expect({
      code: worst!.notification.code,
      subcode: worst!.notification.subcode,
      action: worst!.action,
    }).toEqual(c.expect);
    expect(typeof worst!.code).toBe("string");
    expect(worst!.retryable).toBe(false);
  });

  it("attaches the offending attribute as NOTIFICATION data for attribute errors", () => {
    const c = MALFORMED.find((x) => x.name === "ORIGIN value 3")!;
    const [e] = run(c);
    expect(Array.from(e!.notification.data)).toEqual([0x40, 1, 1, 3]);
  });

  it("keeps the prefixes of a treat-as-withdraw UPDATE so they can be withdrawn", () => {
    const c = MALFORMED.find((x) => x.name === "COMMUNITIES of 5 bytes")!;
    const r = decodeUpdate(c.bytes, createCodecContext());
    expect(r.action).toBe("treat-as-withdraw");
    expect(r.update.nlri).toHaveLength(1);
  });

  it("drops a discarded attribute and keeps the rest of the UPDATE usable", () => {
    const c = MALFORMED.find((x) => x.name === "AGGREGATOR of 7 bytes")!;
    const r = decodeUpdate(c.bytes, createCodecContext());
    expect(r.action).toBe("attribute-discard");
    expect(r.update.attributes.aggregator).toBeUndefined();
    expect(r.update.attributes.nextHop).toBe("10.0.0.1");
    expect(decodeMessage(c.bytes, createCodecContext())).toEqual(r.update);
  });

  it("names the family for afi-safi-disable", () => {
    const c = MALFORMED.find((x) => x.name === "MP_REACH_NLRI IPv6 prefix of length 129")!;
    const [e] = run(c);
    expect(e!.details).toMatchObject({ afi: 2, safi: 1 });
  });

  // A caller that decodes with `prefixes: "sections"` (the speaker does) gets empty prefix lists; given
  // the sections, validateUpdate must still run its announcement checks (first AS, next hop).
  it.each(MALFORMED.filter((c) => c.stage === "validate-update").map((c) => [c.name, c] as const))(
    "%s: same verdict when decoded with prefixes: sections",
    (_name, c) => {
      const ctx = createCodecContext(c.ctx ?? {});
      const r = decodeUpdate(c.bytes, ctx, { prefixes: "sections" });
      expect(r.update.nlri.length + (r.update.attributes.mpReach?.nlri.length ?? 0)).toBe(0);
      const v = validateUpdate(r.update, { ...(c.updateOptions ?? { ebgp: false }), sections: r.sections });
      expect(v.action).toBe(c.expect.action);
      expect(v.errors.map((e) => [e.notification.code, e.notification.subcode])).toContainEqual([
        c.expect.code,
        c.expect.subcode,
      ]);
    },
  );

  it("runs no announcement check on sections that announce nothing", () => {
    const c = MALFORMED.find((x) => x.name === "leftmost AS is not the peer's")!;
    const r = decodeUpdate(c.bytes, createCodecContext(), { prefixes: "sections" });
    const empty = { ...r.sections, nlri: { ...r.sections.nlri, start: r.sections.nlri.end } };
    const v = validateUpdate(r.update, { ebgp: true, peerAs: 65002, sections: empty });
    expect(v.errors).toEqual([]);
  });
});
