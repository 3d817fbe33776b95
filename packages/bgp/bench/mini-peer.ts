/**
 * A minimal BGP peer for the benchmark, built on the wire codec only: it opens a session, then either
 * blasts pre-encoded UPDATEs (generator) or counts received prefixes (sink). It keeps no RIB, so it is
 * never the bottleneck (the sink-only control run proves it).
 *
 * @packageDocumentation
 */

import { connect, createServer, type Server, type Socket } from "node:net";
import {
  type CodecContext,
  createCodecContext,
  createFramer,
  decodeUpdate,
  encodeMessage,
  encodeUpdates,
  endOfRib,
  ipv4Prefix,
  messageType,
  type PathAttributes,
  type Prefix,
  scanPrefixes,
} from "../src/wire/index.js";

export interface MiniPeerOptions {
  asn: number;
  routerId: string;
  /** Hold time we propose (default 240). */
  holdTime?: number;
}

/** Pre-encodes `n` unique IPv4 prefixes over `attrSets` attribute sets (distinct AS paths) plus End-of-RIB. */
export function encodeTable(n: number, attrSets: number, asn: number, nextHop: string): Buffer {
  const ctx = createCodecContext({ maxMessageSize: 4096 });
  const groups: Prefix[][] = Array.from({ length: attrSets }, () => []);
  for (let i = 0; i < n; i++) {
    // Unique /24s from 16.0.0.0 upwards; consecutive prefixes share an attribute set in blocks.
    groups[Math.floor((i * attrSets) / n)]!.push(ipv4Prefix(((16 << 24) + i * 256) >>> 0, 24));
  }
  const chunks: Uint8Array[] = [];
  groups.forEach((nlri, g) => {
    const pathLen = 1 + (g % 4);
    const asns = [asn, ...Array.from({ length: pathLen }, (_, k) => 64512 + ((g * 7 + k * 131) % 400))];
    const attributes: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns }],
      nextHop,
      communities: [(asn & 0xffff) * 65536 + (g % 100)],
    };
    chunks.push(...encodeUpdates({ attributes, nlri }, ctx));
  });
  chunks.push(encodeMessage(endOfRib(), ctx));
  return Buffer.concat(chunks);
}

/** A running session of the mini peer. */
export interface MiniSession {
  readonly socket: Socket;
  /** Resolves at Established (our KEEPALIVE answered with theirs), with the time. */
  readonly established: Promise<number>;
  /** Prefixes received in UPDATE NLRI so far. */
  readonly received: () => number;
  /** Resolves with the time `count` prefixes were received. */
  waitReceived(count: number): Promise<number>;
  close(): void;
}

function session(socket: Socket, o: MiniPeerOptions): MiniSession {
  const ctx: CodecContext = createCodecContext({ maxMessageSize: 4096 });
  const framer = createFramer();
  let received = 0;
  let waiter: { count: number; resolve: (t: number) => void } | null = null;
  let establish: (t: number) => void = () => {};
  const established = new Promise<number>((r) => (establish = r));
  let openSeen = false;
  const hold = o.holdTime ?? 240;
  socket.setNoDelay(true);
  socket.write(
    encodeMessage(
      {
        type: 1,
        version: 4,
        myAs: o.asn > 0xffff ? 23456 : o.asn,
        holdTime: hold,
        bgpId: o.routerId,
        capabilities: [
          { code: 1, kind: "multiprotocol", afi: 1, safi: 1 },
          { code: 2, kind: "route-refresh" },
          { code: 65, kind: "four-octet-as", asn: o.asn },
        ],
      },
      ctx,
    ),
  );
  const keepalive = encodeMessage({ type: 4 }, ctx);
  const timer = setInterval(() => socket.write(keepalive), Math.max(1, Math.floor(hold / 3)) * 1000);
  timer.unref();
  socket.on("data", (chunk: Buffer) => {
    for (const m of framer.push(chunk)) {
      const t = messageType(m);
      if (t === 1 && !openSeen) {
        openSeen = true;
        socket.write(keepalive);
      } else if (t === 4 && openSeen) {
        establish(Date.now());
      } else if (t === 2) {
        const r = decodeUpdate(m, ctx, { prefixes: "sections" });
        const s = r.sections.nlri;
        if (s.end > s.start) received += scanPrefixes(m, s.start, s.end, 1, false);
        if (waiter && received >= waiter.count) {
          waiter.resolve(Date.now());
          waiter = null;
        }
      } else if (t === 3) {
        socket.destroy();
      }
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => clearInterval(timer));
  return {
    socket,
    established,
    received: () => received,
    waitReceived: (count) =>
      received >= count
        ? Promise.resolve(Date.now())
        : new Promise((resolve) => (waiter = { count, resolve })),
    close: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** Connects to a BGP speaker at `host:port` from `localAddress`. */
export function dial(host: string, port: number, localAddress: string, o: MiniPeerOptions): MiniSession {
  return session(connect({ host, port, localAddress }), o);
}

/** Accepts one session on `host:port`. */
export function accept(
  host: string,
  port: number,
  o: MiniPeerOptions,
): Promise<{ server: Server; session: Promise<MiniSession> }> {
  return new Promise((resolve, reject) => {
    let got: (s: MiniSession) => void = () => {};
    const sessionP = new Promise<MiniSession>((r) => (got = r));
    const server = createServer((sock) => got(session(sock, o)));
    server.once("error", reject);
    server.listen({ host, port }, () => resolve({ server, session: sessionP }));
  });
}
