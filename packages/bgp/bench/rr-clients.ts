/**
 * The route-reflector clients of the scale benchmark (`bench/scale.ts`), all in this one process so the
 * speaker under test has the harness's process to itself: N iBGP sessions (the mini peer: wire codec
 * only, no RIB) from 127.1.x.y to the speaker, each announcing R host routes with itself as next hop.
 * Talks to the harness with JSON lines:
 *
 *   stdout {event:"established"}         every session is Established (then it waits)
 *   stdin  go                            every client sends its R routes (one packed UPDATE each)
 *   stdout {event:"converged", cpuMs}    every client has received the other clients' (N-1)*R routes
 *
 *   node --import tsx bench/rr-clients.ts '<json {port, clients, routes, asn}>'
 */
import { createInterface } from "node:readline";
import { createCodecContext, encodeUpdates, type PathAttributes } from "../src/wire/index.js";
import { dial, type MiniSession } from "./mini-peer.js";

interface Options {
  port: number;
  clients: number;
  routes: number;
  asn: number;
}

/** Client i's address: 127.1.x.y, unique for up to 62,500 clients. */
export const clientAddress = (i: number): string => `127.1.${Math.floor(i / 250)}.${1 + (i % 250)}`;

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? "{}") as Options;
  const say = (m: object) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const ctx = createCodecContext({ maxMessageSize: 4096 });
  const sessions: MiniSession[] = [];
  const updates: Uint8Array[][] = [];
  for (let i = 0; i < o.clients; i++) {
    const address = clientAddress(i);
    sessions.push(dial("127.0.0.1", o.port, address, { asn: o.asn, routerId: address, holdTime: 240 }));
    // R distinct /32s per client from 20.0.0.0 upwards.
    const nlri: number[] = [];
    for (let k = 0; k < o.routes; k++) nlri.push(((20 << 24) + i * 4096 + k) >>> 0, 32);
    const attributes: PathAttributes = { origin: 0, asPath: [], nextHop: address, localPref: 100 };
    updates.push(encodeUpdates({ attributes, ipv4Nlri: nlri }, ctx));
  }
  await Promise.all(sessions.map((s) => s.established));
  say({ event: "established" });
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  const cpu0 = process.cpuUsage();
  sessions.forEach((s, i) => {
    for (const m of updates[i]!) s.socket.write(m);
  });
  const want = (o.clients - 1) * o.routes;
  await Promise.all(sessions.map((s) => s.waitReceived(want)));
  const cpu = process.cpuUsage(cpu0);
  say({ event: "converged", cpuMs: (cpu.user + cpu.system) / 1000 });
  for (const s of sessions) s.close();
  lines.close();
}

if (process.argv[1]?.endsWith("rr-clients.ts")) await main();
