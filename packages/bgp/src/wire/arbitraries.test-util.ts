/**
 * fast-check arbitraries for valid BGP values, shared by the property tests and the fuzzer's seeds.
 *
 * @internal
 * @packageDocumentation
 */
import fc from "fast-check";
import { ipv6ToString } from "./ip.js";
import type {
  AsPathSegment,
  BgpMessage,
  Capability,
  OpenMessage,
  PathAttributes,
  Prefix,
  UpdateMessage,
} from "./types.js";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
/** IPv6 text in RFC 5952 form: the decoder's own formatter, whose output ip-vectors.test.ts pins. */
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
  const c = b.slice();
  // Zero some words so "::" compression is exercised.
  if (c[0]! & 1) c.fill(0, 6, 12);
  return ipv6ToString(c);
});

function prefixArb(afi: 1 | 2, withPathId: boolean): fc.Arbitrary<Prefix> {
  const bits = afi === 1 ? 32 : 128;
  return fc
    .tuple(
      fc.integer({ min: 0, max: bits }),
      fc.uint8Array({ minLength: bits / 8, maxLength: bits / 8 }),
      u32,
    )
    .map(([len, addr, pathId]) => {
      const nb = (len + 7) >> 3;
      addr.fill(0, nb);
      if (len & 7) addr[nb - 1]! &= (0xff << (8 - (len & 7))) & 0xff;
      return withPathId ? { afi, len, addr, pathId } : { afi, len, addr };
    });
}

/** Options of {@link attributesArb}. */
export interface AttrArbOptions {
  /** Limit to values that survive a 2-octet session (RFC 6793 merging is lossy for other shapes). */
  twoOctetSafe?: boolean;
  addPath?: boolean;
}

function asPathArb(twoOctetSafe: boolean): fc.Arbitrary<AsPathSegment[]> {
  const asn = twoOctetSafe ? u32.filter((x) => x !== 23456) : u32;
  // Confederation segments never travel in AS4_PATH, so on a 2-octet session they must fit 16 bits.
  const seg = (type: 1 | 2 | 3 | 4) =>
    fc
      .array(
        twoOctetSafe && type > 2 ? fc.integer({ min: 0, max: 0xffff }).filter((x) => x !== 23456) : asn,
        {
          minLength: 1,
          maxLength: 12,
        },
      )
      .map((asns) => ({ type, asns }));
  if (!twoOctetSafe) return fc.array(fc.oneof(seg(1), seg(2), seg(3), seg(4)), { maxLength: 5 });
  // Confederation segments first, then no two AS_SEQUENCEs in a row (merging would join them).
  return fc
    .tuple(
      fc.array(fc.oneof(seg(3), seg(4)), { maxLength: 2 }),
      fc.array(fc.oneof(seg(1), seg(2)), { maxLength: 4 }),
    )
    .map(([c, s]) => {
      const out: AsPathSegment[] = [...c];
      for (const x of s) if (!(x.type === 2 && out[out.length - 1]?.type === 2)) out.push(x);
      return out;
    });
}

/** Valid path attributes (every field optional). */
export function attributesArb(o: AttrArbOptions = {}): fc.Arbitrary<PathAttributes> {
  const known = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32]);
  const unknown = fc
    .uniqueArray(
      fc.record({
        flags: fc.constantFrom(0xe0),
        typeCode: fc.integer({ min: 19, max: 255 }).filter((t) => !known.has(t)),
        data: fc.uint8Array({ maxLength: 300 }),
      }),
      { selector: (u) => u.typeCode, minLength: 1, maxLength: 3 },
    )
    .map((list) => list.sort((a, b) => a.typeCode - b.typeCode));
  return fc.record(
    {
      origin: fc.constantFrom(0 as const, 1 as const, 2 as const),
      asPath: asPathArb(o.twoOctetSafe ?? false),
      nextHop: ipv4,
      med: u32,
      localPref: u32,
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({
        asn: o.twoOctetSafe ? fc.integer({ min: 65536, max: 0xffffffff }) : u32,
        address: ipv4,
      }),
      communities: fc.array(u32, { minLength: 1, maxLength: 8 }),
      extendedCommunities: fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }), {
        minLength: 1,
        maxLength: 4,
      }),
      largeCommunities: fc.array(fc.tuple(u32, u32, u32), { minLength: 1, maxLength: 4 }),
      originatorId: ipv4,
      clusterList: fc.array(ipv4, { minLength: 1, maxLength: 4 }),
      mpReach: fc.record({
        afi: fc.constant(2),
        safi: fc.constant(1),
        nextHops: fc.oneof(
          ipv6.map((a) => [a]),
          fc.tuple(ipv6, ipv6).map(([a, b]) => [a, b]),
        ),
        nlri: fc.array(prefixArb(2, o.addPath ?? false), { maxLength: 20 }),
      }),
      mpUnreach: fc.record({
        afi: fc.constant(2),
        safi: fc.constant(1),
        withdrawn: fc.array(prefixArb(2, o.addPath ?? false), { maxLength: 20 }),
      }),
      unknown,
    },
    { requiredKeys: [] },
  );
}

/** A valid UPDATE. */
export function updateArb(o: AttrArbOptions = {}): fc.Arbitrary<UpdateMessage> {
  return fc.record({
    type: fc.constant(2 as const),
    withdrawn: fc.array(prefixArb(1, o.addPath ?? false), { maxLength: 30 }),
    attributes: attributesArb(o),
    nlri: fc.array(prefixArb(1, o.addPath ?? false), { maxLength: 30 }),
  });
}

/** Any IPv4 prefix (no path id). */
export const ipv4PrefixArb: fc.Arbitrary<Prefix> = prefixArb(1, false);

const capabilityArb: fc.Arbitrary<Capability> = fc.oneof(
  fc.record({
    code: fc.constant(1 as const),
    kind: fc.constant("multiprotocol" as const),
    afi: u16,
    safi: fc.nat(255),
  }),
  fc.constant({ code: 2 as const, kind: "route-refresh" as const }),
  fc.constant({ code: 70 as const, kind: "enhanced-route-refresh" as const }),
  fc.constant({ code: 6 as const, kind: "extended-message" as const }),
  fc.record({ code: fc.constant(65 as const), kind: fc.constant("four-octet-as" as const), asn: u32 }),
  fc.record({
    code: fc.constant(64 as const),
    kind: fc.constant("graceful-restart" as const),
    restartState: fc.boolean(),
    notification: fc.boolean(),
    restartTime: fc.nat(4095),
    families: fc.array(fc.record({ afi: u16, safi: fc.nat(255), forwardingPreserved: fc.boolean() }), {
      maxLength: 4,
    }),
  }),
  fc.record({
    code: fc.constant(69 as const),
    kind: fc.constant("add-path" as const),
    families: fc.array(
      fc.record({
        afi: u16,
        safi: fc.nat(255),
        sendReceive: fc.constantFrom(1 as const, 2 as const, 3 as const),
      }),
      {
        maxLength: 4,
      },
    ),
  }),
  fc.record({
    code: fc.constant(5 as const),
    kind: fc.constant("extended-next-hop" as const),
    families: fc.array(fc.record({ afi: u16, safi: u16, nextHopAfi: u16 }), { maxLength: 4 }),
  }),
  fc.record({
    code: fc.constantFrom(71, 73, 128, 131, 200),
    kind: fc.constant("unknown" as const),
    data: fc.uint8Array({ maxLength: 20 }),
  }),
);

/** A valid OPEN (sometimes past 255 bytes of capabilities, exercising RFC 9072). */
export const openArb: fc.Arbitrary<OpenMessage> = fc.record({
  type: fc.constant(1 as const),
  version: fc.constant(4),
  myAs: u16,
  holdTime: u16,
  bgpId: ipv4,
  capabilities: fc.array(capabilityArb, { maxLength: 30 }),
});

/** Any valid message on a 4-octet session. */
export const messageArb: fc.Arbitrary<BgpMessage> = fc.oneof(
  openArb,
  updateArb(),
  fc.record({
    type: fc.constant(3 as const),
    code: fc.nat(255),
    subcode: fc.nat(255),
    data: fc.uint8Array({ maxLength: 40 }),
  }),
  fc.constant({ type: 4 as const }),
  fc.record({ type: fc.constant(5 as const), afi: u16, subtype: fc.nat(255), safi: fc.nat(255) }),
);
