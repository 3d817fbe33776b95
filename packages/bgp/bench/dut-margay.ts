/**
 * The benchmark's device under test for `@margay/bgp`: a speaker in its own process (so its resident
 * memory is read alone, from /proc, like every other device's), with two passive eBGP peers (generator
 * and sink). Talks to the harness with JSON lines: stdin commands, stdout replies.
 *
 *   count → {event:"count", routes, bestPathEvents}   (the harness polls this, as it polls the others)
 *   gc    → {event:"heap", heapUsed}                  (V8 heap after a forced full GC: a second figure,
 *                                                      only asked for after every RSS reading of a run)
 *   exit
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
// The heap baseline for the second (forced-GC) figure; the harness reads RSS from /proc without a GC.
gc?.();
say({ event: "ready", heapUsed: process.memoryUsage().heapUsed });

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "count") {
    say({ event: "count", routes: speaker.routeCount, bestPathEvents });
  } else if (line === "gc") {
    gc?.();
    say({ event: "heap", heapUsed: process.memoryUsage().heapUsed });
  } else if (line === "exit") {
    void speaker.close().then(() => process.exit(0));
  }
});
