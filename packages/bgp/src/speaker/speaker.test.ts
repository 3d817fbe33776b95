import { afterEach, describe, expect, it, vi } from "vitest";
import { createSpeaker, isBgpConfigError, type Speaker, type SpeakerEvent } from "../index.js";
import { Rib } from "../rib/rib.js";
import { waitFor } from "../interop/util.js";

const open: Speaker[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** Two speakers on distinct loopback addresses: `a` listens, `b` connects. */
async function pair(o: { asnA?: number; asnB?: number; holdTime?: number } = {}) {
  const asnA = o.asnA ?? 65001;
  const asnB = o.asnB ?? 65002;
  const a = await createSpeaker({
    asn: asnA,
    routerId: "10.255.0.1",
    listen: [{ host: "127.0.0.11", port: 0 }],
    idleHoldTime: 0,
  });
  open.push(a);
  const port = a.listening[0]!.port;
  a.addPeer({ address: "127.0.0.12", asn: asnB, passive: true, holdTime: o.holdTime });
  const b = await createSpeaker({ asn: asnB, routerId: "10.255.0.2", idleHoldTime: 0, connectRetryTime: 1 });
  open.push(b);
  b.addPeer({ address: "127.0.0.11", port, asn: asnA, localAddress: "127.0.0.12", holdTime: o.holdTime });
  await waitFor(
    () => a.peers()[0]?.state === "established" && b.peers()[0]?.state === "established",
    "session",
  );
  return { a, b, port };
}

describe("speaker over loopback", () => {
  it("establishes eBGP with 4-octet ASNs and exchanges routes with communities", async () => {
    const { a, b, port } = await pair({ asnA: 4200000001, asnB: 4200000002 });
    const events: SpeakerEvent[] = [];
    b.on((e) => events.push(e));
    a.originate("10.1.0.0/16", { communities: ["65000:1"], largeCommunities: ["4200000001:7:8"], med: 5 });
    const r = await waitFor(() => b.route("10.1.0.0/16"), "route at b");
    expect(r.nextHops).toEqual(["127.0.0.11"]);
    expect(r.attributes.asPath).toEqual([{ type: 2, asns: [4200000001] }]);
    expect(r.attributes.communities).toEqual([(65000 * 65536 + 1) >>> 0]);
    expect(r.attributes.largeCommunities).toEqual([[4200000001, 7, 8]]);
    expect(r.attributes.med).toBe(5);
    expect(r.peer).toBe(`127.0.0.11:${port}`);
    const st = a.peer("127.0.0.12")!;
    expect(st.negotiated?.fourOctetAs).toBe(true);
    expect(st.prefixesAdvertised).toBe(1);
    expect(st.messagesOut.update).toBeGreaterThanOrEqual(2); // the route and End-of-RIB
    expect(b.peers()[0]!.prefixesAccepted).toBe(1);
    expect(a.withdraw("10.1.0.0/16")).toBe(true);
    await waitFor(() => b.route("10.1.0.0/16") === undefined, "withdrawal at b");
    const kinds = events
      .filter((e) => e.type === "best-path")
      .map((e) => (e.type === "best-path" ? e.withdrawn : null));
    expect(kinds).toEqual([false, true]);
  });

  it("packs many prefixes per UPDATE", async () => {
    const { a, b } = await pair();
    for (let i = 0; i < 2000; i++) a.originate(`10.${i >> 8}.${i & 255}.0/24`, { communities: ["1:1"] });
    await waitFor(() => b.routeCount === 2000, "2000 routes");
    // 2000 /24s at 4 bytes each fit in a handful of messages (plus the End-of-RIB).
    expect(b.peers()[0]!.messagesIn.update).toBeLessThan(20);
  });

  it("the last change of a prefix in one batch wins on the wire (withdraw X, announce P, withdraw P)", async () => {
    const { a, b } = await pair();
    a.originate("10.70.0.0/24");
    await waitFor(() => b.route("10.70.0.0/24"), "X at b");
    // One tick, so one batch: a withdrawal group exists before P's announcement is queued.
    a.withdraw("10.70.0.0/24");
    a.originate("10.70.1.0/24");
    a.withdraw("10.70.1.0/24");
    await new Promise((r) => setTimeout(r, 0));
    a.originate("10.70.2.0/24");
    await waitFor(() => b.route("10.70.2.0/24"), "marker at b");
    expect(b.route("10.70.0.0/24")).toBeUndefined();
    expect(b.route("10.70.1.0/24")).toBeUndefined();
    expect(a.peers()[0]!.prefixesAdvertised).toBe(1);
  });

  it("IPv6 unicast over an IPv6 session", async () => {
    const a = await createSpeaker({ asn: 65001, routerId: "10.255.0.1", listen: [{ host: "::1", port: 0 }] });
    open.push(a);
    const b = await createSpeaker({ asn: 65002, routerId: "10.255.0.2" });
    open.push(b);
    // Both ends are ::1: a next hop equal to the receiver's own address is refused, so set a real one.
    a.addPeer({
      address: "::1",
      asn: 65002,
      passive: true,
      families: ["ipv4", "ipv6"],
      nextHop6: "2001:db8::a",
    });
    b.addPeer({ address: "::1", port: a.listening[0]!.port, asn: 65001, families: ["ipv4", "ipv6"] });
    a.originate("2001:db8:10::/48");
    const r = await waitFor(() => b.route("2001:db8:10::/48"), "v6 route");
    expect(r.family).toBe("ipv6");
    expect(r.nextHops).toEqual(["2001:db8::a"]);
  });

  it("session down withdraws the peer's routes from the best-path stream", async () => {
    const { a, b } = await pair({ holdTime: 3 });
    b.originate("192.0.2.0/24");
    await waitFor(() => a.route("192.0.2.0/24"), "route at a");
    const withdrawn = new Promise<void>((resolve) =>
      a.on((e) => {
        if (e.type === "best-path" && e.prefix === "192.0.2.0/24" && e.withdrawn) resolve();
      }),
    );
    await b.close();
    await withdrawn;
    const st = a.peers()[0]!;
    expect(st.state).not.toBe("established");
    expect(st.lastError?.reason).toBe("notification-received");
    expect(st.lastError?.subcode).toBe(2);
  });

  it("max-prefix teardown sends Cease 1", async () => {
    const { a, b } = await pair();
    a.updatePeer("127.0.0.12", { maxPrefixes: { limit: 2 } });
    const ev = new Promise<SpeakerEvent>((resolve) => a.on((e) => e.type === "max-prefix" && resolve(e)));
    for (const p of ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]) b.originate(p);
    expect(await ev).toMatchObject({ type: "max-prefix", limit: 2, accepted: 3, action: "teardown" });
    await waitFor(() => b.peers()[0]?.lastError?.subcode === 1, "cease at b");
    expect(b.peers()[0]!.lastError).toMatchObject({ code: 6, subcode: 1, sent: false });
  });

  it("export policy change re-exports (withdraws) in place", async () => {
    const { a, b } = await pair();
    a.originate("10.9.0.0/16");
    await waitFor(() => b.route("10.9.0.0/16"), "route");
    a.updatePeer("127.0.0.12", {
      exportPolicy: {
        statements: [{ match: { prefixes: [{ prefix: "10.0.0.0/8", le: 16 }] }, actions: { reject: true } }],
      },
    });
    await waitFor(() => b.route("10.9.0.0/16") === undefined, "withdrawn by policy");
    expect(a.peers()[0]!.state).toBe("established");
  });

  it("closing a route reflector does not export each dropped client's withdrawals to the others", async () => {
    const rr = await createSpeaker({
      asn: 65001,
      routerId: "10.255.0.1",
      listen: [{ host: "127.0.0.11", port: 0 }],
      idleHoldTime: 0,
    });
    open.push(rr);
    const port = rr.listening[0]!.port;
    const clients: Speaker[] = [];
    for (const address of ["127.0.0.12", "127.0.0.13"]) {
      rr.addPeer({ address, asn: 65001, passive: true, routeReflectorClient: true });
      const c = await createSpeaker({ asn: 65001, routerId: address, idleHoldTime: 0, connectRetryTime: 1 });
      open.push(c);
      c.addPeer({ address: "127.0.0.11", port, asn: 65001, localAddress: address });
      clients.push(c);
    }
    await waitFor(() => rr.peers().every((p) => p.state === "established"), "sessions");
    for (let i = 0; i < 20; i++) clients[0]!.originate(`10.9.${i}.0/24`);
    await waitFor(() => clients[1]!.routeCount === 20, "reflected routes");
    const bestPath: SpeakerEvent[] = [];
    rr.on((e) => {
      if (e.type === "best-path") bestPath.push(e);
    });
    const exported = vi.spyOn(Rib.prototype, "exportChange");
    try {
      await rr.close();
      expect(exported).not.toHaveBeenCalled();
    } finally {
      exported.mockRestore();
    }
    // The Loc-RIB still reports the routes going.
    expect(bestPath.filter((e) => e.type === "best-path" && e.withdrawn)).toHaveLength(20);
  });

  it("async iterator of events", async () => {
    const { a, b } = await pair();
    const ac = new AbortController();
    const it = b.events({ signal: ac.signal });
    a.originate("10.77.0.0/16");
    for await (const e of it) {
      if (e.type === "best-path") {
        expect(e.prefix).toBe("10.77.0.0/16");
        break;
      }
    }
    ac.abort();
  });
});

describe("configuration errors", () => {
  it("rejects bad speaker and peer options with BgpConfigError", async () => {
    const bad = [
      { asn: 0, routerId: "1.1.1.1" },
      { asn: 1, routerId: "1.1.1" },
      { asn: 1, routerId: "1.1.1.1", holdTime: 2 },
      { asn: 1, routerId: "1.1.1.1", listen: [{ host: "localhost", port: 1 }] },
      { asn: 1, routerId: "1.1.1.1", peers: [{ address: "10.0.0.1", asn: 2, holdTime: 1 }] },
      { asn: 1, routerId: "1.1.1.1", peers: [{ address: "10.0.0.1", asn: 2, routeReflectorClient: true }] },
      {
        asn: 1,
        routerId: "1.1.1.1",
        peers: [
          { address: "10.0.0.1", asn: 2 },
          { address: "10.0.0.1", asn: 3 },
        ],
      },
    ];
    for (const o of bad) {
      const err = await createSpeaker(o).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isBgpConfigError(err), JSON.stringify(o)).toBe(true);
    }
    const s = await createSpeaker({ asn: 1, routerId: "1.1.1.1" });
    open.push(s);
    expect(() => s.originate("10.0.0.0/33")).toThrow(expect.objectContaining({ code: "config-invalid" }));
    expect(() => s.originate("10.0.0.0/8", { communities: ["x"] })).toThrow(/communities/);
    await expect(s.removePeer("10.0.0.9")).rejects.toMatchObject({ code: "config-unknown-peer" });
  });

  it("listening on a used port is a config error", async () => {
    const a = await createSpeaker({ asn: 1, routerId: "1.1.1.1", listen: [{ host: "127.0.0.13", port: 0 }] });
    open.push(a);
    const err = await createSpeaker({
      asn: 1,
      routerId: "1.1.1.1",
      listen: [{ host: "127.0.0.13", port: a.listening[0]!.port }],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isBgpConfigError(err, "config-invalid")).toBe(true);
  });
});
