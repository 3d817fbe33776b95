/**
 * Read-only views of the speaker's state: peer status snapshots, best-path events and Loc-RIB routes
 * as the public API reports them.
 *
 * @packageDocumentation
 */

import { performance } from "node:perf_hooks";
import { SessionState } from "../fsm/types.js";
import type { Path } from "../rib/decision.js";
import type { RouteChange } from "../rib/rib.js";
import { formatRibPrefix } from "../rib/table.js";
import { Afi } from "../wire/types.js";
import type { PeerRt, SpeakerCore } from "./core.js";
import type { BestPathEvent, BestRoute, PeerStatus } from "./events.js";

const NO_LINK_LOCAL: readonly (string | null)[] = Object.freeze([null]);
const NO_PATHS: readonly (string | null)[] = Object.freeze([]);

/**
 * The link-local next hop (second MP_REACH next hop) that came with each entry of `nextHopsOf(paths)`:
 * same order and the same de-duplication by global next hop, null where a path carried none.
 */
function linkLocalNextHopsOf(paths: readonly Path[]): readonly (string | null)[] {
  if (paths.length === 1 && paths[0]!.attrs.nextHops.length === 1) return NO_LINK_LOCAL;
  if (paths.length === 0) return NO_PATHS;
  const seen: string[] = [];
  const out: (string | null)[] = [];
  for (const p of paths) {
    const nh = p.attrs.nextHops[0];
    if (nh === undefined || seen.includes(nh)) continue;
    seen.push(nh);
    out.push(p.attrs.nextHops[1] ?? null);
  }
  return out;
}

function familyName(afi: number): "ipv4" | "ipv6" {
  return afi === Afi.IPv4 ? "ipv4" : "ipv6";
}

/** Snapshot of one peer. */
export function status(core: SpeakerCore, p: PeerRt): PeerStatus {
  const fsm = p.conn.fsm;
  const n = p.negotiated;
  const le = fsm.lastError;
  const timeOrigin = performance.timeOrigin;
  return {
    id: p.opts.id,
    address: p.opts.address,
    port: p.opts.port,
    asn: p.opts.asn,
    description: p.opts.description,
    state: fsm.state,
    uptime:
      fsm.state === SessionState.Established && p.establishedAt !== null ? core.now() - p.establishedAt : 0,
    flaps: fsm.flaps,
    lastError: le
      ? {
          reason: le.reason,
          code: le.code,
          subcode: le.subcode,
          sent: le.sent,
          detail: le.detail,
          at: new Date(timeOrigin + le.at),
        }
      : null,
    messagesIn: { ...p.in },
    messagesOut: { ...p.out },
    prefixesReceived: p.received,
    prefixesAccepted: p.rib.accepted,
    prefixesRejected: p.rib.rejected,
    // Its update group's Adj-RIB-Out but for its own routes, which are never sent back to it.
    prefixesAdvertised: p.group ? p.group.rib.out!.size - (p.group.own.get(p.rib.index) ?? 0) : 0,
    prefixesStale: p.restartTimer || p.staleTimer ? core.rib.countStale(p.rib) : 0,
    negotiated:
      n && fsm.state === SessionState.Established
        ? {
            holdTime: n.holdTime,
            keepaliveTime: n.keepaliveTime,
            peerId: n.peerId,
            families: [...n.families],
            fourOctetAs: n.codec.asn4,
            extendedMessage: n.codec.maxMessageSize > 4096,
            addPathReceive: [...n.codec.addPathReceive],
            gracefulRestart: n.gracefulRestart !== null,
            routeRefresh: n.routeRefresh,
          }
        : null,
  };
}

/** The event of one Loc-RIB change. */
export function bestEvent(core: SpeakerCore, c: RouteChange): BestPathEvent {
  const best = c.best;
  const src = best ? core.peersByIndex.get(best.peer.index) : undefined;
  return {
    type: "best-path",
    prefix: formatRibPrefix(c),
    family: familyName(c.afi),
    withdrawn: best === null,
    nextHops: nextHopsOf(c.multipath),
    linkLocalNextHops: linkLocalNextHopsOf(c.multipath),
    attributes: best ? best.attrs.attrs : null,
    peer: src ? src.opts.id : null,
    stale: best !== null && src !== undefined && best.epoch !== src.rib.epoch,
  };
}

function nextHopsOf(paths: readonly Path[]): readonly string[] {
  // The common case, one path with one next hop: its interned (frozen) list, no new array per event.
  if (paths.length === 1 && paths[0]!.attrs.nextHops.length === 1) return paths[0]!.attrs.nextHops;
  const out: string[] = [];
  for (const p of paths) {
    const nh = p.attrs.nextHops[0];
    if (nh !== undefined && !out.includes(nh)) out.push(nh);
  }
  return out;
}

/** One Loc-RIB destination as the API reports it. */
export function bestRoute(
  core: SpeakerCore,
  p: { afi: Afi; len: number; v4: number; v6: Uint8Array | null },
  best: Path,
  multi: readonly Path[],
): BestRoute {
  const src = core.peersByIndex.get(best.peer.index);
  return {
    prefix: formatRibPrefix(p),
    family: familyName(p.afi),
    nextHops: nextHopsOf(multi),
    linkLocalNextHops: linkLocalNextHopsOf(multi),
    attributes: best.attrs.attrs,
    peer: src ? src.opts.id : null,
    stale: src !== undefined && best.epoch !== src.rib.epoch,
  };
}
