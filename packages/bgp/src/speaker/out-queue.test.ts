import { describe, expect, it } from "vitest";
import { AttrStore } from "../rib/attrs.js";
import { parseRibPrefix } from "../rib/policy.js";
import { createCodecContext, DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { decodeUpdate } from "../wire/update.js";
import { formatPrefix } from "../wire/prefix.js";
import { Afi } from "../wire/types.js";
import { OutQueue, type SharedEncodings } from "./out-queue.js";

const ctx = DEFAULT_CODEC_CONTEXT;

function v4(text: string): [number, number] {
  const p = parseRibPrefix(text);
  return [p.v4, p.len];
}

function v6(text: string): [Uint8Array, number] {
  const p = parseRibPrefix(text);
  return [p.v6!, p.len];
}

const text = formatPrefix;

/** What a peer holds after applying `msgs` in order, starting from `initial` (prefix → next hop). */
function apply(msgs: Uint8Array[], initial: Record<string, string> = {}): Record<string, string> {
  const rib = new Map(Object.entries(initial));
  for (const m of msgs) {
    const u = decodeUpdate(m, ctx).update;
    for (const p of [...u.withdrawn, ...(u.attributes.mpUnreach?.withdrawn ?? [])]) rib.delete(text(p));
    for (const p of u.nlri) rib.set(text(p), u.attributes.nextHop ?? "");
    for (const p of u.attributes.mpReach?.nlri ?? []) rib.set(text(p), u.attributes.mpReach!.nextHops[0]!);
  }
  return Object.fromEntries([...rib].sort());
}

describe("OutQueue", () => {
  const store = new AttrStore();
  const a = store.intern({ origin: 0, asPath: [], nextHop: "192.0.2.1" }, ["192.0.2.1"]);
  const b = store.intern({ origin: 0, asPath: [], nextHop: "192.0.2.2" }, ["192.0.2.2"]);
  const a6 = store.intern({ origin: 0, asPath: [] }, ["2001:db8::1"]);

  it("sends the last change of each prefix: withdraw X, announce P, withdraw P leaves P withdrawn", () => {
    const q = new OutQueue();
    const [x, xl] = v4("10.0.0.0/24");
    const [p, pl] = v4("10.0.1.0/24");
    q.add(Afi.IPv4, xl, x, null, null);
    q.add(Afi.IPv4, pl, p, null, a);
    q.add(Afi.IPv4, pl, p, null, null);
    const held = apply(q.drain(ctx), { "10.0.0.0/24": "192.0.2.9", "10.0.1.0/24": "192.0.2.9" });
    expect(held).toEqual({});
  });

  it("announce A, announce B, announce A again ends with A; withdraw then announce ends announced", () => {
    const q = new OutQueue();
    const [p, pl] = v4("10.0.1.0/24");
    const [r, rl] = v4("10.0.2.0/24");
    q.add(Afi.IPv4, pl, p, null, a);
    q.add(Afi.IPv4, pl, p, null, b);
    q.add(Afi.IPv4, pl, p, null, a);
    q.add(Afi.IPv4, rl, r, null, null);
    q.add(Afi.IPv4, rl, r, null, b);
    expect(apply(q.drain(ctx))).toEqual({ "10.0.1.0/24": "192.0.2.1", "10.0.2.0/24": "192.0.2.2" });
  });

  it("orders IPv6 changes the same way", () => {
    const q = new OutQueue();
    const [x, xl] = v6("2001:db8:1::/48");
    const [p, pl] = v6("2001:db8:2::/48");
    q.add(Afi.IPv6, xl, 0, x, null);
    q.add(Afi.IPv6, pl, 0, p, a6);
    q.add(Afi.IPv6, pl, 0, p, null);
    q.add(Afi.IPv6, xl, 0, x, a6);
    expect(apply(q.drain(ctx), { "2001:db8:2::/48": "2001:db8::9" })).toEqual({
      "2001:db8:1::/48": "2001:db8::1",
    });
  });

  it("keeps the last change of every prefix across table growth (thousands of prefixes, several lengths)", () => {
    const q = new OutQueue();
    const initial: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) {
      for (const len of [24, 32]) {
        const addr = (((10 << 24) >>> 0) + i * 256) >>> 0;
        q.add(Afi.IPv4, len, addr, null, i % 2 === 0 ? a : b);
        q.add(Afi.IPv4, len, addr, null, null);
        if (i % 3 === 0) q.add(Afi.IPv4, len, addr, null, a);
        initial[`${[addr >>> 24, (addr >>> 16) & 255, (addr >>> 8) & 255, 0].join(".")}/${len}`] =
          "192.0.2.9";
      }
    }
    expect(q.size).toBe(6000);
    const held = apply(q.drain(ctx), initial);
    expect(Object.keys(held)).toHaveLength(2000);
    expect(Object.values(held).every((nh) => nh === "192.0.2.1")).toBe(true);
  });

  it("counts each queued prefix once and is empty after drain", () => {
    const q = new OutQueue();
    const [p, pl] = v4("10.0.1.0/24");
    q.add(Afi.IPv4, pl, p, null, a);
    q.add(Afi.IPv4, pl, p, null, null);
    q.add(Afi.IPv4, pl, p, null, a);
    expect(q.size).toBe(1);
    expect(q.drain(ctx)).toHaveLength(1);
    expect(q.size).toBe(0);
    expect(q.drain(ctx)).toEqual([]);
  });

  it("peers given the same prefixes and attributes in one flush share the encoded bytes", () => {
    const shared: SharedEncodings = new Map();
    const fill = (q: OutQueue, prefixes: string[], set = a) => {
      for (const p of prefixes) q.add(Afi.IPv4, v4(p)[1], v4(p)[0], null, set);
      return q;
    };
    const ps = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"];
    const first = fill(new OutQueue(), ps).drain(ctx, undefined, shared);
    // An equal context (another object) and the same prefixes: the same bytes, not a copy.
    const again = fill(new OutQueue(), ps).drain(createCodecContext(), undefined, shared);
    expect(again).toHaveLength(first.length);
    for (const [i, m] of again.entries()) expect(m).toBe(first[i]);
    // Another prefix list, other attributes or a 2-octet-AS peer: encoded for themselves.
    const fewer = fill(new OutQueue(), ps.slice(1)).drain(ctx, undefined, shared);
    expect(fewer[0]).not.toBe(first[0]);
    expect(apply(fewer)).toEqual({ "10.0.1.0/24": "192.0.2.1", "10.0.2.0/24": "192.0.2.1" });
    expect(fill(new OutQueue(), ps, b).drain(ctx, undefined, shared)[0]).not.toBe(first[0]);
    const asn2 = fill(new OutQueue(), ps).drain(createCodecContext({ asn4: false }), undefined, shared);
    expect(asn2[0]).not.toBe(first[0]);
    // Withdrawals are shared the same way.
    const w1 = fill(new OutQueue(), ps, null as never).drain(ctx, undefined, shared);
    const w2 = fill(new OutQueue(), ps, null as never).drain(ctx, undefined, shared);
    expect(w2[0]).toBe(w1[0]);
    expect(apply(w2, { "10.0.0.0/24": "x", "10.9.0.0/24": "y" })).toEqual({ "10.9.0.0/24": "y" });
  });
});
