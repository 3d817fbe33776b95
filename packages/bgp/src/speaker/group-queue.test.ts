import { describe, expect, it } from "vitest";
import { AttrStore } from "../rib/attrs.js";
import { parseRibPrefix } from "../rib/policy.js";
import { createCodecContext, decodeUpdate, formatPrefix } from "../wire/index.js";
import { Afi, type PathAttributes } from "../wire/types.js";
import { type GroupMessages, GroupQueue, NO_SOURCE } from "./group-queue.js";

const ctx = createCodecContext();
const store = new AttrStore();
/** An attribute set as reflected from `source` (ORIGINATOR_ID, its next hop), or with `extra`. */
const setFrom = (source: string, extra: Partial<PathAttributes> = {}) =>
  store.intern({ origin: 0, asPath: [], nextHop: source, originatorId: source, localPref: 100, ...extra }, [
    source,
  ]);

/** An IPv6 attribute set reflected from `source`. */
const set6From = (source: string) =>
  store.intern({ origin: 0, asPath: [], originatorId: source, localPref: 100 }, ["2001:db8::1"]);

/** What member `m` reads of one flush: the segments it does not skip, then its own UPDATEs. */
function readBy(g: GroupMessages, m: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of g.segments) {
    if (s.skip === m) continue;
    let off = s.start;
    while (off < s.end) {
      const len = (g.bytes[off + 16]! << 8) | g.bytes[off + 17]!;
      out.push(g.bytes.subarray(off, off + len));
      off += len;
    }
  }
  return [...out, ...(g.only.get(m) ?? [])];
}

/** Member `m`'s prefix events of one flush: `+prefix@originator` and `-prefix`. */
function eventsOf(g: GroupMessages, m: number): string[] {
  const out: string[] = [];
  for (const u of readBy(g, m)) {
    const d = decodeUpdate(u, ctx).update;
    for (const p of d.withdrawn) out.push(`-${formatPrefix(p)}`);
    for (const p of d.attributes.mpUnreach?.withdrawn ?? []) out.push(`-${formatPrefix(p)}`);
    for (const p of [...d.nlri, ...(d.attributes.mpReach?.nlri ?? [])]) {
      out.push(`+${formatPrefix(p)}@${d.attributes.originatorId}`);
    }
  }
  return out.sort();
}

function add(q: GroupQueue, prefix: string, set0: unknown, src0: number, set1: unknown, src1: number) {
  const p = parseRibPrefix(prefix);
  q.add(p.afi, p.len, p.v4, p.v6, set0 as never, src0, set1 as never, src1);
}

describe("GroupQueue", () => {
  it("encodes each change once; a member skips only its own routes", () => {
    const a = setFrom("10.0.0.1");
    const b = setFrom("10.0.0.2");
    const q = new GroupQueue();
    add(q, "10.1.0.0/24", null, NO_SOURCE, a, 1);
    add(q, "10.1.1.0/24", null, NO_SOURCE, a, 1);
    add(q, "10.2.0.0/24", null, NO_SOURCE, b, 2);
    add(q, "2001:db8:1::/48", null, NO_SOURCE, set6From("10.0.0.1"), 1);
    const g = q.drain(ctx);
    expect(q.size).toBe(0);
    // One message per (set, source): A's IPv4, A's IPv6, B's.
    expect(g.segments.reduce((n, s) => n + s.messages, 0)).toBe(3);
    expect(eventsOf(g, 1)).toEqual(["+10.2.0.0/24@10.0.0.2"]);
    expect(eventsOf(g, 2)).toEqual([
      "+10.1.0.0/24@10.0.0.1",
      "+10.1.1.0/24@10.0.0.1",
      "+2001:db8:1::/48@10.0.0.1",
    ]);
    expect(eventsOf(g, 3)).toHaveLength(4);
  });

  it("a withdrawal reaches every member but the route's source", () => {
    const q = new GroupQueue();
    add(q, "10.1.0.0/24", setFrom("10.0.0.1"), 1, null, NO_SOURCE);
    add(q, "2001:db8:1::/48", set6From("10.0.0.1"), 1, null, NO_SOURCE);
    const g = q.drain(ctx);
    expect(eventsOf(g, 1)).toEqual([]);
    expect(eventsOf(g, 2)).toEqual(["-10.1.0.0/24", "-2001:db8:1::/48"]);
    expect(eventsOf(g, 7)).toEqual(["-10.1.0.0/24", "-2001:db8:1::/48"]);
  });

  it("a best path moving from one member to another: the new source alone is withdrawn the old route", () => {
    const q = new GroupQueue();
    add(q, "10.3.0.0/24", setFrom("10.0.0.1"), 1, setFrom("10.0.0.2"), 2);
    const g = q.drain(ctx);
    expect(eventsOf(g, 1)).toEqual(["+10.3.0.0/24@10.0.0.2"]);
    expect(eventsOf(g, 2)).toEqual(["-10.3.0.0/24"]);
    expect(eventsOf(g, 3)).toEqual(["+10.3.0.0/24@10.0.0.2"]);
    expect(g.only.size).toBe(1);
  });

  it("the same attributes from another source still change who gets the route", () => {
    const shared = setFrom("10.0.0.9");
    const q = new GroupQueue();
    add(q, "10.4.0.0/24", shared, 1, shared, 2);
    const g = q.drain(ctx);
    expect(eventsOf(g, 1)).toEqual(["+10.4.0.0/24@10.0.0.9"]);
    expect(eventsOf(g, 2)).toEqual(["-10.4.0.0/24"]);
  });

  it("keeps the first state of a batch: changes that end where they began send nothing", () => {
    const a = setFrom("10.0.0.1");
    const q = new GroupQueue();
    add(q, "10.5.0.0/24", null, NO_SOURCE, a, 1);
    add(q, "10.5.0.0/24", a, 1, null, NO_SOURCE);
    add(q, "10.6.0.0/24", a, 1, null, NO_SOURCE);
    add(q, "10.6.0.0/24", null, NO_SOURCE, setFrom("10.0.0.2"), 2);
    expect(q.size).toBe(2);
    const g = q.drain(ctx);
    expect(eventsOf(g, 3)).toEqual(["+10.6.0.0/24@10.0.0.2"]);
    // 10.6/24 was 1's own route: 1 never had it, so it gets 2's without a withdrawal first.
    expect(eventsOf(g, 1)).toEqual(["+10.6.0.0/24@10.0.0.2"]);
    expect(eventsOf(g, 2)).toEqual(["-10.6.0.0/24"]);
  });

  it("an announcement too large for the message size is not sent and withdrawn from the members that had it", () => {
    const big = setFrom("10.0.0.2", {
      communities: Array.from({ length: 1100 }, (_, i) => 65001 * 65536 + i),
    });
    const q = new GroupQueue();
    add(q, "10.7.0.0/24", setFrom("10.0.0.1"), 1, big, 2);
    add(q, "10.8.0.0/24", null, NO_SOURCE, big, 2);
    add(q, "10.9.0.0/24", null, NO_SOURCE, setFrom("10.0.0.3"), 3);
    const failed: number[] = [];
    const g = q.drain(ctx, (afi, len, v4, _v6, set, src) => {
      expect([afi, len, set, src]).toEqual([Afi.IPv4, 24, big, 2]);
      failed.push(v4);
      return true;
    });
    expect(failed).toEqual([(10 << 24) + (7 << 16), (10 << 24) + (8 << 16)]);
    expect(g.unsendable).toBe(2);
    // Members that had 10.7/24 (from 1) lose it; nobody gets the big route.
    expect(eventsOf(g, 4)).toEqual(["+10.9.0.0/24@10.0.0.3", "-10.7.0.0/24"]);
    expect(eventsOf(g, 1)).toEqual(["+10.9.0.0/24@10.0.0.3"]);
    expect(eventsOf(g, 3)).toEqual(["-10.7.0.0/24"]);
  });
});
