/**
 * Graceful restart, receiving side (RFC 4724 §4.2): when a session of a peer that can restart ends
 * without a NOTIFICATION, its routes stay (marked stale) until it is back and has sent End-of-RIB for
 * each family, or until the restart / stale-routes timer runs out. GoBGP keeps the same bookkeeping
 * apart from its FSM handler; so do we: the session calls in here at session down, at Established and
 * on each End-of-RIB.
 *
 * @packageDocumentation
 */

import type { Negotiated } from "../fsm/types.js";
import type { Afi } from "../wire/types.js";
import { onChange } from "./adj-rib-out.js";
import type { PeerRt, SpeakerCore } from "./core.js";
import { SPEAKER_DEFAULTS } from "./options.js";

/**
 * At session down: keeps the peer's routes as stale and starts the restart timer when the peer can
 * restart, the session did not end by NOTIFICATION and the peer is still configured. Returns whether
 * it did (otherwise the caller drops the routes).
 */
export function keepForRestart(
  core: SpeakerCore,
  peer: PeerRt,
  n: Negotiated | null,
  byNotification: boolean,
): boolean {
  const gr = n?.gracefulRestart;
  if (peer.removed || !peer.opts.gracefulRestart || !gr || byNotification) return false;
  core.rib.markStale(peer.rib);
  if (peer.staleTimer) clearTimeout(peer.staleTimer);
  peer.staleTimer = null;
  if (peer.restartTimer) clearTimeout(peer.restartTimer);
  peer.restartTimer = setTimeout(
    () => core.enqueue(() => staleExpired(core, peer)),
    Math.max(1, gr.restartTime) * 1000,
  );
  peer.restartTimer.unref?.();
  return true;
}

/**
 * At Established: a peer back within its restart time keeps its stale routes until End-of-RIB or the
 * stale-routes timer; one that no longer announces graceful restart loses them now.
 */
export function restarted(core: SpeakerCore, peer: PeerRt, n: Negotiated): void {
  if (!peer.restartTimer) return;
  clearTimeout(peer.restartTimer);
  peer.restartTimer = null;
  if (n.gracefulRestart === null) {
    core.rib.sweepStale(peer.rib, (c) => onChange(core, c));
    return;
  }
  const t = core.o.staleRoutesTime ?? SPEAKER_DEFAULTS.staleRoutesTime;
  peer.staleTimer = setTimeout(() => core.enqueue(() => staleExpired(core, peer)), t * 1000);
  peer.staleTimer.unref?.();
}

/** The restart or stale-routes timer ran out: the stale routes go. */
function staleExpired(core: SpeakerCore, peer: PeerRt): void {
  clearGrTimers(peer);
  if (peer.removed) return;
  core.log.info({ peer: peer.opts.id }, "bgp stale routes expired");
  core.rib.sweepStale(peer.rib, (c) => onChange(core, c));
}

/** Stops both timers (peer removed, or its routes dropped). */
export function clearGrTimers(peer: PeerRt): void {
  if (peer.restartTimer) clearTimeout(peer.restartTimer);
  if (peer.staleTimer) clearTimeout(peer.staleTimer);
  peer.restartTimer = null;
  peer.staleTimer = null;
}

/** End-of-RIB of `afi` from a restarted peer: its routes of that family not sent again go. */
export function onEndOfRib(core: SpeakerCore, peer: PeerRt, afi: number): void {
  if (!peer.staleTimer) return;
  core.rib.sweepStale(peer.rib, (c) => onChange(core, c), afi as Afi);
  if (core.rib.countStale(peer.rib) === 0) clearGrTimers(peer);
}
