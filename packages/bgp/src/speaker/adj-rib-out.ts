/**
 * Export: best-path changes into the Adj-RIB-Out of each update group and out on the wire as packed
 * UPDATEs (FRR's update-groups; GoBGP's `propagateUpdate`). Peers that export alike (same export policy,
 * iBGP, route-reflector client, next-hop-self, local addresses, families) under the same negotiated
 * codec context form one group: a best-path change is exported once per group into ONE Adj-RIB-Out, and
 * each flush is encoded once and written to every member, which skips only its own routes (a route is
 * never sent back to the peer it came from). Per member there is only what must differ: a private queue
 * for the full table it gets when it joins (or on ROUTE-REFRESH), always written before the group's.
 *
 * Changes are queued per group (and per member for the private part) and flushed at the end of the
 * loop's tick, or at once past {@link FLUSH_THRESHOLD}.
 *
 * @packageDocumentation
 */

import { SessionState } from "../fsm/types.js";
import type { AttrSet } from "../rib/attrs.js";
import type { Path } from "../rib/decision.js";
import type { RouteChange } from "../rib/rib.js";
import { Afi } from "../wire/types.js";
import type { PeerRt, SpeakerCore, UpdateGroup } from "./core.js";
import { countMessage } from "./events.js";
import { GroupQueue, NO_SOURCE } from "./group-queue.js";
import { ctxKey, OutQueue, type SharedEncodings } from "./out-queue.js";
import { bestEvent } from "./status.js";

/** Prefixes queued for one peer or group past which they are sent without waiting for the end of the tick. */
export const FLUSH_THRESHOLD = 16_384;

/** Reports a Loc-RIB change (best-path event) and queues what it changes in every group's Adj-RIB-Out. */
export function onChange(core: SpeakerCore, c: RouteChange): void {
  if (core.listeners.size > 0) core.emit(bestEvent(core, c));
  if (core.groups.size === 0 || !core.exporting) return;
  const batch = core.rib.beginExportBatch();
  const prevSrc = c.previous ? c.previous.peer.index : NO_SOURCE;
  for (const g of core.groups.values()) exportTo(core, g, c.afi, c.len, c.v4, c.v6, c.best, prevSrc, batch);
}

/**
 * Brings group `g`'s entry for one destination in line with its best path `best` and queues the change.
 * `prevSrc`: the source of the best path the entry was exported from (the entry always follows the
 * Loc-RIB, so that is the previous best path's peer).
 */
function exportTo(
  core: SpeakerCore,
  g: UpdateGroup,
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  best: Path | null,
  prevSrc: number,
  batch?: number,
): void {
  const out = g.rib.out!;
  const prev = (afi === Afi.IPv4 ? out.getV4(v4, len) : out.getV6(v6!, len)) ?? null;
  const changed = core.rib.exportChange(g.rib, afi, len, v4, v6, best, batch);
  const next = changed === undefined ? prev : changed;
  const src0 = prev === null ? NO_SOURCE : prevSrc;
  const src1 = next === null || best === null ? NO_SOURCE : best.peer.index;
  // Same attributes from another source still changes who must not get the route.
  if (changed === undefined && src0 === src1) return;
  if (prev !== null) countOwn(g, src0, -1);
  if (next !== null) countOwn(g, src1, 1);
  g.queue.add(afi, len, v4, v6, prev, src0, next, src1);
  core.dirtyGroups.add(g);
  if (g.queue.size >= FLUSH_THRESHOLD) flushGroup(core, g);
}

function countOwn(g: UpdateGroup, src: number, d: number): void {
  if (src === NO_SOURCE) return;
  const n = (g.own.get(src) ?? 0) + d;
  if (n === 0) g.own.delete(src);
  else g.own.set(src, n);
}

/** The RIB index of the peer the best path of a destination came from. */
function sourceOf(core: SpeakerCore, afi: Afi, len: number, v4: number, v6: Uint8Array | null): number {
  return core.rib.best(afi, len, v4, v6)?.peer.index ?? NO_SOURCE;
}

/** Queues one change for `op` alone (`set` null: withdraw). */
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

/** The group key of an Established peer: its export group and what the encoding depends on. */
function groupKey(core: SpeakerCore, op: PeerRt): string {
  return `${core.rib.exportGroupId(op.rib)}|${ctxKey(op.conn.codec)}`;
}

/** The group for `key`, made for `like` (its Adj-RIB-Out exported from the whole Loc-RIB) if none. */
function groupFor(core: SpeakerCore, key: string, like: PeerRt): UpdateGroup {
  let g = core.groups.get(key);
  if (g) {
    // Its members get what is queued first: a newcomer's full table is the group's state after that.
    flushGroup(core, g);
    return g;
  }
  g = {
    key,
    rib: core.rib.addUpdateGroup(like.rib),
    codec: like.conn.codec,
    members: [],
    queue: new GroupQueue(),
    own: new Map(),
  };
  const made = g;
  core.rib.forEachBest((afi, len, v4, v6, best) => {
    if (core.rib.exportChange(made.rib, afi, len, v4, v6, best) != null) countOwn(made, best.peer.index, 1);
  });
  core.groups.set(key, g);
  return g;
}

/**
 * Starts advertising to an Established peer: it joins the update group of peers that export alike (a
 * new one if none) and is queued, for itself, the group's whole Adj-RIB-Out but its own routes.
 */
export function joinGroup(core: SpeakerCore, op: PeerRt): void {
  if (!core.exporting || op.group) return;
  const g = groupFor(core, groupKey(core, op), op);
  g.members.push(op);
  op.group = g;
  queueView(core, op, null, g);
}

/** Stops advertising to `op` (session down, peer removed); its group goes with its last member. */
export function leaveGroup(core: SpeakerCore, op: PeerRt): void {
  const g = op.group;
  op.group = null;
  op.pending.clear();
  core.dirty.delete(op);
  if (!g) return;
  g.members = g.members.filter((m) => m !== op);
  if (g.members.length === 0) dropGroup(core, g);
}

function dropGroup(core: SpeakerCore, g: UpdateGroup): void {
  if (core.groups.get(g.key) === g) core.groups.delete(g.key);
  core.dirtyGroups.delete(g);
  g.queue.clear();
  core.rib.clearOut(g.rib);
}

/**
 * Queues for `op` alone what takes it from what group `from` advertises it (nothing when null) to what
 * `to` advertises it: each group's Adj-RIB-Out without `op`'s own routes. Both groups must have been
 * flushed, so the group's state is what its members were sent.
 */
function queueView(core: SpeakerCore, op: PeerRt, from: UpdateGroup | null, to: UpdateGroup): void {
  const me = op.rib.index;
  const viewOf = (g: UpdateGroup, afi: Afi, len: number, v4: number, v6: Uint8Array | null) => {
    const out = g.rib.out!;
    const set = afi === Afi.IPv4 ? out.getV4(v4, len) : out.getV6(v6!, len);
    if (set === undefined || sourceOf(core, afi, len, v4, v6) === me) return null;
    return set;
  };
  to.rib.out!.forEach((afi, len, v4, v6, set) => {
    const next = sourceOf(core, afi, len, v4, v6) === me ? null : set;
    const prev = from ? viewOf(from, afi, len, v4, v6) : null;
    if (next !== prev) queueOut(core, op, afi, len, v4, v6, next);
  });
  if (!from) return;
  const toOut = to.rib.out!;
  from.rib.out!.forEach((afi, len, v4, v6) => {
    const there = afi === Afi.IPv4 ? toOut.getV4(v4, len) : toOut.getV6(v6!, len);
    if (there === undefined && viewOf(from, afi, len, v4, v6) !== null) {
      queueOut(core, op, afi, len, v4, v6, null);
    }
  });
}

/**
 * After a change of what `op` is exported (its policy, flags, families or next hops): moves it to the
 * group it now belongs to, queueing for it alone the difference between the two groups' views.
 */
export function regroup(core: SpeakerCore, op: PeerRt): void {
  const from = op.group;
  if (!from || !core.exporting) return;
  const key = groupKey(core, op);
  if (key === from.key) return;
  flushGroup(core, from);
  const to = groupFor(core, key, op);
  from.members = from.members.filter((m) => m !== op);
  to.members.push(op);
  op.group = to;
  queueView(core, op, from, to);
  if (from.members.length === 0) dropGroup(core, from);
}

/**
 * Brings every group's Adj-RIB-Out up to date with the Loc-RIB after a change that can change what any
 * peer is exported (a peer's route-reflector flag, policies), moving each peer to its group first.
 */
export function reexportAll(core: SpeakerCore): void {
  for (const p of core.peersById.values()) regroup(core, p);
  for (const g of [...core.groups.values()]) {
    core.rib.forEachBest((afi, len, v4, v6, best) => {
      exportTo(core, g, afi, len, v4, v6, best, best.peer.index);
    });
    // Destinations gone from the Loc-RIB but still advertised (source unknown: withdrawn from all).
    const stale: [Afi, number, number, Uint8Array | null][] = [];
    g.rib.out!.forEach((afi, len, v4, v6) => {
      if (!core.rib.best(afi, len, v4, v6)) stale.push([afi, len, v4, v6]);
    });
    for (const [afi, len, v4, v6] of stale) exportTo(core, g, afi, len, v4, v6, null, NO_SOURCE);
  }
}

/** ROUTE-REFRESH: send `op` its whole view of the group's Adj-RIB-Out again. */
export function resendOut(core: SpeakerCore, op: PeerRt): void {
  const g = op.group;
  if (!g) return;
  flushGroup(core, g);
  queueView(core, op, null, g);
}

/** Sends what every dirty peer and group has queued (a peer's own queue before its group's). */
export function flushAll(core: SpeakerCore): void {
  if (core.dirty.size > 0) {
    // Peers that get the same prefixes with the same attributes get the same bytes, encoded once.
    const shared: SharedEncodings = new Map();
    for (const op of [...core.dirty]) flushPeer(core, op, shared);
    core.dirty.clear();
  }
  for (const g of [...core.dirtyGroups]) flushGroup(core, g);
  core.dirtyGroups.clear();
}

function established(op: PeerRt) {
  const s = op.conn.socket;
  return s && op.conn.fsm.state === SessionState.Established ? s : null;
}

/**
 * Encodes what group `g` has queued once and writes it to every member, each skipping the segments of
 * its own routes. Members' own queues are written first.
 */
export function flushGroup(core: SpeakerCore, g: UpdateGroup): void {
  for (const m of g.members) {
    if (m.pending.size > 0) {
      flushPeer(core, m);
      core.dirty.delete(m);
    }
  }
  core.dirtyGroups.delete(g);
  if (g.queue.size === 0) return;
  let enc: ReturnType<GroupQueue["drain"]>;
  try {
    // RFC 8654 §4: a route that does not fit the group's message size is not advertised, and withdrawn
    // if it had been; the rest of the batch still goes out and the Adj-RIB-Out keeps only what was sent.
    enc = g.queue.drain(g.codec, (afi, len, v4, v6, set, src) => {
      if (!core.rib.unadvertise(g.rib, afi, len, v4, v6, set)) return false;
      countOwn(g, src, -1);
      return true;
    });
  } catch (e) {
    g.queue.clear();
    core.log.error({ group: g.key, err: e }, "bgp update encode failed");
    return;
  }
  if (enc.unsendable > 0) {
    core.log.warn(
      {
        peers: g.members.map((m) => m.opts.id),
        withdrawn: enc.unsendable,
        maxMessageSize: g.codec.maxMessageSize,
        err: enc.error,
      },
      "bgp routes too large for peer not advertised",
    );
  }
  const { bytes, segments } = enc;
  for (const m of g.members) {
    const s = established(m);
    if (!s) continue;
    const me = m.rib.index;
    let count = 0;
    let start = -1;
    let end = -1;
    s.cork();
    for (const seg of segments) {
      if (seg.skip === me) {
        if (start >= 0) s.write(bytes.subarray(start, end));
        start = -1;
        continue;
      }
      if (start < 0) start = seg.start;
      end = seg.end;
      count += seg.messages;
    }
    if (start >= 0) s.write(bytes.subarray(start, end));
    const own = enc.only.get(me);
    if (own) {
      for (const b of own) s.write(b);
      count += own.length;
    }
    s.uncork();
    countMessage(m.out, 2, count);
  }
}

/** Sends what `op` alone has queued (or drops it when the session is not Established). */
export function flushPeer(core: SpeakerCore, op: PeerRt, shared?: SharedEncodings): void {
  const s = established(op);
  if (!s) {
    op.pending.clear();
    return;
  }
  let msgs: Uint8Array[];
  const codec = op.conn.codec;
  try {
    // Only what its group already sent its other members is queued here, under the same codec context,
    // so a route that does not fit has been taken out of the group's Adj-RIB-Out already; if one still
    // does not fit, it is withdrawn from this peer rather than failing the batch.
    // Built only when a route does not fit: most flushes have none, and an OutQueue is not free.
    let withdraw: OutQueue | undefined;
    let first: unknown;
    msgs = op.pending.drain(
      codec,
      (afi, len, v4, v6, _set, err) => {
        first ??= err;
        withdraw ??= new OutQueue();
        withdraw.add(afi, len, v4, v6, null);
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
