/**
 * Wire-layer micro-benchmark: how fast 1,000,000 unique IPv4 prefixes sharing one attribute set are
 * packed into UPDATEs, framed back out of a byte stream, and decoded (as objects, and through the
 * allocation-free `forEachIPv4Prefix` path the speaker uses).
 *
 *   npx tsx packages/bgp/bench/wire.ts [prefixes=1000000]
 *
 * Prints a table and writes `bench-results/bgp-wire.json` at the repository root.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  createCodecContext,
  createFramer,
  decodeUpdate,
  encodeUpdates,
  forEachIPv4Prefix,
  ipv4Prefix,
  type PathAttributes,
  type Prefix,
} from "../src/wire/index.js";

const N = Number(process.argv[2] ?? 1_000_000);
const ctx = createCodecContext();
const attributes: PathAttributes = {
  origin: 0,
  asPath: [{ type: 2, asns: [65001, 4200000000, 3356] }],
  nextHop: "192.0.2.1",
  med: 10,
  communities: [65001 * 65536 + 100, 65001 * 65536 + 200],
  largeCommunities: [[4200000000, 1, 2]],
};

/** N unique prefixes, mostly /24 with some /22 and /32, as a real table mixes them. */
function prefixes(n: number): Prefix[] {
  const out: Prefix[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = i % 10 === 0 ? 22 : i % 10 === 1 ? 32 : 24;
    // Spread over 16.0.0.0 upwards; distinct for every i.
    out[i] = ipv4Prefix(((16 << 24) + i * 1024) >>> 0, len);
  }
  return out;
}

interface Row {
  name: string;
  millis: number;
  prefixesPerSecond: number;
}

function time(name: string, f: () => void, rows: Row[], repeat = 3): void {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  rows.push({ name, millis: best, prefixesPerSecond: (N / best) * 1000 });
}

const list = prefixes(N);
const rows: Row[] = [];
let messages: Uint8Array[] = [];
time(
  "encodeUpdates (pack)",
  () => {
    messages = encodeUpdates({ attributes, nlri: list }, ctx);
  },
  rows,
);
const pairs: number[] = [];
for (const p of list)
  pairs.push(((p.addr[0]! << 24) | (p.addr[1]! << 16) | (p.addr[2]! << 8) | p.addr[3]!) >>> 0, p.len);
time(
  "encodeUpdates (numeric [addr, len] pairs)",
  () => {
    if (encodeUpdates({ attributes, ipv4Nlri: pairs }, ctx).length !== messages.length)
      throw new Error("packing differs");
  },
  rows,
);
const bytes = messages.reduce((n, m) => n + m.length, 0);
const stream = new Uint8Array(bytes);
let o = 0;
for (const m of messages) {
  stream.set(m, o);
  o += m.length;
}

time(
  "framer (64 KiB chunks)",
  () => {
    const f = createFramer();
    let n = 0;
    for (let i = 0; i < stream.length; i += 65536) n += f.push(stream.subarray(i, i + 65536)).length;
    if (n !== messages.length) throw new Error("framer lost messages");
  },
  rows,
);

time(
  "decodeUpdate + forEachIPv4Prefix",
  () => {
    let n = 0;
    let x = 0;
    for (const m of messages) {
      const r = decodeUpdate(m, ctx, { prefixes: "sections" });
      const s = r.sections.nlri;
      n += forEachIPv4Prefix(m, s.start, s.end, s.addPath, (a, len) => {
        x ^= a + len;
      });
    }
    if (n !== N || x === -1) throw new Error("prefix count mismatch");
  },
  rows,
);

time(
  "decodeUpdate (Prefix objects)",
  () => {
    let n = 0;
    for (const m of messages) n += decodeUpdate(m, ctx).update.nlri.length;
    if (n !== N) throw new Error("prefix count mismatch");
  },
  rows,
);

time(
  "frame + decode + walk (speaker path)",
  () => {
    const f = createFramer();
    let n = 0;
    for (let i = 0; i < stream.length; i += 65536)
      for (const m of f.push(stream.subarray(i, i + 65536))) {
        const s = decodeUpdate(m, ctx, { prefixes: "sections" }).sections.nlri;
        n += forEachIPv4Prefix(m, s.start, s.end, s.addPath, () => {});
      }
    if (n !== N) throw new Error("prefix count mismatch");
  },
  rows,
);

const perMessage = N / messages.length;
console.log(
  `bgp wire: ${N.toLocaleString("en")} IPv4 prefixes, one attribute set, ${messages.length} UPDATEs of ` +
    `≤4096 bytes (${perMessage.toFixed(0)} prefixes each, ${(bytes / 1e6).toFixed(1)} MB), Node ${process.version}`,
);
console.log(
  `${"operation".padEnd(42)} ${"ms".padStart(9)} ${"prefixes/s".padStart(14)} ${"vs speaker path".padStart(16)}`,
);
const ref = rows.find((r) => r.name.startsWith("frame + decode"))!;
for (const r of rows)
  console.log(
    `${r.name.padEnd(42)} ${r.millis.toFixed(1).padStart(9)} ${Math.round(r.prefixesPerSecond).toLocaleString("en").padStart(14)} ${`${(r.millis / ref.millis).toFixed(2)}x`.padStart(16)}`,
  );
// BIRD's end-to-end figure from the issue (1 M routes in ~3.7 s) bounds the budget of the whole speaker.
console.log(
  `speaker wire path uses ${((ref.millis / 3700) * 100).toFixed(1)}% of BIRD's 3.7 s end-to-end time for 1 M routes`,
);

const root = fileURLToPath(new URL("../../../", import.meta.url));
mkdirSync(`${root}bench-results`, { recursive: true });
writeFileSync(
  `${root}bench-results/bgp-wire.json`,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, prefixes: N, messages: messages.length, bytes, rows }, null, 2)}\n`,
);
