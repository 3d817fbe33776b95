/**
 * Inbound messages of an Established (or establishing) session: decoding, the RFC 7606 checks that
 * need the session (validation, AFI/SAFI disable), applying UPDATEs to the RIB, End-of-RIB and
 * max-prefix limits. What to answer is the FSM's decision: errors go back to it as events.
 *
 * @packageDocumentation
 */

import { SessionState } from "../fsm/types.js";
import { isBgpWireError, worstAction } from "../wire/errors.js";
import { messageType } from "../wire/header.js";
import { decodeMessage } from "../wire/message.js";
import type { Afi, BgpMessage } from "../wire/types.js";
import { decodeUpdate, type UpdateDecodeResult } from "../wire/update.js";
import { validateUpdate } from "../wire/validate.js";
import { onChange, regroup } from "./adj-rib-out.js";
import { applyUpdate } from "./apply-update.js";
import type { Conn, PeerRt, SpeakerCore } from "./core.js";
import { countMessage } from "./events.js";
import { onEndOfRib } from "./graceful-restart.js";
import { fsmStep } from "./session.js";

const EMPTY = new Uint8Array(0);

/**
 * A message could not be framed or decoded, or an UPDATE error calls for a session reset: the FSM resets
 * the session with the error's NOTIFICATION.
 */
export function decodeFailed(
  core: SpeakerCore,
  peer: PeerRt,
  conn: Conn,
  e: unknown,
  messageType?: number,
): void {
  if (isBgpWireError(e)) {
    fsmStep(core, peer, conn, {
      type: "decode-error",
      code: e.notification.code,
      subcode: e.notification.subcode,
      data: e.notification.data,
      action: "session-reset",
      message: e.message,
      messageType,
    });
  } else {
    core.log.error({ peer: peer.opts.id, err: e }, "bgp decode failed unexpectedly");
    fsmStep(core, peer, conn, {
      type: "decode-error",
      code: 6,
      subcode: 0,
      data: EMPTY,
      action: "session-reset",
      message: String(e),
    });
  }
}

/** One framed message from `conn`. */
export function onMessage(core: SpeakerCore, peer: PeerRt, conn: Conn, bytes: Uint8Array): void {
  const type = messageType(bytes);
  countMessage(peer.in, type);
  if (type === 2 && conn.fsm.state === SessionState.Established) {
    let r: UpdateDecodeResult;
    try {
      r = decodeUpdate(bytes, conn.codec, { prefixes: "sections" });
    } catch (e) {
      decodeFailed(core, peer, conn, e);
      return;
    }
    const hasNlri =
      r.sections.nlri.end > r.sections.nlri.start ||
      (r.sections.mpReach?.end ?? 0) > (r.sections.mpReach?.start ?? 0);
    if (hasNlri && r.action !== "session-reset") {
      // Semantic checks that need the session (RFC 4271 §6.3 first AS, eBGP-only attributes, next hop).
      const v = validateUpdate(r.update, {
        ebgp: !peer.rib.ibgp,
        peerAs: peer.opts.asn,
        localAddresses: [peer.rib.localAddress4, peer.rib.localAddress6].filter(
          (x): x is string => x !== null,
        ),
        sections: r.sections,
      });
      r = {
        ...r,
        update: { ...r.update, attributes: v.attributes },
        errors: [...r.errors, ...v.errors],
        action: worstAction(r.action, v.action),
      };
    }
    if (r.action === "afi-safi-disable") {
      const rest = disableFamilies(core, peer, conn, r);
      if (rest === null) return;
      r = rest;
    }
    if (r.action === "session-reset") {
      decodeFailed(core, peer, conn, r.errors.find((x) => x.action === r.action) ?? r.errors[0]!);
      return;
    }
    if (r.action !== undefined) {
      core.log.warn(
        { peer: peer.opts.id, action: r.action, errors: r.errors.map((x) => x.message) },
        "bgp update error tolerated",
      );
    }
    fsmStep(core, peer, conn, { type: "message", message: r.update }, r, bytes);
    return;
  }
  let m: BgpMessage;
  try {
    m = decodeMessage(bytes, conn.codec);
  } catch (e) {
    decodeFailed(core, peer, conn, e, type);
    return;
  }
  fsmStep(core, peer, conn, { type: "message", message: m });
}

/**
 * RFC 7606 §2 / RFC 4760 §7 AFI/SAFI disable: the peer sent a malformed MP_REACH/MP_UNREACH for a
 * family. For the rest of this session we delete the routes it sent in that family, ignore that
 * family in its UPDATEs and stop advertising it (our routes there are withdrawn), while the other
 * families go on. When the family cannot be named, or no family would remain, the session is reset
 * (the RFC's fallback). Returns the rest of the UPDATE to apply, or null when the session was reset.
 */
function disableFamilies(
  core: SpeakerCore,
  peer: PeerRt,
  conn: Conn,
  r: UpdateDecodeResult,
): UpdateDecodeResult | null {
  const n = peer.negotiated;
  const bad = r.errors.filter((e) => e.action === "afi-safi-disable");
  const fams = new Set<string>();
  for (const e of bad) {
    if (e.details.afi === undefined || e.details.safi === undefined) fams.clear();
    else fams.add(`${e.details.afi}/${e.details.safi}`);
    if (fams.size === 0) break;
  }
  const left = n ? [...n.families].filter((f) => !fams.has(f)) : [];
  if (!n || fams.size === 0 || left.length === 0) {
    decodeFailed(core, peer, conn, bad[0]!);
    return null;
  }
  const disabled = [...fams].filter((f) => n.families.has(f));
  if (disabled.length > 0) {
    core.log.warn(
      { peer: peer.opts.id, families: disabled, errors: bad.map((x) => x.message) },
      "bgp address family disabled for this session",
    );
    peer.negotiated = { ...n, families: new Set(left) };
    peer.rib.families = new Set(left);
    for (const f of disabled) {
      const afi = Number(f.split("/")[0]) as Afi;
      core.rib.dropPeer(peer.rib, (c) => onChange(core, c), afi);
    }
    // Our advertisements in the family: the peer's families changed, so it moves to the update group
    // that does not export the family, and what it had there is withdrawn.
    regroup(core, peer);
  }
  const others = r.errors.filter((e) => e.action !== "afi-safi-disable");
  let action: UpdateDecodeResult["action"];
  for (const e of others) action = worstAction(action, e.action);
  return { ...r, errors: others, action };
}

/** An UPDATE the FSM accepted: into the RIB, then End-of-RIB and max-prefix. */
export function processUpdate(
  core: SpeakerCore,
  peer: PeerRt,
  bytes: Uint8Array,
  r: UpdateDecodeResult,
): void {
  const fams = peer.negotiated?.families ?? new Set<string>();
  peer.received += applyUpdate(core.rib, peer.rib, fams, bytes, r, (c) => onChange(core, c));
  if (r.endOfRib) onEndOfRib(core, peer, r.endOfRib.afi);
  checkMaxPrefix(core, peer);
}

function checkMaxPrefix(core: SpeakerCore, peer: PeerRt): void {
  const mp = peer.opts.maxPrefixes;
  if (!mp) return;
  const accepted = peer.rib.accepted;
  if (accepted <= mp.limit) {
    peer.maxPrefixFired = false;
    return;
  }
  if (peer.maxPrefixFired) return;
  peer.maxPrefixFired = true;
  core.emit({ type: "max-prefix", peer: peer.opts.id, limit: mp.limit, accepted, action: mp.action });
  core.log.warn({ peer: peer.opts.id, limit: mp.limit, accepted }, "bgp max-prefix limit exceeded");
  if (mp.action === "teardown") {
    // RFC 4486: AFI (2), SAFI (1), limit (4).
    const data = new Uint8Array(7);
    data[1] = 1;
    data[2] = 1;
    new DataView(data.buffer).setUint32(3, mp.limit);
    fsmStep(core, peer, peer.conn, { type: "reset", reason: "max-prefix-exceeded", subcode: 1, data });
    peer.maxPrefixFired = false;
  }
}
