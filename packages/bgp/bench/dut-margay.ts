/**
 * The benchmark's device under test for `@margay/bgp`: a speaker in its own process (so its resident
 * memory is measured alone), with two passive eBGP peers (generator and sink). Talks to the harness with
 * JSON lines: stdout reports, stdin commands (`gc` → report memory after a full GC, `exit`).
 *
 *   node --expose-gc --import tsx bench/dut-margay.ts '<json options>'
 */
import { createInterface } from "node:readline";
import { createSpeaker } from "../src/index.js";

interface Options {
  host: string;
  port: number;
  asn: number;
  generator: { address: string; asn: number };
  sink: { address: string; asn: number };
  routes: number;
}

const o = JSON.parse(process.argv[2] ?? "{}") as Options;
const say = (m: object) => process.stdout.write(`${JSON.stringify(m)}\n`);
const gc = (globalThis as { gc?: () => void }).gc;

const speaker = await createSpeaker({
  asn: o.asn,
  routerId: "10.0.2.1",
  listen: [{ host: o.host, port: o.port }],
  holdTime: 240,
  peers: [
    { address: o.generator.address, asn: o.generator.asn, passive: true },
    { address: o.sink.address, asn: o.sink.asn, passive: true },
  ],
});
// Subscribe like a node agent does, so the best-path event stream is really produced during the load.
let bestPathEvents = 0;
speaker.on((e) => {
  if (e.type === "best-path") bestPathEvents++;
});
gc?.();
say({ event: "ready", rss: process.memoryUsage().rss });

let first = 0;
const poll = setInterval(() => {
  const n = speaker.routeCount;
  if (n > 0 && first === 0) first = Date.now();
  if (n >= o.routes) {
    clearInterval(poll);
    say({
      event: "loaded",
      at: Date.now(),
      firstSeen: first,
      rss: process.memoryUsage().rss,
      routes: n,
      bestPathEvents,
    });
  }
}, 2);

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "gc") {
    gc?.();
    const m = process.memoryUsage();
    say({ event: "memory", rss: m.rss, heapUsed: m.heapUsed });
  } else if (line === "exit") {
    void speaker.close().then(() => process.exit(0));
  }
});
