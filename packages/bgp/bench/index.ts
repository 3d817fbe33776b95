/**
 * Full-table benchmark, one harness for every device: a generator announces N unique IPv4 prefixes
 * (default 1,000,000) over one eBGP session to (a) `@margay/bgp`, (b) BIRD 2, (c) GoBGP, (d) FRR's bgpd,
 * each its own process. For each device we measure the time from the first UPDATE written to all N
 * routes in its Loc-RIB, the resident memory it gained per route, then the time to send the whole table
 * to a second peer that connects afterwards and the memory with that outbound table. A sink-only control
 * (generator straight into the sink) shows the harness is faster than any device under test.
 *
 * One method for all devices:
 * - completion: the harness polls every device's route counter every `--poll-ms` (default 100) ms, the
 *   next query starting `--poll-ms` after the previous one started (or when it returned, if later);
 *   done = the start of the first query that sees N. Each query's duration is recorded (`pollQueryMs`).
 *   Counters: margay `routeCount` (over its stdin), BIRD `birdc show protocols all gen` (imported),
 *   GoBGP `gobgp global rib summary` (destinations), FRR `vtysh show bgp ipv4 unicast summary json`
 *   (the generator's pfxRcd) with `show work-queues` (its best-path queue empty) in the same call;
 * - memory: VmRSS from /proc for every device, never after a forced GC. For margay alone, a second
 *   figure: V8 heap after a forced full GC, taken after the run's last RSS reading;
 * - `--repeat` runs (default 3) of every device, rounds interleaved with a rotating device order;
 *   min/median/max of every figure.
 *
 *   npm run bench -- [--routes 1000000] [--generator node|bird] [--attr-sets 1000] [--repeat 3]
 *                    [--poll-ms 100] [--only margay,bird,gobgp,frr] [--cpu-prof DIR]
 *
 * Generators: `node` (default) writes pre-encoded UPDATEs as fast as TCP takes them, over
 * `--attr-sets` distinct AS paths; `bird` is BIRD 2 with N static routes (one attribute set).
 * `BENCH_QUICK=1`: 5,000 routes, 2 runs. Writes `bgp.json` (`bgp-bird-generator.json` with the BIRD
 * generator) where scripts/bench-kit.ts says.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  fmt,
  size,
  summarize,
  summarizeBy,
  type Summary,
  toolVersion,
  writeResult,
} from "../../../scripts/bench-kit.js";
import { startBird } from "../src/interop/bird.js";
import { haveFrr, startFrr, VTYSH } from "../src/interop/frr.js";
import { startGobgp } from "../src/interop/gobgp.js";
import { freePort, run } from "../src/interop/util.js";
import { accept, dial, encodeTable } from "./mini-peer.js";

const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const N = Number(arg("routes", String(size(1_000_000, 5_000))));
const ATTR_SETS = Number(arg("attr-sets", String(size(1000, 50))));
const ONLY = arg("only", "margay,bird,gobgp,frr").split(",");
const GENERATOR = arg("generator", "node");
const REPEAT = Number(arg("repeat", String(size(3, 2))));
const POLL_MS = Number(arg("poll-ms", "100"));
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
  readonly pid: number;
  /** Routes in the Loc-RIB now (the one query the harness polls, for every device alike). */
  count(): Promise<number>;
  /** V8 heap after a forced full GC (margay only; asked after the run's last RSS reading). */
  heapAfterGc?(): Promise<number>;
  /** V8 heap after the GC before `ready` (margay only): the baseline of the heap figure. */
  readonly heapBaseline?: number;
  /** Checked once loaded, untimed: throws when the load is not complete in the device's own terms. */
  verify?(): Promise<void>;
  stop(): Promise<void>;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Polls `count` every POLL_MS until it reaches `n`; resolves with the start time of the query that saw
 * it and every query's duration.
 */
async function pollCount(
  count: () => Promise<number>,
  n: number,
  timeoutMs = 900_000,
): Promise<{ at: number; end: number; queryMs: number[] }> {
  const end = Date.now() + timeoutMs;
  const queryMs: number[] = [];
  for (;;) {
    const start = Date.now();
    const c = await count();
    const done = Date.now();
    queryMs.push(done - start);
    if (c >= n) return { at: start, end: done, queryMs };
    if (done > end) throw new Error(`timed out at ${c} of ${n} routes`);
    await new Promise((r) => setTimeout(r, Math.max(0, start + POLL_MS - done)));
  }
}

async function pollUntil(f: () => Promise<boolean>, everyMs: number, timeoutMs = 600_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await f()) return Date.now();
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, everyMs));
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
      }),
    ],
    { cwd: join(here, ".."), stdio: ["pipe", "pipe", "inherit"] },
  );
  const waiting: ((m: Record<string, number>) => void)[] = [];
  let ready: (m: Record<string, number>) => void = () => {};
  const readyP = new Promise<Record<string, number>>((r) => {
    ready = r;
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let m: Record<string, number> & { event: string };
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (m.event === "ready") ready(m);
    else waiting.shift()?.(m);
  });
  const ask = (cmd: string) =>
    new Promise<Record<string, number>>((resolve) => {
      waiting.push(resolve);
      child.stdin!.write(`${cmd}\n`);
    });
  const exit = new Promise<void>((r) => child.once("exit", () => r()));
  const r0 = await Promise.race([readyP, exit.then(() => null)]);
  if (r0 === null) throw new Error("margay device exited before ready");
  let lastBest = 0;
  return {
    pid: child.pid!,
    heapBaseline: r0.heapUsed!,
    count: async () => {
      const m = await ask("count");
      lastBest = m.bestPathEvents!;
      return m.routes!;
    },
    heapAfterGc: async () => (await ask("gc")).heapUsed!,
    verify: async () => {
      // The load counts only if the best-path stream (what a dataplane consumes) was produced too.
      const m = await ask("count");
      lastBest = m.bestPathEvents!;
      if (lastBest < N) throw new Error(`margay: ${lastBest} best-path events for ${N} routes`);
    },
    stop: async () => {
      child.stdin!.write("exit\n");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(t);
    },
  };
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
  return {
    pid: b.proc.pid!,
    // O(1) per-protocol counter (a `show route count` would walk the table inside BIRD's loop).
    count: async () => {
      const m = /Routes:\s+(\d+) imported/.exec(await b.birdc(["show", "protocols", "all", "gen"]));
      return m ? Number(m[1]) : 0;
    },
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
  return {
    pid: g.proc.pid!,
    // GoBGP has no O(1) counter: the summary walks its table (the recorded query times show the cost).
    count: async () => {
      const m = /Destination:\s*(\d+)/.exec(
        await g.gobgp(["global", "rib", "summary", "-a", "ipv4"], 120_000),
      );
      return m ? Number(m[1]) : 0;
    },
    stop: () => g.stop(),
  };
}

async function startFrrDut(port: number): Promise<Device> {
  const peer = (addr: string, asn: number) => [
    ` neighbor ${addr} remote-as ${asn}`,
    ` neighbor ${addr} passive`,
    ` neighbor ${addr} disable-connected-check`,
    ` neighbor ${addr} timers 80 240`,
  ];
  const f = await startFrr(
    [
      "frr defaults traditional",
      "hostname margay-bench",
      "log stdout warnings",
      "!",
      "route-map NONE deny 10",
      "exit",
      "!",
      `router bgp ${DUT_ASN}`,
      " bgp router-id 10.0.2.1",
      " no bgp ebgp-requires-policy",
      ...peer(GEN, GEN_ASN),
      ...peer(SINK, SINK_ASN),
      " address-family ipv4 unicast",
      // Like BIRD's and GoBGP's setup: nothing back to the generator, nothing taken from the sink.
      `  neighbor ${GEN} route-map NONE out`,
      `  neighbor ${SINK} route-map NONE in`,
      " exit-address-family",
      "exit",
      "",
    ].join("\n"),
    DUT,
    port,
    "bench",
  );
  return {
    pid: f.proc.pid!,
    // The per-peer accepted-prefix counter (O(1)) counts a route before FRR's best-path work queue has
    // run, so the same query also reads that queue: loaded = every prefix received and the queue empty.
    count: async () => {
      // vtysh directly, with a timeout that a bgpd busy with a million routes cannot run into.
      const text = await run(
        VTYSH,
        [
          "--vty_socket",
          f.dir,
          "-d",
          "bgpd",
          "-c",
          "show bgp ipv4 unicast summary json",
          "-c",
          "show work-queues",
        ],
        120_000,
      );
      const cut = text.indexOf("Work queue statistics");
      const j = JSON.parse(cut >= 0 ? text.slice(0, cut) : text) as {
        peers?: Record<string, { pfxRcd?: number }>;
      };
      const queued = /^\s*P?\s*(\d+)\s+\d+\s+.*process_queue/m.exec(cut >= 0 ? text.slice(cut) : "");
      const received = j.peers?.[GEN]?.pfxRcd ?? 0;
      if (queued === null) throw new Error("FRR: no process_queue in `show work-queues`");
      return Number(queued[1]) === 0 ? received : Math.min(received, N - 1);
    },
    stop: () => f.stop(),
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

/** One run of one device. */
interface Run {
  /** First UPDATE → start of the query that saw N routes (a lower bound of the load time). */
  loadSeconds: number;
  /** First UPDATE → end of that query (an upper bound). */
  loadSecondsUpper: number;
  propagateSeconds: number;
  /** VmRSS gained per route once loaded (no forced GC). */
  rssBytesPerRoute: number;
  /** VmRSS gained per route once the table was sent to the second peer (outbound table held). */
  rssBytesPerRouteWithOutbound: number;
  /** margay only: V8 heap gained per route after a forced full GC, at the end of the run. */
  heapBytesPerRouteWithOutbound?: number;
  /** Duration of each completion query during the load. */
  pollQueryMs: number[];
}

interface DeviceResult {
  device: string;
  runs: Run[];
  loadSeconds: Summary;
  loadSecondsUpper: Summary;
  propagateSeconds: Summary;
  rssBytesPerRoute: Summary;
  rssBytesPerRouteWithOutbound: Summary;
  heapBytesPerRouteWithOutbound?: Summary;
  pollQueryMs: Summary;
}

async function measure(
  name: string,
  start: (port: number) => Promise<Device>,
  generator: Generator,
): Promise<Run> {
  const port = await freePort(DUT);
  const dev = await start(port);
  let gen: Awaited<ReturnType<Generator["open"]>> | undefined;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rss0 = rssOf(dev.pid);
    gen = await generator.open(DUT, port, DUT_ASN);
    const t0 = await gen.start();
    const { at: t1, end: t1Upper, queryMs } = await pollCount(() => dev.count(), N);
    const rss1 = rssOf(dev.pid);
    await dev.verify?.();
    const sink = dial(DUT, port, SINK, { asn: SINK_ASN, routerId: "10.0.2.3" });
    const ts0 = await sink.established;
    const ts1 = await sink.waitReceived(N);
    const rss2 = rssOf(dev.pid);
    sink.close();
    const r: Run = {
      loadSeconds: (t1 - t0) / 1000,
      loadSecondsUpper: (t1Upper - t0) / 1000,
      propagateSeconds: (ts1 - ts0) / 1000,
      rssBytesPerRoute: (rss1 - rss0) / N,
      rssBytesPerRouteWithOutbound: (rss2 - rss0) / N,
      pollQueryMs: queryMs,
    };
    if (dev.heapAfterGc && dev.heapBaseline !== undefined)
      r.heapBytesPerRouteWithOutbound = ((await dev.heapAfterGc()) - dev.heapBaseline) / N;
    console.log(
      `${name}: load ${r.loadSeconds.toFixed(2)} s, RSS ${r.rssBytesPerRoute.toFixed(0)} B/route; ` +
        `propagate ${r.propagateSeconds.toFixed(2)} s, RSS ${r.rssBytesPerRouteWithOutbound.toFixed(0)} B/route with the outbound table` +
        (r.heapBytesPerRouteWithOutbound === undefined
          ? ""
          : ` (V8 heap after forced GC ${r.heapBytesPerRouteWithOutbound.toFixed(0)} B/route)`),
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

function summarizeDevice(device: string, runs: Run[]): DeviceResult {
  const heap = runs.filter((r) => r.heapBytesPerRouteWithOutbound !== undefined);
  return {
    device,
    runs,
    loadSeconds: summarizeBy(runs, (r) => r.loadSeconds),
    loadSecondsUpper: summarizeBy(runs, (r) => r.loadSecondsUpper),
    propagateSeconds: summarizeBy(runs, (r) => r.propagateSeconds),
    rssBytesPerRoute: summarizeBy(runs, (r) => r.rssBytesPerRoute),
    rssBytesPerRouteWithOutbound: summarizeBy(runs, (r) => r.rssBytesPerRouteWithOutbound),
    ...(heap.length > 0
      ? { heapBytesPerRouteWithOutbound: summarizeBy(heap, (r) => r.heapBytesPerRouteWithOutbound!) }
      : {}),
    pollQueryMs: summarize(runs.flatMap((r) => r.pollQueryMs)),
  };
}

function versions(): Record<string, string> {
  const version = (cmd: string) => toolVersion(cmd, ["--version"]) ?? "unavailable";
  return {
    node: process.version,
    bird: version("/usr/sbin/bird"),
    gobgpd: version("/usr/bin/gobgpd"),
    frr: version("/usr/lib/frr/bgpd"),
  };
}

async function main(): Promise<void> {
  console.log(`BGP full-table benchmark: ${N.toLocaleString()} IPv4 prefixes, ${REPEAT} runs per device`);
  const generator =
    GENERATOR === "bird" ? birdGenerator() : nodeGenerator(encodeTable(N, ATTR_SETS, GEN_ASN, NEXT_HOP));
  console.log(`generator: ${generator.name}`);
  const devices: [string, (port: number) => Promise<Device>][] = [
    ["margay", startMargay],
    ["bird", startBirdDut],
    ["gobgp", startGobgpDut],
    ["frr", startFrrDut],
  ];
  const chosen = devices.filter(([name]) => ONLY.includes(name));
  if (chosen.some(([n]) => n === "frr") && !(await haveFrr()))
    throw new Error("FRR is not installed (apt-get install -y frr), or leave it out with --only");
  const control: number[] = [];
  const runs = new Map<string, Run[]>(chosen.map(([n]) => [n, []]));
  for (let round = 0; round < REPEAT; round++) {
    control.push(await sinkOnly(generator));
    // Rotate the order so no device always runs first (or right after the most expensive one).
    for (let k = 0; k < chosen.length; k++) {
      const [name, start] = chosen[(k + round) % chosen.length]!;
      runs.get(name)!.push(await measure(name, start, generator));
    }
  }
  const results = chosen.map(([name]) => summarizeDevice(name, runs.get(name)!));
  const controlSeconds = summarize(control);
  const s = (x: Summary | undefined, d = 2) => (x === undefined ? "—" : fmt(x, d));
  console.log("");
  console.log(`median (min–max) of ${REPEAT} runs; completion polled every ${POLL_MS} ms for every device`);
  console.log(
    "| device | load (s) | load, query end (s) | RSS B/route | propagate to 2nd peer (s) | RSS B/route with outbound table | V8 heap B/route after forced GC, with outbound | poll query (ms) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  console.log(`| sink-only control | ${s(controlSeconds)} | — | — | — | — | — | — |`);
  for (const r of results) {
    console.log(
      `| ${r.device} | ${s(r.loadSeconds)} | ${s(r.loadSecondsUpper)} | ${s(r.rssBytesPerRoute, 0)} | ${s(r.propagateSeconds)} | ${s(r.rssBytesPerRouteWithOutbound, 0)} | ${s(r.heapBytesPerRouteWithOutbound, 0)} | ${s(r.pollQueryMs, 0)} |`,
    );
  }
  writeResult(GENERATOR === "bird" ? "bgp-bird-generator" : "bgp", {
    benchmark: "bgp-full-table",
    routes: N,
    repeat: REPEAT,
    pollMs: POLL_MS,
    generator: generator.name,
    attributeSets: GENERATOR === "bird" ? 1 : ATTR_SETS,
    versions: versions(),
    method: `each device its own process; load = first UPDATE byte written (BIRD generator: its session Established) → the start of the first completion query that sees N routes (loadSecondsUpper: → its end); every device polled every ${POLL_MS} ms by the harness (margay routeCount over stdin, BIRD birdc imported counter, GoBGP rib summary, FRR summary json pfxRcd of the generator with its best-path process_queue empty, one vtysh call); memory = VmRSS gained / N for every device, no forced GC (margay's V8 heap after a forced GC is a separate, second figure taken after the last RSS reading); propagate = second peer Established → N prefixes received; ${REPEAT} interleaved runs per device, min/median/max`,
    sinkOnlyControlSeconds: controlSeconds,
    results,
  });
}

await main();
