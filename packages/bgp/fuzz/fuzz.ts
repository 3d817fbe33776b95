/**
 * Fuzzer for the wire layer: feeds random and mutated messages (bit flips, length field tweaks,
 * truncation, extension, splicing) built from the golden captures, the malformed corpus and generated
 * valid messages through the framer, the decoders, validation and re-encoding. Any exception that is
 * not a typed {@link BgpWireError} (or a {@link BgpEncodeError} when re-encoding) is a failure.
 *
 *   npx tsx packages/bgp/fuzz/fuzz.ts [iterations=1000000] [--seed=N]
 *
 * Other layers add themselves with `targets` (e.g. the FSM fed with every framed message).
 */
import { readdirSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { MALFORMED } from "../testdata/malformed/corpus.js";
import { messageArb, updateArb } from "../src/wire/arbitraries.test-util.js";
import {
  type CodecContext,
  createCodecContext,
  createFramer,
  decodeMessage,
  decodeUpdate,
  encodeMessage,
  encodeUpdates,
  forEachIPv4Prefix,
  forEachPrefix,
  isBgpEncodeError,
  isBgpWireError,
  isEndOfRib,
  messageType,
  negotiateCodecContext,
  type OpenMessage,
  type UpdateMessage,
  validateOpen,
  validateUpdate,
} from "../src/wire/index.js";

/** A seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

/** Creates a {@link Rng}. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n) };
}

/** Something fed with every input: the raw bytes and the messages the framer produced from them. */
export interface FuzzTarget {
  name: string;
  /**
   * Throw only typed errors the layer defines; anything else is counted as a failure. `count` tallies an
   * outcome under a name.
   */
  run(input: { raw: Uint8Array; messages: Uint8Array[]; rng: Rng; count: (outcome: string) => void }): void;
}

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  iterations: number;
  seed?: number;
  /** Extra targets (the FSM adds itself here). Default none. */
  targets?: FuzzTarget[];
  /** Stop after this many failures. Default 10. */
  maxFailures?: number;
}

/** What {@link runFuzz} observed. */
export interface FuzzReport {
  iterations: number;
  seed: number;
  millis: number;
  outcomes: Record<string, number>;
  failures: { target: string; error: string; inputHex: string }[];
}

const GOLDEN = new URL("../testdata/golden/", import.meta.url);

/** Seed inputs: golden captures, the malformed corpus and generated valid messages. */
export function seedCorpus(seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of readdirSync(GOLDEN).filter((n) => n.endsWith(".hex"))) {
    const hex = readFileSync(new URL(f, GOLDEN), "utf8")
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("")
      .replace(/\s+/g, "");
    out.push(new Uint8Array(Buffer.from(hex, "hex")));
  }
  for (const c of MALFORMED) out.push(c.bytes);
  const ctx = createCodecContext({ maxMessageSize: 65535 });
  for (const m of fc.sample(messageArb, { numRuns: 150, seed })) out.push(encodeMessage(m, ctx));
  const two = createCodecContext({ asn4: false, maxMessageSize: 65535 });
  for (const m of fc.sample(updateArb({ twoOctetSafe: true }), { numRuns: 50, seed: seed + 1 }))
    out.push(encodeMessage(m, two));
  return out;
}

const INTERESTING = [0, 1, 2, 3, 4, 0x0f, 0x10, 0x1f, 0x20, 0x7f, 0x80, 0x81, 0xfe, 0xff];

function mutate(rng: Rng, seeds: Uint8Array[]): Uint8Array {
  const pick = () => seeds[rng.int(seeds.length)]!;
  let b = Uint8Array.from(pick());
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    if (b.length === 0) b = Uint8Array.from(pick());
    switch (rng.int(10)) {
      case 0: {
        // Bit flips.
        const n = 1 + rng.int(8);
        for (let i = 0; i < n; i++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      }
      case 1:
        b[rng.int(b.length)] = INTERESTING[rng.int(INTERESTING.length)]!;
        break;
      case 2: {
        // Header length field.
        if (b.length >= 18) {
          const len = Math.max(0, Math.min(65535, ((b[16]! << 8) | b[17]!) + rng.int(9) - 4));
          b[16] = len >>> 8;
          b[17] = len & 255;
        }
        break;
      }
      case 3: {
        // A 2-byte length inside the body (withdrawn / attribute length, extended attribute length).
        if (b.length > 22) {
          const at = 19 + rng.int(b.length - 20);
          const v = Math.max(0, ((b[at]! << 8) | b[at + 1]!) + rng.int(17) - 8);
          b[at] = (v >>> 8) & 255;
          b[at + 1] = v & 255;
        }
        break;
      }
      case 4: {
        // A 1-byte length (attribute, capability, prefix length).
        const at = 19 + rng.int(Math.max(1, b.length - 19));
        if (at < b.length) b[at] = (b[at]! + rng.int(9) - 4) & 255;
        break;
      }
      case 5:
        b = b.slice(0, rng.int(b.length + 1));
        break;
      case 6: {
        const extra = new Uint8Array(1 + rng.int(64));
        for (let i = 0; i < extra.length; i++) extra[i] = rng.int(256);
        const n = new Uint8Array(b.length + extra.length);
        n.set(b);
        n.set(extra, b.length);
        b = n;
        break;
      }
      case 7: {
        // Splice: a head of this message with the tail of another.
        const o = pick();
        const cut = rng.int(b.length + 1);
        const from = rng.int(o.length + 1);
        const n = new Uint8Array(cut + o.length - from);
        n.set(b.subarray(0, cut));
        n.set(o.subarray(from), cut);
        b = n;
        break;
      }
      case 8: {
        // Duplicate a range (repeated attributes, prefixes).
        const s = rng.int(b.length);
        const e = Math.min(b.length, s + 1 + rng.int(32));
        const n = new Uint8Array(b.length + (e - s));
        n.set(b.subarray(0, e));
        n.set(b.subarray(s), e);
        b = n;
        break;
      }
      default: {
        // Random body behind a valid marker and a plausible header.
        const len = 19 + rng.int(200);
        b = new Uint8Array(len);
        b.fill(0xff, 0, 16);
        b[16] = len >>> 8;
        b[17] = len & 255;
        b[18] = 1 + rng.int(5);
        for (let i = 19; i < len; i++) b[i] = rng.int(256);
      }
    }
  }
  // Keep the header length honest half the time, so the body decoders are reached.
  if (b.length >= 19 && rng.int(2) === 0 && b.length <= 65535) {
    b[16] = b.length >>> 8;
    b[17] = b.length & 255;
  }
  return b;
}

const CONTEXTS: CodecContext[] = [
  createCodecContext(),
  createCodecContext({ asn4: false }),
  createCodecContext({
    maxMessageSize: 65535,
    addPathReceive: new Set(["1/1", "2/1"]),
    addPathSend: new Set(["1/1"]),
  }),
  createCodecContext({ extendedNextHop: new Set(["1/1"]) }),
];

/** The wire layer's own targets: framer, decoders (both prefix modes), validation, re-encoding. */
export const WIRE_TARGETS: FuzzTarget[] = [
  {
    name: "decode",
    run({ raw, messages, rng, count }) {
      const ctx = CONTEXTS[rng.int(CONTEXTS.length)]!;
      // The raw input straight into the decoder, bypassing the framer.
      try {
        decodeMessage(raw, ctx);
        count("raw:ok");
      } catch (e) {
        if (!isBgpWireError(e)) throw e;
        count(`raw:${e.notification.code}/${e.notification.subcode}`);
      }
      for (const m of messages) {
        if (messageType(m) === 2) decodeUpdateFully(m, ctx, rng, count);
        else {
          try {
            const msg = decodeMessage(m, ctx);
            count(`msg:${msg.type}:ok`);
            if (msg.type === 1) {
              const err = validateOpen(msg, { peerAs: 65001, localAs: 65001, localBgpId: "10.0.0.1" });
              count(err ? `open:${err.notification.subcode}` : "open:valid");
              negotiateCodecContext(msg as OpenMessage, msg as OpenMessage);
            }
            reencode(msg, ctx, count);
          } catch (e) {
            if (!isBgpWireError(e)) throw e;
            count(`msg:${e.notification.code}/${e.notification.subcode}`);
          }
        }
      }
    },
  },
];

function reencode(
  msg: Parameters<typeof encodeMessage>[0],
  ctx: CodecContext,
  count: (o: string) => void,
): void {
  // What we decode with path identifiers we send with them: mirror ADD-PATH for the way back.
  const mirror = { ...ctx, addPathSend: ctx.addPathReceive };
  let again: Uint8Array;
  try {
    again = encodeMessage(msg, mirror);
  } catch (e) {
    // Decoded values can exceed a size limit when re-encoded (e.g. AS4_PATH added on a 2-octet session).
    if (isBgpEncodeError(e)) {
      count(`reencode:${e.code}`);
      return;
    }
    throw e;
  }
  // Whatever we encode must decode again: a wire error here is a codec asymmetry, reported as a failure.
  try {
    decodeMessage(again, { ...mirror, maxMessageSize: 65535 });
  } catch (e) {
    throw new Error(`re-encoded message does not decode: ${String(e)}`);
  }
  count("reencode:ok");
}

/** The packer must carry every prefix of a decoded UPDATE into messages that decode again. */
function repack(u: UpdateMessage, ctx: CodecContext, count: (o: string) => void): void {
  const mirror = { ...ctx, addPathSend: ctx.addPathReceive, maxMessageSize: 4096 };
  const { mpReach, mpUnreach, ...rest } = u.attributes;
  let msgs: Uint8Array[];
  try {
    msgs = encodeUpdates(
      {
        attributes: mpReach ? { ...rest, mpReach } : rest,
        nlri: u.nlri,
        withdrawn: [...u.withdrawn, ...(mpUnreach?.withdrawn ?? [])],
      },
      mirror,
    );
  } catch (e) {
    if (isBgpEncodeError(e)) {
      count(`repack:${e.code}`);
      return;
    }
    throw e;
  }
  let n = 0;
  for (const m of msgs) {
    if (m.length > 4096) throw new Error(`packer produced ${m.length} bytes`);
    const d = decodeUpdate(m, mirror).update;
    n += d.nlri.length + d.withdrawn.length + (d.attributes.mpReach?.nlri.length ?? 0);
    n += d.attributes.mpUnreach?.withdrawn.length ?? 0;
  }
  const want =
    u.nlri.length + u.withdrawn.length + (mpReach?.nlri.length ?? 0) + (mpUnreach?.withdrawn.length ?? 0);
  if (n !== want) throw new Error(`packer carried ${n} prefixes of ${want}`);
  count("repack:ok");
}

function decodeUpdateFully(m: Uint8Array, ctx: CodecContext, rng: Rng, count: (o: string) => void): void {
  try {
    const r = decodeUpdate(m, ctx);
    count(`update:${r.action ?? "clean"}`);
    const s = decodeUpdate(m, ctx, { prefixes: "sections" });
    let n = 0;
    forEachIPv4Prefix(m, s.sections.nlri.start, s.sections.nlri.end, s.sections.nlri.addPath, () => n++);
    forEachIPv4Prefix(
      m,
      s.sections.withdrawn.start,
      s.sections.withdrawn.end,
      s.sections.withdrawn.addPath,
      () => n++,
    );
    const mp = s.sections.mpReach;
    if (mp) forEachPrefix(m, mp.start, mp.end, mp.afi, mp.addPath, () => n++);
    if (
      n !==
      r.update.nlri.length + r.update.withdrawn.length + (r.update.attributes.mpReach?.nlri.length ?? 0)
    )
      throw new Error("prefix walk disagrees with decoded prefixes");
    isEndOfRib(r.update);
    const v = validateUpdate(r.update, {
      ebgp: rng.int(2) === 0,
      peerAs: 65000,
      localAddresses: ["10.0.0.1"],
    });
    count(`validate:${v.action ?? "clean"}`);
    if (r.action === undefined) {
      reencode(r.update, ctx, count);
      repack(r.update, ctx, count);
    }
  } catch (e) {
    if (!isBgpWireError(e)) throw e;
    count(`update:${e.notification.code}/${e.notification.subcode}`);
  }
}

/** Runs the fuzzer. Never throws for a finding: failures are in the report. */
export function runFuzz(options: FuzzOptions): FuzzReport {
  const seed = options.seed ?? 1;
  const rng = createRng(seed);
  const seeds = seedCorpus(seed);
  const targets = [...WIRE_TARGETS, ...(options.targets ?? [])];
  const maxFailures = options.maxFailures ?? 10;
  const outcomes: Record<string, number> = {};
  const count = (o: string) => {
    outcomes[o] = (outcomes[o] ?? 0) + 1;
  };
  const failures: FuzzReport["failures"] = [];
  const t0 = performance.now();
  let i = 0;
  for (; i < options.iterations && failures.length < maxFailures; i++) {
    const raw = mutate(rng, seeds);
    // Sometimes several messages in one stream, cut at random points.
    const stream = rng.int(4) === 0 ? concat(raw, mutate(rng, seeds)) : raw;
    const framer = createFramer({ maxMessageSize: rng.int(2) === 0 ? 4096 : 65535 });
    const messages: Uint8Array[] = [];
    try {
      let at = 0;
      while (at < stream.length) {
        const step = 1 + rng.int(stream.length - at);
        messages.push(...framer.push(stream.subarray(at, at + step)));
        at += step;
      }
      count(framer.buffered > 0 ? "framer:partial" : "framer:ok");
    } catch (e) {
      if (!isBgpWireError(e)) {
        failures.push({
          target: "framer",
          error: String((e as Error)?.stack ?? e),
          inputHex: Buffer.from(stream).toString("hex"),
        });
        continue;
      }
      count(`framer:${e.notification.code}/${e.notification.subcode}`);
    }
    for (const t of targets) {
      try {
        t.run({ raw, messages, rng, count });
      } catch (e) {
        failures.push({
          target: t.name,
          error: String((e as Error)?.stack ?? e),
          inputHex: Buffer.from(stream).toString("hex"),
        });
      }
    }
  }
  return { iterations: i, seed, millis: performance.now() - t0, outcomes, failures };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const n = new Uint8Array(a.length + b.length);
  n.set(a);
  n.set(b, a.length);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const iterations = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
  const seed = Number(args.find((a) => a.startsWith("--seed="))?.slice(7) ?? 1);
  const r = runFuzz({ iterations, seed });
  const rows = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]);
  console.log(`fuzz: ${r.iterations} inputs, seed ${r.seed}, ${(r.millis / 1000).toFixed(1)} s`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(40)} ${String(v).padStart(10)}`);
  if (r.failures.length > 0) {
    console.error(`${r.failures.length} untyped exception(s):`);
    for (const f of r.failures) console.error(`- [${f.target}] ${f.error}\n  input: ${f.inputHex}`);
    process.exitCode = 1;
  } else console.log("no untyped exceptions");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
