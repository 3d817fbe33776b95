/**
 * Export: best-path changes into each Established peer's Adj-RIB-Out and out on the wire as packed
 * UPDATEs (GoBGP's `propagateUpdate` and its per-peer outgoing queue). Changes are queued per peer in an
 * {@link OutQueue} and flushed at the end of the loop's tick, or at once past {@link FLUSH_THRESHOLD}.
 *
 * @packageDocumentation
 */

import { SessionState } from "../fsm/types.js";
import type { AttrSet } from "../rib/attrs.js";
import type { RouteChange } from "../rib/rib.js";
import type { Afi } from "../wire/types.js";
import type { PeerRt, SpeakerCore } from "./core.js";
import { countMessage } from "./events.js";
import { OutQueue, type SharedEncodings } from "./out-queue.js";
import { bestEvent } from "./status.js";

/** Prefixes queued for one peer past which they are sent without waiting for the end of the tick. */
export const FLUSH_THRESHOLD = 16_384;

/** Reports a Loc-RIB change (best-path event) and queues what it changes in every Adj-RIB-Out. */
export function onChange(core: SpeakerCore, c: RouteChange): void {
  if (core.listeners.size > 0) core.emit(bestEvent(core, c));
  const out = core.advertising;
  // One export per group of alike peers (a route reflector's clients are one group), not per peer.
  const batch = core.rib.beginExportBatch();
  for (let i = 0; i < out.length; i++) {
    const op = out[i]!;
    if (!op.rib.out) continue;
    const next = core.rib.exportChange(op.rib, c.afi, c.len, c.v4, c.v6, c.best, batch);
    if (next !== undefined) queueOut(core, op, c.afi, c.len, c.v4, c.v6, next);
  }
}

/** Queues one Adj-RIB-Out change of `op` (`set` null: withdraw). */
export function queueOut(
  core: SpeakerCore,
  op: PeerRt,
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  set: AttrSet | null,
): void {
  op.pending.add(afi, len, v4, v6, set);
  core.dirty.add(op);
  if (op.pending.size >= FLUSH_THRESHOLD) flushPeer(core, op);
}

/** Walks the Loc-RIB and brings `op`'s Adj-RIB-Out up to date (initial advertisement, policy change). */
export function reexport(core: SpeakerCore, op: PeerRt): void {
  if (!op.rib.out) return;
  core.rib.forEachBest((afi, len, v4, v6, best) => {
    const next = core.rib.exportChange(op.rib, afi, len, v4, v6, best);
    if (next !== undefined) queueOut(core, op, afi, len, v4, v6, next);
  });
  // Destinations gone from the Loc-RIB but still advertised.
  const stale: [Afi, number, number, Uint8Array | null][] = [];
  op.rib.out.forEach((afi, len, v4, v6) => {
    if (!core.rib.best(afi, len, v4, v6)) stale.push([afi, len, v4, v6]);
  });
  for (const [afi, len, v4, v6] of stale) {
    const next = core.rib.exportChange(op.rib, afi, len, v4, v6, null);
    if (next !== undefined) queueOut(core, op, afi, len, v4, v6, next);
  }
}

/** ROUTE-REFRESH: send the whole Adj-RIB-Out again. */
export function resendOut(core: SpeakerCore, op: PeerRt): void {
  op.rib.out?.forEach((afi, len, v4, v6, set) => {
    queueOut(core, op, afi, len, v4, v6, set);
  });
}

/** Sends what every dirty peer has queued. */
export function flushAll(core: SpeakerCore): void {
  if (core.dirty.size === 0) return;
  // Peers that get the same prefixes with the same attributes get the same bytes, encoded once.
  const shared: SharedEncodings = new Map();
  for (const op of [...core.dirty]) flushPeer(core, op, shared);
  core.dirty.clear();
}

/** Sends what `op` has queued (or drops it when the session is not Established). */
export function flushPeer(core: SpeakerCore, op: PeerRt, shared?: SharedEncodings): void {
  const s = op.conn.socket;
  if (!s || op.conn.fsm.state !== SessionState.Established) {
    op.pending.clear();
    return;
  }
  let msgs: Uint8Array[];
  const codec = op.conn.codec;
  try {
    // RFC 8654 §4: a route that does not fit this peer's message size is not advertised to it, and
    // withdrawn if it had been; the rest of the batch still goes out and the Adj-RIB-Out keeps only
    // what was sent.
    // Built only when a route does not fit: most flushes have none, and an OutQueue is not free.
    let withdraw: OutQueue | undefined;
    let first: unknown;
    msgs = op.pending.drain(
      codec,
      (afi, len, v4, v6, set, err) => {
        first ??= err;
        withdraw ??= new OutQueue();
        if (core.rib.unadvertise(op.rib, afi, len, v4, v6, set)) withdraw.add(afi, len, v4, v6, null);
      },
      shared,
    );
    if (withdraw !== undefined) {
      core.log.warn(
        { peer: op.opts.id, withdrawn: withdraw.size, maxMessageSize: codec.maxMessageSize, err: first },
        "bgp routes too large for peer not advertised",
      );
      msgs.push(...withdraw.drain(codec));
    }
  } catch (e) {
    op.pending.clear();
    core.log.error({ peer: op.opts.id, err: e }, "bgp update encode failed");
    return;
  }
  s.cork();
  for (const m of msgs) s.write(m);
  s.uncork();
  countMessage(op.out, 2, msgs.length);
}
