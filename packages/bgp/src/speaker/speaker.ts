/**
 * The speaker's public face (GoBGP's `BgpServer` API): a thin facade over the parts it wires together —
 * the shared state and event loop (`core.ts`), the listener (`listener.ts`), one session per peer
 * driving the pure FSM (`session.ts`, inbound messages in `receive.ts`), graceful restart
 * (`graceful-restart.ts`) and export to the Adj-RIB-Out (`adj-rib-out.ts`). Every call that changes
 * state runs as a task of the core's serialized loop.
 *
 * @packageDocumentation
 */

import type { Socket } from "node:net";
import { BgpConfigError, invalid } from "../errors/config-error.js";
import { localCapabilities } from "../fsm/negotiate.js";
import { createFsm } from "../fsm/step.js";
import type { FsmConfig } from "../fsm/types.js";
import { SessionState } from "../fsm/types.js";
import { parseCommunity, parseLargeCommunity, parseRibPrefix } from "../rib/policy.js";
import { ipFamily as isIP } from "../wire/ip.js";
import { Afi, type PathAttributes } from "../wire/types.js";
import { leaveGroup, onChange, reexportAll } from "./adj-rib-out.js";
import { type PeerRt, SpeakerCore } from "./core.js";
import { type BestRoute, emptyCounters, type PeerStatus, type SpeakerEvent } from "./events.js";
import { clearGrTimers } from "./graceful-restart.js";
import { closeListeners, listen } from "./listener.js";
import {
  duplicatePeer,
  type NormalizedPeer,
  normalizePeer,
  type PeerOptions,
  SPEAKER_DEFAULTS,
  type SpeakerOptions,
} from "./options.js";
import { OutQueue } from "./out-queue.js";
import { applyNextHops, fsmStep, send, socketsClosed } from "./session.js";
import { bestRoute, status } from "./status.js";

/** Attributes of a route the speaker originates. */
export interface OriginateOptions {
  /** Next hop (default: our session address toward each peer). */
  nextHop?: string | undefined;
  /** ORIGIN (default `igp`). */
  origin?: "igp" | "egp" | "incomplete" | undefined;
  /** AS path to start from (our AS is prepended toward eBGP peers). */
  asPath?: readonly number[] | undefined;
  med?: number | undefined;
  localPref?: number | undefined;
  /** RFC 1997 communities, `"a:b"` or well-known names. */
  communities?: readonly string[] | undefined;
  /** RFC 8092 large communities, `"a:b:c"`. */
  largeCommunities?: readonly string[] | undefined;
}

/** A running BGP speaker. */
export interface Speaker extends AsyncDisposable {
  /** Addresses actually listened on (port 0 resolved). */
  readonly listening: readonly { host: string; port: number }[];
  /** Adds a peer and starts its session. Returns the peer id. Throws {@link BgpConfigError}. */
  addPeer(peer: PeerOptions): string;
  /** Stops a peer's session (Cease/Peer De-configured), withdraws its routes and forgets it. */
  removePeer(address: string, port?: number): Promise<void>;
  /**
   * Changes a peer. Policy, route-reflector and next-hop-self changes apply in place (re-export; import
   * changes ask the peer for a ROUTE-REFRESH); other changes restart the session.
   */
  updatePeer(address: string, changes: Partial<Omit<PeerOptions, "address">>, port?: number): void;
  /** Originates (or replaces) a route. Throws {@link BgpConfigError} for a malformed prefix or attribute. */
  originate(prefix: string, options?: OriginateOptions): void;
  /** Withdraws a route this speaker originated. Returns false when there was none. */
  withdraw(prefix: string): boolean;
  /** Calls `listener` for every event; returns an unsubscribe function. */
  on(listener: (e: SpeakerEvent) => void): () => void;
  /** The events as an async iterator (buffered while not consumed); ends when the speaker closes or `signal` aborts. */
  events(options?: { signal?: AbortSignal | undefined }): AsyncIterableIterator<SpeakerEvent>;
  /** Snapshot of all peers (state, counters). */
  peers(): PeerStatus[];
  /** Snapshot of one peer, or undefined. */
  peer(address: string, port?: number): PeerStatus | undefined;
  /** The Loc-RIB: every destination's best route. Walks the whole table. */
  routes(): BestRoute[];
  /** Best route of one prefix. */
  route(prefix: string): BestRoute | undefined;
  /** Number of destinations in the Loc-RIB. */
  readonly routeCount: number;
  /**
   * Sends Cease/Administrative Shutdown to every peer, closes listeners and sockets. Idempotent. With
   * `graceful: true` the sockets close without a NOTIFICATION: peers that help with graceful restart keep
   * our routes (as stale) until we are back and send End-of-RIB, or until our restart time runs out.
   */
  close(options?: { graceful?: boolean | undefined }): Promise<void>;
}

function famKey(f: "ipv4" | "ipv6"): string {
  return f === "ipv4" ? "1/1" : "2/1";
}

class SpeakerImpl implements Speaker {
  private readonly core: SpeakerCore;
  private readonly closeWaiters: (() => void)[] = [];

  constructor(o: SpeakerOptions) {
    this.core = new SpeakerCore(o);
  }

  get listening(): readonly { host: string; port: number }[] {
    return this.core.listening;
  }

  listen(): Promise<void> {
    return listen(this.core);
  }

  addPeer(p: PeerOptions): string {
    if (this.core.closing) throw new BgpConfigError("config-closed", "speaker is closed");
    const opts = normalizePeer(p, this.core.o);
    if (this.core.peersById.has(opts.id)) throw duplicatePeer(opts.id);
    const rp = this.core.rib.addPeer({
      address: opts.address,
      asn: opts.asn,
      routeReflectorClient: opts.routeReflectorClient,
      nextHopSelf: opts.nextHopSelf,
      importPolicy: opts.importPolicy,
      exportPolicy: opts.exportPolicy,
      families: opts.families.map(famKey),
    });
    const fsmConfig = this.fsmConfig(opts);
    const peer: PeerRt = {
      opts,
      rib: rp,
      fsmConfig,
      conn: this.core.newConn(createFsm(fsmConfig)),
      alt: null,
      timer: null,
      negotiated: null,
      establishedAt: null,
      in: emptyCounters(),
      out: emptyCounters(),
      received: 0,
      pending: new OutQueue(),
      group: null,
      restartTimer: null,
      staleTimer: null,
      maxPrefixFired: false,
      removed: false,
      closed: null,
    };
    this.core.peersById.set(opts.id, peer);
    this.core.peersByIndex.set(rp.index, peer);
    this.core.enqueue(() => fsmStep(this.core, peer, peer.conn, { type: "start" }));
    return opts.id;
  }

  private fsmConfig(opts: NormalizedPeer): FsmConfig {
    const families = opts.families.map(famKey);
    return {
      localAsn: this.core.o.asn,
      localId: this.core.o.routerId,
      peerAsn: opts.asn,
      passive: opts.passive,
      holdTime: opts.holdTime,
      connectRetryTime: opts.connectRetryTime,
      idleHoldTime: this.core.o.idleHoldTime ?? SPEAKER_DEFAULTS.idleHoldTime,
      maxIdleHoldTime: Math.max(
        this.core.o.maxIdleHoldTime ?? SPEAKER_DEFAULTS.maxIdleHoldTime,
        this.core.o.idleHoldTime ?? SPEAKER_DEFAULTS.idleHoldTime,
      ),
      idleHoldResetAfter: 300,
      capabilities: localCapabilities({
        asn: this.core.o.asn,
        families,
        addPathReceive: opts.addPathReceive ? families : [],
        gracefulRestartTime: opts.gracefulRestart
          ? (opts.gracefulRestartTime ??
            this.core.o.gracefulRestartTime ??
            SPEAKER_DEFAULTS.gracefulRestartTime)
          : undefined,
        forwardingPreserved: opts.gracefulRestart && (this.core.o.forwardingStatePreserved ?? false),
        extendedMessage: this.core.o.extendedMessage ?? true,
      }),
    };
  }

  async removePeer(address: string, port?: number): Promise<void> {
    const peer = this.core.find(address, port);
    const closed = socketsClosed(peer);
    this.core.enqueue(() => this.dropPeerNow(peer, 3));
    await closed;
  }

  private dropPeerNow(peer: PeerRt, ceaseSubcode: number): void {
    if (peer.removed) return;
    peer.removed = true;
    if (peer.alt) fsmStep(this.core, peer, peer.alt, { type: "stop", subcode: ceaseSubcode });
    fsmStep(this.core, peer, peer.conn, { type: "stop", subcode: ceaseSubcode });
    clearGrTimers(peer);
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    this.core.rib.dropPeer(peer.rib, (c) => onChange(this.core, c));
    this.core.rib.removePeer(peer.rib);
    this.core.peersById.delete(peer.opts.id);
    this.core.peersByIndex.delete(peer.rib.index);
    leaveGroup(this.core, peer);
  }

  updatePeer(address: string, changes: Partial<Omit<PeerOptions, "address">>, port?: number): void {
    const peer = this.core.find(address, port);
    const prev = peer.opts;
    const merged: PeerOptions = { ...prev, ...changes, address: prev.address } as PeerOptions;
    const next = normalizePeer(merged, this.core.o);
    const sessionChanged =
      next.id !== prev.id ||
      next.asn !== prev.asn ||
      next.passive !== prev.passive ||
      next.holdTime !== prev.holdTime ||
      next.connectRetryTime !== prev.connectRetryTime ||
      next.localAddress !== prev.localAddress ||
      next.addPathReceive !== prev.addPathReceive ||
      next.gracefulRestart !== prev.gracefulRestart ||
      next.gracefulRestartTime !== prev.gracefulRestartTime ||
      next.families.join() !== prev.families.join();
    if (sessionChanged) {
      this.core.enqueue(() => {
        this.dropPeerNow(peer, 6);
        this.addPeer(merged);
      });
      return;
    }
    this.core.enqueue(() => {
      peer.opts = next;
      this.core.rib.updatePeer(peer.rib, {
        importPolicy: next.importPolicy ?? { statements: [] },
        exportPolicy: next.exportPolicy ?? { statements: [] },
        routeReflectorClient: next.routeReflectorClient,
        nextHopSelf: next.nextHopSelf,
      });
      applyNextHops(peer);
      if (next.importPolicy !== prev.importPolicy && peer.conn.fsm.state === SessionState.Established) {
        // We keep no pre-policy Adj-RIB-In: ask the peer to send everything again (RFC 2918).
        if (peer.negotiated?.routeRefresh) {
          for (const f of next.families) {
            const [afi, safi] = f === "ipv4" ? [1, 1] : [2, 1];
            send(this.core, peer, peer.conn, { type: 5, afi, safi, subtype: 0 });
          }
        } else {
          fsmStep(this.core, peer, peer.conn, { type: "reset", reason: "admin-reset", subcode: 6 });
        }
      }
      // Route-reflector and export changes can change what every peer gets.
      reexportAll(this.core);
    });
  }

  originate(prefix: string, o: OriginateOptions = {}): void {
    const p = parseRibPrefix(prefix, "prefix");
    const attrs: PathAttributes = {
      origin: o.origin === "egp" ? 1 : o.origin === "incomplete" ? 2 : 0,
      asPath: o.asPath && o.asPath.length > 0 ? [{ type: 2, asns: [...o.asPath] }] : [],
    };
    if (o.med !== undefined) {
      if (!Number.isInteger(o.med) || o.med < 0 || o.med > 0xffffffff)
        throw invalid("med", o.med, "32-bit unsigned");
      attrs.med = o.med;
    }
    if (o.localPref !== undefined) {
      if (!Number.isInteger(o.localPref) || o.localPref < 0 || o.localPref > 0xffffffff) {
        throw invalid("localPref", o.localPref, "32-bit unsigned");
      }
      attrs.localPref = o.localPref;
    }
    if (o.communities?.length) attrs.communities = o.communities.map((c) => parseCommunity(c, "communities"));
    if (o.largeCommunities?.length) {
      attrs.largeCommunities = o.largeCommunities.map((c) => parseLargeCommunity(c, "largeCommunities"));
    }
    const nextHops: string[] = [];
    if (o.nextHop !== undefined) {
      const fam = isIP(o.nextHop);
      if (fam === 0 || (fam === 4) !== (p.afi === Afi.IPv4)) {
        throw invalid("nextHop", o.nextHop, "must be an address of the prefix's family");
      }
      nextHops.push(o.nextHop);
      if (p.afi === Afi.IPv4) attrs.nextHop = o.nextHop;
    }
    this.core.enqueue(() => {
      const c = this.core.rib.originate(p.afi, p.len, p.v4, p.v6, attrs, nextHops);
      if (c) onChange(this.core, c);
    });
  }

  withdraw(prefix: string): boolean {
    const p = parseRibPrefix(prefix, "prefix");
    const found = this.core.rib.candidates(p.afi, p.len, p.v4, p.v6).some((q) => q.peer.index === 0);
    this.core.enqueue(() => {
      const c = this.core.rib.withdrawLocal(p.afi, p.len, p.v4, p.v6);
      if (c) onChange(this.core, c);
    });
    return found;
  }

  on(listener: (e: SpeakerEvent) => void): () => void {
    this.core.listeners.add(listener);
    return () => this.core.listeners.delete(listener);
  }

  events(options: { signal?: AbortSignal | undefined } = {}): AsyncIterableIterator<SpeakerEvent> {
    const buf: SpeakerEvent[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const finish = () => {
      done = true;
      off();
      wake?.();
    };
    const off = this.on((e) => {
      buf.push(e);
      wake?.();
    });
    options.signal?.addEventListener("abort", finish, { once: true });
    void this.closedPromise().then(finish);
    const it: AsyncIterableIterator<SpeakerEvent> = {
      next: async () => {
        while (buf.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = null;
        if (buf.length > 0) return { value: buf.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  private closedPromise(): Promise<void> {
    if (this.core.closing) return this.core.closing;
    return new Promise((r) => this.closeWaiters.push(r));
  }

  peers(): PeerStatus[] {
    return [...this.core.peersById.values()].map((p) => status(this.core, p));
  }

  peer(address: string, port?: number): PeerStatus | undefined {
    try {
      return status(this.core, this.core.find(address, port));
    } catch {
      return undefined;
    }
  }

  get routeCount(): number {
    return this.core.rib.size;
  }

  routes(): BestRoute[] {
    const out: BestRoute[] = [];
    this.core.rib.forEachBest((afi, len, v4, v6, best, multi) => {
      out.push(bestRoute(this.core, { afi, len, v4, v6 }, best, multi));
    });
    return out;
  }

  route(prefix: string): BestRoute | undefined {
    const p = parseRibPrefix(prefix, "prefix");
    const best = this.core.rib.best(p.afi, p.len, p.v4, p.v6);
    if (!best) return undefined;
    return bestRoute(this.core, p, best, this.core.rib.multipath(p.afi, p.len, p.v4, p.v6));
  }

  close(options: { graceful?: boolean | undefined } = {}): Promise<void> {
    if (this.core.closing) return this.core.closing;
    const sockets: Socket[] = [];
    for (const p of this.core.peersById.values()) {
      for (const c of [p.conn, p.alt]) if (c?.socket) sockets.push(c.socket);
    }
    const closed = Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            s.once("close", () => resolve());
            setTimeout(() => {
              s.destroy();
              resolve();
            }, 2000).unref();
          }),
      ),
    );
    this.core.enqueue(() => {
      // Every session ends here: withdrawing each dropped peer's routes from the others' Adj-RIB-Outs
      // would send nothing (their sessions end in this same task) and costs peers × routes (minutes for
      // a route reflector with hundreds of clients). Best-path events are still emitted.
      this.core.exporting = false;
      for (const p of [...this.core.peersById.values()]) {
        if (options.graceful) {
          // RFC 4724: a session that ends without a NOTIFICATION is a restart to a helping peer.
          for (const c of [p.conn, p.alt]) {
            const s = c?.socket;
            if (c && s) {
              c.socket = null;
              s.destroy();
            }
          }
        }
        this.dropPeerNow(p, 2);
      }
    });
    this.core.closing = (async () => {
      await closeListeners(this.core);
      await closed;
      for (const w of this.closeWaiters) w();
    })();
    return this.core.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates a speaker, starts listening and starts the sessions of `options.peers`. Rejects with a
 * {@link BgpConfigError} for an invalid configuration or an address it cannot listen on.
 */
export async function createSpeaker(options: SpeakerOptions): Promise<Speaker> {
  const s = new SpeakerImpl(options);
  // Validate every peer before opening any socket.
  const ids = new Set<string>();
  (options.peers ?? []).forEach((p, i) => {
    const id = normalizePeer(p, options, `peers[${i}]`).id;
    if (ids.has(id)) throw duplicatePeer(id);
    ids.add(id);
  });
  try {
    await s.listen();
  } catch (e) {
    await s.close();
    throw e;
  }
  for (const p of options.peers ?? []) s.addPeer(p);
  return s;
}
