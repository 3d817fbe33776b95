import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createCodecContext,
  createFramer,
  decodeMessage,
  decodeUpdate,
  encodeMessage,
  encodeUpdates,
  formatPrefix,
  isEndOfRib,
  type OpenMessage,
  type UpdateMessage,
} from "./index.js";

const dir = new URL("../../testdata/golden/", import.meta.url);

/** Loads a golden hex file: `#` lines are provenance, the rest is hex. */
function golden(name: string): Uint8Array {
  const text = readFileSync(new URL(name, dir), "utf8");
  const hex = text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("")
    .replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

const ctx = createCodecContext({ asn4: true });
const upd = (name: string) => decodeMessage(golden(name), ctx) as UpdateMessage;
const prefixes = (u: UpdateMessage) => u.nlri.map(formatPrefix);

describe("golden messages captured from BIRD 2.0.12", () => {
  it("decodes the OPEN and re-encodes it byte for byte", () => {
    const bytes = golden("bird-open.hex");
    const open = decodeMessage(bytes, ctx) as OpenMessage;
    expect(open).toMatchObject({ type: 1, version: 4, myAs: 23456, holdTime: 90, bgpId: "10.0.0.11" });
    expect(open.capabilities).toEqual([
      { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
      { code: 1, kind: "multiprotocol", afi: 2, safi: 1 },
      { code: 2, kind: "route-refresh" },
      {
        code: 64,
        kind: "graceful-restart",
        restartState: false,
        notification: false,
        restartTime: 120,
        families: [
          { afi: 1, safi: 1, forwardingPreserved: false },
          { afi: 2, safi: 1, forwardingPreserved: false },
        ],
      },
      { code: 65, kind: "four-octet-as", asn: 4200000011 },
      { code: 70, kind: "enhanced-route-refresh" },
      { code: 71, kind: "unknown", data: new Uint8Array(0) },
    ]);
    expect(encodeMessage(open, ctx)).toEqual(bytes);
  });

  it("decodes IPv4 UPDATEs with communities and large communities, re-encoding them byte for byte", () => {
    const u1 = upd("bird-update-1.hex");
    expect(prefixes(u1)).toEqual(["10.1.0.0/16"]);
    expect(u1.attributes).toEqual({
      origin: 0,
      asPath: [{ type: 2, asns: [4200000011] }],
      nextHop: "127.0.0.11",
      communities: [65011 * 65536 + 100],
      largeCommunities: [[4200000011, 1, 2]],
    });
    const u2 = upd("bird-update-2.hex");
    expect(prefixes(u2)).toEqual(["10.2.0.0/24", "10.2.1.0/24"]);
    const u3 = upd("bird-update-3.hex");
    expect(prefixes(u3)).toEqual(["192.0.2.128/25"]);
    // 0xFFFFFF01 is NO_EXPORT (RFC 1997).
    expect(u3.attributes.communities).toEqual([65011 * 65536 + 200, 0xffffff01]);
    for (const name of ["bird-update-1.hex", "bird-update-2.hex", "bird-update-3.hex", "bird-update-4.hex"])
      expect(encodeMessage(upd(name), ctx)).toEqual(golden(name));
  });

  it("recognises both End-of-RIB markers", () => {
    expect(isEndOfRib(upd("bird-update-4.hex"))).toEqual({ afi: 1, safi: 1 });
    expect(isEndOfRib(upd("bird-update-7.hex"))).toEqual({ afi: 2, safi: 1 });
    expect(decodeUpdate(golden("bird-update-7.hex"), ctx, { prefixes: "sections" }).endOfRib).toEqual({
      afi: 2,
      safi: 1,
    });
    expect(isEndOfRib(upd("bird-update-1.hex"))).toBeUndefined();
    expect(encodeMessage(upd("bird-update-7.hex"), ctx)).toEqual(golden("bird-update-7.hex"));
  });

  it("decodes IPv6 MP_REACH_NLRI; BIRD's layout is not canonical, so re-encoding is checked by value", () => {
    const u5 = upd("bird-update-5.hex");
    expect(u5.attributes.mpReach).toEqual({
      afi: 2,
      safi: 1,
      nextHops: ["2001:db8::11"],
      nlri: [{ afi: 2, len: 48, addr: expect.any(Uint8Array) }],
    });
    expect(u5.attributes.mpReach!.nlri.map(formatPrefix)).toEqual(["2001:db8:1::/48"]);
    expect(u5.attributes.largeCommunities).toEqual([[4200000011, 6, 6]]);
    const u6 = upd("bird-update-6.hex");
    expect(u6.attributes.mpReach!.nlri.map(formatPrefix)).toEqual(["2001:db8:2:3::/64"]);
    // BIRD puts MP_REACH_NLRI first with the extended length bit; we write type-code order, short length.
    for (const u of [u5, u6]) {
      const again = encodeMessage(u, ctx);
      expect(decodeMessage(again, ctx)).toEqual(u);
    }
  });

  it("decodes the NOTIFICATIONs: Cease with a shutdown communication, and an OPEN error", () => {
    const cease = decodeMessage(golden("bird-notification-cease.hex"), ctx);
    expect(cease).toMatchObject({ type: 3, code: 6, subcode: 2 });
    if (cease.type !== 3) throw new Error("not a notification");
    // RFC 9003: a length byte, then UTF-8 text.
    expect(Buffer.from(cease.data.subarray(1, 1 + cease.data[0]!)).toString()).toBe("maintenance window");
    expect(encodeMessage(cease, ctx)).toEqual(golden("bird-notification-cease.hex"));
    const hold = decodeMessage(golden("bird-badhold-notification-open-hold-time.hex"), ctx);
    expect(hold).toMatchObject({ type: 3, code: 2, subcode: 6 });
  });
});

describe("golden messages captured from GoBGP 3.10.0", () => {
  it("decodes the OPEN (hostname and extended next hop capabilities) and re-encodes it byte for byte", () => {
    const bytes = golden("gobgp-open.hex");
    const open = decodeMessage(bytes, ctx) as OpenMessage;
    expect(open).toMatchObject({ myAs: 65001, holdTime: 90, bgpId: "10.0.0.21" });
    expect(open.capabilities).toContainEqual({ code: 65, kind: "four-octet-as", asn: 65001 });
    expect(open.capabilities).toContainEqual({
      code: 5,
      kind: "extended-next-hop",
      families: [{ afi: 1, safi: 1, nextHopAfi: 2 }],
    });
    expect(open.capabilities.find((c) => c.code === 73)?.kind).toBe("unknown");
    expect(encodeMessage(open, ctx)).toEqual(bytes);
  });

  it("decodes iBGP UPDATEs (LOCAL_PREF, MED, 4-octet AS_PATH) and re-encodes every UPDATE byte for byte", () => {
    const u1 = upd("gobgp-update-1.hex");
    expect(prefixes(u1)).toEqual(["10.3.0.0/24"]);
    expect(u1.attributes).toEqual({
      origin: 2,
      asPath: [],
      nextHop: "127.0.0.21",
      med: 10,
      localPref: 200,
      communities: [65001 * 65536 + 7],
      largeCommunities: [[65001, 1, 2]],
    });
    const u2 = upd("gobgp-update-2.hex");
    expect(u2.attributes).toMatchObject({
      origin: 1,
      asPath: [{ type: 2, asns: [4200000001, 65500] }],
      localPref: 100,
    });
    const u4 = upd("gobgp-update-4.hex");
    expect(u4.attributes.mpReach?.nextHops).toEqual(["2001:db8::21"]);
    expect(u4.attributes.mpReach?.nlri.map(formatPrefix)).toEqual(["2001:db8:3::/48"]);
    expect(isEndOfRib(upd("gobgp-update-3.hex"))).toEqual({ afi: 1, safi: 1 });
    expect(isEndOfRib(upd("gobgp-update-5.hex"))).toEqual({ afi: 2, safi: 1 });
    for (let i = 1; i <= 5; i++)
      expect(encodeMessage(upd(`gobgp-update-${i}.hex`), ctx)).toEqual(golden(`gobgp-update-${i}.hex`));
  });

  it("packs the same routes into the same bytes with encodeUpdates", () => {
    for (const name of ["gobgp-update-1.hex", "gobgp-update-4.hex", "bird-update-2.hex"]) {
      const u = upd(name);
      expect(encodeUpdates({ attributes: u.attributes, nlri: u.nlri }, ctx)).toEqual([golden(name)]);
    }
  });

  it("decodes the Cease NOTIFICATION", () => {
    expect(decodeMessage(golden("gobgp-notification-cease.hex"), ctx)).toMatchObject({
      type: 3,
      code: 6,
      subcode: 3,
    });
  });
});

describe("the whole golden corpus", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".hex"));

  it("has provenance on every file", () => {
    expect(files.length).toBeGreaterThanOrEqual(19);
    for (const f of files) {
      const text = readFileSync(new URL(f, dir), "utf8");
      expect(text).toMatch(/^# .* sent by (BIRD|GoBGP)/);
      expect(text).toMatch(/# regenerate: /);
    }
  });

  it("frames the concatenated stream one byte at a time", () => {
    const all = files.map((f) => golden(f));
    const stream = new Uint8Array(all.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of all) {
      stream.set(b, o);
      o += b.length;
    }
    const framer = createFramer();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...framer.push(stream.subarray(i, i + 1)));
    expect(out).toEqual(all);
  });
});
