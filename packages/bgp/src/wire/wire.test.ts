import { describe, expect, it } from "vitest";
import {
  asPathLength,
  createCodecContext,
  decodeMessage,
  decodeUpdate,
  encodeAttributes,
  encodeMessage,
  encodeUpdate,
  encodeUpdates,
  endOfRib,
  forEachIPv4Prefix,
  forEachPrefix,
  formatPrefix,
  ipv4Prefix,
  ipv6ToString,
  isBgpEncodeError,
  isBgpWireError,
  mergeAs4Path,
  negotiateCodecContext,
  type OpenMessage,
  parseIpv6,
  parsePrefix,
  u32ToIpv4,
  validateOpen,
  type UpdateMessage,
} from "./index.js";

const ctx = createCodecContext();

describe("addresses and prefixes", () => {
  it("formats IPv6 per RFC 5952 and parses what it formats", () => {
    for (const [text, want] of [
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:0db8::0001", "2001:db8::1"],
      ["::", "::"],
      ["::ffff:192.0.2.1", "::ffff:c000:201"],
      ["fe80:0:0:0:1::", "fe80::1:0:0:0"],
      ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
    ] as const)
      expect(ipv6ToString(parseIpv6(text)!)).toBe(want);
    expect(parseIpv6("1::2::3")).toBeUndefined();
    expect(parseIpv6("12345::")).toBeUndefined();
  });

  it("parses prefixes, clears host bits, rejects garbage with a typed error", () => {
    expect(formatPrefix(parsePrefix("10.1.2.3/8"))).toBe("10.0.0.0/8");
    expect(formatPrefix(parsePrefix("2001:db8::1/33"))).toBe("2001:db8::/33");
    expect(parsePrefix("0.0.0.0/0").len).toBe(0);
    for (const bad of ["10.0.0.0/33", "10.0.0/8", "::/129", "10.0.0.256/8", "x/1", "10.0.0.0/"])
      expect(() => parsePrefix(bad), bad).toThrow(expect.objectContaining({ code: "encode-invalid" }));
  });

  it("walks IPv4 NLRI as (u32, len) without allocating prefixes, clearing host bits", () => {
    const bytes = new Uint8Array([0x18, 10, 1, 2, 0x20, 192, 0, 2, 1, 0x00, 0x07, 0xff]);
    const seen: string[] = [];
    const n = forEachIPv4Prefix(bytes, 0, bytes.length, false, (a, l) => seen.push(`${u32ToIpv4(a)}/${l}`));
    expect(n).toBe(4);
    expect(seen).toEqual(["10.1.2.0/24", "192.0.2.1/32", "0.0.0.0/0", "254.0.0.0/7"]);
    expect(() => forEachIPv4Prefix(new Uint8Array([0x21, 1, 2, 3, 4, 5]), 0, 6, false, () => {})).toThrow(
      expect.objectContaining({ notification: expect.objectContaining({ code: 3, subcode: 10 }) }),
    );
  });

  it("walks ADD-PATH IPv6 NLRI with path identifiers", () => {
    const bytes = new Uint8Array([0, 0, 0, 9, 0x20, 0x20, 0x01, 0x0d, 0xb8]);
    const out: [number, number, number][] = [];
    forEachPrefix(bytes, 0, bytes.length, 2, true, (b, o, len, id) => out.push([b[o]!, len, id]));
    expect(out).toEqual([[0x20, 32, 9]]);
  });
});

describe("RFC 6793 AS4_PATH", () => {
  it("keeps the leading 2-octet ASes not covered by AS4_PATH", () => {
    // A NEW speaker 65001 sent through an OLD speaker 100 that prepended itself.
    const asPath = [{ type: 2 as const, asns: [100, 23456, 23456] }];
    const as4 = [{ type: 2 as const, asns: [4200000000, 4200000001] }];
    expect(mergeAs4Path(asPath, as4)).toEqual([{ type: 2, asns: [100, 4200000000, 4200000001] }]);
  });

  it("ignores an AS4_PATH longer than AS_PATH", () => {
    const asPath = [{ type: 2 as const, asns: [100] }];
    expect(mergeAs4Path(asPath, [{ type: 2, asns: [1, 2] }])).toEqual(asPath);
  });

  it("counts an AS_SET as one and confederation segments as none", () => {
    expect(
      asPathLength([
        { type: 3, asns: [1, 2] },
        { type: 2, asns: [3, 4] },
        { type: 1, asns: [5, 6, 7] },
      ]),
    ).toBe(3);
  });

  it("ignores AS4_PATH when AGGREGATOR is not AS_TRANS", () => {
    const two = createCodecContext({ asn4: false });
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri: [parsePrefix("10.0.0.0/8")],
      attributes: { origin: 0, asPath: [{ type: 2, asns: [4200000000] }], nextHop: "1.1.1.1" },
    };
    const bytes = encodeUpdate(u, two);
    // Rewrite: add an AGGREGATOR with a real 2-octet ASN after the fact.
    const extra = new Uint8Array([0xc0, 7, 6, 0x00, 0x64, 1, 2, 3, 4]);
    const merged = new Uint8Array(bytes.length + extra.length);
    const attrLen = ((bytes[21]! << 8) | bytes[22]!) + extra.length;
    merged.set(bytes.subarray(0, 23 + attrLen - extra.length));
    merged.set(extra, 23 + attrLen - extra.length);
    merged.set(bytes.subarray(23 + attrLen - extra.length), 23 + attrLen);
    merged[16] = merged.length >>> 8;
    merged[17] = merged.length & 255;
    merged[21] = attrLen >>> 8;
    merged[22] = attrLen & 255;
    const r = decodeUpdate(merged, two);
    expect(r.update.attributes.asPath).toEqual([{ type: 2, asns: [23456] }]);
    expect(r.update.attributes.aggregator).toEqual({ asn: 100, address: "1.2.3.4" });
  });

  it("drops AS4_PATH from a 4-octet peer", () => {
    const attrs = encodeAttributes(
      { origin: 0, asPath: [{ type: 2, asns: [4200000000] }] },
      createCodecContext({ asn4: false }),
    );
    expect(attrs.includes(17)).toBe(true);
    const body = new Uint8Array([0, 0, attrs.length >>> 8, attrs.length & 255, ...attrs]);
    const m = new Uint8Array([...new Uint8Array(16).fill(0xff), 0, 19 + body.length, 2, ...body]);
    const r = decodeUpdate(m, ctx);
    // On a 4-octet session the 2-octet AS_PATH bytes are read as 4-octet: malformed.
    expect(r.action).toBe("treat-as-withdraw");
  });
});

describe("UPDATE encoding", () => {
  it("sets the Partial bit when propagating an unknown optional transitive attribute", () => {
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri: [],
      attributes: { unknown: [{ flags: 0xc0, typeCode: 99, data: new Uint8Array([1]) }] },
    };
    const r = decodeUpdate(encodeUpdate(u, ctx), ctx);
    expect(r.update.attributes.unknown).toEqual([{ flags: 0xe0, typeCode: 99, data: new Uint8Array([1]) }]);
  });

  it("drops unknown optional non-transitive attributes on decode", () => {
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri: [],
      attributes: { unknown: [{ flags: 0x80, typeCode: 99, data: new Uint8Array([1]) }] },
    };
    expect(decodeUpdate(encodeUpdate(u, ctx), ctx).update.attributes.unknown).toBeUndefined();
  });

  it("uses the extended length flag only past 255 bytes", () => {
    const short = encodeAttributes({ communities: Array.from({ length: 63 }, (_, i) => i) }, ctx);
    expect(short[0]).toBe(0xc0);
    const long = encodeAttributes({ communities: Array.from({ length: 64 }, (_, i) => i) }, ctx);
    expect(long[0]).toBe(0xd0);
    expect((long[2]! << 8) | long[3]!).toBe(256);
  });

  it("encodes the IPv6 link-local second next hop (32-byte next hop)", () => {
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri: [],
      attributes: {
        origin: 0,
        asPath: [],
        mpReach: {
          afi: 2,
          safi: 1,
          nextHops: ["2001:db8::1", "fe80::1"],
          nlri: [parsePrefix("2001:db8:5::/48")],
        },
      },
    };
    const bytes = encodeUpdate(u, ctx);
    expect(bytes.length).toBe(23 + 4 + 3 + (3 + 4 + 32 + 1 + 7));
    expect(decodeUpdate(bytes, ctx).update).toEqual(u);
  });

  it("carries IPv4 NLRI with an IPv6 next hop when RFC 8950 is negotiated", () => {
    const enh = createCodecContext({ extendedNextHop: new Set(["1/1"]) });
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri: [],
      attributes: {
        origin: 0,
        asPath: [],
        mpReach: { afi: 1, safi: 1, nextHops: ["2001:db8::1"], nlri: [parsePrefix("10.9.0.0/16")] },
      },
    };
    expect(decodeUpdate(encodeUpdate(u, enh), enh).update).toEqual(u);
    const plain = decodeUpdate(encodeUpdate(u, enh), ctx);
    expect(plain.action).toBe("afi-safi-disable");
  });

  it("refuses messages over the size limit and attributes without room for NLRI", () => {
    const nlri = Array.from({ length: 2000 }, (_, i) => ipv4Prefix(i << 8, 24));
    const u: UpdateMessage = {
      type: 2,
      withdrawn: [],
      nlri,
      attributes: { origin: 0, asPath: [], nextHop: "1.1.1.1" },
    };
    expect(() => encodeUpdate(u, ctx)).toThrow(expect.objectContaining({ code: "encode-too-large" }));
    // 8000 bytes of NLRI in messages with about 4060 bytes of room.
    expect(encodeUpdates({ attributes: u.attributes, nlri }, ctx).length).toBe(2);
    const huge = {
      origin: 0 as const,
      communities: Array.from({ length: 1100 }, (_, i) => i),
      nextHop: "1.1.1.1",
    };
    try {
      encodeUpdates({ attributes: huge, nlri }, ctx);
      throw new Error("no error");
    } catch (e) {
      expect(isBgpEncodeError(e)).toBe(true);
    }
    expect(() => encodeUpdates({ nlri: [parsePrefix("2001:db8::/32")] }, ctx)).toThrow(
      expect.objectContaining({ code: "encode-invalid" }),
    );
  });

  it("builds End-of-RIB markers that BIRD and GoBGP send (23 bytes for IPv4)", () => {
    expect(encodeMessage(endOfRib(), ctx)).toHaveLength(23);
    expect(Buffer.from(encodeMessage(endOfRib(2, 1), ctx)).toString("hex")).toBe(
      `${"ff".repeat(16)}001d0200000006800f03000201`,
    );
  });

  it("decodes in sections mode without materialising prefixes", () => {
    const msgs = encodeUpdates(
      {
        attributes: { origin: 0, asPath: [], nextHop: "1.1.1.1" },
        nlri: [parsePrefix("10.0.0.0/8"), parsePrefix("11.0.0.0/8")],
      },
      ctx,
    );
    const r = decodeUpdate(msgs[0]!, ctx, { prefixes: "sections" });
    expect(r.update.nlri).toEqual([]);
    const seen: number[] = [];
    forEachIPv4Prefix(msgs[0]!, r.sections.nlri.start, r.sections.nlri.end, false, (a) =>
      seen.push(a >>> 24),
    );
    expect(seen).toEqual([10, 11]);
    expect(r.endOfRib).toBeUndefined();
  });
});

describe("OPEN negotiation and validation", () => {
  const open = (caps: OpenMessage["capabilities"], myAs = 65001): OpenMessage => ({
    type: 1,
    version: 4,
    myAs,
    holdTime: 90,
    bgpId: "10.0.0.1",
    capabilities: caps,
  });

  it("derives the codec context from both OPENs", () => {
    const local = open([
      { code: 65, kind: "four-octet-as", asn: 65001 },
      { code: 6, kind: "extended-message" },
      {
        code: 69,
        kind: "add-path",
        families: [
          { afi: 1, safi: 1, sendReceive: 3 },
          { afi: 2, safi: 1, sendReceive: 1 },
        ],
      },
      { code: 5, kind: "extended-next-hop", families: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
    ]);
    const remote = open([
      { code: 65, kind: "four-octet-as", asn: 65002 },
      { code: 6, kind: "extended-message" },
      {
        code: 69,
        kind: "add-path",
        families: [
          { afi: 1, safi: 1, sendReceive: 1 },
          { afi: 2, safi: 1, sendReceive: 2 },
        ],
      },
      { code: 5, kind: "extended-next-hop", families: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
    ]);
    const c = negotiateCodecContext(local, remote);
    expect(c.asn4).toBe(true);
    expect(c.maxMessageSize).toBe(65535);
    expect([...c.addPathReceive]).toEqual(["2/1"]);
    expect([...c.addPathSend]).toEqual(["1/1"]);
    expect([...c.extendedNextHop]).toEqual(["1/1"]);
    const old = negotiateCodecContext(local, open([]));
    expect(old).toMatchObject({ asn4: false, maxMessageSize: 4096 });
  });

  it("accepts a sound OPEN and reports the peer AS from the 4-octet capability", () => {
    expect(
      validateOpen(open([{ code: 65, kind: "four-octet-as", asn: 4200000000 }], 23456), {
        peerAs: 4200000000,
      }),
    ).toBeUndefined();
  });

  it("keeps typed errors for unsupported versions with the version we speak as data", () => {
    const bytes = encodeMessage(open([]), ctx);
    bytes[19] = 3;
    try {
      decodeMessage(bytes, ctx);
      throw new Error("no error");
    } catch (e) {
      expect(isBgpWireError(e) && e.notification).toEqual({
        code: 2,
        subcode: 1,
        data: new Uint8Array([0, 4]),
      });
    }
  });
});

describe("encodeUpdates fast path for numeric IPv4 prefixes", () => {
  it("packs [addr, len] pairs into the same bytes as Prefix objects", () => {
    const attributes = {
      origin: 0 as const,
      asPath: [{ type: 2 as const, asns: [65001] }],
      nextHop: "192.0.2.1",
    };
    const pairs: number[] = [];
    const objs = [];
    for (let i = 0; i < 3000; i++) {
      const addr = ((20 << 24) + i * 4096 + 7) >>> 0;
      const len = [0, 8, 17, 24, 32][i % 5]!;
      pairs.push(addr, len);
      objs.push(ipv4Prefix(addr, len));
    }
    expect(encodeUpdates({ attributes, ipv4Nlri: pairs }, ctx)).toEqual(
      encodeUpdates({ attributes, nlri: objs }, ctx),
    );
    expect(encodeUpdates({ ipv4Withdrawn: pairs }, ctx)).toEqual(encodeUpdates({ withdrawn: objs }, ctx));
    const ap = createCodecContext({ addPathSend: new Set(["1/1"]), addPathReceive: new Set(["1/1"]) });
    const back = encodeUpdates({ attributes, ipv4Nlri: pairs }, ap).flatMap(
      (m) => decodeUpdate(m, ap).update.nlri,
    );
    expect(back).toEqual(objs.map((p) => ({ ...p, pathId: 0 })));
  });

  it("rejects odd-length lists and lengths over 32", () => {
    expect(() => encodeUpdates({ ipv4Nlri: [1, 2, 3] }, ctx)).toThrow(
      expect.objectContaining({ code: "encode-invalid" }),
    );
    expect(() => encodeUpdates({ ipv4Withdrawn: [1, 33] }, ctx)).toThrow(
      expect.objectContaining({ code: "encode-invalid" }),
    );
  });
});

describe("regressions", () => {
  it("keeps every address when the encode buffer grows in the middle of an IPv4 field", () => {
    // Found by the packing property: the address written while the buffer was reallocated got lost.
    for (let pad = 1; pad < 80; pad++) {
      const attributes = {
        communities: Array.from({ length: pad }, (_, i) => i),
        clusterList: Array.from({ length: 70 }, (_, i) => `10.0.${i >> 8}.${(i & 255) + 0}`),
        originatorId: "192.0.2.7",
        nextHop: "198.51.100.9",
        aggregator: { asn: 65001, address: "203.0.113.5" },
      };
      const u = { type: 2 as const, withdrawn: [], nlri: [], attributes };
      expect(decodeUpdate(encodeUpdate(u, ctx), ctx).update.attributes).toEqual(attributes);
    }
  });
});
