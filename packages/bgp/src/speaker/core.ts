/**
 * The state one speaker shares between its parts (listener, sessions, graceful restart, Adj-RIB-Out),
 * and the one serialized event loop every change runs on — GoBGP's `BgpServer` without its API: the
 * facade (`speaker.ts`) owns the public calls, this object owns the data they and the sockets mutate.
 *
 * Every state change runs as a task of one FIFO queue drained synchronously on the Node event loop:
 * a task never awaits, so socket events, timers and API calls cannot interleave their mutations.
 *
 * @packageDocumentation
 */

import type { Server, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { FsmConfig, FsmState, Negotiated } from "../fsm/types.js";
import { Rib, type RibPeer } from "../rib/rib.js";
import { DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { createFramer, type Framer } from "../wire/framer.js";
import type { CodecContext } from "../wire/types.js";
import { flushAll } from "./adj-rib-out.js";
import type { MessageCounters, SpeakerEvent } from "./events.js";
import {
  canonicalAddress,
  checkSpeakerOptions,
  type Logger,
  type NormalizedPeer,
  peerId,
  type SpeakerOptions,
  silentLogger,
  unknownPeer,
} from "./options.js";
import type { GroupQueue } from "./group-queue.js";
import type { OutQueue } from "./out-queue.js";

/** One TCP connection of a peer and the FSM running on it. */
export interface Conn {
  socket: Socket | null;
  framer: Framer;
  fsm: FsmState;
  codec: CodecContext;
}

/** A configured peer: its session(s), RIB handle, counters and timers. */
export interface PeerRt {
  opts: NormalizedPeer;
  rib: RibPeer;
  fsmConfig: FsmConfig;
  /** The session (RFC 4271 §6.8: the one that survives collision detection). */
  conn: Conn;
  /** A second, inbound session run while a collision is undecided. */
  alt: Conn | null;
  timer: NodeJS.Timeout | null;
  negotiated: Negotiated | null;
  establishedAt: number | null;
  in: MessageCounters;
  out: MessageCounters;
  received: number;
  /**
   * What this peer alone is sent (a full table when it joins its update group, a route refresh),
   * always written before its group's queue.
   */
  pending: OutQueue;
  /** The update group it is advertised to through (Established), else null. */
  group: UpdateGroup | null;
  restartTimer: NodeJS.Timeout | null;
  staleTimer: NodeJS.Timeout | null;
  maxPrefixFired: boolean;
  removed: boolean;
  closed: Promise<void> | null;
}

/**
 * An update group (FRR's update-group): the Established peers that export every route alike (same
 * {@link Rib.exportGroupId}) under the same codec context. They share one Adj-RIB-Out, one export
 * computation per best-path change and one encoded UPDATE stream; per member only a route's return to
 * its own source is left out (see `group-queue.ts`).
 */
export interface UpdateGroup {
  readonly key: string;
  /** The group's pseudo-peer in the RIB ({@link Rib.addUpdateGroup}): Adj-RIB-Out and export cache. */
  readonly rib: RibPeer;
  readonly codec: CodecContext;
  members: PeerRt[];
  readonly queue: GroupQueue;
  /** Per source peer (RIB index): entries of the group's Adj-RIB-Out whose best path came from it. */
  readonly own: Map<number, number>;
}

/** Shared state and event loop of one speaker. */
export class SpeakerCore {
  readonly listening: { host: string; port: number }[] = [];
  readonly rib: Rib;
  readonly log: Logger;
  readonly peersById = new Map<string, PeerRt>();
  readonly peersByIndex = new Map<number, PeerRt>();
  readonly servers: Server[] = [];
  readonly listeners = new Set<(e: SpeakerEvent) => void>();
  closing: Promise<void> | null = null;
  /** Peers with changes queued in their own {@link OutQueue}, flushed at the end of the tick. */
  readonly dirty = new Set<PeerRt>();
  /** Update groups by key; each best-path change is exported once per group. */
  readonly groups = new Map<string, UpdateGroup>();
  /** Update groups with changes queued, flushed at the end of the tick. */
  readonly dirtyGroups = new Set<UpdateGroup>();
  /** False once the speaker is closing: nothing is exported any more. */
  exporting = true;
  private readonly queue: (() => void)[] = [];
  private draining = false;
  private flushScheduled = false;

  constructor(readonly o: SpeakerOptions) {
    checkSpeakerOptions(o);
    this.log = o.logger ?? silentLogger;
    this.rib = new Rib({
      localAsn: o.asn,
      routerId: o.routerId,
      clusterId: o.clusterId,
      alwaysCompareMed: o.alwaysCompareMed,
      maxPaths: o.maxPaths,
      igpCost: o.igpCost,
    });
  }

  /** Runs `task` on the loop: now when the loop is idle, after the tasks already queued otherwise. */
  enqueue(task: () => void): void {
    this.queue.push(task);
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const t = this.queue.shift()!;
        try {
          t();
        } catch (e) {
          this.log.error({ err: e }, "bgp task failed");
        }
      }
    } finally {
      this.draining = false;
    }
    // Coalesce the changes of everything done in this turn of the event loop (many originate() calls,
    // the UPDATEs read from every socket in one poll) into packed UPDATEs: a route reflector then
    // writes each client one buffer per turn, not one per client UPDATE it reflects (a flush per
    // socket read cost one write per client per client: N² writes for N clients).
    if ((this.dirty.size > 0 || this.dirtyGroups.size > 0) && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        flushAll(this);
      });
    }
  }

  /** The FSM's clock (monotonic milliseconds). */
  now(): number {
    return performance.now();
  }

  emit(e: SpeakerEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, "bgp event listener threw");
      }
    }
  }

  /** The peer at `address` (and `port`, needed only when several peers share the address). */
  find(address: string, port?: number): PeerRt {
    const id = peerId(address, port);
    const p = this.peersById.get(id);
    if (p) return p;
    if (port === undefined) {
      const a = canonicalAddress(address);
      const matches = [...this.peersById.values()].filter((x) => x.opts.address === a);
      if (matches.length === 1) return matches[0]!;
    }
    throw unknownPeer(id);
  }

  newConn(fsm: FsmState): Conn {
    return { socket: null, framer: createFramer(), fsm, codec: DEFAULT_CODEC_CONTEXT };
  }
}
