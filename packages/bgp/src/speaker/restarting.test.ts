import { afterEach, describe, expect, it } from "vitest";
import { localCapabilities } from "../fsm/negotiate.js";
import { createSpeaker, isBgpConfigError, type Speaker } from "../index.js";
import { waitFor } from "../interop/util.js";

const open: Speaker[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** `a` (restarting side, forwarding preserved) connects to `b` (helper), on loopback. */
async function pair() {
  const b = await createSpeaker({
    asn: 65002,
    routerId: "10.255.1.2",
    listen: [{ host: "127.0.0.42", port: 0 }],
    idleHoldTime: 0,
  });
  open.push(b);
  const port = b.listening[0]!.port;
  b.addPeer({ address: "127.0.0.41", asn: 65001, passive: true });
  const a = await createSpeaker({
    asn: 65001,
    routerId: "10.255.1.1",
    idleHoldTime: 0,
    connectRetryTime: 1,
    forwardingStatePreserved: true,
  });
  open.push(a);
  a.addPeer({ address: "127.0.0.42", port, asn: 65002, localAddress: "127.0.0.41", gracefulRestartTime: 30 });
  await waitFor(() => b.peers()[0]?.state === "established", "session");
  a.originate("10.9.0.0/24");
  await waitFor(() => b.route("10.9.0.0/24"), "route at b");
  return { a, b };
}

describe("graceful restart, restarting side", () => {
  it("lists every family with the forwarding-state bit when forwarding is preserved", () => {
    const caps = localCapabilities({
      asn: 65001,
      families: ["1/1", "2/1"],
      gracefulRestartTime: 30,
      forwardingPreserved: true,
    });
    expect(caps.find((c) => c.kind === "graceful-restart")).toMatchObject({
      restartTime: 30,
      families: [
        { afi: 1, safi: 1, forwardingPreserved: true },
        { afi: 2, safi: 1, forwardingPreserved: true },
      ],
    });
    const helper = localCapabilities({ asn: 65001, gracefulRestartTime: 30 });
    expect(helper.find((c) => c.kind === "graceful-restart")).toMatchObject({ families: [] });
  });

  it("close({ graceful: true }) ends sessions without a NOTIFICATION: the helper keeps our routes as stale", async () => {
    const { a, b } = await pair();
    await a.close({ graceful: true });
    await waitFor(() => b.peers()[0]?.state !== "established", "session down at b");
    const r = b.route("10.9.0.0/24");
    expect(r?.stale).toBe(true);
    expect(b.peers()[0]!.messagesIn.notification).toBe(0);
  });

  it("close() sends Cease: the helper drops our routes", async () => {
    const { a, b } = await pair();
    await a.close();
    await waitFor(() => b.route("10.9.0.0/24") === undefined, "withdrawn at b");
    expect(b.peers()[0]!.messagesIn.notification).toBe(1);
  });

  it("a refused connection names the errno in the session's last error", async () => {
    const probe = await createSpeaker({
      asn: 65001,
      routerId: "10.255.1.3",
      listen: [{ host: "127.0.0.43", port: 0 }],
    });
    const closedPort = probe.listening[0]!.port;
    await probe.close();
    const s = await createSpeaker({
      asn: 65001,
      routerId: "10.255.1.1",
      idleHoldTime: 0,
      connectRetryTime: 1,
    });
    open.push(s);
    s.addPeer({ address: "127.0.0.43", port: closedPort, asn: 65002 });
    const err = await waitFor(() => s.peers()[0]?.lastError ?? undefined, "last error");
    expect(err.detail).toBe("connect failed: ECONNREFUSED");
  });

  it("rejects a per-peer restart time outside 0..4095", async () => {
    const s = await createSpeaker({ asn: 65001, routerId: "10.255.1.1" });
    open.push(s);
    let caught: unknown;
    try {
      s.addPeer({ address: "127.0.0.44", asn: 65002, gracefulRestartTime: 5000 });
    } catch (e) {
      caught = e;
    }
    expect(isBgpConfigError(caught)).toBe(true);
  });
});
