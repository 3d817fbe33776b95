/**
 * The listener: accepts BGP connections (GoBGP's `tcpListener` and the accept half of `BgpServer`),
 * finds the configured peer they belong to and hands them to its session — or, while that session has
 * its own connection in progress, to a second session until collision detection (RFC 4271 §6.8)
 * decides which one stays.
 *
 * @packageDocumentation
 */

import { createServer, type Socket } from "node:net";
import { BgpConfigError } from "../errors/config-error.js";
import { createFsm, step } from "../fsm/step.js";
import { SessionState } from "../fsm/types.js";
import type { SpeakerCore } from "./core.js";
import { canonicalAddress } from "./options.js";
import { attach, fsmStep } from "./session.js";

/** Listens on every `options.listen` address. Rejects with a {@link BgpConfigError} when one is unavailable. */
export async function listen(core: SpeakerCore): Promise<void> {
  for (const l of core.o.listen ?? []) {
    const server = createServer({ noDelay: true }, (s) => core.enqueue(() => onInbound(core, s)));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) =>
        reject(
          new BgpConfigError(
            "config-invalid",
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
    server.on("error", (e) => core.log.error({ err: e }, "bgp listener error"));
    const addr = server.address();
    core.listening.push({ host: l.host, port: typeof addr === "object" && addr ? addr.port : l.port });
    core.servers.push(server);
  }
}

/** Stops accepting; resolves when every listener is closed. */
export async function closeListeners(core: SpeakerCore): Promise<void> {
  await Promise.all(core.servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
}

/** An accepted connection: to the session of the peer it comes from, or refused. */
function onInbound(core: SpeakerCore, socket: Socket): void {
  const remote = canonicalAddress(socket.remoteAddress ?? "");
  const local = canonicalAddress(socket.localAddress ?? "");
  let candidates = [...core.peersById.values()].filter((p) => p.opts.address === remote && !p.removed);
  if (candidates.length > 1) {
    const byLocal = candidates.filter(
      (p) => p.opts.localAddress !== undefined && canonicalAddress(p.opts.localAddress) === local,
    );
    if (byLocal.length > 0) candidates = byLocal;
  }
  const peer = candidates.find((p) => p.conn.fsm.state !== SessionState.Established) ?? candidates[0];
  if (!peer || core.closing) {
    core.log.debug({ remote }, "bgp connection from unknown address refused");
    socket.destroy();
    return;
  }
  socket.setNoDelay(true);
  const st = peer.conn.fsm.state;
  if (st === SessionState.Active || (st === SessionState.Connect && !peer.conn.socket)) {
    attach(core, peer, peer.conn, socket);
    fsmStep(core, peer, peer.conn, { type: "tcp-connected", direction: "inbound" });
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
    fsm = step(fsm, { type: "start" }, core.now()).state;
    const alt = core.newConn(fsm);
    peer.alt = alt;
    attach(core, peer, alt, socket);
    fsmStep(core, peer, alt, { type: "tcp-connected", direction: "inbound" });
    return;
  }
  core.log.debug({ peer: peer.opts.id, state: st }, "bgp connection refused");
  socket.destroy();
}
