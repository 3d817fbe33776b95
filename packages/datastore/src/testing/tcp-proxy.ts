/**
 * A loopback TCP proxy in front of one server, for partition tests: it can cut every connection and
 * refuse new ones (one client's partition while others still reach the server), and come back on the
 * same port.
 */

import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./start-etcd.js";

/** A running {@link startTcpProxy}. */
export interface TcpProxy {
  /** The URL a client dials instead of the target: the target's scheme, `127.0.0.1` and the proxy's port. */
  readonly endpoint: string;
  /** Listens again on the same port (after {@link TcpProxy.down}). */
  up(): Promise<void>;
  /** Destroys every proxied connection and stops listening, so new ones are refused. Idempotent. */
  down(): Promise<void>;
  /** Goes {@link TcpProxy.down} once `bytes` more have flowed from the server to its clients. */
  cutAfter(bytes: number): void;
  /** How many times {@link TcpProxy.cutAfter} has cut. */
  readonly cuts: number;
  /** True while listening. */
  readonly isUp: boolean;
}

/** Starts a proxy on a free loopback port that forwards each connection to `target` (its host and port). */
export async function startTcpProxy(target: URL): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let budget: number | undefined;
  let cuts = 0;
  const up = () =>
    new Promise<void>((resolve, reject) => {
      const srv = createServer((c) => {
        const u = connect(Number(target.port), target.hostname.replace(/^\[|\]$/g, ""));
        for (const s of [c, u]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => s.destroy());
        }
        c.pipe(u).pipe(c);
        u.on("data", (chunk: Buffer) => {
          if (budget === undefined) return;
          budget -= chunk.length;
          if (budget <= 0) {
            budget = undefined;
            cuts++;
            void down();
          }
        });
        c.on("close", () => u.destroy());
        u.on("close", () => c.destroy());
      });
      srv.once("error", reject);
      srv.listen(port, "127.0.0.1", () => {
        server = srv;
        resolve();
      });
    });
  const down = async () => {
    const srv = server;
    server = undefined;
    for (const s of sockets) s.destroy();
    if (srv !== undefined) await new Promise<void>((r) => srv.close(() => r()));
  };
  await up();
  return {
    endpoint: `${target.protocol}//127.0.0.1:${port}`,
    up,
    down,
    cutAfter(bytes: number) {
      budget = bytes;
    },
    get cuts() {
      return cuts;
    },
    get isUp() {
      return server !== undefined;
    },
  };
}
