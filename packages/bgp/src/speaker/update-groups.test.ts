/**
 * Update groups at the speaker: route-reflector clients (raw peers, so the test sees every byte the
 * speaker sends them) share one export per best-path change, a route never goes back to the client it
 * came from, withdrawals reach every member, a late joiner gets the full table, a dropped member leaves
 * cleanly, and peers with different export policies are exported apart.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { waitFor } from "../interop/util.js";
import { Rib } from "../rib/rib.js";
import { encodeMessage, encodeUpdates, parsePrefix } from "../wire/index.js";
import type { PathAttributes } from "../wire/types.js";
import { createSpeaker, type PeerOptions, type Speaker } from "../index.js";
import { heldRoutes, prefixEvents, type RawPeer, rawCtx, rawPeer } from "./raw-peer.test-util.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const RR = "127.0.0.51";
const ASN = 65001;

/** A route reflector (AS 65001) on 127.0.0.51 with `clients` as passive route-reflector clients. */
async function reflector(clients: string[], extra: Partial<Record<string, Partial<PeerOptions>>> = {}) {
  const s: Speaker = await createSpeaker({
    asn: ASN,
    routerId: "10.255.0.1",
    listen: [{ host: RR, port: 0 }],
    // A client that reconnects is accepted at once.
    idleHoldTime: 0,
  });
  cleanups.push(() => s.close());
  for (const address of clients) {
    s.addPeer({ address, asn: ASN, passive: true, routeReflectorClient: true, ...extra[address] });
  }
  return s;
}

/** A route-reflector client at `address` (its BGP identifier too). */
function client(s: Speaker, address: string, o: { routeRefresh?: boolean } = {}): Promise<RawPeer> {
  return rawPeer(cleanups, s.listening[0]!.port, RR, address, ASN, {
    bgpId: address,
    extraCaps: o.routeRefresh ? [{ code: 2, kind: "route-refresh" }] : [],
  });
}

/** `from` announces `prefixes` (next hop itself, LOCAL_PREF `localPref`). */
function announce(from: RawPeer, address: string, prefixes: string[], localPref = 100): void {
  const attributes: PathAttributes = { origin: 0, asPath: [], nextHop: address, localPref };
  for (const m of encodeUpdates({ attributes, nlri: prefixes.map((p) => parsePrefix(p)) }, rawCtx)) {
    from.socket.write(m);
  }
}

function withdraw(from: RawPeer, prefixes: string[]): void {
  for (const m of encodeUpdates({ withdrawn: prefixes.map((p) => parsePrefix(p)) }, rawCtx)) {
    from.socket.write(m);
  }
}

const held = (p: RawPeer) => [...heldRoutes(p.updates).keys()].sort();

describe("update groups", () => {
  it("route-reflector clients share one export per change; a client's routes never go back to it; withdrawals reach every other member", async () => {
    const [ia, ib, ic] = ["127.0.0.52", "127.0.0.53", "127.0.0.54"];
    const rr = await reflector([ia, ib, ic]);
    const a = await client(rr, ia);
    const b = await client(rr, ib);
    const c = await client(rr, ic);
    await waitFor(() => rr.peers().every((p) => p.state === "established"), "sessions");
    const exported = vi.spyOn(Rib.prototype, "exportChange");
    try {
      announce(a, ia, ["10.1.0.0/24", "10.1.1.0/24"]);
      await waitFor(() => held(b).length === 2 && held(c).length === 2, "A's routes at B and C");
      // One group: each best-path change is exported once, not once per client (was 3 per change).
      expect(exported).toHaveBeenCalledTimes(2);
    } finally {
      exported.mockRestore();
    }
    expect(heldRoutes(b.updates).get("10.1.0.0/24")?.originatorId).toBe(ia);
    expect(rr.peer(ia)!.prefixesAdvertised).toBe(0);
    expect(rr.peer(ib)!.prefixesAdvertised).toBe(2);

    withdraw(a, ["10.1.0.0/24"]);
    await waitFor(() => held(b).length === 1 && held(c).length === 1, "withdrawal at B and C");
    announce(b, ib, ["10.2.0.0/24"]);
    await waitFor(() => held(a).length === 1 && held(c).length === 2, "B's route at A and C");
    // A was never sent its own routes, nor their withdrawal; B never its own.
    expect(prefixEvents(a.updates)).toEqual(["+10.2.0.0/24"]);
    expect(prefixEvents(b.updates)).toEqual(["+10.1.0.0/24", "+10.1.1.0/24", "-10.1.0.0/24"]);
    expect(held(c)).toEqual(["10.1.1.0/24", "10.2.0.0/24"]);
    expect(rr.peer(ia)!.prefixesAdvertised).toBe(1);
    expect(rr.peer(ic)!.prefixesAdvertised).toBe(2);
  });

  it("a best path that moves to another client: the new source loses the old route, the old source gets the new one", async () => {
    const [ia, ib, ic] = ["127.0.0.55", "127.0.0.56", "127.0.0.57"];
    const rr = await reflector([ia, ib, ic]);
    const a = await client(rr, ia);
    const b = await client(rr, ib);
    const c = await client(rr, ic);
    await waitFor(() => rr.peers().every((p) => p.state === "established"), "sessions");
    const from = (p: RawPeer) => heldRoutes(p.updates).get("10.3.0.0/24")?.originatorId;

    announce(a, ia, ["10.3.0.0/24"]);
    await waitFor(() => from(b) === ia && from(c) === ia, "A's route at B and C");
    // B's path wins (higher LOCAL_PREF): B is withdrawn A's route, A and C get B's.
    announce(b, ib, ["10.3.0.0/24"], 200);
    await waitFor(() => from(a) === ib && from(c) === ib, "B's route at A and C");
    await waitFor(() => from(b) === undefined, "A's route withdrawn from B");
    expect(prefixEvents(b.updates)).toEqual(["+10.3.0.0/24", "-10.3.0.0/24"]);
    // B withdraws: back to A's path.
    withdraw(b, ["10.3.0.0/24"]);
    await waitFor(() => from(b) === ia && from(c) === ia, "A's route at B and C again");
    await waitFor(() => from(a) === undefined, "B's route withdrawn from A");
    expect(prefixEvents(a.updates)).toEqual(["+10.3.0.0/24", "-10.3.0.0/24"]);
    expect(rr.peers().map((p) => p.prefixesAdvertised)).toEqual([0, 1, 1]);
  });

  it("a late joiner gets the full table but its own routes; a member whose session drops leaves the group cleanly", async () => {
    const [ia, ib, id] = ["127.0.0.58", "127.0.0.59", "127.0.0.60"];
    const rr = await reflector([ia, ib, id]);
    const a = await client(rr, ia);
    const b = await client(rr, ib);
    announce(a, ia, ["10.4.0.0/24", "10.4.1.0/24"]);
    await waitFor(() => held(b).length === 2, "A's routes at B");

    const d = await client(rr, id);
    await waitFor(() => held(d).length === 2, "full table at D");
    announce(d, id, ["10.5.0.0/24"]);
    await waitFor(() => held(a).length === 1 && held(b).length === 3, "D's route at A and B");
    expect(prefixEvents(d.updates)).toEqual(["+10.4.0.0/24", "+10.4.1.0/24"]);
    expect(rr.peer(id)!.prefixesAdvertised).toBe(2);

    // D's session drops (no NOTIFICATION, no graceful restart): its route is withdrawn from the rest.
    d.socket.destroy();
    await waitFor(() => held(a).length === 0 && held(b).length === 2, "D's route withdrawn");
    expect(rr.peer(id)!.prefixesAdvertised).toBe(0);
    // The group goes on without it.
    announce(b, ib, ["10.6.0.0/24"]);
    await waitFor(() => held(a).length === 1, "B's route at A");
    expect(held(a)).toEqual(["10.6.0.0/24"]);
    const d2 = await client(rr, id);
    await waitFor(() => held(d2).length === 3, "full table at D again");
    expect(held(d2)).toEqual(["10.4.0.0/24", "10.4.1.0/24", "10.6.0.0/24"]);
  });

  it("ROUTE-REFRESH from a member resends its view of the group's table, still without its own routes", async () => {
    const [ia, ib] = ["127.0.0.65", "127.0.0.66"];
    const rr = await reflector([ia, ib]);
    const a = await client(rr, ia, { routeRefresh: true });
    const b = await client(rr, ib);
    announce(a, ia, ["10.8.0.0/24"]);
    announce(b, ib, ["10.8.1.0/24", "10.8.2.0/24"]);
    await waitFor(() => held(a).length === 2 && held(b).length === 1, "routes reflected");
    const before = a.updates.length;
    a.socket.write(encodeMessage({ type: 5, afi: 1, safi: 1, subtype: 0 }, rawCtx));
    await waitFor(() => prefixEvents(a.updates.slice(before)).length === 2, "A's refresh");
    expect(prefixEvents(a.updates.slice(before)).sort()).toEqual(["+10.8.1.0/24", "+10.8.2.0/24"]);
    expect(prefixEvents(b.updates)).toEqual(["+10.8.0.0/24"]);
  });

  it("peers with different export policies are exported apart; equal policies (separate objects) share a group", async () => {
    const [ia, ib, ic, id] = ["127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"];
    const tag = () => ({ statements: [{ actions: { addCommunities: ["65001:7"] } }] });
    const rr = await reflector([ia, ib, ic, id], {
      [ic]: { exportPolicy: tag() },
      [id]: { exportPolicy: tag() },
    });
    const a = await client(rr, ia);
    const b = await client(rr, ib);
    const c = await client(rr, ic);
    const d = await client(rr, id);
    await waitFor(() => rr.peers().every((p) => p.state === "established"), "sessions");
    const exported = vi.spyOn(Rib.prototype, "exportChange");
    try {
      announce(a, ia, ["10.7.0.0/24"]);
      await waitFor(() => [b, c, d].every((p) => held(p).length === 1), "A's route at B, C and D");
      // Two groups ({A, B} and {C, D}): two exports (was one per peer: 4).
      expect(exported).toHaveBeenCalledTimes(2);
    } finally {
      exported.mockRestore();
    }
    const comms = (p: RawPeer) => heldRoutes(p.updates).get("10.7.0.0/24")?.communities ?? [];
    expect(comms(b)).toEqual([]);
    expect(comms(c)).toEqual([65001 * 65536 + 7]);
    expect(comms(d)).toEqual([65001 * 65536 + 7]);
    expect(prefixEvents(a.updates)).toEqual([]);

    // C's policy changes: it moves to A and B's group and gets the route without the community.
    rr.updatePeer(ic, { exportPolicy: { statements: [] } });
    await waitFor(() => comms(c).length === 0, "C re-exported");
    const again = vi.spyOn(Rib.prototype, "exportChange");
    try {
      announce(b, ib, ["10.7.1.0/24"]);
      await waitFor(
        () => held(a).length === 1 && [c, d].every((p) => held(p).length === 2),
        "B's route at A, C and D",
      );
      // {A, B, C} and {D}: an empty accepting policy is no policy.
      expect(again).toHaveBeenCalledTimes(2);
    } finally {
      again.mockRestore();
    }
    expect(comms(c)).toEqual([]);
    expect(heldRoutes(d.updates).get("10.7.1.0/24")?.communities).toEqual([65001 * 65536 + 7]);
    withdraw(a, ["10.7.0.0/24"]);
    await waitFor(() => [b, c, d].every((p) => !heldRoutes(p.updates).has("10.7.0.0/24")), "withdrawn");
    expect(held(a)).toEqual(["10.7.1.0/24"]);
  });
});
