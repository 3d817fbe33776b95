/**
 * Session behaviour against a scripted raw peer (built from the wire codec only) and between two
 * speakers that both connect actively (collision detection).
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  createCodecContext,
  createFramer,
  encodeMessage,
  encodeUpdates,
  messageType,
  parsePrefix,
} from "../wire/index.js";
import { createSpeaker, type Speaker, type SpeakerEvent } from "../index.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor<T>(f: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ctx = createCodecContext();

/** A scripted peer: completes the OPEN exchange, then lets the test write raw bytes. */
async function rawPeer(port: number, host: string, local: string, asn: number) {
  const socket: Socket = connect({ host, port, localAddress: local });
  cleanups.push(() => socket.destroy());
  const framer = createFramer();
  const received: number[] = [];
  let established = false;
  socket.on("data", (chunk: Buffer) => {
    for (const m of framer.push(chunk)) {
      const t = messageType(m);
      received.push(t);
      if (t === 1) socket.write(encodeMessage({ type: 4 }, ctx));
      if (t === 4) established = true;
    }
  });
  socket.on("error", () => {});
  await new Promise<void>((r) => socket.once("connect", () => r()));
  socket.write(
    encodeMessage(
      {
        type: 1,
        version: 4,
        myAs: asn,
        holdTime: 90,
        bgpId: "10.9.9.9",
        capabilities: [
          { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
          { code: 65, kind: "four-octet-as", asn },
        ],
      },
      ctx,
    ),
  );
  await waitFor(() => established, "raw peer established");
  return { socket, received };
}

function update(prefix: string, origin: 0 | 1 | 2 = 0): Uint8Array {
  const [m] = encodeUpdates(
    {
      attributes: { origin, asPath: [{ type: 2, asns: [65002] }], nextHop: "192.0.2.2" },
      nlri: [parsePrefix(prefix)],
    },
    ctx,
  );
  return m!;
}

describe("RFC 7606 at the speaker", () => {
  it("a malformed ORIGIN is treat-as-withdraw: the route goes, the session stays", async () => {
    const s: Speaker = await createSpeaker({
      asn: 65001,
      routerId: "10.255.0.1",
      listen: [{ host: "127.0.0.21", port: 0 }],
    });
    cleanups.push(() => s.close());
    s.addPeer({ address: "127.0.0.22", asn: 65002, passive: true });
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
    const s = await createSpeaker({
      asn: 65001,
      routerId: "10.255.0.1",
      listen: [{ host: "127.0.0.23", port: 0 }],
    });
    cleanups.push(() => s.close());
    s.addPeer({ address: "127.0.0.24", asn: 65002, passive: true });
    const peer = await rawPeer(s.listening[0]!.port, "127.0.0.23", "127.0.0.24", 65002);
    const [m] = encodeUpdates(
      {
        attributes: { origin: 0, asPath: [{ type: 2, asns: [64999] }], nextHop: "192.0.2.2" },
        nlri: [parsePrefix("198.51.100.0/24")],
      },
      ctx,
    );
    peer.socket.write(m!);
    peer.socket.write(update("203.0.113.0/24"));
    await waitFor(() => s.route("203.0.113.0/24"), "good route");
    expect(s.route("198.51.100.0/24")).toBeUndefined();
    expect(s.peers()[0]!.state).toBe("established");
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
