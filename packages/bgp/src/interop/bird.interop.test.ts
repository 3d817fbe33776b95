/**
 * Interop against real BIRD 2 (/usr/sbin/bird): eBGP and iBGP sessions, IPv4 and IPv6, communities and
 * large communities both ways, withdrawals, 4-octet ASNs, route reflection, graceful restart, and a
 * peer that stops answering (hold timer) or is killed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type BestPathEvent, createSpeaker, type Speaker, type SpeakerEvent } from "../index.js";
import { type Bird, startBird } from "./bird.js";
import { freePort, waitFor } from "./util.js";

const US = "127.0.1.1";
const B1 = "127.0.1.2";
const B2 = "127.0.1.3";

interface BirdPeer {
  routerId: string;
  local: string;
  localPort: number;
  localAs: number;
  neighbor: string;
  neighborPort: number;
  neighborAs: number;
  channel?: "ipv4" | "ipv6";
  hold?: number;
  gracefulRestart?: boolean;
  statics?: string[];
}

function birdConfig(p: BirdPeer): string {
  const ch = p.channel ?? "ipv4";
  const ibgp = p.localAs === p.neighborAs;
  const statics = (p.statics ?? []).map((s) => `  route ${s} blackhole;`).join("\n");
  return `router id ${p.routerId};
log stderr all;
protocol device { scan time 10; }
protocol static st { ${ch}; 
${statics}
}
protocol bgp peer {
  local ${p.local} port ${p.localPort} as ${p.localAs};
  neighbor ${p.neighbor} port ${p.neighborPort} as ${p.neighborAs};
  ${ibgp ? "" : "multihop;"}
  hold time ${p.hold ?? 9};
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  graceful restart ${p.gracefulRestart ? "on" : "off"};
  ${ch} {
    import all;
    export filter { bgp_community.add((64512, 7)); bgp_large_community.add((${p.localAs}, 1, 2)); accept; };
    ${ch === "ipv6" ? "next hop address 2001:db8::12;" : ibgp ? "next hop self;" : ""}
  };
}
`;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function record(s: Speaker): SpeakerEvent[] {
  const events: SpeakerEvent[] = [];
  s.on((e) => events.push(e));
  return events;
}

/** Why each session that was established went down, in order. */
function downReasons(events: SpeakerEvent[]): string[] {
  return events.flatMap((e) =>
    e.type === "peer-state" && e.previous === "established" && e.state !== "established" ? [e.reason] : [],
  );
}

function bestPaths(events: SpeakerEvent[], prefix: string): BestPathEvent[] {
  return events.filter((e): e is BestPathEvent => e.type === "best-path" && e.prefix === prefix);
}

async function speaker(o: { asn: number; host?: string; holdTime?: number; clusterId?: string }) {
  const s = await createSpeaker({
    asn: o.asn,
    routerId: "10.255.255.1",
    clusterId: o.clusterId,
    listen: [{ host: o.host ?? US, port: 0 }],
    idleHoldTime: 1,
    maxIdleHoldTime: 2,
    connectRetryTime: 1,
    holdTime: o.holdTime ?? 9,
  });
  cleanups.push(() => s.close());
  return s;
}

async function bird(cfg: string, name: string): Promise<Bird> {
  const b = await startBird(cfg, name);
  cleanups.push(() => b.stop());
  return b;
}

describe("BIRD 2 interop", () => {
  it("eBGP IPv4 with 4-octet ASNs: routes both ways with communities, then withdrawals", async () => {
    const s = await speaker({ asn: 4200000001 });
    const events = record(s);
    const birdPort = await freePort(B1);
    const b = await bird(
      birdConfig({
        routerId: "10.0.1.2",
        local: B1,
        localPort: birdPort,
        localAs: 4200000002,
        neighbor: US,
        neighborPort: s.listening[0]!.port,
        neighborAs: 4200000001,
        statics: ["10.12.0.0/16"],
      }),
      "ebgp4",
    );
    s.addPeer({ address: B1, port: birdPort, asn: 4200000002, localAddress: US });
    s.originate("10.11.0.0/16", { communities: ["65001:5"], largeCommunities: ["4200000001:1:1"] });
    await waitFor(async () => (await b.protocolState("peer")) === "Established", "BIRD established");
    // BIRD → us
    const r = await waitFor(() => s.route("10.12.0.0/16"), "BIRD's route at our speaker");
    expect(r.attributes.asPath).toEqual([{ type: 2, asns: [4200000002] }]);
    expect(r.nextHops).toEqual([B1]);
    expect(r.attributes.communities).toEqual([(64512 * 65536 + 7) >>> 0]);
    expect(r.attributes.largeCommunities).toEqual([[4200000002, 1, 2]]);
    // us → BIRD
    const br = await waitFor(async () => (await b.routes()).get("10.11.0.0/16"), "our route at BIRD");
    expect(br.attrs["BGP.as_path"]).toBe("4200000001");
    expect(br.attrs["BGP.next_hop"]).toBe(US);
    expect(br.attrs["BGP.community"]).toBe("(65001,5)");
    expect(br.attrs["BGP.large_community"]).toBe("(4200000001, 1, 1)");
    const st = s.peers()[0]!;
    expect(st.state).toBe("established");
    expect(st.negotiated?.fourOctetAs).toBe(true);
    expect(st.negotiated?.gracefulRestart).toBe(false);
    // Withdrawals both ways.
    expect(s.withdraw("10.11.0.0/16")).toBe(true);
    await waitFor(async () => !(await b.routes()).has("10.11.0.0/16"), "withdrawal at BIRD");
    await b.birdc(["disable", "st"]);
    await waitFor(() => s.route("10.12.0.0/16") === undefined, "BIRD's withdrawal at our speaker");
    expect(bestPaths(events, "10.12.0.0/16").map((e) => e.withdrawn)).toEqual([false, true]);
  });

  it("iBGP IPv6 unicast over ::1", async () => {
    const s = await speaker({ asn: 65000, host: "::1" });
    const events = record(s);
    const birdPort = await freePort("::1");
    const b = await bird(
      birdConfig({
        routerId: "10.0.1.2",
        local: "::1",
        localPort: birdPort,
        localAs: 65000,
        neighbor: "::1",
        neighborPort: s.listening[0]!.port,
        neighborAs: 65000,
        channel: "ipv6",
        statics: ["2001:db8:12::/48"],
      }),
      "ibgp6",
    );
    s.addPeer({ address: "::1", port: birdPort, asn: 65000, families: ["ipv6"] });
    s.originate("2001:db8:11::/48", { communities: ["65000:11"], largeCommunities: ["65000:1:1"] });
    const r = await waitFor(() => s.route("2001:db8:12::/48"), "BIRD's v6 route");
    expect(r.family).toBe("ipv6");
    // Both ends are ::1, so BIRD must be told an explicit next hop (it never advertises the neighbour's address).
    expect(r.nextHops[0]).toBe("2001:db8::12");
    expect(r.attributes.localPref).toBe(100);
    expect(r.attributes.largeCommunities).toEqual([[65000, 1, 2]]);
    const br = await waitFor(
      async () => (await b.routes("master6")).get("2001:db8:11::/48"),
      "our v6 route at BIRD",
    );
    expect(br.attrs["BGP.as_path"]).toBe("");
    expect(br.attrs["BGP.local_pref"]).toBe("100");
    expect(br.attrs["BGP.community"]).toBe("(65000,11)");
    s.withdraw("2001:db8:11::/48");
    await waitFor(async () => !(await b.routes("master6")).has("2001:db8:11::/48"), "v6 withdrawal at BIRD");
    await b.birdc(["disable", "st"]);
    await waitFor(() => s.route("2001:db8:12::/48") === undefined, "v6 withdrawal at our speaker");
    expect(bestPaths(events, "2001:db8:12::/48").at(-1)?.withdrawn).toBe(true);
  });

  it("route reflector with two BIRD clients: ORIGINATOR_ID and CLUSTER_LIST", async () => {
    const s = await speaker({ asn: 65000, clusterId: "10.255.255.9" });
    const ports = [await freePort(B1), await freePort(B2)];
    const [c1, c2] = await Promise.all(
      [B1, B2].map((addr, i) =>
        bird(
          birdConfig({
            routerId: `10.0.1.${i + 2}`,
            local: addr,
            localPort: ports[i]!,
            localAs: 65000,
            neighbor: US,
            neighborPort: s.listening[0]!.port,
            neighborAs: 65000,
            statics: [`10.2${i + 1}.0.0/16`],
          }),
          `rr${i}`,
        ),
      ),
    );
    for (const [i, addr] of [B1, B2].entries()) {
      s.addPeer({ address: addr, port: ports[i]!, asn: 65000, localAddress: US, routeReflectorClient: true });
    }
    const at2 = await waitFor(
      async () => (await c2!.routes()).get("10.21.0.0/16"),
      "c1's route reflected to c2",
    );
    expect(at2.attrs["BGP.originator_id"]).toBe("10.0.1.2");
    expect(at2.attrs["BGP.cluster_list"]).toBe("10.255.255.9");
    expect(at2.attrs["BGP.next_hop"]).toBe(B1);
    const at1 = await waitFor(
      async () => (await c1!.routes()).get("10.22.0.0/16"),
      "c2's route reflected to c1",
    );
    expect(at1.attrs["BGP.originator_id"]).toBe("10.0.1.3");
    expect(at1.attrs["BGP.cluster_list"]).toBe("10.255.255.9");
    // Our own route reaches both clients without reflection attributes.
    s.originate("10.20.0.0/16");
    const own = await waitFor(async () => (await c1!.routes()).get("10.20.0.0/16"), "our route at c1");
    expect(own.attrs["BGP.originator_id"]).toBeUndefined();
    expect(own.attrs["BGP.next_hop"]).toBe(US);
  });

  it("graceful restart: a restarting BIRD's routes stay until its End-of-RIB", async () => {
    const s = await speaker({ asn: 65001 });
    const events = record(s);
    const birdPort = await freePort(B1);
    const cfg = (statics: string[]) =>
      birdConfig({
        routerId: "10.0.1.2",
        local: B1,
        localPort: birdPort,
        localAs: 65002,
        neighbor: US,
        neighborPort: s.listening[0]!.port,
        neighborAs: 65001,
        gracefulRestart: true,
        statics,
      });
    const b = await bird(cfg(["10.31.0.0/16", "10.32.0.0/16"]), "gr");
    s.addPeer({ address: B1, port: birdPort, asn: 65002, localAddress: US });
    await waitFor(() => s.route("10.31.0.0/16") && s.route("10.32.0.0/16"), "BIRD's routes");
    expect(s.peers()[0]!.negotiated?.gracefulRestart).toBe(true);
    b.signal("SIGKILL");
    await waitFor(() => s.peers()[0]!.state !== "established", "session down after kill");
    // Kept, marked stale, and nothing withdrawn from the best-path stream.
    expect(s.route("10.31.0.0/16")?.stale).toBe(true);
    expect(s.route("10.32.0.0/16")?.stale).toBe(true);
    expect(s.peers()[0]!.prefixesStale).toBe(2);
    // BIRD comes back announcing only one of the two prefixes.
    await b.restart(cfg(["10.31.0.0/16"]));
    await waitFor(
      () => s.route("10.32.0.0/16") === undefined,
      "sweep of the prefix missing after End-of-RIB",
    );
    const r31 = s.route("10.31.0.0/16");
    expect(r31?.stale).toBe(false);
    expect(bestPaths(events, "10.31.0.0/16").some((e) => e.withdrawn)).toBe(false);
    expect(bestPaths(events, "10.32.0.0/16").map((e) => e.withdrawn)).toEqual([false, true]);
    expect(s.peers()[0]!.prefixesStale).toBe(0);
  });

  it("a peer that stops answering is dropped within the hold time and its routes withdrawn", async () => {
    const s = await speaker({ asn: 65001, holdTime: 3 });
    const events = record(s);
    const birdPort = await freePort(B1);
    const b = await bird(
      birdConfig({
        routerId: "10.0.1.2",
        local: B1,
        localPort: birdPort,
        localAs: 65002,
        neighbor: US,
        neighborPort: s.listening[0]!.port,
        neighborAs: 65001,
        hold: 3,
        statics: ["10.41.0.0/16"],
      }),
      "hold",
    );
    s.addPeer({ address: B1, port: birdPort, asn: 65002, localAddress: US, gracefulRestart: false });
    await waitFor(() => s.route("10.41.0.0/16"), "BIRD's route");
    expect(s.peers()[0]!.negotiated?.holdTime).toBe(3);
    // No wall-clock assertion: the cause proves the bound. The session must end by our hold timer (3 s
    // negotiated; its expiry is unit-tested with an injected clock), not by TCP or a later timeout.
    b.signal("SIGSTOP");
    await waitFor(() => bestPaths(events, "10.41.0.0/16").at(-1)?.withdrawn === true, "withdrawal", 10_000);
    expect(s.peers()[0]!.lastError).toMatchObject({ reason: "hold-timer-expired", code: 4, sent: true });
    expect(downReasons(events).at(-1)).toBe("hold-timer-expired");
    b.signal("SIGCONT");
    // The session comes back; then a hard kill drops it at once: the kernel closes the TCP connection,
    // so the session ends by tcp-failed, before any hold timer.
    await waitFor(() => s.route("10.41.0.0/16"), "route after BIRD resumed", 20_000);
    b.signal("SIGKILL");
    await waitFor(() => s.route("10.41.0.0/16") === undefined, "withdrawal after kill", 10_000);
    expect(downReasons(events).at(-1)).toBe("tcp-failed");
    expect(bestPaths(events, "10.41.0.0/16").at(-1)?.withdrawn).toBe(true);
  });
});
