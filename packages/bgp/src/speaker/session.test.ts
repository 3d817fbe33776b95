/**
 * Session behaviour against a scripted raw peer (built from the wire codec only) and between two
 * speakers that both connect actively (collision detection).
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  createCodecContext,
  createFramer,
  decodeUpdate,
  encodeMessage,
  encodeUpdate,
  encodeUpdates,
  formatPrefix,
  messageType,
  parsePrefix,
} from "../wire/index.js";
import { Afi, type Capability, type PathAttributes } from "../wire/types.js";
import { createSpeaker, type PeerOptions, type Speaker, type SpeakerEvent } from "../index.js";
import { waitFor } from "../interop/util.js";
import { rawPeer as connectRaw } from "./raw-peer.test-util.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Our speaker (AS 65001) listening on `host` with `peers` added; closed after the test. */
async function listeningSpeaker(host: string, ...peers: PeerOptions[]): Promise<Speaker> {
  const s = await createSpeaker({ asn: 65001, routerId: "10.255.0.1", listen: [{ host, port: 0 }] });
  cleanups.push(() => s.close());
  for (const p of peers) s.addPeer(p);
  return s;
}

const ctx = createCodecContext();

/** A scripted peer (raw-peer.test-util.ts) closed after the test. */
function rawPeer(
  port: number,
  host: string,
  local: string,
  asn: number,
  afis: readonly number[] = [1],
  extraCaps: readonly Capability[] = [],
) {
  return connectRaw(cleanups, port, host, local, asn, { afis, extraCaps });
}

/**
 * An UPDATE from AS 65002 announcing `prefix`: IPv4 with NEXT_HOP 192.0.2.2, IPv6 in MP_REACH_NLRI with
 * `nextHops6`; `attrs` override ORIGIN and AS_PATH or add attributes.
 */
function update(prefix: string, attrs: PathAttributes = {}, nextHops6 = ["2001:db8::2"]): Uint8Array {
  const p = parsePrefix(prefix);
  const hop =
    p.afi === Afi.IPv4
      ? { nextHop: "192.0.2.2" }
      : { mpReach: { afi: Afi.IPv6, safi: 1, nextHops: nextHops6, nlri: [] } };
  const attributes = { origin: 0 as const, asPath: [{ type: 2 as const, asns: [65002] }], ...attrs, ...hop };
  return encodeUpdates({ attributes, nlri: [p] }, ctx)[0]!;
}

describe("RFC 7606 at the speaker", () => {
  it("a malformed ORIGIN is treat-as-withdraw: the route goes, the session stays", async () => {
    const s = await listeningSpeaker("127.0.0.21", { address: "127.0.0.22", asn: 65002, passive: true });
    const events: SpeakerEvent[] = [];
    s.on((e) => events.push(e));
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.21", "127.0.0.22", 65002);
    peer.socket.write(update("198.51.100.0/24"));
    await waitFor(() => s.route("198.51.100.0/24"), "route");
    // Same prefix, ORIGIN value 5: RFC 7606 §7.1 says treat-as-withdraw.
    const bad = update("198.51.100.0/24");
    expect([bad[23], bad[24], bad[25]]).toEqual([0x40, 1, 1]);
    bad[26] = 5;
    peer.socket.write(bad);
    await waitFor(() => s.route("198.51.100.0/24") === undefined, "treat-as-withdraw");
    const st = s.peers()[0]!;
    expect(st.state).toBe("established");
    expect(peer.received).not.toContain(3); // no NOTIFICATION
    // A session-reset error (bad marker) does reset: NOTIFICATION 1/1 and the session goes down.
    const broken = update("203.0.113.0/24");
    broken[0] = 0;
    peer.socket.write(broken);
    await waitFor(() => s.peers()[0]!.lastError?.code === 1, "header error");
    expect(s.peers()[0]!.lastError).toMatchObject({
      code: 1,
      subcode: 1,
      sent: true,
      reason: "decode-error",
    });
  });

  it("a first AS that is not the eBGP peer's is treat-as-withdraw (RFC 4271 §6.3)", async () => {
    const s = await listeningSpeaker("127.0.0.23", { address: "127.0.0.24", asn: 65002, passive: true });
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.23", "127.0.0.24", 65002);
    peer.socket.write(update("198.51.100.0/24", { asPath: [{ type: 2, asns: [64999] }] }));
    peer.socket.write(update("203.0.113.0/24"));
    await waitFor(() => s.route("203.0.113.0/24"), "good route");
    expect(s.route("198.51.100.0/24")).toBeUndefined();
    expect(s.peers()[0]!.state).toBe("established");
  });
});

describe("RFC 7606 AFI/SAFI disable at the speaker", () => {
  /** Prefixes announced (MP_REACH) and withdrawn (MP_UNREACH) in IPv6 by the UPDATEs the peer got. */
  function v6Seen(updates: readonly Uint8Array[]) {
    const announced: string[] = [];
    const withdrawn: string[] = [];
    for (const u of updates) {
      const d = decodeUpdate(u, ctx);
      for (const p of d.update.attributes.mpReach?.nlri ?? []) announced.push(formatPrefix(p));
      for (const p of d.update.attributes.mpUnreach?.withdrawn ?? []) withdrawn.push(formatPrefix(p));
    }
    return { announced, withdrawn };
  }

  it("a malformed MP_REACH_NLRI disables IPv6 for the session; IPv4 goes on", async () => {
    const s = await listeningSpeaker("127.0.0.25", {
      address: "127.0.0.26",
      asn: 65002,
      passive: true,
      families: ["ipv4", "ipv6"],
      nextHop6: "2001:db8::1",
    });
    const events: SpeakerEvent[] = [];
    s.on((e) => events.push(e));
    s.originate("10.1.0.0/16");
    s.originate("2001:db8:ff::/48");
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.25", "127.0.0.26", 65002, [1, 2]);
    expect([...(s.peers()[0]!.negotiated?.families ?? [])].sort()).toEqual(["1/1", "2/1"]);
    await waitFor(() => v6Seen(peer.updates).announced.includes("2001:db8:ff::/48"), "our IPv6 route");
    peer.socket.write(update("2001:db8:1::/48"));
    peer.socket.write(update("198.51.100.0/24"));
    await waitFor(() => s.route("2001:db8:1::/48") && s.route("198.51.100.0/24"), "both routes");

    // An IPv6 prefix of length 129 in MP_REACH_NLRI: RFC 7606 §5.3/§7.11, AFI/SAFI disable.
    const bad = update("2001:db8:2::/48");
    const at = bad.length - 7; // length byte of the only prefix (48 bits: 6 address bytes follow)
    expect(bad[at]).toBe(48);
    bad[at] = 129;
    expect(decodeUpdate(bad, ctx).action).toBe("afi-safi-disable");
    peer.socket.write(bad);
    // Its IPv6 routes are deleted (RFC 4760 §7) and reported as withdrawn in the best-path stream.
    await waitFor(() => s.route("2001:db8:1::/48") === undefined, "IPv6 routes deleted");
    expect(events).toContainEqual(
      expect.objectContaining({ type: "best-path", prefix: "2001:db8:1::/48", withdrawn: true }),
    );
    // We stop advertising IPv6 to it: our IPv6 route is withdrawn there.
    await waitFor(() => v6Seen(peer.updates).withdrawn.includes("2001:db8:ff::/48"), "our IPv6 withdrawn");
    const st = s.peers()[0]!;
    expect(st.state).toBe("established");
    expect(st.negotiated?.families).toEqual(["1/1"]);
    expect(peer.received).not.toContain(3); // no NOTIFICATION

    // Later IPv6 announcements are ignored for this session; IPv4 still flows (one serialized queue, so
    // the IPv4 route arriving second proves the IPv6 one was handled first).
    peer.socket.write(update("2001:db8:3::/48"));
    peer.socket.write(update("203.0.113.0/24"));
    await waitFor(() => s.route("203.0.113.0/24"), "IPv4 after disable");
    expect(s.route("2001:db8:3::/48")).toBeUndefined();
    expect(s.route("198.51.100.0/24")).toBeDefined();
    // A new IPv6 origination is not advertised to this peer any more; a new IPv4 one is.
    const before = v6Seen(peer.updates).announced.length;
    s.originate("2001:db8:fe::/48");
    s.originate("10.2.0.0/16");
    await waitFor(
      () =>
        peer.updates.some((u) =>
          decodeUpdate(u, ctx).update.nlri.some((p) => formatPrefix(p) === "10.2.0.0/16"),
        ),
      "IPv4 origination advertised",
    );
    expect(v6Seen(peer.updates).announced.length).toBe(before);
  });

  it("a session whose only family is disabled is reset (the RFC 7606 fallback)", async () => {
    const s = await listeningSpeaker("127.0.0.27", { address: "127.0.0.28", asn: 65002, passive: true });
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.27", "127.0.0.28", 65002);
    // A malformed MP_REACH_NLRI for IPv4 unicast, the session's only family.
    const [m] = encodeUpdates(
      {
        attributes: {
          origin: 0,
          asPath: [{ type: 2, asns: [65002] }],
          mpReach: { afi: 1, safi: 1, nextHops: ["192.0.2.2"], nlri: [] },
        },
        nlri: [parsePrefix("198.51.100.0/24")],
      },
      ctx,
    );
    const bad = m!;
    const at = bad.length - 4;
    expect(bad[at]).toBe(24);
    bad[at] = 33;
    expect(decodeUpdate(bad, ctx).action).toBe("afi-safi-disable");
    peer.socket.write(bad);
    await waitFor(() => s.peers()[0]!.lastError?.code === 3, "UPDATE error NOTIFICATION");
    expect(s.peers()[0]!.lastError).toMatchObject({ code: 3, subcode: 9, sent: true });
  });
});

describe("collision detection", () => {
  it("two speakers that both connect end with exactly one session", async () => {
    const a = await createSpeaker({
      asn: 65001,
      routerId: "10.255.0.1",
      listen: [{ host: "127.0.0.25", port: 0 }],
      connectRetryTime: 1,
      idleHoldTime: 0,
    });
    const b = await createSpeaker({
      asn: 65002,
      routerId: "10.255.0.2",
      listen: [{ host: "127.0.0.26", port: 0 }],
      connectRetryTime: 1,
      idleHoldTime: 0,
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    a.addPeer({ address: "127.0.0.26", port: b.listening[0]!.port, asn: 65002, localAddress: "127.0.0.25" });
    b.addPeer({ address: "127.0.0.25", port: a.listening[0]!.port, asn: 65001, localAddress: "127.0.0.26" });
    await waitFor(
      () => a.peers()[0]!.state === "established" && b.peers()[0]!.state === "established",
      "sessions",
    );
    a.originate("10.5.0.0/16");
    await waitFor(() => b.route("10.5.0.0/16"), "route over the surviving session");
    // Exactly one OPEN pair won; the loser (if both connections met) was closed with Cease 7.
    await new Promise((r) => setTimeout(r, 300));
    expect(a.peers()[0]!.state).toBe("established");
    expect(b.peers()[0]!.state).toBe("established");
    expect(a.peers()[0]!.flaps + b.peers()[0]!.flaps).toBe(0);
  });
});

describe("import after a looped first UPDATE (issue 11 §8)", () => {
  it("a looped first UPDATE is rejected and later clean routes are accepted, with IPv6 link-local next hops", async () => {
    const s = await listeningSpeaker("127.0.0.29", {
      address: "127.0.0.30",
      asn: 65002,
      passive: true,
      families: ["ipv4", "ipv6"],
      nextHop6: "2001:db8::1",
    });
    const events: SpeakerEvent[] = [];
    s.on((e) => events.push(e));
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.29", "127.0.0.30", 65002, [1, 2]);
    const path = (asns: number[], med?: number): PathAttributes => ({
      asPath: [{ type: 2, asns }],
      ...(med === undefined ? {} : { med }),
    });
    const v6 = (prefix: string, asns: number[], med?: number) =>
      update(prefix, path(asns, med), ["2001:db8::2", "fe80::2"]);
    const v4 = (prefix: string, asns: number[], med?: number) => update(prefix, path(asns, med));
    // Our own AS in the path (a peer echoing our routes back): rejected.
    peer.socket.write(v6("2001:db8:99::/48", [65002, 65001]));
    peer.socket.write(v4("10.99.0.0/24", [65002, 65001]));
    await waitFor(() => s.peers()[0]!.prefixesRejected === 2, "looped routes rejected");
    for (let i = 1; i <= 5; i++) {
      peer.socket.write(v6(`2001:db8:${i}::/48`, [65002], i));
      peer.socket.write(v4(`10.${i}.0.0/24`, [65002], i));
    }
    await waitFor(() => s.peers()[0]!.prefixesAccepted === 10, "clean routes accepted");
    expect(s.peers()[0]!.prefixesRejected).toBe(2);
    const r6 = s.route("2001:db8:1::/48")!;
    expect(r6.nextHops).toEqual(["2001:db8::2"]);
    expect(r6.linkLocalNextHops).toEqual(["fe80::2"]);
    expect(s.route("10.1.0.0/24")!.linkLocalNextHops).toEqual([null]);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "best-path",
        prefix: "2001:db8:2::/48",
        nextHops: ["2001:db8::2"],
        linkLocalNextHops: ["fe80::2"],
      }),
    );
  });
});

describe("RFC 8654: routes too large for a peer without extended messages (issue 11 §9)", () => {
  /** The routes a peer holds after replaying the UPDATEs it received: prefix → COMMUNITIES count. */
  function view(updates: readonly Uint8Array[]): Map<string, number> {
    const held = new Map<string, number>();
    for (const u of updates) {
      const d = decodeUpdate(u, ctx).update;
      for (const p of d.withdrawn) held.delete(formatPrefix(p));
      for (const p of d.nlri) held.set(formatPrefix(p), d.attributes.communities?.length ?? 0);
    }
    return held;
  }

  it("B keeps getting every other route and withdrawal; the big route is withdrawn from it, ROUTE-REFRESH and a new peer get what fits", async () => {
    const s = await listeningSpeaker(
      "127.0.0.31",
      { address: "127.0.0.32", asn: 65002, passive: true },
      { address: "127.0.0.33", asn: 65003, passive: true },
      { address: "127.0.0.34", asn: 65004, passive: true },
    );
    const port = s.listening[0]!.port;
    const a = await rawPeer(
      port,
      "127.0.0.31",
      "127.0.0.32",
      65002,
      [1],
      [{ code: 6, kind: "extended-message" }],
    );
    const b = await rawPeer(
      port,
      "127.0.0.31",
      "127.0.0.33",
      65003,
      [1],
      [{ code: 2, kind: "route-refresh" }],
    );
    expect(s.peer("127.0.0.32")?.negotiated?.extendedMessage).toBe(true);
    expect(s.peer("127.0.0.33")?.negotiated?.extendedMessage).toBe(false);
    const extCtx = createCodecContext({ maxMessageSize: 65535 });
    const first = encodeUpdates(
      {
        attributes: { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: "192.0.2.2" },
        nlri: ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"].map((p) => parsePrefix(p)),
      },
      extCtx,
    );
    a.socket.write(first[0]!);
    await waitFor(() => view(b.updates).size === 3, "B has A's first routes");

    // One 4,455-byte UPDATE: withdraws 10.2/24, announces 10.3/24 (advertised to B before) and 10.4/24
    // with 1,099 communities; in the same write a small route 10.5/24.
    const big = encodeUpdate(
      {
        type: 2,
        withdrawn: [parsePrefix("10.2.0.0/24")],
        attributes: {
          origin: 0,
          asPath: [{ type: 2, asns: [65002] }],
          nextHop: "192.0.2.2",
          communities: Array.from({ length: 1099 }, (_, i) => 65002 * 65536 + i),
        },
        nlri: [parsePrefix("10.3.0.0/24"), parsePrefix("10.4.0.0/24")],
      },
      extCtx,
    );
    expect(big.length).toBe(4455);
    const small = encodeUpdates(
      {
        attributes: { origin: 0, asPath: [{ type: 2, asns: [65002] }], nextHop: "192.0.2.2", med: 5 },
        nlri: [parsePrefix("10.5.0.0/24")],
      },
      extCtx,
    )[0]!;
    a.socket.write(Buffer.concat([big, small]));
    await waitFor(() => s.route("10.4.0.0/24") && s.route("10.5.0.0/24"), "A's routes in the Loc-RIB");
    expect(s.route("10.4.0.0/24")!.attributes.communities).toHaveLength(1099);
    expect(s.route("10.2.0.0/24")).toBeUndefined();

    // B: the withdrawal and the small route arrive; the big route is withdrawn (10.3) or never sent (10.4).
    await waitFor(
      () => view(b.updates).has("10.5.0.0/24") && !view(b.updates).has("10.2.0.0/24"),
      "B's batch",
    );
    await waitFor(() => !view(b.updates).has("10.3.0.0/24"), "10.3/24 withdrawn from B");
    expect([...view(b.updates).keys()].sort()).toEqual(["10.1.0.0/24", "10.5.0.0/24"]);
    expect(b.updates.every((u) => u.length <= 4096)).toBe(true);
    expect(s.peer("127.0.0.33")!.prefixesAdvertised).toBe(2);
    expect(s.peer("127.0.0.33")!.state).toBe("established");
    expect(b.received).not.toContain(3);

    // ROUTE-REFRESH from B: everything in its Adj-RIB-Out again, all of it fits.
    const before = b.updates.length;
    b.socket.write(encodeMessage({ type: 5, afi: 1, safi: 1, subtype: 0 }, ctx));
    await waitFor(() => view(b.updates.slice(before)).size === 2, "B's refresh");
    expect([...view(b.updates.slice(before)).keys()].sort()).toEqual(["10.1.0.0/24", "10.5.0.0/24"]);

    // A non-extended peer connecting now gets every route that fits, then End-of-RIB.
    const c = await rawPeer(port, "127.0.0.31", "127.0.0.34", 65004);
    await waitFor(() => view(c.updates).size === 2, "C's initial routes");
    await waitFor(() => c.updates.some((u) => u.length === 23), "C's End-of-RIB");
    expect([...view(c.updates).keys()].sort()).toEqual(["10.1.0.0/24", "10.5.0.0/24"]);
    expect(s.peer("127.0.0.34")!.prefixesAdvertised).toBe(2);
    expect(c.received).not.toContain(3);
    // The extended peer itself is unaffected.
    expect(s.peer("127.0.0.32")!.state).toBe("established");
  });
});

describe("RFC 6608 at the speaker", () => {
  it("a malformed OPEN received in Established is answered with NOTIFICATION 5/3", async () => {
    const s = await listeningSpeaker("127.0.0.35", { address: "127.0.0.36", asn: 65002, passive: true });
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.35", "127.0.0.36", 65002);
    const notes: Uint8Array[] = [];
    const framer = createFramer();
    peer.socket.on("data", (chunk: Buffer) => {
      for (const m of framer.push(chunk)) if (messageType(m) === 3) notes.push(m);
    });
    // An OPEN of BGP version 3 (an OPEN message error, 2/1, where an OPEN is expected).
    const open = encodeMessage(
      { type: 1, version: 4, myAs: 65002, holdTime: 90, bgpId: "10.9.9.9", capabilities: [] },
      ctx,
    ).slice();
    expect(open[19]).toBe(4);
    open[19] = 3;
    peer.socket.write(open);
    await waitFor(() => notes.length > 0, "NOTIFICATION");
    expect([notes[0]![19], notes[0]![20]]).toEqual([5, 3]);
    expect(s.peers()[0]!.lastError).toMatchObject({
      code: 5,
      subcode: 3,
      sent: true,
      reason: "unexpected-message",
    });
  });
});
