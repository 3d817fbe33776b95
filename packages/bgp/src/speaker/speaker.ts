/**
 * The BGP speaker over `node:net`: sessions (the pure FSM driven by real sockets and timers), collision
 * detection, the RIB, UPDATE packing, graceful restart (receiving side), max-prefix limits, events and
 * counters.
 *
 * Every state change runs as a task of one FIFO queue drained synchronously on the Node event loop:
 * a task never awaits, so socket events, timers and API calls cannot interleave their mutations.
 *
 * @packageDocumentation
 */

import { createServer, connect as netConnect, isIP, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { BgpConfigError, invalid } from "../errors/config-error.js";
import { localCapabilities, resolveCollision } from "../fsm/negotiate.js";
import { createFsm, nextDeadline, step } from "../fsm/step.js";
import type { FsmAction, FsmConfig, FsmEvent, FsmState, Negotiated } from "../fsm/types.js";
import { SessionState } from "../fsm/types.js";
import type { AttrSet } from "../rib/attrs.js";
import type { Path } from "../rib/decision.js";
import { parseCommunity, parseLargeCommunity, parseRibPrefix } from "../rib/policy.js";
import { Rib, type RibPeer, type RouteChange } from "../rib/rib.js";
import { formatRibPrefix } from "../rib/table.js";
import { DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { isBgpWireError, worstAction } from "../wire/errors.js";
import { validateUpdate } from "../wire/validate.js";
import { createFramer, type Framer } from "../wire/framer.js";
import { messageType } from "../wire/header.js";
import { decodeMessage, encodeMessage } from "../wire/message.js";
import { decodeUpdate, endOfRib, type UpdateDecodeResult } from "../wire/update.js";
import { applyUpdate } from "./apply-update.js";
import { OutQueue } from "./out-queue.js";
import { Afi, type BgpMessage, type CodecContext, type PathAttributes } from "../wire/types.js";
import {
  type BestPathEvent,
  type BestRoute,
  countMessage,
  emptyCounters,
  type MessageCounters,
  type PeerStatus,
  type SpeakerEvent,
} from "./events.js";
import {
  canonicalAddress,
  checkSpeakerOptions,
  duplicatePeer,
  type Logger,
  type NormalizedPeer,
  normalizePeer,
  type PeerOptions,
  peerId,
  SPEAKER_DEFAULTS,
  type SpeakerOptions,
  unknownPeer,
} from "./options.js";

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
  /** Sends Cease/Administrative Shutdown to every peer, closes listeners and sockets. Idempotent. */
  close(): Promise<void>;
}

interface Conn {
  socket: Socket | null;
  framer: Framer;
  fsm: FsmState;
  codec: CodecContext;
}

interface PeerRt {
  opts: NormalizedPeer;
  rib: RibPeer;
  fsmConfig: FsmConfig;
  conn: Conn;
  alt: Conn | null;
  timer: NodeJS.Timeout | null;
  negotiated: Negotiated | null;
  establishedAt: number | null;
  in: MessageCounters;
  out: MessageCounters;
  received: number;
  pending: OutQueue;
  restartTimer: NodeJS.Timeout | null;
  staleTimer: NodeJS.Timeout | null;
  maxPrefixFired: boolean;
  removed: boolean;
  closed: Promise<void> | null;
}

const FLUSH_THRESHOLD = 16_384;
const EMPTY = new Uint8Array(0);

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

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

function famKey(f: "ipv4" | "ipv6"): string {
  return f === "ipv4" ? "1/1" : "2/1";
}

class SpeakerImpl implements Speaker {
  readonly listening: { host: string; port: number }[] = [];
  private readonly rib: Rib;
  private readonly log: Logger;
  private readonly peersById = new Map<string, PeerRt>();
  private readonly peersByIndex = new Map<number, PeerRt>();
  private readonly servers: Server[] = [];
  private readonly listeners = new Set<(e: SpeakerEvent) => void>();
  private readonly queue: (() => void)[] = [];
  private draining = false;
  private closing: Promise<void> | null = null;
  private readonly dirty = new Set<PeerRt>();
  /** Peers with an Adj-RIB-Out (Established), walked for every best-path change. */
  private advertising: PeerRt[] = [];

  constructor(private readonly o: SpeakerOptions) {
    checkSpeakerOptions(o);
    this.log = o.logger ?? silent;
    this.rib = new Rib({
      localAsn: o.asn,
      routerId: o.routerId,
      clusterId: o.clusterId,
      alwaysCompareMed: o.alwaysCompareMed,
      maxPaths: o.maxPaths,
      igpCost: o.igpCost,
    });
  }

  async listen(): Promise<void> {
    for (const l of this.o.listen ?? []) {
      const server = createServer({ noDelay: true }, (s) => this.enqueue(() => this.onInbound(s)));
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e) =>
          reject(
            new BgpConfigError(
              "BGP_CONFIG_INVALID",
              `cannot listen on ${l.host}:${l.port}: ${e.message}`,
              {
                field: "listen",
                value: `${l.host}:${l.port}`,
              },
              { cause: e },
            ),
          ),
        );
        server.listen({ host: l.host, port: l.port, exclusive: true }, () => resolve());
      });
      server.on("error", (e) => this.log.error({ err: e }, "bgp listener error"));
      const addr = server.address();
      this.listening.push({ host: l.host, port: typeof addr === "object" && addr ? addr.port : l.port });
      this.servers.push(server);
    }
  }

  // ---- the serialized event loop ----

  private enqueue(task: () => void): void {
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
    // Coalesce the changes of everything done in this tick (e.g. many originate() calls) into packed UPDATEs.
    if (this.dirty.size > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flushAll();
      });
    }
  }

  private flushScheduled = false;

  private now(): number {
    return performance.now();
  }

  private emit(e: SpeakerEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, "bgp event listener threw");
      }
    }
  }

  // ---- peers ----

  addPeer(p: PeerOptions): string {
    if (this.closing) throw new BgpConfigError("BGP_CONFIG_CLOSED", "speaker is closed");
    const opts = normalizePeer(p, this.o);
    if (this.peersById.has(opts.id)) throw duplicatePeer(opts.id);
    const rp = this.rib.addPeer({
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
      conn: this.newConn(createFsm(fsmConfig)),
      alt: null,
      timer: null,
      negotiated: null,
      establishedAt: null,
      in: emptyCounters(),
      out: emptyCounters(),
      received: 0,
      pending: new OutQueue(),
      restartTimer: null,
      staleTimer: null,
      maxPrefixFired: false,
      removed: false,
      closed: null,
    };
    this.peersById.set(opts.id, peer);
    this.peersByIndex.set(rp.index, peer);
    this.enqueue(() => this.fsmStep(peer, peer.conn, { type: "start" }));
    return opts.id;
  }

  private fsmConfig(opts: NormalizedPeer): FsmConfig {
    const families = opts.families.map(famKey);
    return {
      localAsn: this.o.asn,
      localId: this.o.routerId,
      peerAsn: opts.asn,
      passive: opts.passive,
      holdTime: opts.holdTime,
      connectRetryTime: opts.connectRetryTime,
      idleHoldTime: this.o.idleHoldTime ?? SPEAKER_DEFAULTS.idleHoldTime,
      maxIdleHoldTime: Math.max(
        this.o.maxIdleHoldTime ?? SPEAKER_DEFAULTS.maxIdleHoldTime,
        this.o.idleHoldTime ?? SPEAKER_DEFAULTS.idleHoldTime,
      ),
      idleHoldResetAfter: 300,
      capabilities: localCapabilities({
        asn: this.o.asn,
        families,
        addPathReceive: opts.addPathReceive ? families : [],
        gracefulRestartTime: opts.gracefulRestart
          ? (this.o.gracefulRestartTime ?? SPEAKER_DEFAULTS.gracefulRestartTime)
          : undefined,
        extendedMessage: this.o.extendedMessage ?? true,
      }),
    };
  }

  private newConn(fsm: FsmState): Conn {
    return { socket: null, framer: createFramer(), fsm, codec: DEFAULT_CODEC_CONTEXT };
  }

  private find(address: string, port?: number): PeerRt {
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

  async removePeer(address: string, port?: number): Promise<void> {
    const peer = this.find(address, port);
    const closed = this.socketsClosed(peer);
    this.enqueue(() => this.dropPeerNow(peer, 3));
    await closed;
  }

  private dropPeerNow(peer: PeerRt, ceaseSubcode: number): void {
    if (peer.removed) return;
    peer.removed = true;
    if (peer.alt) this.fsmStep(peer, peer.alt, { type: "stop", subcode: ceaseSubcode });
    this.fsmStep(peer, peer.conn, { type: "stop", subcode: ceaseSubcode });
    this.clearGrTimers(peer);
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    this.rib.dropPeer(peer.rib, (c) => this.onChange(c));
    this.rib.removePeer(peer.rib);
    this.peersById.delete(peer.opts.id);
    this.peersByIndex.delete(peer.rib.index);
    this.advertising = this.advertising.filter((p) => p !== peer);
    this.dirty.delete(peer);
  }

  private socketsClosed(peer: PeerRt): Promise<void> {
    const sockets = [peer.conn.socket, peer.alt?.socket].filter(
      (s): s is Socket => s !== null && s !== undefined,
    );
    return Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            s.once("close", () => resolve());
          }),
      ),
    ).then(() => undefined);
  }

  updatePeer(address: string, changes: Partial<Omit<PeerOptions, "address">>, port?: number): void {
    const peer = this.find(address, port);
    const prev = peer.opts;
    const merged: PeerOptions = { ...prev, ...changes, address: prev.address } as PeerOptions;
    const next = normalizePeer(merged, this.o);
    const sessionChanged =
      next.id !== prev.id ||
      next.asn !== prev.asn ||
      next.passive !== prev.passive ||
      next.holdTime !== prev.holdTime ||
      next.connectRetryTime !== prev.connectRetryTime ||
      next.localAddress !== prev.localAddress ||
      next.addPathReceive !== prev.addPathReceive ||
      next.gracefulRestart !== prev.gracefulRestart ||
      next.families.join() !== prev.families.join();
    if (sessionChanged) {
      this.enqueue(() => {
        this.dropPeerNow(peer, 6);
        this.addPeer(merged);
      });
      return;
    }
    this.enqueue(() => {
      peer.opts = next;
      this.rib.updatePeer(peer.rib, {
        importPolicy: next.importPolicy ?? { statements: [] },
        exportPolicy: next.exportPolicy ?? { statements: [] },
        routeReflectorClient: next.routeReflectorClient,
        nextHopSelf: next.nextHopSelf,
      });
      this.applyNextHops(peer);
      if (next.importPolicy !== prev.importPolicy && peer.conn.fsm.state === SessionState.Established) {
        // We keep no pre-policy Adj-RIB-In: ask the peer to send everything again (RFC 2918).
        if (peer.negotiated?.routeRefresh) {
          for (const f of next.families) {
            const [afi, safi] = f === "ipv4" ? [1, 1] : [2, 1];
            this.send(peer, peer.conn, { type: 5, afi, safi, subtype: 0 });
          }
        } else {
          this.fsmStep(peer, peer.conn, { type: "reset", reason: "admin-reset", subcode: 6 });
        }
      }
      // Route-reflector and export changes can change what every peer gets.
      for (const p of this.peersById.values()) this.reexport(p);
    });
  }

  // ---- routes we originate ----

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
    this.enqueue(() => {
      const c = this.rib.originate(p.afi, p.len, p.v4, p.v6, attrs, nextHops);
      if (c) this.onChange(c);
    });
  }

  withdraw(prefix: string): boolean {
    const p = parseRibPrefix(prefix, "prefix");
    const found = this.rib.candidates(p.afi, p.len, p.v4, p.v6).some((q) => q.peer.index === 0);
    this.enqueue(() => {
      const c = this.rib.withdrawLocal(p.afi, p.len, p.v4, p.v6);
      if (c) this.onChange(c);
    });
    return found;
  }

  // ---- events ----

  on(listener: (e: SpeakerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
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

  private closeWaiters: (() => void)[] = [];
  private closedPromise(): Promise<void> {
    if (this.closing) return this.closing;
    return new Promise((r) => this.closeWaiters.push(r));
  }

  private bestEvent(c: RouteChange): BestPathEvent {
    const best = c.best;
    const src = best ? this.peersByIndex.get(best.peer.index) : undefined;
    return {
      type: "best-path",
      prefix: formatRibPrefix(c),
      family: familyName(c.afi),
      withdrawn: best === null,
      nextHops: this.nextHopsOf(c.multipath),
      linkLocalNextHops: linkLocalNextHopsOf(c.multipath),
      attributes: best ? best.attrs.attrs : null,
      peer: src ? src.opts.id : null,
      stale: best !== null && src !== undefined && best.epoch !== src.rib.epoch,
    };
  }

  private nextHopsOf(paths: readonly Path[]): readonly string[] {
    // The common case, one path with one next hop: its interned (frozen) list, no new array per event.
    if (paths.length === 1 && paths[0]!.attrs.nextHops.length === 1) return paths[0]!.attrs.nextHops;
    const out: string[] = [];
    for (const p of paths) {
      const nh = p.attrs.nextHops[0];
      if (nh !== undefined && !out.includes(nh)) out.push(nh);
    }
    return out;
  }

  // ---- status ----

  peers(): PeerStatus[] {
    return [...this.peersById.values()].map((p) => this.status(p));
  }

  peer(address: string, port?: number): PeerStatus | undefined {
    try {
      return this.status(this.find(address, port));
    } catch {
      return undefined;
    }
  }

  private status(p: PeerRt): PeerStatus {
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
        fsm.state === SessionState.Established && p.establishedAt !== null ? this.now() - p.establishedAt : 0,
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
      prefixesAdvertised: p.rib.out?.size ?? 0,
      prefixesStale: p.restartTimer || p.staleTimer ? this.rib.countStale(p.rib) : 0,
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

  get routeCount(): number {
    return this.rib.size;
  }

  routes(): BestRoute[] {
    const out: BestRoute[] = [];
    this.rib.forEachBest((afi, len, v4, v6, best, multi) => {
      out.push(this.bestRoute({ afi, len, v4, v6 }, best, multi));
    });
    return out;
  }

  route(prefix: string): BestRoute | undefined {
    const p = parseRibPrefix(prefix, "prefix");
    const best = this.rib.best(p.afi, p.len, p.v4, p.v6);
    if (!best) return undefined;
    return this.bestRoute(p, best, this.rib.multipath(p.afi, p.len, p.v4, p.v6));
  }

  private bestRoute(
    p: { afi: Afi; len: number; v4: number; v6: Uint8Array | null },
    best: Path,
    multi: readonly Path[],
  ): BestRoute {
    const src = this.peersByIndex.get(best.peer.index);
    return {
      prefix: formatRibPrefix(p),
      family: familyName(p.afi),
      nextHops: this.nextHopsOf(multi),
      linkLocalNextHops: linkLocalNextHopsOf(multi),
      attributes: best.attrs.attrs,
      peer: src ? src.opts.id : null,
      stale: src !== undefined && best.epoch !== src.rib.epoch,
    };
  }

  // ---- sessions ----

  private onInbound(socket: Socket): void {
    const remote = canonicalAddress(socket.remoteAddress ?? "");
    const local = canonicalAddress(socket.localAddress ?? "");
    let candidates = [...this.peersById.values()].filter((p) => p.opts.address === remote && !p.removed);
    if (candidates.length > 1) {
      const byLocal = candidates.filter(
        (p) => p.opts.localAddress !== undefined && canonicalAddress(p.opts.localAddress) === local,
      );
      if (byLocal.length > 0) candidates = byLocal;
    }
    const peer = candidates.find((p) => p.conn.fsm.state !== SessionState.Established) ?? candidates[0];
    if (!peer || this.closing) {
      this.log.debug({ remote }, "bgp connection from unknown address refused");
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const st = peer.conn.fsm.state;
    if (st === SessionState.Active || (st === SessionState.Connect && !peer.conn.socket)) {
      this.attach(peer, peer.conn, socket);
      this.fsmStep(peer, peer.conn, { type: "tcp-connected", direction: "inbound" });
      return;
    }
    if (
      (st === SessionState.Connect || st === SessionState.OpenSent || st === SessionState.OpenConfirm) &&
      !peer.alt
    ) {
      // RFC 4271 §6.8: run a second session on this connection until one of them must yield. (With our
      // own attempt still in flight, dropping either connection here would let two speakers that dial
      // each other at once kill both connections forever.)
      let fsm = createFsm({ ...peer.fsmConfig, passive: true });
      fsm = step(fsm, { type: "start" }, this.now()).state;
      const alt = this.newConn(fsm);
      peer.alt = alt;
      this.attach(peer, alt, socket);
      this.fsmStep(peer, alt, { type: "tcp-connected", direction: "inbound" });
      return;
    }
    this.log.debug({ peer: peer.opts.id, state: st }, "bgp connection refused");
    socket.destroy();
  }

  private attach(peer: PeerRt, conn: Conn, socket: Socket): void {
    conn.socket = socket;
    conn.framer = createFramer();
    conn.codec = DEFAULT_CODEC_CONTEXT;
    socket.on("data", (chunk: Buffer) => {
      if (conn.socket !== socket) return;
      this.enqueue(() => this.onData(peer, conn, socket, chunk));
    });
    socket.on("error", (e) => this.log.debug({ peer: peer.opts.id, err: e.message }, "bgp socket error"));
    socket.on("close", () => {
      this.enqueue(() => {
        if (conn.socket !== socket) return;
        conn.socket = null;
        this.fsmStep(peer, conn, { type: "tcp-failed", error: "connection closed" });
      });
    });
  }

  private connectOut(peer: PeerRt, conn: Conn): void {
    const o = peer.opts;
    const socket = netConnect({
      host: o.address,
      port: o.port,
      ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
      noDelay: true,
    });
    conn.socket = socket;
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      this.enqueue(() => {
        if (conn.socket !== socket) return;
        this.attachConnected(peer, conn, socket);
        this.fsmStep(peer, conn, { type: "tcp-connected", direction: "outbound" });
      });
    });
    socket.on("error", (e) => this.log.debug({ peer: o.id, err: e.message }, "bgp connect error"));
    socket.once("close", () => {
      if (connected) return;
      this.enqueue(() => {
        if (conn.socket !== socket) return;
        conn.socket = null;
        this.fsmStep(peer, conn, { type: "tcp-failed", error: "connect failed" });
      });
    });
  }

  private attachConnected(peer: PeerRt, conn: Conn, socket: Socket): void {
    conn.socket = null;
    this.attach(peer, conn, socket);
  }

  private closeConn(conn: Conn): void {
    const s = conn.socket;
    conn.socket = null;
    if (!s) return;
    // Let a NOTIFICATION written just before leave, then make sure the socket goes away.
    s.end();
    setTimeout(() => s.destroy(), 1000).unref();
  }

  private send(peer: PeerRt, conn: Conn, m: BgpMessage): void {
    const s = conn.socket;
    if (!s) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(m, conn.codec);
    } catch (e) {
      this.log.error({ peer: peer.opts.id, err: e }, "bgp encode failed");
      return;
    }
    s.write(bytes);
    countMessage(peer.out, m.type);
  }

  private fsmStep(peer: PeerRt, conn: Conn, event: FsmEvent, decoded?: UpdateDecodeResult, raw?: Uint8Array) {
    const r = step(conn.fsm, event, this.now());
    conn.fsm = r.state;
    const primary = conn === peer.conn;
    if (r.state.state !== r.from) {
      this.log.debug(
        { peer: peer.opts.id, from: r.from, to: r.state.state, reason: r.reason, alt: !primary },
        "bgp fsm transition",
      );
      if (primary) {
        this.emit({
          type: "peer-state",
          peer: peer.opts.id,
          state: r.state.state,
          previous: r.from,
          reason: r.reason,
        });
      }
    }
    for (const a of r.actions) this.act(peer, conn, a, decoded, raw);
    if (r.reason === "open-received") this.checkCollision(peer, conn);
    if (!primary && conn.fsm.state === SessionState.Idle && peer.alt === conn) peer.alt = null;
    this.schedule(peer);
  }

  private act(peer: PeerRt, conn: Conn, a: FsmAction, decoded?: UpdateDecodeResult, raw?: Uint8Array): void {
    switch (a.type) {
      case "connect":
        if (!peer.removed && !this.closing) this.connectOut(peer, conn);
        return;
      case "close":
        this.closeConn(conn);
        return;
      case "send":
        this.send(peer, conn, a.message);
        return;
      case "established":
        this.onEstablished(peer, conn, a.negotiated);
        return;
      case "session-down":
        this.onSessionDown(peer, a);
        return;
      case "update":
        if (decoded && raw) this.processUpdate(peer, raw, decoded);
        return;
      case "route-refresh":
        this.resendOut(peer);
        return;
    }
  }

  private checkCollision(peer: PeerRt, conn: Conn): void {
    const other = conn === peer.conn ? peer.alt : peer.conn;
    if (!other) return;
    const os = other.fsm.state;
    const remoteId = conn.fsm.peerOpen?.bgpId ?? "0.0.0.0";
    if (os === SessionState.Established) {
      this.fsmStep(peer, conn, { type: "collision-lost" });
      return;
    }
    if (os === SessionState.OpenSent || os === SessionState.OpenConfirm) {
      const keep =
        resolveCollision(this.o.routerId, remoteId, this.o.asn, peer.opts.asn) === "keep-outbound"
          ? "outbound"
          : "inbound";
      const loser = conn.fsm.direction === keep ? other : conn;
      this.fsmStep(peer, loser, { type: "collision-lost" });
      if (loser === peer.conn && peer.alt) this.promoteAlt(peer);
      else if (loser === peer.alt) peer.alt = null;
      return;
    }
    if (conn === peer.alt) {
      // The primary has no session in progress: the inbound one simply becomes the session.
      const old = peer.conn.socket;
      peer.conn.socket = null;
      old?.destroy();
      this.promoteAlt(peer);
    }
  }

  private promoteAlt(peer: PeerRt): void {
    const alt = peer.alt!;
    alt.fsm = { ...alt.fsm, config: peer.fsmConfig, stopped: false };
    peer.conn = alt;
    peer.alt = null;
  }

  private schedule(peer: PeerRt): void {
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    if (peer.removed) return;
    const ds = [nextDeadline(peer.conn.fsm), peer.alt ? nextDeadline(peer.alt.fsm) : null].filter(
      (d): d is number => d !== null,
    );
    if (ds.length === 0) return;
    const delay = Math.max(0, Math.min(...ds) - this.now());
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.enqueue(() => {
        if (peer.removed) return;
        const now = this.now();
        if (peer.alt) {
          const d = nextDeadline(peer.alt.fsm);
          if (d !== null && d <= now) this.fsmStep(peer, peer.alt, { type: "timers" });
        }
        const d = nextDeadline(peer.conn.fsm);
        if (d !== null && d <= now) this.fsmStep(peer, peer.conn, { type: "timers" });
        else this.schedule(peer);
      });
    }, delay + 1);
    peer.timer.unref?.();
  }

  private onData(peer: PeerRt, conn: Conn, socket: Socket, chunk: Uint8Array): void {
    if (conn.socket !== socket) return;
    let msgs: Uint8Array[];
    try {
      msgs = conn.framer.push(chunk);
    } catch (e) {
      this.decodeFailed(peer, conn, e);
      return;
    }
    for (const m of msgs) {
      if (conn.socket !== socket) return;
      this.onMessage(peer, conn, m);
    }
  }

  private decodeFailed(peer: PeerRt, conn: Conn, e: unknown, messageType?: number): void {
    if (isBgpWireError(e)) {
      this.fsmStep(peer, conn, {
        type: "decode-error",
        code: e.notification.code,
        subcode: e.notification.subcode,
        data: e.notification.data,
        action: "session-reset",
        message: e.message,
        messageType,
      });
    } else {
      this.log.error({ peer: peer.opts.id, err: e }, "bgp decode failed unexpectedly");
      this.fsmStep(peer, conn, {
        type: "decode-error",
        code: 6,
        subcode: 0,
        data: EMPTY,
        action: "session-reset",
        message: String(e),
      });
    }
  }

  private onMessage(peer: PeerRt, conn: Conn, bytes: Uint8Array): void {
    const type = messageType(bytes);
    countMessage(peer.in, type);
    if (type === 2 && conn.fsm.state === SessionState.Established) {
      let r: UpdateDecodeResult;
      try {
        r = decodeUpdate(bytes, conn.codec, { prefixes: "sections" });
      } catch (e) {
        this.decodeFailed(peer, conn, e);
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
        const rest = this.disableFamilies(peer, conn, r);
        if (rest === null) return;
        r = rest;
      }
      if (r.action === "session-reset") {
        const err = r.errors.find((x) => x.action === r.action) ?? r.errors[0]!;
        this.fsmStep(peer, conn, {
          type: "decode-error",
          code: err.notification.code,
          subcode: err.notification.subcode,
          data: err.notification.data,
          action: "session-reset",
          message: err.message,
        });
        return;
      }
      if (r.action !== undefined) {
        this.log.warn(
          { peer: peer.opts.id, action: r.action, errors: r.errors.map((x) => x.message) },
          "bgp update error tolerated",
        );
      }
      this.fsmStep(peer, conn, { type: "message", message: r.update }, r, bytes);
      return;
    }
    let m: BgpMessage;
    try {
      m = decodeMessage(bytes, conn.codec);
    } catch (e) {
      this.decodeFailed(peer, conn, e, type);
      return;
    }
    this.fsmStep(peer, conn, { type: "message", message: m });
  }

  /**
   * RFC 7606 §2 / RFC 4760 §7 AFI/SAFI disable: the peer sent a malformed MP_REACH/MP_UNREACH for a
   * family. For the rest of this session we delete the routes it sent in that family, ignore that
   * family in its UPDATEs and stop advertising it (our routes there are withdrawn), while the other
   * families go on. When the family cannot be named, or no family would remain, the session is reset
   * (the RFC's fallback). Returns the rest of the UPDATE to apply, or null when the session was reset.
   */
  private disableFamilies(peer: PeerRt, conn: Conn, r: UpdateDecodeResult): UpdateDecodeResult | null {
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
      const err = bad[0]!;
      this.fsmStep(peer, conn, {
        type: "decode-error",
        code: err.notification.code,
        subcode: err.notification.subcode,
        data: err.notification.data,
        action: "session-reset",
        message: err.message,
      });
      return null;
    }
    const disabled = [...fams].filter((f) => n.families.has(f));
    if (disabled.length > 0) {
      this.log.warn(
        { peer: peer.opts.id, families: disabled, errors: bad.map((x) => x.message) },
        "bgp address family disabled for this session",
      );
      peer.negotiated = { ...n, families: new Set(left) };
      peer.rib.families = new Set(left);
      for (const f of disabled) {
        const afi = Number(f.split("/")[0]) as Afi;
        this.rib.dropPeer(peer.rib, (c) => this.onChange(c), afi);
      }
      // Our advertisements in the family: exportAttrs now refuses it, so re-export withdraws them.
      this.reexport(peer);
    }
    const others = r.errors.filter((e) => e.action !== "afi-safi-disable");
    let action: UpdateDecodeResult["action"];
    for (const e of others) action = worstAction(action, e.action);
    return { ...r, errors: others, action };
  }

  private onEstablished(peer: PeerRt, conn: Conn, n: Negotiated): void {
    if (conn !== peer.conn) this.promoteAlt(peer);
    peer.negotiated = n;
    peer.establishedAt = this.now();
    conn.codec = n.codec;
    conn.framer.setMaxMessageSize(n.codec.maxMessageSize);
    const rp = peer.rib;
    rp.routerId = n.peerId;
    rp.routerIdNum = n.peerId.split(".").reduce((a, b) => a * 256 + Number(b), 0);
    rp.families = new Set([...n.families]);
    this.applyNextHops(peer);
    this.log.info({ peer: peer.opts.id, peerId: n.peerId, holdTime: n.holdTime }, "bgp session established");
    if (peer.restartTimer) {
      clearTimeout(peer.restartTimer);
      peer.restartTimer = null;
      if (n.gracefulRestart === null) {
        this.rib.sweepStale(rp, (c) => this.onChange(c));
      } else {
        const t = this.o.staleRoutesTime ?? SPEAKER_DEFAULTS.staleRoutesTime;
        peer.staleTimer = setTimeout(() => this.enqueue(() => this.staleExpired(peer)), t * 1000);
        peer.staleTimer.unref?.();
      }
    }
    this.rib.openOut(rp);
    if (!this.advertising.includes(peer)) this.advertising.push(peer);
    this.reexport(peer);
    this.flushPeer(peer);
    for (const f of n.families) {
      const [afi, safi] = f.split("/").map(Number) as [number, number];
      this.send(peer, conn, endOfRib(afi, safi));
    }
  }

  private applyNextHops(peer: PeerRt): void {
    const rp = peer.rib;
    const local = peer.conn.socket?.localAddress;
    const localText = local ? canonicalAddress(local) : undefined;
    const fam = localText ? isIP(localText) : 0;
    rp.localAddress4 = peer.opts.nextHop4 ?? (fam === 4 ? localText! : null);
    rp.localAddress6 = peer.opts.nextHop6 ?? (fam === 6 ? localText! : null);
  }

  private onSessionDown(peer: PeerRt, a: FsmAction & { type: "session-down" }): void {
    const rp = peer.rib;
    const n = peer.negotiated;
    peer.negotiated = null;
    peer.establishedAt = null;
    this.rib.clearOut(rp);
    this.advertising = this.advertising.filter((p) => p !== peer);
    peer.pending.clear();
    this.dirty.delete(peer);
    this.log.info(
      { peer: peer.opts.id, reason: a.reason, code: a.notification?.code, subcode: a.notification?.subcode },
      "bgp session down",
    );
    // RFC 4724 §4.2: keep the routes of a peer that can restart, unless the session ended by NOTIFICATION.
    const gr =
      !peer.removed && peer.opts.gracefulRestart && n?.gracefulRestart && a.notification === undefined;
    if (gr && n?.gracefulRestart) {
      this.rib.markStale(rp);
      if (peer.staleTimer) clearTimeout(peer.staleTimer);
      peer.staleTimer = null;
      if (peer.restartTimer) clearTimeout(peer.restartTimer);
      peer.restartTimer = setTimeout(
        () => this.enqueue(() => this.staleExpired(peer)),
        Math.max(1, n.gracefulRestart.restartTime) * 1000,
      );
      peer.restartTimer.unref?.();
      return;
    }
    this.clearGrTimers(peer);
    this.rib.dropPeer(rp, (c) => this.onChange(c));
  }

  private staleExpired(peer: PeerRt): void {
    this.clearGrTimers(peer);
    if (peer.removed) return;
    this.log.info({ peer: peer.opts.id }, "bgp stale routes expired");
    this.rib.sweepStale(peer.rib, (c) => this.onChange(c));
  }

  private clearGrTimers(peer: PeerRt): void {
    if (peer.restartTimer) clearTimeout(peer.restartTimer);
    if (peer.staleTimer) clearTimeout(peer.staleTimer);
    peer.restartTimer = null;
    peer.staleTimer = null;
  }

  private processUpdate(peer: PeerRt, bytes: Uint8Array, r: UpdateDecodeResult): void {
    const fams = peer.negotiated?.families ?? new Set<string>();
    peer.received += applyUpdate(this.rib, peer.rib, fams, bytes, r, (c) => this.onChange(c));
    if (r.endOfRib) this.onEndOfRib(peer, r.endOfRib.afi);
    this.checkMaxPrefix(peer);
  }

  private onEndOfRib(peer: PeerRt, afi: number): void {
    if (!peer.staleTimer) return;
    this.rib.sweepStale(peer.rib, (c) => this.onChange(c), afi as Afi);
    if (this.rib.countStale(peer.rib) === 0) this.clearGrTimers(peer);
  }

  private checkMaxPrefix(peer: PeerRt): void {
    const mp = peer.opts.maxPrefixes;
    if (!mp) return;
    const accepted = peer.rib.accepted;
    if (accepted <= mp.limit) {
      peer.maxPrefixFired = false;
      return;
    }
    if (peer.maxPrefixFired) return;
    peer.maxPrefixFired = true;
    this.emit({ type: "max-prefix", peer: peer.opts.id, limit: mp.limit, accepted, action: mp.action });
    this.log.warn({ peer: peer.opts.id, limit: mp.limit, accepted }, "bgp max-prefix limit exceeded");
    if (mp.action === "teardown") {
      // RFC 4486: AFI (2), SAFI (1), limit (4).
      const data = new Uint8Array(7);
      data[1] = 1;
      data[2] = 1;
      new DataView(data.buffer).setUint32(3, mp.limit);
      this.fsmStep(peer, peer.conn, { type: "reset", reason: "max-prefix-exceeded", subcode: 1, data });
      peer.maxPrefixFired = false;
    }
  }

  // ---- propagation ----

  private onChange(c: RouteChange): void {
    if (this.listeners.size > 0) this.emit(this.bestEvent(c));
    const out = this.advertising;
    for (let i = 0; i < out.length; i++) {
      const op = out[i]!;
      if (!op.rib.out) continue;
      const next = this.rib.exportChange(op.rib, c.afi, c.len, c.v4, c.v6, c.best);
      if (next !== undefined) this.queueOut(op, c.afi, c.len, c.v4, c.v6, next);
    }
  }

  private queueOut(
    op: PeerRt,
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    set: AttrSet | null,
  ) {
    op.pending.add(afi, len, v4, v6, set);
    this.dirty.add(op);
    if (op.pending.size >= FLUSH_THRESHOLD) this.flushPeer(op);
  }

  /** Walks the Loc-RIB and brings `op`'s Adj-RIB-Out up to date (initial advertisement, policy change). */
  private reexport(op: PeerRt): void {
    if (!op.rib.out) return;
    this.rib.forEachBest((afi, len, v4, v6, best) => {
      const next = this.rib.exportChange(op.rib, afi, len, v4, v6, best);
      if (next !== undefined) this.queueOut(op, afi, len, v4, v6, next);
    });
    // Destinations gone from the Loc-RIB but still advertised.
    const stale: [Afi, number, number, Uint8Array | null][] = [];
    op.rib.out.forEach((afi, len, v4, v6) => {
      if (!this.rib.best(afi, len, v4, v6)) stale.push([afi, len, v4, v6]);
    });
    for (const [afi, len, v4, v6] of stale) {
      const next = this.rib.exportChange(op.rib, afi, len, v4, v6, null);
      if (next !== undefined) this.queueOut(op, afi, len, v4, v6, next);
    }
  }

  /** ROUTE-REFRESH: send the whole Adj-RIB-Out again. */
  private resendOut(op: PeerRt): void {
    op.rib.out?.forEach((afi, len, v4, v6, set) => {
      this.queueOut(op, afi, len, v4, v6, set);
    });
  }

  private flushAll(): void {
    if (this.dirty.size === 0) return;
    for (const op of [...this.dirty]) this.flushPeer(op);
    this.dirty.clear();
  }

  private flushPeer(op: PeerRt): void {
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
      const withdraw = new OutQueue();
      let first: unknown;
      msgs = op.pending.drain(codec, (afi, len, v4, v6, set, err) => {
        first ??= err;
        if (this.rib.unadvertise(op.rib, afi, len, v4, v6, set)) withdraw.add(afi, len, v4, v6, null);
      });
      if (first !== undefined) {
        this.log.warn(
          { peer: op.opts.id, withdrawn: withdraw.size, maxMessageSize: codec.maxMessageSize, err: first },
          "bgp routes too large for peer not advertised",
        );
        msgs.push(...withdraw.drain(codec));
      }
    } catch (e) {
      op.pending.clear();
      this.log.error({ peer: op.opts.id, err: e }, "bgp update encode failed");
      return;
    }
    s.cork();
    for (const m of msgs) s.write(m);
    s.uncork();
    countMessage(op.out, 2, msgs.length);
  }

  // ---- shutdown ----

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const sockets: Socket[] = [];
    for (const p of this.peersById.values()) {
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
    this.enqueue(() => {
      for (const p of [...this.peersById.values()]) this.dropPeerNow(p, 2);
    });
    this.closing = (async () => {
      await Promise.all(
        this.servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))),
      );
      await closed;
      for (const w of this.closeWaiters) w();
    })();
    return this.closing;
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
