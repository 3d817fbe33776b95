/**
 * A peer's session (GoBGP's `fsmHandler`): drives the pure FSM (`../fsm/step.ts`) with real sockets and
 * timers. It dials out, attaches accepted connections, frames the byte stream, sends what the FSM says,
 * arms one timer for the FSM's next deadline, resolves connection collisions (RFC 4271 §6.8) between
 * the session and a second inbound one, and on Established / session down has the peer join or leave
 * its update group.
 *
 * @packageDocumentation
 */

import { connect as netConnect, type Socket } from "node:net";
import { resolveCollision } from "../fsm/negotiate.js";
import { nextDeadline, step } from "../fsm/step.js";
import type { FsmAction, FsmEvent, Negotiated } from "../fsm/types.js";
import { SessionState } from "../fsm/types.js";
import { DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { createFramer } from "../wire/framer.js";
import { encodeMessage } from "../wire/message.js";
import { ipFamily as isIP } from "../wire/ip.js";
import type { BgpMessage } from "../wire/types.js";
import { endOfRib, type UpdateDecodeResult } from "../wire/update.js";
import { flushPeer, joinGroup, leaveGroup, onChange, resendOut } from "./adj-rib-out.js";
import type { Conn, PeerRt, SpeakerCore } from "./core.js";
import { countMessage } from "./events.js";
import { clearGrTimers, keepForRestart, restarted } from "./graceful-restart.js";
import { canonicalAddress } from "./options.js";
import { decodeFailed, onMessage, processUpdate } from "./receive.js";

/** Takes `socket` as the connection of `conn` (inbound, or outbound once connected). */
export function attach(core: SpeakerCore, peer: PeerRt, conn: Conn, socket: Socket): void {
  conn.socket = socket;
  conn.framer = createFramer();
  conn.codec = DEFAULT_CODEC_CONTEXT;
  socket.on("data", (chunk: Buffer) => {
    if (conn.socket !== socket) return;
    core.enqueue(() => onData(core, peer, conn, socket, chunk));
  });
  socket.on("error", (e) => core.log.debug({ peer: peer.opts.id, err: e.message }, "bgp socket error"));
  socket.on("close", () => {
    core.enqueue(() => {
      if (conn.socket !== socket) return;
      conn.socket = null;
      fsmStep(core, peer, conn, { type: "tcp-failed", error: "connection closed" });
    });
  });
}

function connectOut(core: SpeakerCore, peer: PeerRt, conn: Conn): void {
  const o = peer.opts;
  const socket = netConnect({
    host: o.address,
    port: o.port,
    ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
    noDelay: true,
  });
  conn.socket = socket;
  let connected = false;
  let failure = "connect failed";
  socket.once("connect", () => {
    connected = true;
    core.enqueue(() => {
      if (conn.socket !== socket) return;
      attachConnected(core, peer, conn, socket);
      fsmStep(core, peer, conn, { type: "tcp-connected", direction: "outbound" });
    });
  });
  socket.on("error", (e: NodeJS.ErrnoException) => {
    // The errno (ECONNREFUSED, EHOSTUNREACH, ...) goes into the session's last error for operators.
    if (!connected && e.code) failure = `connect failed: ${e.code}`;
    core.log.debug({ peer: o.id, err: e.message }, "bgp connect error");
  });
  socket.once("close", () => {
    if (connected) return;
    core.enqueue(() => {
      if (conn.socket !== socket) return;
      conn.socket = null;
      fsmStep(core, peer, conn, { type: "tcp-failed", error: failure });
    });
  });
}

function attachConnected(core: SpeakerCore, peer: PeerRt, conn: Conn, socket: Socket): void {
  conn.socket = null;
  attach(core, peer, conn, socket);
}

/** Closes `conn`'s socket after what was written (a NOTIFICATION) has left. */
function closeConn(conn: Conn): void {
  const s = conn.socket;
  conn.socket = null;
  if (!s) return;
  // Let a NOTIFICATION written just before leave, then make sure the socket goes away.
  s.end();
  setTimeout(() => s.destroy(), 1000).unref();
}

/** Encodes and writes one message on `conn` (dropped when it has no socket). */
export function send(core: SpeakerCore, peer: PeerRt, conn: Conn, m: BgpMessage): void {
  const s = conn.socket;
  if (!s) return;
  let bytes: Uint8Array;
  try {
    bytes = encodeMessage(m, conn.codec);
  } catch (e) {
    core.log.error({ peer: peer.opts.id, err: e }, "bgp encode failed");
    return;
  }
  s.write(bytes);
  countMessage(peer.out, m.type);
}

/** Runs one FSM event on `conn` and carries out its actions; re-arms the peer timer. */
export function fsmStep(
  core: SpeakerCore,
  peer: PeerRt,
  conn: Conn,
  event: FsmEvent,
  decoded?: UpdateDecodeResult,
  raw?: Uint8Array,
): void {
  const r = step(conn.fsm, event, core.now());
  conn.fsm = r.state;
  const primary = conn === peer.conn;
  if (r.state.state !== r.from) {
    core.log.debug(
      { peer: peer.opts.id, from: r.from, to: r.state.state, reason: r.reason, alt: !primary },
      "bgp fsm transition",
    );
    if (primary) {
      core.emit({
        type: "peer-state",
        peer: peer.opts.id,
        state: r.state.state,
        previous: r.from,
        reason: r.reason,
      });
    }
  }
  for (const a of r.actions) act(core, peer, conn, a, decoded, raw);
  if (r.reason === "open-received") checkCollision(core, peer, conn);
  if (!primary && conn.fsm.state === SessionState.Idle && peer.alt === conn) peer.alt = null;
  schedule(core, peer);
}

function act(
  core: SpeakerCore,
  peer: PeerRt,
  conn: Conn,
  a: FsmAction,
  decoded?: UpdateDecodeResult,
  raw?: Uint8Array,
): void {
  switch (a.type) {
    case "connect":
      if (!peer.removed && !core.closing) connectOut(core, peer, conn);
      return;
    case "close":
      closeConn(conn);
      return;
    case "send":
      send(core, peer, conn, a.message);
      return;
    case "established":
      onEstablished(core, peer, conn, a.negotiated);
      return;
    case "session-down":
      onSessionDown(core, peer, a);
      return;
    case "update":
      if (decoded && raw) processUpdate(core, peer, raw, decoded);
      return;
    case "route-refresh":
      resendOut(core, peer);
      return;
  }
}

function checkCollision(core: SpeakerCore, peer: PeerRt, conn: Conn): void {
  const other = conn === peer.conn ? peer.alt : peer.conn;
  if (!other) return;
  const os = other.fsm.state;
  const remoteId = conn.fsm.peerOpen?.bgpId ?? "0.0.0.0";
  if (os === SessionState.Established) {
    fsmStep(core, peer, conn, { type: "collision-lost" });
    return;
  }
  if (os === SessionState.OpenSent || os === SessionState.OpenConfirm) {
    const keep =
      resolveCollision(core.o.routerId, remoteId, core.o.asn, peer.opts.asn) === "keep-outbound"
        ? "outbound"
        : "inbound";
    const loser = conn.fsm.direction === keep ? other : conn;
    fsmStep(core, peer, loser, { type: "collision-lost" });
    if (loser === peer.conn && peer.alt) promoteAlt(peer);
    else if (loser === peer.alt) peer.alt = null;
    return;
  }
  if (conn === peer.alt) {
    // The primary has no session in progress: the inbound one simply becomes the session.
    const old = peer.conn.socket;
    peer.conn.socket = null;
    old?.destroy();
    promoteAlt(peer);
  }
}

/** The second (inbound) session becomes the peer's session. */
function promoteAlt(peer: PeerRt): void {
  const alt = peer.alt!;
  alt.fsm = { ...alt.fsm, config: peer.fsmConfig, stopped: false };
  peer.conn = alt;
  peer.alt = null;
}

function schedule(core: SpeakerCore, peer: PeerRt): void {
  if (peer.timer) clearTimeout(peer.timer);
  peer.timer = null;
  if (peer.removed) return;
  const ds = [nextDeadline(peer.conn.fsm), peer.alt ? nextDeadline(peer.alt.fsm) : null].filter(
    (d): d is number => d !== null,
  );
  if (ds.length === 0) return;
  const delay = Math.max(0, Math.min(...ds) - core.now());
  peer.timer = setTimeout(() => {
    peer.timer = null;
    core.enqueue(() => {
      if (peer.removed) return;
      const now = core.now();
      if (peer.alt) {
        const d = nextDeadline(peer.alt.fsm);
        if (d !== null && d <= now) fsmStep(core, peer, peer.alt, { type: "timers" });
      }
      const d = nextDeadline(peer.conn.fsm);
      if (d !== null && d <= now) fsmStep(core, peer, peer.conn, { type: "timers" });
      else schedule(core, peer);
    });
  }, delay + 1);
  peer.timer.unref?.();
}

function onData(core: SpeakerCore, peer: PeerRt, conn: Conn, socket: Socket, chunk: Uint8Array): void {
  if (conn.socket !== socket) return;
  let msgs: Uint8Array[];
  try {
    msgs = conn.framer.push(chunk);
  } catch (e) {
    decodeFailed(core, peer, conn, e);
    return;
  }
  for (const m of msgs) {
    if (conn.socket !== socket) return;
    onMessage(core, peer, conn, m);
  }
}

function onEstablished(core: SpeakerCore, peer: PeerRt, conn: Conn, n: Negotiated): void {
  if (conn !== peer.conn) promoteAlt(peer);
  peer.negotiated = n;
  peer.establishedAt = core.now();
  conn.codec = n.codec;
  conn.framer.setMaxMessageSize(n.codec.maxMessageSize);
  const rp = peer.rib;
  rp.routerId = n.peerId;
  rp.routerIdNum = n.peerId.split(".").reduce((a, b) => a * 256 + Number(b), 0);
  rp.families = new Set([...n.families]);
  applyNextHops(peer);
  core.log.info({ peer: peer.opts.id, peerId: n.peerId, holdTime: n.holdTime }, "bgp session established");
  restarted(core, peer, n);
  joinGroup(core, peer);
  flushPeer(core, peer);
  core.dirty.delete(peer);
  for (const f of n.families) {
    const [afi, safi] = f.split("/").map(Number) as [number, number];
    send(core, peer, conn, endOfRib(afi, safi));
  }
}

/** Our next hops toward `peer`: configured, else the session's local address. */
export function applyNextHops(peer: PeerRt): void {
  const rp = peer.rib;
  const local = peer.conn.socket?.localAddress;
  const localText = local ? canonicalAddress(local) : undefined;
  const fam = localText ? isIP(localText) : 0;
  rp.localAddress4 = peer.opts.nextHop4 ?? (fam === 4 ? localText! : null);
  rp.localAddress6 = peer.opts.nextHop6 ?? (fam === 6 ? localText! : null);
}

function onSessionDown(core: SpeakerCore, peer: PeerRt, a: FsmAction & { type: "session-down" }): void {
  const rp = peer.rib;
  const n = peer.negotiated;
  peer.negotiated = null;
  peer.establishedAt = null;
  leaveGroup(core, peer);
  core.log.info(
    { peer: peer.opts.id, reason: a.reason, code: a.notification?.code, subcode: a.notification?.subcode },
    "bgp session down",
  );
  if (keepForRestart(core, peer, n, a.notification !== undefined)) return;
  clearGrTimers(peer);
  core.rib.dropPeer(rp, (c) => onChange(core, c));
}

/** Resolves when every socket of `peer` is closed. */
export function socketsClosed(peer: PeerRt): Promise<void> {
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
