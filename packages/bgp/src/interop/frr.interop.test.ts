/**
 * Interop against real FRR bgpd (Debian `frr`, run without zebra on loopback addresses): FRR echoes our
 * own eBGP routes back (it sends one UPDATE to every member of an update group, the route's source
 * included), the loop check rejects that echo, and the routes FRR sends afterwards must still be
 * accepted, IPv4 and IPv6, with the IPv6 link-local next hop reported beside the global one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createSpeaker, type Speaker } from "../index.js";
import { type Frr, startFrr } from "./frr.js";
import { freePort, waitFor } from "./util.js";

const S1 = "127.0.3.1";
const S2 = "127.0.3.2";
const FRR = "127.0.3.4";
const US_AS = 65001;
const FRR_AS = 65002;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function speaker(host: string, routerId: string, frrPort: number): Promise<Speaker> {
  const s = await createSpeaker({
    asn: US_AS,
    routerId,
    listen: [{ host, port: 0 }],
    idleHoldTime: 1,
    connectRetryTime: 1,
  });
  cleanups.push(() => s.close());
  s.addPeer({
    address: FRR,
    port: frrPort,
    asn: FRR_AS,
    localAddress: host,
    families: ["ipv4", "ipv6"],
    // FRR refuses loopback next hops (martians, NOTIFICATION 3/8): give real-looking ones.
    nextHop4: `192.0.2.${host.split(".")[3]}`,
    nextHop6: `2001:db8:3::${host.split(".")[3]}`,
  });
  return s;
}

function frrConfig(neighbors: { address: string; port: number }[]): string {
  const n = neighbors.flatMap(({ address, port }) => [
    ` neighbor ${address} remote-as ${US_AS}`,
    ` neighbor ${address} port ${port}`,
    ` neighbor ${address} update-source ${FRR}`,
    ` neighbor ${address} disable-connected-check`,
    ` neighbor ${address} timers 3 9`,
    ` neighbor ${address} timers connect 1`,
  ]);
  const v6 = neighbors.flatMap(({ address }) => [
    `  neighbor ${address} activate`,
    `  neighbor ${address} route-map NH6 out`,
  ]);
  return [
    "frr defaults traditional",
    "hostname margay-frr-interop",
    "log stdout informational",
    "!",
    // A global and a link-local next hop on IPv6 routes: a 32-byte MP_REACH next hop (RFC 2545 §3).
    "route-map NH6 permit 10",
    " set ipv6 next-hop global 2001:db8:3::4",
    " set ipv6 next-hop local fe80::4",
    "exit",
    "!",
    `router bgp ${FRR_AS}`,
    " bgp router-id 10.255.3.4",
    " no bgp ebgp-requires-policy",
    " no bgp network import-check",
    ...n,
    " address-family ipv6 unicast",
    ...v6,
    " exit-address-family",
    "exit",
    "",
  ].join("\n");
}

// No skip when FRR is missing: like BIRD and GoBGP it is a required peer (Debian `frr`); startFrr says so.
describe("FRR interop", () => {
  it("an echoed (looped) first UPDATE does not make later FRR routes rejected; IPv6 link-local next hop", async () => {
    const frrPort = await freePort(FRR);
    const s1 = await speaker(S1, "10.255.3.1", frrPort);
    const s2 = await speaker(S2, "10.255.3.2", frrPort);
    const frr: Frr = await startFrr(
      frrConfig([
        { address: S1, port: s1.listening[0]!.port },
        { address: S2, port: s2.listening[0]!.port },
      ]),
      FRR,
      frrPort,
      "echo",
    );
    cleanups.push(() => frr.stop());
    await waitFor(
      async () =>
        (await frr.neighborState(S1)) === "Established" && (await frr.neighborState(S2)) === "Established",
      "both sessions established at FRR",
      60_000,
    );
    await waitFor(
      () => s1.peers()[0]!.state === "established" && s2.peers()[0]!.state === "established",
      "both sessions established at the speakers",
    );
    expect(s1.peers()[0]!.prefixesReceived).toBe(0);

    // Our routes: FRR sends them to its update group {s1, s2}, s1 included: s1's first announcing
    // UPDATEs carry AS_PATH 65002 65001, a loop.
    s1.originate("10.31.0.0/24");
    s1.originate("2001:db8:31::/48");
    await waitFor(async () => {
      const r4 = await frr.routes("ipv4");
      const r6 = await frr.routes("ipv6");
      return r4["10.31.0.0/24"] && r6["2001:db8:31::/48"];
    }, "our routes at FRR");
    await waitFor(() => s1.peers()[0]!.prefixesRejected >= 2, "the echo rejected by s1's loop check");
    expect(s1.peers()[0]!.prefixesAccepted).toBe(0);
    expect(s1.route("10.31.0.0/24")?.peer).toBeNull(); // still our own route, not FRR's echo

    // Then FRR's own routes, clean: every one must be accepted.
    const v4 = Array.from({ length: 20 }, (_, i) => `10.32.${i}.0/24`);
    const v6 = Array.from({ length: 20 }, (_, i) => `2001:db8:32:${i.toString(16)}::/64`);
    await frr.vtysh([
      "configure terminal",
      `router bgp ${FRR_AS}`,
      "address-family ipv4 unicast",
      ...v4.map((p) => `network ${p}`),
      "exit-address-family",
      "address-family ipv6 unicast",
      ...v6.map((p) => `network ${p}`),
      "exit-address-family",
    ]);
    for (const s of [s1, s2]) {
      await waitFor(() => [...v4, ...v6].every((p) => s.route(p)), "FRR's routes at the speaker", 60_000);
      const st = s.peers()[0]!;
      expect(st.prefixesAccepted).toBe(40);
    }
    const r6 = s1.route(v6[0]!)!;
    expect(r6.peer).not.toBeNull();
    expect(r6.nextHops).toEqual(["2001:db8:3::4"]);
    expect(r6.linkLocalNextHops).toEqual(["fe80::4"]);
    const r4 = s1.route(v4[0]!)!;
    expect(r4.nextHops).toEqual([FRR]);
    expect(r4.linkLocalNextHops).toEqual([null]);
  });
});
