/**
 * Full-table benchmark, side by side on one harness: a generator announces N unique IPv4 prefixes
 * (default 1,000,000) over one eBGP session to (a) `@margay/bgp`, (b) BIRD 2, (c) GoBGP, in turn. For each
 * device we measure the time from the first UPDATE written to all N routes in its Loc-RIB, the resident
 * memory it gained per route, and then the time to send the whole table to a second peer that connects
 * afterwards. A sink-only control run (generator straight into the sink) shows the generator and sink
 * are faster than any device under test.
 *
 *   npm run bench -- [--routes 1000000] [--generator node|bird] [--attr-sets 1000] [--repeat 3]
 *                    [--only margay,bird,gobgp] [--cpu-prof DIR]
 *
 * Each device runs `--repeat` times (GoBGP once) and the medians are reported.
 *
 * Generators: `node` (default) writes pre-encoded UPDATEs as fast as TCP takes them, over
 * `--attr-sets` distinct AS paths; `bird` is BIRD 2 with N static routes (the issue's reference setup).
 *
 * Prints a table with ratios and writes `<repo>/bench-results/bgp.json` (`bgp-bird-generator.json` with
 * `--generator bird`; a `-<routes>` suffix for runs other than 1M).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startBird } from "../src/interop/bird.js";
import { startGobgp } from "../src/interop/gobgp.js";
import { exited, freePort, run } from "../src/interop/util.js";
import { accept, dial, encodeTable } from "./mini-peer.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const N = Number(arg("routes", "1000000"));
const ATTR_SETS = Number(arg("attr-sets", "1000"));
const ONLY = arg("only", "margay,bird,gobgp").split(",");
const GENERATOR = arg("generator", "node");
const REPEAT = Number(arg("repeat", "3"));
/** Write a V8 CPU profile of each `@margay/bgp` device process into this directory. */
const CPU_PROF = arg("cpu-prof", "");

const DUT = "127.0.2.1";
const GEN = "127.0.2.2";
const SINK = "127.0.2.3";
const DUT_ASN = 65000;
const GEN_ASN = 65010;
const SINK_ASN = 65020;
// A non-loopback next hop: GoBGP rejects loopback next hops; the others do not care.
const NEXT_HOP = "192.0.2.2";

interface Device {
  /** Resident memory now (after a full GC where the runtime allows one). */
  rss(): Promise<number>;
  /** V8 heap in use after that GC (this speaker only): a cross-check of the RSS figure. */
  lastHeapUsed?: number;
  /** Resolves with the wall-clock time at which N routes were seen in the Loc-RIB. */
  loaded(): Promise<number>;
  /** How often `loaded` polls (its resolution), in ms. */
  readonly pollMs: number;

  stop(): Promise<void>;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function pollUntil(f: () => Promise<boolean>, everyMs: number, timeoutMs = 600_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await f()) return Date.now();
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** CPU ticks (user + system, 10 ms each) a process has used. */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

/**
 * Resolves with the last moment `pid` was busy (≥ 30 ms of CPU in a 100 ms window) once it has been
 * idle for 2 s and `done()` confirms the work is complete.
 */
async function untilIdle(pid: number, done: () => Promise<boolean>): Promise<number> {
  let prev = cpuTicks(pid);
  let lastBusy = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const cur = cpuTicks(pid);
    if (cur - prev >= 3) lastBusy = Date.now();
    prev = cur;
    if (Date.now() - lastBusy > 2000) {
      if (await done()) return lastBusy;
      lastBusy = Date.now();
      prev = cpuTicks(pid);
    }
  }
}

async function startMargay(port: number): Promise<Device> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      "--expose-gc",
      "--max-old-space-size=8192",
      ...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}`] : []),
      "--import",
      "tsx",
      join(here, "dut-margay.ts"),
      JSON.stringify({
        host: DUT,
        port,
        asn: DUT_ASN,
        generator: { address: GEN, asn: GEN_ASN },
        sink: { address: SINK, asn: SINK_ASN },
        routes: N,
      }),
    ],
    { cwd: join(here, ".."), stdio: ["pipe", "pipe", "inherit"] },
  );
  const waiting = new Map<string, (m: Record<string, number>) => void>();
  const seen = new Map<string, Record<string, number>>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let m: Record<string, number> & { event: string };
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    const w = waiting.get(m.event);
    if (w) {
      waiting.delete(m.event);
      w(m);
    } else seen.set(m.event, m);
  });
  const next = (event: string) =>
    new Promise<Record<string, number>>((resolve) => {
      const s = seen.get(event);
      if (s) {
        seen.delete(event);
        resolve(s);
      } else waiting.set(event, resolve);
    });
  await next("ready");
  const dev: Device = {
    pollMs: 2,
    rss: async () => {
      const r = next("memory");
      child.stdin!.write("gc\n");
      const m = await r;
      dev.lastHeapUsed = m.heapUsed;
      return m.rss!;
    },
    loaded: async () => {
      const m = await next("loaded");
      // The load counts only if the best-path stream (what a dataplane consumes) was produced too.
      if (m.bestPathEvents! < N)
        throw new Error(`margay: ${m.bestPathEvents} best-path events for ${N} routes`);
      return m.at!;
    },
    stop: async () => {
      child.stdin!.write("exit\n");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited(child);
      clearTimeout(t);
    },
  };
  return dev;
}

async function startBirdDut(port: number): Promise<Device> {
  const b = await startBird(
    `router id 10.0.2.1;
log stderr { warning, error, fatal };
protocol device { scan time 60; }
protocol bgp gen {
  local ${DUT} port ${port} as ${DUT_ASN};
  neighbor ${GEN} as ${GEN_ASN};
  multihop; passive on; hold time 240;
  ipv4 { import all; export none; };
}
protocol bgp sink {
  local ${DUT} port ${port} as ${DUT_ASN};
  neighbor ${SINK} as ${SINK_ASN};
  multihop; passive on; hold time 240;
  ipv4 { import none; export all; };
}
`,
    "bench",
  );
  const pid = b.proc.pid!;
  return {
    pollMs: 50,
    rss: async () => rssOf(pid),
    loaded: () =>
      pollUntil(async () => {
        // O(1) per-protocol counter (a `show route count` would walk the table inside BIRD's loop).
        const text = await b.birdc(["show", "protocols", "all", "gen"]);
        const m = /Routes:\s+(\d+) imported/.exec(text);
        return m !== null && Number(m[1]) >= N;
      }, 50),
    stop: () => b.stop(),
  };
}

async function startGobgpDut(port: number): Promise<Device> {
  const neighbor = (addr: string, asn: number) => `[[neighbors]]
  [neighbors.config]
    neighbor-address = "${addr}"
    peer-as = ${asn}
  [neighbors.transport.config]
    passive-mode = true
    local-address = "${DUT}"
  [neighbors.timers.config]
    hold-time = 240
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`;
  const g = await startGobgp(
    `[global.config]
  as = ${DUT_ASN}
  router-id = "10.0.2.1"
  port = ${port}
  local-address-list = ["${DUT}"]
${neighbor(GEN, GEN_ASN)}
${neighbor(SINK, SINK_ASN)}`,
    "bench",
  );
  const pid = g.proc.pid!;
  return {
    pollMs: 100,
    rss: async () => rssOf(pid),
    // GoBGP has no cheap "routes in the RIB" counter: `gobgp global rib summary` and even the neighbour
    // list walk tables under a lock and, polled, slow its ingestion several-fold. So watch its CPU
    // instead: done = the last busy moment before 2 s of idleness, then verify the RIB (untimed).
    loaded: () =>
      untilIdle(pid, async () => {
        const text = await g.gobgp(["global", "rib", "summary", "-a", "ipv4"], 120_000);
        const m = /Destination:\s*(\d+)/.exec(text);
        return m !== null && Number(m[1]) >= N;
      }),
    stop: () => g.stop(),
  };
}

/** Something that announces the table to `host:port` (a speaker of AS `peerAsn`) from GEN. */
interface Generator {
  readonly name: string;
  /** Connects; resolves once the session is up, with `start()` returning the time the table started flowing. */
  open(
    host: string,
    port: number,
    peerAsn: number,
  ): Promise<{ start(): Promise<number>; close(): Promise<void> }>;
}

/** Node mini peer writing the pre-encoded table in one go. */
function nodeGenerator(table: Buffer): Generator {
  return {
    name: `node mini peer, pre-encoded 4096-byte UPDATEs, ${ATTR_SETS} attribute sets`,
    open: async (host, port) => {
      const gen = dial(host, port, GEN, { asn: GEN_ASN, routerId: "10.0.2.2" });
      await gen.established;
      return {
        start: async () => {
          const t0 = Date.now();
          gen.socket.write(table);
          return t0;
        },
        close: async () => gen.close(),
      };
    },
  };
}

/** BIRD with N static routes (one attribute set), its BGP protocol enabled when the run starts. */
function birdGenerator(): Generator {
  const statics: string[] = new Array(N);
  for (let i = 0; i < N; i++) {
    const a = ((16 << 24) + i * 256) >>> 0;
    statics[i] = `  route ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.0/24 blackhole;`;
  }
  const routes = statics.join("\n");
  return {
    name: "BIRD 2 with static routes (one attribute set)",
    open: async (host, port, peerAsn) => {
      const b = await startBird(
        `router id 10.0.2.2;
log stderr { warning, error, fatal };
protocol device { scan time 60; }
protocol static statics { ipv4;
${routes}
}
protocol bgp dut {
  local ${GEN} as ${GEN_ASN};
  neighbor ${host} port ${port} as ${peerAsn};
  multihop; hold time 240; connect delay time 1; disabled;
  ipv4 { import none; export all; next hop address ${NEXT_HOP}; };
}
`,
        "benchgen",
      );
      await pollUntil(async () => (await b.birdc(["show", "route", "count"])).includes(`${N} of ${N}`), 100);
      return {
        start: async () => {
          await b.birdc(["enable", "dut"]);
          // The table flows as soon as the session is up.
          return pollUntil(async () => (await b.protocolState("dut")) === "Established", 10);
        },
        close: () => b.stop(),
      };
    },
  };
}

interface Result {
  device: string;
  /** Number of runs this result is the median of, with every run's figures. */
  runs?: number;
  samples?: Omit<Result, "samples">[];
  loadSeconds: number;
  bytesPerRoute: number;
  propagateSeconds: number;
  bytesPerRouteAfterPropagation: number;
  /** V8 heap gained per route after a full GC (this speaker only). */
  heapBytesPerRoute?: number;
  pollMs: number;
}

async function measure(
  name: string,
  start: (port: number) => Promise<Device>,
  generator: Generator,
): Promise<Result> {
  const port = await freePort(DUT);
  const dev = await start(port);
  let gen: Awaited<ReturnType<Generator["open"]>> | undefined;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rss0 = await dev.rss();
    const heap0 = dev.lastHeapUsed;
    gen = await generator.open(DUT, port, DUT_ASN);
    const loadedP = dev.loaded();
    const t0 = await gen.start();
    const t1 = await loadedP;
    const rss1 = await dev.rss();
    const heap1 = dev.lastHeapUsed;
    const sink = dial(DUT, port, SINK, { asn: SINK_ASN, routerId: "10.0.2.3" });
    const ts0 = await sink.established;
    const ts1 = await sink.waitReceived(N);
    const rss2 = await dev.rss();
    sink.close();
    const r: Result = {
      device: name,
      loadSeconds: (t1 - t0) / 1000,
      bytesPerRoute: (rss1 - rss0) / N,
      propagateSeconds: (ts1 - ts0) / 1000,
      bytesPerRouteAfterPropagation: (rss2 - rss0) / N,
      pollMs: dev.pollMs,
    };
    if (heap0 !== undefined && heap1 !== undefined) r.heapBytesPerRoute = (heap1 - heap0) / N;
    console.log(
      `${name}: load ${r.loadSeconds.toFixed(2)} s, ${r.bytesPerRoute.toFixed(0)} B/route; ` +
        `propagate ${r.propagateSeconds.toFixed(2)} s, ${r.bytesPerRouteAfterPropagation.toFixed(0)} B/route with Adj-RIB-Out` +
        (r.heapBytesPerRoute === undefined ? "" : ` (V8 heap ${r.heapBytesPerRoute.toFixed(0)} B/route)`),
    );
    return r;
  } finally {
    await gen?.close();
    await dev.stop();
  }
}

/** Generator straight into the sink: the ceiling the harness itself imposes. */
async function sinkOnly(generator: Generator): Promise<number> {
  const port = await freePort(SINK);
  const { server, session } = await accept(SINK, port, { asn: SINK_ASN, routerId: "10.0.2.3" });
  const gen = await generator.open(SINK, port, SINK_ASN);
  try {
    const started = gen.start();
    const sink = await session;
    const t0 = await started;
    const t1 = await sink.waitReceived(N);
    sink.close();
    return (t1 - t0) / 1000;
  } finally {
    await gen.close();
    server.close();
  }
}

/** The run with the median load time, carrying all runs as samples. */
function median(runs: Result[]): Result {
  const sorted = [...runs].sort((a, b) => a.loadSeconds - b.loadSeconds);
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  const mid2 = (f: (r: Result) => number) => {
    const v = runs.map(f).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  return {
    ...mid,
    propagateSeconds: mid2((r) => r.propagateSeconds),
    bytesPerRoute: mid2((r) => r.bytesPerRoute),
    bytesPerRouteAfterPropagation: mid2((r) => r.bytesPerRouteAfterPropagation),
    runs: runs.length,
    samples: runs,
  };
}

async function versions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[]) =>
    (await run(cmd, args).catch((e: Error) => e.message)).trim();
  return {
    node: process.version,
    bird: (await run("/usr/sbin/bird", ["--version"]).catch(() => "")) || "BIRD (version on stderr)",
    gobgpd: await v("/usr/bin/gobgpd", ["--version"]),
  };
}

async function main(): Promise<void> {
  console.log(`BGP full-table benchmark: ${N.toLocaleString()} IPv4 prefixes`);
  const generator =
    GENERATOR === "bird" ? birdGenerator() : nodeGenerator(encodeTable(N, ATTR_SETS, GEN_ASN, NEXT_HOP));
  console.log(`generator: ${generator.name}`);
  const control = await sinkOnly(generator);
  console.log(`sink-only control (generator → sink): ${control.toFixed(2)} s`);
  const results: Result[] = [];
  const devices: [string, (port: number) => Promise<Device>][] = [
    ["margay", startMargay],
    ["bird", startBirdDut],
    ["gobgp", startGobgpDut],
  ];
  for (const [name, start] of devices) {
    if (!ONLY.includes(name)) continue;
    // GoBGP takes tens of seconds per run: once is enough to place it.
    const runs: Result[] = [];
    for (let i = 0; i < (name === "gobgp" ? 1 : REPEAT); i++)
      runs.push(await measure(name, start, generator));
    results.push(median(runs));
  }
  const get = (d: string) => results.find((r) => r.device === d);
  const m = get("margay");
  const bird = get("bird");
  const gobgp = get("gobgp");
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : undefined);
  const f = (x: number | undefined, d = 2) => (x === undefined ? "—" : x.toFixed(d));
  console.log("");
  console.log(`medians of ${REPEAT} runs (GoBGP: 1 run)`);
  console.log("| device | load (s) | B/route | propagate to 2nd peer (s) | B/route incl. Adj-RIB-Out |");
  console.log("| ------ | -------- | ------- | ------------------------- | ------------------------- |");
  console.log(`| sink-only control | ${f(control)} | — | — | — |`);
  for (const r of results) {
    console.log(
      `| ${r.device} | ${f(r.loadSeconds)} | ${f(r.bytesPerRoute, 0)} | ${f(r.propagateSeconds)} | ${f(r.bytesPerRouteAfterPropagation, 0)} |`,
    );
  }
  const ratios = {
    loadVsBird: ratio(m?.loadSeconds, bird?.loadSeconds),
    loadSpeedupVsGobgp: ratio(gobgp?.loadSeconds, m?.loadSeconds),
    memoryVsBird: ratio(m?.bytesPerRoute, bird?.bytesPerRoute),
    memoryVsGobgp: ratio(m?.bytesPerRoute, gobgp?.bytesPerRoute),
    propagateVsBird: ratio(m?.propagateSeconds, bird?.propagateSeconds),
    propagateSpeedupVsGobgp: ratio(gobgp?.propagateSeconds, m?.propagateSeconds),
  };
  console.log("");
  console.log(`margay load time / BIRD:        ${f(ratios.loadVsBird)}x (goal ≤ 1.5x)`);
  console.log(`GoBGP load time / margay:       ${f(ratios.loadSpeedupVsGobgp)}x faster`);
  console.log(`margay B/route / BIRD:          ${f(ratios.memoryVsBird)}x (goal < 300 B/route)`);
  console.log(`margay B/route / GoBGP:         ${f(ratios.memoryVsGobgp)}x`);
  console.log(`margay propagate / BIRD:        ${f(ratios.propagateVsBird)}x`);
  console.log(`GoBGP propagate / margay:       ${f(ratios.propagateSpeedupVsGobgp)}x faster`);
  const out = {
    benchmark: "bgp-full-table",
    date: new Date().toISOString(),
    routes: N,
    generator: generator.name,
    attributeSets: GENERATOR === "bird" ? 1 : ATTR_SETS,
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryBytes: totalmem() },
    versions: await versions(),
    method:
      "generator over one eBGP session (see generator); load = first byte written (BIRD generator: its session Established) → N routes in the device's Loc-RIB (polled: margay routeCount every 2 ms in-process, BIRD `birdc show protocols all` imported counter every 50 ms, GoBGP: last busy moment of its CPU (/proc, 100 ms windows) before 2 s idle, then its RIB summary must show N); B/route = resident memory gained / N (margay after a full GC; BIRD/GoBGP VmRSS); propagate = second peer Established → N prefixes received.",
    sinkOnlyControlSeconds: control,
    results,
    ratios,
  };
  mkdirSync(join(repoRoot, "bench-results"), { recursive: true });
  // Quick runs (`--routes` other than 1M) must not overwrite the full-table figures.
  const base = GENERATOR === "bird" ? "bgp-bird-generator" : "bgp";
  const file = join(repoRoot, "bench-results", `${base}${N === 1_000_000 ? "" : `-${N}`}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
}

await main();
