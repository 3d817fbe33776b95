import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { attributesArb, ipv4PrefixArb, messageArb, openArb, updateArb } from "./arbitraries.test-util.js";
import {
  createCodecContext,
  createFramer,
  decodeMessage,
  decodeUpdate,
  encodeMessage,
  encodeUpdates,
  type Prefix,
} from "./index.js";

const big = createCodecContext({ maxMessageSize: 65535 });
const withoutMissing = (errors: { details: { reason: string } }[]) =>
  errors.filter((e) => e.details.reason !== "missing-well-known");

describe("round trip: decode(encode(m)) = m", () => {
  it("holds for every message type on a 4-octet session", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m, big);
        if (m.type === 2) {
          const r = decodeUpdate(bytes, big);
          expect(withoutMissing(r.errors)).toEqual([]);
          expect(r.update).toEqual(m);
        } else expect(decodeMessage(bytes, big)).toEqual(m);
      }),
      { numRuns: 400 },
    );
  });

  it("holds on a 2-octet session through AS4_PATH / AS4_AGGREGATOR (RFC 6793)", () => {
    const ctx = createCodecContext({ asn4: false, maxMessageSize: 65535 });
    fc.assert(
      fc.property(updateArb({ twoOctetSafe: true }), (m) => {
        const r = decodeUpdate(encodeMessage(m, ctx), ctx);
        expect(withoutMissing(r.errors)).toEqual([]);
        expect(r.update).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it("holds with ADD-PATH path identifiers in both directions", () => {
    const fam = new Set(["1/1", "2/1"]);
    const ctx = createCodecContext({ maxMessageSize: 65535, addPathReceive: fam, addPathSend: fam });
    fc.assert(
      fc.property(updateArb({ addPath: true }), (m) => {
        const r = decodeUpdate(encodeMessage(m, ctx), ctx);
        expect(r.update).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });

  it("holds for OPENs whose capabilities need the RFC 9072 extended length", () => {
    fc.assert(
      fc.property(openArb, (m) => {
        expect(decodeMessage(encodeMessage(m, big), big)).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });
});

describe("encodeUpdates packs prefixes", () => {
  it("into messages under the size limit that carry every prefix once, in order, with the same attributes", () => {
    const ctx = createCodecContext();
    fc.assert(
      fc.property(
        attributesArb().map(({ mpReach: _r, mpUnreach: _u, ...a }) => a),
        fc.array(ipv4PrefixArb, { maxLength: 3000 }),
        fc.array(ipv4PrefixArb, { maxLength: 1500 }),
        (attributes, nlri, withdrawn) => {
          // Attributes large enough to leave no room for NLRI are an encode error, not a packing case.
          fc.pre(encodeMessage({ type: 2, withdrawn: [], nlri: [], attributes }, big).length < 3000);
          const msgs = encodeUpdates({ attributes, nlri, withdrawn }, ctx);
          const gotN: Prefix[] = [];
          const gotW: Prefix[] = [];
          for (const b of msgs) {
            expect(b.length).toBeLessThanOrEqual(4096);
            const u = decodeUpdate(b, ctx).update;
            gotW.push(...u.withdrawn);
            gotN.push(...u.nlri);
            if (u.nlri.length > 0) expect(u.attributes).toEqual(attributes);
            else expect(u.attributes).toEqual({});
          }
          expect(gotN).toEqual(nlri);
          expect(gotW).toEqual(withdrawn);
          // As few messages as fit: every message but the last of a kind is at least nearly full.
          const full = msgs.filter((b, i) => i < msgs.length - 1 && b.length < 4096 - 40);
          expect(full.length).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("splits IPv6 NLRI over MP_REACH_NLRI messages and IPv6 withdrawals over MP_UNREACH_NLRI", () => {
    const ctx = createCodecContext();
    fc.assert(
      fc.property(attributesArb(), (attributes) => {
        fc.pre(attributes.mpReach !== undefined);
        const many = Array.from({ length: 40 }, () => attributes.mpReach!.nlri).flat();
        const a = { ...attributes, mpReach: { ...attributes.mpReach!, nlri: many } };
        fc.pre(
          encodeMessage(
            { type: 2, withdrawn: [], nlri: [], attributes: { ...a, mpReach: { ...a.mpReach, nlri: [] } } },
            big,
          ).length < 3000,
        );
        const msgs = encodeUpdates({ attributes: a }, ctx);
        const got: Prefix[] = [];
        const gotW: Prefix[] = [];
        for (const b of msgs) {
          expect(b.length).toBeLessThanOrEqual(4096);
          const u = decodeUpdate(b, ctx).update;
          got.push(...(u.attributes.mpReach?.nlri ?? []));
          gotW.push(...(u.attributes.mpUnreach?.withdrawn ?? []));
        }
        expect(got).toEqual(many);
        expect(gotW).toEqual(attributes.mpUnreach?.withdrawn ?? []);
      }),
      { numRuns: 60 },
    );
  });
});

describe("framer", () => {
  it("returns the same messages however the stream is cut", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(400), { maxLength: 20 }),
        (ms, cuts) => {
          const parts = ms.map((m) => encodeMessage(m, big));
          const stream = Buffer.concat(parts);
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const framer = createFramer({ maxMessageSize: 65535 });
          const out: Uint8Array[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            out.push(...framer.push(stream.subarray(prev, p)));
            prev = p;
          }
          expect(out.map((b) => Buffer.from(b).toString("hex"))).toEqual(
            parts.map((b) => Buffer.from(b).toString("hex")),
          );
          expect(framer.buffered).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
