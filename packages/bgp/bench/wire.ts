/**
 * Wire-layer micro-benchmark: how fast 1,000,000 unique IPv4 prefixes sharing one attribute set are
 * packed into UPDATEs, framed back out of a byte stream, and decoded (as objects, and through the
 * allocation-free `forEachIPv4Prefix` path the speaker uses).
 *
 *   npx tsx packages/bgp/bench/wire.ts [prefixes=1000000]
 *
 * Each operation runs 5 times (min/median/max). `BENCH_QUICK=1`: 10,000 prefixes. Writes `bgp-wire.json`
 * where scripts/bench-kit.ts says.
 */
import { fmt, type Summary, size, summarize, writeResult } from "../../../scripts/bench-kit.js";
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

const N = Number(process.argv[2] ?? size(1_000_000, 10_000));
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
  /** Wall time of one pass over all N prefixes, per repetition. */
  millis: Summary;
  /** N / median time. */
  prefixesPerSecond: number;
}

const REPEAT = 5;

function time(name: string, f: () => void, rows: Row[]): void {
  const samples: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    const t0 = performance.now();
    f();
    samples.push(performance.now() - t0);
  }
  const millis = summarize(samples);
  rows.push({ name, millis, prefixesPerSecond: (N / millis.median) * 1000 });
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
console.log(`${"operation".padEnd(42)} ${"ms median (min–max)".padStart(24)} ${"prefixes/s".padStart(14)}`);
for (const r of rows)
  console.log(
    `${r.name.padEnd(42)} ${fmt(r.millis).padStart(24)} ${Math.round(r.prefixesPerSecond).toLocaleString("en").padStart(14)}`,
  );

writeResult("bgp-wire", {
  node: process.version,
  prefixes: N,
  repeat: REPEAT,
  messages: messages.length,
  bytes,
  rows,
});
