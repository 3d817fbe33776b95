/**
 * Interop against real GoBGP (/usr/bin/gobgpd): iBGP IPv4 and eBGP IPv6 with 4-octet ASNs, communities
 * and large communities both ways, withdrawals, and a killed daemon.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type BestPathEvent, createSpeaker, type Speaker, type SpeakerEvent } from "../index.js";
import { type Gobgp, type GobgpPath, startGobgp } from "./gobgp.js";
import { freePort, waitFor } from "./util.js";

const US = "127.0.1.1";
const GO = "127.0.1.4";

interface GoPeer {
  as: number;
  routerId: string;
  local: string;
  port: number;
  neighbor: string;
  neighborPort: number;
  neighborAs: number;
  family: "ipv4-unicast" | "ipv6-unicast";
}

function gobgpConfig(p: GoPeer): string {
  return `[global.config]
  as = ${p.as}
  router-id = "${p.routerId}"
  port = ${p.port}
  local-address-list = ["${p.local}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${p.neighbor}"
    peer-as = ${p.neighborAs}
  [neighbors.transport.config]
    remote-port = ${p.neighborPort}
    local-address = "${p.local}"
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "${p.family}"
`;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function speaker(asn: number, host: string): Promise<{ s: Speaker; events: SpeakerEvent[] }> {
  const s = await createSpeaker({
    asn,
    routerId: "10.255.255.1",
    listen: [{ host, port: 0 }],
    idleHoldTime: 1,
    connectRetryTime: 1,
  });
  cleanups.push(() => s.close());
  const events: SpeakerEvent[] = [];
  s.on((e) => events.push(e));
  return { s, events };
}

async function gobgpd(cfg: string, name: string): Promise<Gobgp> {
  const g = await startGobgp(cfg, name);
  cleanups.push(() => g.stop());
  return g;
}

function attr(p: GobgpPath, type: number): Record<string, unknown> | undefined {
  return p.attrs.find((a) => a.type === type) as Record<string, unknown> | undefined;
}

function bestPaths(events: SpeakerEvent[], prefix: string): BestPathEvent[] {
  return events.filter((e): e is BestPathEvent => e.type === "best-path" && e.prefix === prefix);
}

describe("GoBGP interop", () => {
  it("iBGP IPv4: routes both ways with communities and large communities, then withdrawals", async () => {
    const { s, events } = await speaker(65000, US);
    const goPort = await freePort(GO);
    const g = await gobgpd(
      gobgpConfig({
        as: 65000,
        routerId: "10.0.1.4",
        local: GO,
        port: goPort,
        neighbor: US,
        neighborPort: s.listening[0]!.port,
        neighborAs: 65000,
        family: "ipv4-unicast",
      }),
      "ibgp4",
    );
    // GoBGP refuses loopback next hops (RFC 4271 §6.3 "not a valid IP host address"): give a real one.
    s.addPeer({ address: GO, port: goPort, asn: 65000, localAddress: US, nextHop4: "192.0.2.11" });
    await g.gobgp([
      "global",
      "rib",
      "add",
      "10.52.0.0/16",
      "nexthop",
      "192.0.2.52",
      "community",
      "64512:7",
      "large-community",
      "65000:1:2",
      "local-pref",
      "150",
      "-a",
      "ipv4",
    ]);
    s.originate("10.51.0.0/16", { communities: ["65000:51"], largeCommunities: ["65000:5:1"] });
    const r = await waitFor(() => s.route("10.52.0.0/16"), "GoBGP's route at our speaker");
    expect(r.nextHops).toEqual(["192.0.2.52"]);
    expect(r.attributes.localPref).toBe(150);
    expect(r.attributes.communities).toEqual([(64512 * 65536 + 7) >>> 0]);
    expect(r.attributes.largeCommunities).toEqual([[65000, 1, 2]]);
    const paths = await waitFor(async () => (await g.rib("ipv4"))["10.51.0.0/16"], "our route at GoBGP");
    const p = paths[0]!;
    expect(attr(p, 3)?.nexthop).toBe("192.0.2.11");
    expect(attr(p, 5)?.value).toBe(100);
    expect(attr(p, 8)?.communities).toEqual([(65000 * 65536 + 51) >>> 0]);
    expect(attr(p, 32)?.value).toEqual([{ ASN: 65000, LocalData1: 5, LocalData2: 1 }]);
    expect(s.peers()[0]!.state).toBe("established");
    s.withdraw("10.51.0.0/16");
    await waitFor(async () => !(await g.rib("ipv4"))["10.51.0.0/16"], "withdrawal at GoBGP");
    await g.gobgp(["global", "rib", "del", "10.52.0.0/16", "-a", "ipv4"]);
    await waitFor(() => s.route("10.52.0.0/16") === undefined, "GoBGP's withdrawal at our speaker");
    expect(bestPaths(events, "10.52.0.0/16").map((e) => e.withdrawn)).toEqual([false, true]);
  });

  it("eBGP IPv6 over ::1 with 4-octet ASNs", async () => {
    const { s } = await speaker(4200000001, "::1");
    const goPort = await freePort("::1");
    const g = await gobgpd(
      gobgpConfig({
        as: 4200000003,
        routerId: "10.0.1.4",
        local: "::1",
        port: goPort,
        neighbor: "::1",
        neighborPort: s.listening[0]!.port,
        neighborAs: 4200000001,
        family: "ipv6-unicast",
      }),
      "ebgp6",
    );
    s.addPeer({
      address: "::1",
      port: goPort,
      asn: 4200000003,
      families: ["ipv6"],
      nextHop6: "2001:db8::11",
    });
    await g.gobgp([
      "global",
      "rib",
      "add",
      "2001:db8:62::/48",
      "nexthop",
      "2001:db8::62",
      "large-community",
      "4200000003:6:2",
      "-a",
      "ipv6",
    ]);
    s.originate("2001:db8:61::/48", { largeCommunities: ["4200000001:6:1"], communities: ["65000:61"] });
    const r = await waitFor(() => s.route("2001:db8:62::/48"), "GoBGP's v6 route");
    expect(r.attributes.asPath).toEqual([{ type: 2, asns: [4200000003] }]);
    expect(r.nextHops[0]).toBe("2001:db8::62");
    expect(r.attributes.largeCommunities).toEqual([[4200000003, 6, 2]]);
    const paths = await waitFor(
      async () => (await g.rib("ipv6"))["2001:db8:61::/48"],
      "our v6 route at GoBGP",
    );
    const aspath = attr(paths[0]!, 2) as { as_paths: { asns: number[] }[] } | undefined;
    expect(aspath?.as_paths[0]?.asns).toEqual([4200000001]);
    expect(attr(paths[0]!, 32)?.value).toEqual([{ ASN: 4200000001, LocalData1: 6, LocalData2: 1 }]);
    expect(attr(paths[0]!, 8)?.communities).toEqual([(65000 * 65536 + 61) >>> 0]);
    s.withdraw("2001:db8:61::/48");
    await waitFor(async () => !(await g.rib("ipv6"))["2001:db8:61::/48"], "v6 withdrawal at GoBGP");
  });

  it("a killed gobgpd: session down and its routes withdrawn from the best-path stream", async () => {
    const { s, events } = await speaker(65001, US);
    const goPort = await freePort(GO);
    const g = await gobgpd(
      gobgpConfig({
        as: 65003,
        routerId: "10.0.1.4",
        local: GO,
        port: goPort,
        neighbor: US,
        neighborPort: s.listening[0]!.port,
        neighborAs: 65001,
        family: "ipv4-unicast",
      }),
      "kill",
    );
    s.addPeer({ address: GO, port: goPort, asn: 65003, localAddress: US, nextHop4: "192.0.2.11" });
    await g.gobgp(["global", "rib", "add", "10.71.0.0/16", "-a", "ipv4"]);
    await waitFor(() => s.route("10.71.0.0/16"), "GoBGP's route");
    g.signal("SIGKILL");
    await waitFor(
      () => bestPaths(events, "10.71.0.0/16").at(-1)?.withdrawn === true,
      "withdrawal after kill",
    );
    expect(s.peers()[0]!.state).not.toBe("established");
    expect(s.peers()[0]!.flaps).toBe(1);
  });
});
